from __future__ import annotations

import pytest

from reports import portfolio
from reports.render import render_portfolio
from tests.reports.samples import GENERATED_AT, make_deal, make_metrics


def pools() -> list[portfolio.PoolLatest]:
    other_deal = make_deal(pool_id="HB-2025-2", name="Demo 2", name_zh="示例2")
    other = make_metrics()
    other["pool_id"] = "HB-2025-2"
    other["pool"]["closing_balance"] = "765432.11"
    other["characteristics"]["wac"] = 0.1
    return [
        portfolio.PoolLatest(other_deal, other, "HB-2025-2/2025-06/disclosure.en.html"),
        portfolio.PoolLatest(make_deal(), make_metrics(), "HB-2025-1/2025-06/disclosure.en.html"),
    ]


def test_pools_side_by_side_with_balance_weighted_totals() -> None:
    context = portfolio.build_context(pools(), generated_at=GENERATED_AT, code_version="v")
    table = context["sections"][0]["tables"][0]
    assert [r["cells"][0] for r in table["rows"][:2]] == ["HB-2025-1", "HB-2025-2"]
    total = table["rows"][-1]
    assert total["total"] is True
    assert total["cells"][2] == "2,000,000.00"
    assert total["cells"][4] == "2,468"
    # (15.23% x 1,234,567.89 + 10% x 765,432.11) / 2,000,000.00
    assert total["cells"][5] == "13.23%"
    assert [link["href"] for link in context["sections"][0]["links"]] == [
        "HB-2025-1/2025-06/disclosure.en.html",
        "HB-2025-2/2025-06/disclosure.en.html",
    ]


def test_chinese_overview_names_deals_in_chinese() -> None:
    html = render_portfolio(
        portfolio.build_context(
            pools(), generated_at=GENERATED_AT, code_version="v", locale="zh_CN"
        )
    )
    assert "示例花呗2025-1" in html
    assert '<html lang="zh-CN">' in html


def test_a_pool_listed_twice_or_with_foreign_metrics_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        portfolio.build_context(
            [pools()[1], pools()[1]], generated_at=GENERATED_AT, code_version="v"
        )
    with pytest.raises(ValueError, match="given for"):
        portfolio.PoolLatest(make_deal(pool_id="X"), make_metrics(), "a.html")


def test_an_empty_portfolio_says_so() -> None:
    context = portfolio.build_context([], generated_at=GENERATED_AT, code_version="v")
    assert context["sections"][0]["notes"] == ["No pool has a reported period yet."]


def test_a_figure_that_does_not_apply_or_is_not_delivered_is_never_printed_as_zero() -> None:
    card = make_metrics()
    card["performance"]["cpr"] = 0.0
    card["characteristics"]["wac"] = 0.0
    card["data_source"] = {
        "hidden_sections": [
            {
                "section": "performance.cpr",
                "reason": "schedule-based prepayment does not apply to revolving accounts",
            }
        ],
        "not_available": ["characteristics.wac"],
    }
    listed = [pools()[0], portfolio.PoolLatest(make_deal(), card, "a.html")]
    context = portfolio.build_context(listed, generated_at=GENERATED_AT, code_version="v")
    overview = context["sections"][0]
    table = overview["tables"][0]
    labels = [column["label"] for column in table["columns"][1:]]
    cells = dict(zip(labels, table["rows"][0]["cells"], strict=True))
    assert cells["CPR"] == "not applicable"
    assert cells["WAC"] == "not available from this source"
    # The totals' WAC would leave the pool out: it is not computed.
    assert dict(zip(labels, table["rows"][-1]["cells"], strict=True))["WAC"] == "not computed"
    assert (
        "HB-2025-1: CPR is not applicable; schedule-based prepayment does not apply"
        " to revolving accounts." in overview["notes"]
    )
