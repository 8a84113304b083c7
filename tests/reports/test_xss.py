"""Every free-text input reaches the HTML escaped, in every report."""

from __future__ import annotations

from datetime import date

import pytest

from reports import disclosure, index, portfolio, static_pool
from reports.render import render_disclosure, render_index, render_portfolio, render_static_pool
from reports.sources import (
    DataQuality,
    DatasetQuality,
    Provenance,
    RelativeLink,
    RuleCount,
    StratificationRow,
)
from tests.reports.samples import (
    GENERATED_AT,
    make_deal,
    make_history,
    make_metrics,
    make_vintages,
)

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
SHORT = {PAYLOADS[0]: "<script>x", PAYLOADS[1]: '"><img src=x>'}
"""Tranche class names are at most 16 characters."""


def assert_escaped(html: str) -> None:
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html or "&lt;img" in html


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_every_free_text_field_of_a_disclosure_is_escaped(payload: str, locale: str) -> None:
    short = SHORT[payload]
    deal = make_deal(
        name=payload,
        name_zh=payload,
        tranches=[
            {
                "class": short,
                "kind": "senior",
                "original_balance": "890000.00",
                "coupon": "0.039",
                "rating": payload,
                "code": payload,
            },
            {"class": "C", "kind": "subordinated", "original_balance": "110000.00", "coupon": "0"},
        ],
        triggers=[{"name": payload, "metric": "cumulative_default_rate", "threshold": "0.025"}],
    )
    metrics = make_metrics()
    metrics["tranches"] = [{**metrics["tranches"][1], "class": short}]
    metrics["triggers"] = [
        {"name": payload, "threshold": 0.025, "actual": 0.01, "breached": False, "metric": payload}
    ]
    metrics["concentration"]["province_shares"] = {payload: 1.0}
    metrics["waterfall"][0].update(account=payload, item=payload)
    metrics["definitions"][payload] = payload
    strata = [
        StratificationRow("channel", payload, 1234, "1234567.89", 1.0, 0.15),
        StratificationRow("province", payload, 1234, "1234567.89", 1.0, 0.15),
        StratificationRow(payload, payload, 1234, "1234567.89", 1.0, 0.15),
    ]
    quality = DataQuality(
        datasets=(DatasetQuality(payload, 1, 1),),
        rules=(RuleCount(payload, payload, 1),),
        contract_versions=((payload, payload),),
        reports=(RelativeLink(payload, "../../data_quality/r.html"),),
    )
    context = disclosure.build_context(
        metrics,
        deal,
        generated_at=GENERATED_AT,
        provenance=Provenance(payload, payload, ((payload, "c" * 64),)),
        locale=locale,
        history=make_history(),
        stratifications=strata,
        vintages=make_vintages(),
        data_quality=quality,
    )
    html = render_disclosure(context)
    assert_escaped(html)
    assert html.count("alert(1)") >= 10 or html.count("&lt;script&gt;x") >= 2


@pytest.mark.parametrize("payload", PAYLOADS)
def test_static_pool_portfolio_and_index_escape_names(payload: str) -> None:
    deal = make_deal(name=payload, name_zh=payload)
    html = render_static_pool(
        static_pool.build_context(
            deal,
            vintages=make_vintages(),
            history=make_history(),
            generated_at=GENERATED_AT,
            provenance=Provenance(payload, payload),
        )
    )
    assert_escaped(html)
    html = render_portfolio(
        portfolio.build_context(
            [portfolio.PoolLatest(deal, make_metrics(), "HB-2025-1/2025-06/disclosure.en.html")],
            generated_at=GENERATED_AT,
            code_version=payload,
        )
    )
    assert_escaped(html)
    html = render_index(
        index.build_context(
            [
                index.IndexEntry(
                    "HB-2025-1",
                    payload,
                    "2025-06",
                    "HB-2025-1/2025-06/disclosure.en.html",
                    "en",
                    (index.ReportLink(payload, "data_quality/r.html"),),
                )
            ],
            generated_at=GENERATED_AT,
            runs=[index.RunReport(payload, date(2025, 6, 1), date(2025, 6, 30), "dq/r.html")],
        )
    )
    assert_escaped(html)
