"""The disclosure of a pool fed by a servicer loan tape: what the source can and cannot give."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reports.disclosure import DisclosureContext, build_context
from reports.formatting import NOT_AVAILABLE
from reports.layout import Section
from reports.sources import StratificationRow
from tests.reports.samples import (
    GENERATED_AT,
    PROVENANCE,
    make_deal,
    make_metrics,
)

LOCALES = ("en", "zh_CN")


def build(metrics: dict[str, Any], locale: str = "en", **deal: Any) -> DisclosureContext:
    return build_context(
        metrics,
        make_deal(**deal),
        generated_at=GENERATED_AT,
        provenance=PROVENANCE,
        locale=locale,
        stratifications=[
            StratificationRow("province", "US-CA", 700, "700000.00", 0.567, 0.15),
            StratificationRow("province", "US-TX", 534, "534567.89", 0.433, 0.15),
        ],
    )


def section(context: DisclosureContext, key: str) -> Section:
    (found,) = [s for s in context["sections"] if s["key"] == key]
    return found


def cells(found: Section) -> dict[str, list[str]]:
    return {r["header"]: r["cells"] for t in found["tables"] for r in t["rows"]}


def tape_metrics(**source: Any) -> dict[str, Any]:
    metrics = make_metrics()
    metrics["data_source"] = {
        "balance_source": "servicer",
        "requested_balance_source": "servicer",
        "servicer_loans": 1234,
        "engine_loans": 0,
        "not_available": [],
        "hidden_sections": [],
        "regions_not_allowed": [],
        **source,
    }
    return metrics


def test_a_usd_deal_prints_us_dollars_and_us_state_names_in_english() -> None:
    metrics = make_metrics()
    metrics["currency"] = "USD"
    context = build(metrics, currency="USD", allowed_regions=("US",))
    text = json.dumps(context, ensure_ascii=False)
    (closing,) = [
        k["value"] for k in context["key_figures"] if k["label"] == "Closing pool balance"
    ]
    assert closing == "US$1,234,567.89"
    columns = [
        c["label"] for t in section(context, "stratifications")["tables"] for c in t["columns"]
    ]
    assert any("US$" in label for label in columns)
    provinces = cells(section(context, "stratifications"))
    assert "California" in provinces
    assert "Texas" in provinces
    assert "元" not in text
    assert "CNY" not in text


def test_a_usd_deal_never_prints_yuan_in_the_chinese_report() -> None:
    metrics = make_metrics()
    metrics["currency"] = "USD"
    context = build(metrics, "zh_CN", currency="USD", allowed_regions=("US",))
    pool_cells = cells(section(context, "pool"))
    assert any("US$" in h for h in pool_cells)
    assert "元" not in json.dumps(context, ensure_ascii=False)
    assert "加利福尼亚州" in cells(section(context, "stratifications"))


@pytest.mark.parametrize("locale", LOCALES)
def test_a_figure_the_tape_cannot_give_prints_the_phrase_not_the_zero(locale: str) -> None:
    metrics = tape_metrics(
        not_available=["collections.interest", "collections.total", "performance.payment_rate"]
    )
    metrics["collections"]["interest"] = "0.00"
    metrics["collections"]["total"] = "70450.25"
    metrics["performance"]["payment_rate"] = 0.0
    context = build(metrics, locale)
    phrase = NOT_AVAILABLE[locale]
    collections = section(context, "collections")
    interest, total = (
        cells(collections)["Interest" if locale == "en" else "利息"],
        collections["tables"][0]["rows"][-1]["cells"],
    )
    assert interest == [phrase]
    assert total == [phrase]
    # The income account adds the interest: it is not available either, never a partial sum.
    accounts = collections["tables"][1]["rows"]
    assert accounts[1]["cells"] == [phrase]
    assert accounts[0]["cells"] != [phrase]
    revolving = section(context, "revolving")
    payment = [r["cells"] for t in revolving["tables"] for r in t["rows"]][-1]
    assert payment == [phrase]
    shown = [c for t in collections["tables"][:2] for r in t["rows"] for c in r["cells"]]
    assert "0.00" not in shown


def test_total_collections_are_not_a_partial_sum_when_fees_are_not_available() -> None:
    metrics = tape_metrics(not_available=["collections.fees"])
    metrics["collections"]["fees"] = "0.00"
    metrics["collections"]["total"] = "82150.75"
    rows = section(build(metrics), "collections")["tables"][0]["rows"]
    assert rows[2]["cells"] == [NOT_AVAILABLE["en"]]
    assert rows[-1]["cells"] == [NOT_AVAILABLE["en"]]
    assert rows[1]["cells"] == ["12,000.50"]


@pytest.mark.parametrize(
    ("locale", "stated"),
    [("en", "Servicer loan tape (1,234 loans)"), ("zh_CN", "资产服务机构资产明细（1,234笔）")],
)
def test_section_1_states_the_data_source(locale: str, stated: str) -> None:
    context = build(tape_metrics(), locale)
    rows = section(context, "deal")["tables"][0]["rows"]
    assert stated in [r["cells"][0] for r in rows]


def test_a_mixed_pool_names_both_counts() -> None:
    context = build(tape_metrics(balance_source="mixed", servicer_loans=300, engine_loans=934))
    rows = {r["header"]: r["cells"] for r in section(context, "deal")["tables"][0]["rows"]}
    assert rows["Data source"] == [
        "Mixed: servicer loan tape for 300 loans, computed from repayments for 934 loans"
    ]
    assert rows["Balance source in the deal terms"] == ["servicer loan tape"]


REVOLVING_HIDDEN = [
    {
        "section": "characteristics.wam_months",
        "reason": "revolving accounts have no schedule, so no remaining term",
    },
    {
        "section": "performance.smm",
        "reason": "schedule-based prepayment does not apply to revolving accounts",
    },
    {
        "section": "performance.cpr",
        "reason": "schedule-based prepayment does not apply to revolving accounts",
    },
]
ACCOUNTS = {
    "opening_balance": "100000.00",
    "principal_collections": "12000.00",
    "interest_collections": "1500.00",
    "fee_collections": "500.00",
    "new_drawings": "9000.00",
    "charged_off_principal": "400.00",
    "recoveries": "50.00",
    "closing_balance": "96600.00",
    "credit_limit": "240000.00",
    "thirty_plus_balance": "2898.00",
    "account_count": 310,
    "thirty_plus_count": 9,
    "over_limit_count": 2,
    "payment_rate": 0.14,
    "utilisation": 0.4025,
    "thirty_plus_share": 0.03,
    "charge_off_rate_annualised": 0.048,
    "yield_annualised": 0.24,
}


def test_a_revolving_pool_hides_wam_and_prepayment_with_the_reason() -> None:
    metrics = tape_metrics(hidden_sections=REVOLVING_HIDDEN)
    metrics["revolving_accounts"] = ACCOUNTS
    context = build(metrics)
    characteristics = section(context, "characteristics")
    assert not any("WAM" in header for header in cells(characteristics))
    assert not any("WAM" in header for header in cells(section(context, "pool")))
    assert characteristics["notes"] == [
        "Weighted average remaining term (WAM): not shown; revolving accounts have no "
        "schedule, so no remaining term."
    ]
    prepayment = section(context, "prepayment")
    assert prepayment["tables"] == []
    assert prepayment["charts"] == []
    assert len(prepayment["notes"]) == 2
    assert all("does not apply to revolving accounts" in note for note in prepayment["notes"])
    assert "CPR" not in [k["label"] for k in context["key_figures"]]


@pytest.mark.parametrize(
    ("locale", "label", "value"),
    [
        ("en", "Utilisation (balance / credit limit of open accounts)", "40.25%"),
        (
            "en",
            "Monthly payment rate of the accounts"
            " ((principal + interest + fees collected) / opening balance of the accounts)",
            "14.00%",
        ),
        ("en", "Accounts above their credit limit", "2"),
        ("en", "Credit limit of open accounts (CNY)", "240,000.00"),
        ("zh_CN", "额度使用率（余额 ÷ 未核销账户授信额度）", "40.25%"),
        ("zh_CN", "年化核销率（核销本金 × 12 ÷ 期初余额）", "4.80%"),
    ],
)
def test_a_revolving_pool_shows_its_accounts(locale: str, label: str, value: str) -> None:
    metrics = tape_metrics(hidden_sections=REVOLVING_HIDDEN)
    metrics["revolving_accounts"] = ACCOUNTS
    assert cells(section(build(metrics, locale), "revolving"))[label] == [value]


def test_a_revolving_reason_is_stated_in_chinese_in_the_chinese_report() -> None:
    metrics = tape_metrics(hidden_sections=REVOLVING_HIDDEN)
    notes = section(build(metrics, "zh_CN"), "characteristics")["notes"]
    assert notes == ["加权平均剩余期限（WAM）：不予列示；循环账户无还款计划，故无剩余期限。"]


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("en", "The pool holds loans from Guangdong, California"),
        ("zh_CN", "资产池含有来自广东省、加利福尼亚州的贷款"),
    ],
)
def test_regions_outside_the_deal_are_significant_events(locale: str, text: str) -> None:
    metrics = tape_metrics(regions_not_allowed=["US-CA", "CN-GD"])
    rows = section(build(metrics, locale), "significant_events")["tables"][0]["rows"]
    assert any(r["cells"][0].startswith(text) for r in rows)


def test_an_engine_pool_states_no_data_source_and_no_region_event() -> None:
    context = build(make_metrics())
    headers = [r["header"] for r in section(context, "deal")["tables"][0]["rows"]]
    assert "Data source" not in headers
