"""Money in the deal's currency and region names from maintained sources."""

from __future__ import annotations

import pytest

from reports.formatting import NOT_AVAILABLE, currency_symbol, format_money, region_name


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        ("1234.50", "USD", "en", "US$1,234.50"),
        ("1234.50", "TWD", "en", "NT$1,234.50"),
        ("1234.50", "CNY", "zh_CN", "¥1,234.50"),
        ("-1234.50", "USD", "zh_CN", "-US$1,234.50"),
        ("1234.50", "JPY", "en", "JP¥1,235"),
    ],
)
def test_money_is_shown_in_the_deals_currency(
    amount: str, currency: str, locale: str, shown: str
) -> None:
    assert format_money(amount, currency, locale) == shown


def test_a_usd_deal_in_the_english_report_says_us_dollars_unambiguously() -> None:
    assert currency_symbol("USD", "en") == "US$"


@pytest.mark.parametrize(
    ("code", "english", "chinese"),
    [
        ("US-CA", "California", "加利福尼亚州"),
        ("CN-GD", "Guangdong Sheng", "广东省"),
        ("TW", "Taiwan", "台湾"),
        ("XX-YY", "XX-YY", "XX-YY"),
    ],
)
def test_regions_are_named_from_iso_3166_data(code: str, english: str, chinese: str) -> None:
    assert region_name(code, "en") == english
    assert region_name(code, "zh_CN") == chinese


def test_a_figure_the_source_cannot_give_has_a_stated_mark_in_both_languages() -> None:
    assert NOT_AVAILABLE["en"] == "not available from this source"
    assert set(NOT_AVAILABLE) == {"en", "zh_CN"}
