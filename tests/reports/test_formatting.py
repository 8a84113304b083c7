from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from babel.numbers import format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.formatting import (
    format_amount,
    format_count,
    format_long_date,
    format_number,
    format_rate,
    format_signed_amount,
    format_timestamp,
    html_lang,
    to_decimal,
)


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_amounts_have_grouping_and_two_decimals(locale: str) -> None:
    assert format_amount("1234567.89", locale) == "1,234,567.89"
    assert format_amount("1234.5", locale) == "1,234.50"
    assert format_amount(0, locale) == "0.00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.005", "1,234.01"),
        ("0.125", "0.13"),
        ("2.665", "2.67"),
        ("-0.005", "-0.01"),
        ("1234.004999", "1,234.00"),
    ],
)
def test_amounts_round_half_up(value: str, expected: str) -> None:
    assert format_amount(value, "en") == expected


def test_babel_alone_would_round_half_even() -> None:
    # The reason formatting quantises before Babel: the same input differs.
    assert format_decimal(Decimal("0.125"), format="#,##0.00", locale="en") == "0.12"
    assert format_amount(Decimal("0.125"), "en") == "0.13"


def test_negative_amounts_carry_a_minus_sign() -> None:
    assert format_amount("-1234.50", "en") == "-1,234.50"


def test_signed_amounts_show_plus_minus_and_unsigned_zero() -> None:
    assert format_signed_amount("1000", "en") == "+1,000.00"
    assert format_signed_amount(Decimal("-250"), "en") == "-250.00"
    assert format_signed_amount("0.004", "en") == "0.00"
    assert format_signed_amount("-0.005", "zh_CN") == "-0.01"


def test_amounts_refuse_floats_and_non_numbers() -> None:
    with pytest.raises(TypeError):
        to_decimal(1234.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_decimal(True)
    with pytest.raises(ValueError, match="not a decimal amount"):
        to_decimal("12,34")
    with pytest.raises(ValueError, match="finite"):
        to_decimal("NaN")


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
@settings(max_examples=60)
def test_two_decimal_amounts_are_printed_exactly(value: Decimal) -> None:
    text = format_amount(value, "en")
    assert Decimal(text.replace(",", "")) == value


def test_rates_are_percentages_rounded_half_up() -> None:
    assert format_rate(0.015, "en") == "1.50%"
    assert format_rate(0.00125, "en") == "0.13%"
    assert format_rate(0.1659, "zh_CN") == "16.59%"
    assert format_rate(0.005143, "en", 4) == "0.5143%"
    assert format_rate(-0.0123, "en") == "-1.23%"


def test_rates_with_a_maximum_drop_only_trailing_zeros() -> None:
    assert format_rate(0.039, "en", 2, 4) == "3.90%"
    assert format_rate(0.03355, "en", 2, 4) == "3.355%"
    with pytest.raises(ValueError, match="max_places"):
        format_rate(0.1, "en", 4, 2)


def test_numbers_and_counts() -> None:
    assert format_number(0.8230455, "en", 6) == "0.823046"
    assert format_number(8, "en", 1) == "8.0"
    assert format_count(1234567, "en") == "1,234,567"
    with pytest.raises(TypeError):
        format_count(True, "en")


def test_long_dates_in_english_and_chinese() -> None:
    assert format_long_date(date(2025, 6, 30), "en") == "June 30, 2025"
    assert format_long_date(date(2025, 6, 30), "zh_CN") == "2025年6月30日"


def test_timestamps_are_iso_and_must_be_aware() -> None:
    moment = datetime(2025, 7, 1, 2, 0, 5, 123, tzinfo=timezone(timedelta(hours=8)))
    assert format_timestamp(moment) == "2025-07-01T02:00:05+08:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 7, 1, 2, 0))


def test_only_report_locales_are_accepted() -> None:
    assert html_lang("zh_CN") == "zh-CN"
    with pytest.raises(ValueError, match="unsupported"):
        format_amount("1", "de_DE")
