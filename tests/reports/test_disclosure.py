from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from data_contracts.deal import DealTerms
from reports.disclosure import EN_LABELS, DisclosureContext, Section, build_context
from reports.render import render_disclosure

GENERATED_AT = datetime(2025, 7, 1, 2, 0, tzinfo=timezone(timedelta(hours=8)))
XSS_NAMES = {
    "<script>alert(1)</script>": "&lt;script&gt;alert(1)&lt;/script&gt;",
    '"><img src=x onerror=alert(1)>': "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
}


def make_deal(**overrides: Any) -> DealTerms:
    terms: dict[str, Any] = {
        "pool_id": "HB-2025-1",
        "name": "Demo Huabei 2025-1",
        "name_zh": "示例花呗2025-1",
        "cutoff_date": "2025-03-31",
        "closing_date": "2025-04-15",
        "payment_day": 26,
        "tranches": [
            {"class": "A", "kind": "senior", "original_balance": "890000.00", "coupon": "0.039"},
            {"class": "B", "kind": "mezzanine", "original_balance": "35000.00", "coupon": "0.0419"},
            {"class": "C", "kind": "subordinated", "original_balance": "75000.00", "coupon": "0"},
        ],
        "triggers": [
            {
                "name": "Cumulative default",
                "metric": "cumulative_default_rate",
                "threshold": "0.025",
            },
            {
                "name": "Payment rate floor",
                "metric": "payment_rate",
                "comparison": "below",
                "threshold": "0.05",
                "consequence": "report_only",
            },
        ],
        "definitions": {"default_dpd": 90, "charge_off_dpd": 180, "dpd_tolerance": "1.00"},
    }
    terms.update(overrides)
    return DealTerms.model_validate(terms)


def make_metrics() -> dict[str, Any]:
    return {
        "pool_id": "HB-2025-1",
        "period": "2025-06",
        "period_start": "2025-06-01",
        "period_end": "2025-06-30",
        "currency": "CNY",
        "pool": {
            "opening_balance": "1300000.00",
            "scheduled_principal": "50000.00",
            "unscheduled_principal": "20000.00",
            "defaulted_principal": "5432.11",
            "removed_principal": "1000.00",
            "purchased_principal": "11000.00",
            "closing_balance": "1234567.89",
            "cutoff_balance": "1500000.00",
            "pool_factor": 0.823045,
            "opening_count": 1300,
            "closing_count": 1234,
        },
        "collections": {
            "principal": "70000.00",
            "interest": "12000.50",
            "fees": "300.00",
            "recoveries": "150.25",
            "total": "82450.75",
        },
        "characteristics": {
            "wac": 0.1523,
            "wam_months": 8.44,
            "wala_months": 3.25,
            "average_balance": "1000.465",
            "loan_count": 1234,
            "obligor_count": 1201,
        },
        "delinquency": [
            {"bucket": "31-60", "count": 4, "balance": "3000.00", "balance_share": 0.0024},
            {"bucket": "current", "count": 1220, "balance": "1222567.89", "balance_share": 0.9903},
            {"bucket": "1-30", "count": 10, "balance": "9000.00", "balance_share": 0.0073},
        ],
        "performance": {"smm": 0.015, "cpr": 0.1659, "mdr": 0.004178, "cdr": 0.0490},
        "tranches": [
            {
                "class": "B",
                "opening_balance": "35000.00",
                "interest_paid": "122.21",
                "principal_paid": "0.00",
                "closing_balance": "35000.00",
                "coupon": 0.0419,
                "bond_factor": 1.0,
            },
            {
                "class": "A",
                "opening_balance": "890000.00",
                "interest_paid": "2892.50",
                "principal_paid": "44500.00",
                "closing_balance": "845500.00",
                "coupon": 0.039,
                "bond_factor": 0.95,
            },
        ],
        "triggers": [
            {"name": "Payment rate floor", "threshold": 0.05, "actual": 0.0538, "breached": False},
            {"name": "Cumulative default", "threshold": 0.025, "actual": 0.02612, "breached": True},
        ],
    }


def build(
    metrics: dict[str, Any] | None = None, deal: DealTerms | None = None
) -> DisclosureContext:
    return build_context(
        make_metrics() if metrics is None else metrics,
        make_deal() if deal is None else deal,
        generated_at=GENERATED_AT,
        run_id="run-20250701T020000-abc123",
    )


def section(context: DisclosureContext, key: str) -> Section:
    (found,) = [s for s in context["sections"] if s["key"] == key]
    return found


def rows(context: DisclosureContext, key: str, table: int = 0) -> dict[str, list[str]]:
    return {row["header"]: row["cells"] for row in section(context, key)["tables"][table]["rows"]}


def test_sections_follow_the_disclosure_numbering_and_omit_absent_inputs() -> None:
    context = build()
    assert [s["number"] for s in context["sections"]] == [1, 2, 3, 4, 5, 7, 8, 9, 12, 15]
    metrics = make_metrics()
    metrics["performance"] = {}
    metrics["tranches"] = []
    metrics["triggers"] = []
    del metrics["characteristics"]
    assert [s["number"] for s in build(metrics)["sections"]] == [1, 3, 4, 7, 15]


def test_deal_and_period_section() -> None:
    context = build()
    assert context["title"] == "Trustee report — Demo Huabei 2025-1 — 2025-06"
    assert context["lang"] == "en"
    assert rows(context, "deal") == {
        "Deal": ["Demo Huabei 2025-1"],
        "Pool": ["HB-2025-1"],
        "Collection period": ["June 1, 2025 – June 30, 2025"],
        "Payment date": ["July 26, 2025"],
        "Report date": ["July 1, 2025"],
        "Period number": ["3"],
    }


def test_payment_date_rolls_into_the_next_year_after_december() -> None:
    metrics = make_metrics()
    metrics.update(period="2025-12", period_start="2025-12-01", period_end="2025-12-31")
    deal_rows = rows(build(metrics, make_deal(payment_day=5)), "deal")
    assert deal_rows["Payment date"] == ["January 5, 2026"]
    assert deal_rows["Period number"] == ["9"]


def test_roll_forward_lines_are_signed_and_close() -> None:
    assert rows(build(), "pool") == {
        "Opening pool balance": ["1,300,000.00"],
        "Scheduled principal collected": ["-50,000.00"],
        "Unscheduled principal (prepayments)": ["-20,000.00"],
        "Principal of loans defaulted in the period": ["-5,432.11"],
        "Principal of loans repurchased or removed": ["-1,000.00"],
        "Principal of loans purchased": ["+11,000.00"],
        "Closing pool balance": ["1,234,567.89"],
    }
    assert rows(build(), "pool", 1) == {
        "Cut-off pool balance (CNY)": ["1,500,000.00"],
        "Pool factor": ["0.823045"],
        "Loans at the start of the period": ["1,300"],
        "Loans at the end of the period": ["1,234"],
    }


def test_a_roll_forward_that_does_not_close_to_the_fen_is_refused() -> None:
    metrics = make_metrics()
    metrics["pool"]["closing_balance"] = "1234567.88"
    with pytest.raises(ValueError, match="does not close"):
        build(metrics)


def test_collections_and_characteristics() -> None:
    context = build()
    assert rows(context, "collections") == {
        "Principal": ["70,000.00"],
        "Interest": ["12,000.50"],
        "Fees": ["300.00"],
        "Recoveries": ["150.25"],
        "Total collections": ["82,450.75"],
    }
    assert rows(context, "characteristics") == {
        "Weighted average coupon (WAC)": ["15.23%"],
        "Weighted average remaining term (WAM, months)": ["8.4"],
        "Weighted average loan age (WALA, months)": ["3.3"],
        "Average outstanding balance (CNY)": ["1,000.47"],
        "Loans": ["1,234"],
        "Obligors": ["1,201"],
    }


def test_delinquency_buckets_in_dpd_order_with_m_labels_and_total() -> None:
    table = section(build(), "delinquency")["tables"][0]
    assert [(row["header"], row["cells"]) for row in table["rows"]] == [
        ("Current", ["1,220", "1,222,567.89", "99.03%"]),
        ("1–30 days (M1)", ["10", "9,000.00", "0.73%"]),
        ("31–60 days (M2)", ["4", "3,000.00", "0.24%"]),
        ("Total", ["1,234", "1,234,567.89", "100.00%"]),
    ]
    assert table["rows"][-1]["total"] is True


def test_unknown_delinquency_bucket_is_refused() -> None:
    metrics = make_metrics()
    metrics["delinquency"].append(
        {"bucket": "M9", "count": 1, "balance": "1.00", "balance_share": 0.0}
    )
    with pytest.raises(ValueError, match="unknown or repeated"):
        build(metrics)


def test_default_and_prepayment_rates_show_only_what_is_present() -> None:
    context = build()
    assert rows(context, "default") == {
        "Defaulted principal in the period (CNY)": ["5,432.11"],
        "Monthly default rate (MDR)": ["0.4178%"],
        "Annualised default rate (CDR)": ["4.90%"],
    }
    assert rows(context, "prepayment") == {
        "Unscheduled principal (CNY)": ["20,000.00"],
        "Single monthly mortality (SMM)": ["1.5000%"],
        "Conditional prepayment rate (CPR)": ["16.59%"],
    }
    metrics = make_metrics()
    metrics["performance"] = {"cpr": None}
    assert rows(build(metrics), "prepayment")["Conditional prepayment rate (CPR)"] == ["n/a"]


def test_tranches_in_deal_order_with_payments_per_100_of_face_value() -> None:
    assert rows(build(), "tranches") == {
        "A": [
            "890,000.00",
            "3.90%",
            "2,892.50",
            "44,500.00",
            "845,500.00",
            "0.950000",
            "0.3250",
            "5.0000",
        ],
        "B": ["35,000.00", "4.19%", "122.21", "0.00", "35,000.00", "1.000000", "0.3492", "0.0000"],
    }


def test_a_tranche_unknown_to_the_deal_is_refused() -> None:
    metrics = make_metrics()
    metrics["tranches"][0]["class"] = "Z"
    with pytest.raises(ValueError, match="not in the deal terms: Z"):
        build(metrics)


def test_triggers_in_deal_order_with_test_and_status() -> None:
    assert rows(build(), "triggers") == {
        "Cumulative default": [
            "Cumulative default rate above the threshold",
            "2.50%",
            "2.6120%",
            "Breached",
            "Early amortisation",
        ],
        "Payment rate floor": [
            "Payment rate below the threshold",
            "5.00%",
            "5.3800%",
            "Not breached",
            "Reported only",
        ],
    }


def test_definitions_and_reproducibility_footer() -> None:
    definitions = rows(build(), "definitions")
    assert definitions["Default"] == ["The first day a loan is more than 90 days past due"]
    assert definitions["Charge-off"] == ["The first day a loan is more than 180 days past due"]
    assert definitions["Days-past-due tolerance"] == ["A shortfall below 1.00 CNY counts as paid"]
    assert definitions["Cumulative default rate denominator"] == [
        "Cut-off pool balance plus cumulative principal of purchased loans"
    ]
    assert set(definitions) >= {"SMM", "CPR", "WAC"}
    assert rows(build(), "definitions", 1) == {
        "Run id": ["run-20250701T020000-abc123"],
        "Generated at": ["2025-07-01T02:00:00+08:00"],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pool_id": "OTHER"}, "deal is 'HB-2025-1'"),
        ({"currency": "USD"}, "currency"),
        ({"period": "2025-6"}, "YYYY-MM"),
        ({"period_start": "2025-05-01"}, "do not fit"),
        (
            {"period": "2025-03", "period_start": "2025-03-01", "period_end": "2025-03-31"},
            "cut-off",
        ),
    ],
)
def test_documents_that_contradict_the_deal_are_refused(
    change: dict[str, str], message: str
) -> None:
    metrics = make_metrics()
    metrics.update(change)
    with pytest.raises(ValueError, match=message):
        build(metrics)


def test_chinese_locale_needs_its_labels_and_formats_dates_in_chinese() -> None:
    with pytest.raises(ValueError, match="labels are required"):
        build_context(
            make_metrics(), make_deal(), generated_at=GENERATED_AT, run_id="r", locale="zh_CN"
        )
    with pytest.raises(ValueError, match="labels lack keys: title"):
        build_context(
            make_metrics(),
            make_deal(),
            generated_at=GENERATED_AT,
            run_id="r",
            labels={k: v for k, v in EN_LABELS.items() if k != "title"},
        )
    labels = {
        **EN_LABELS,
        "title": "受托机构报告 — {deal_name} — {period}",
        "period_range": "{start}至{end}",
    }
    context = build_context(
        make_metrics(),
        make_deal(),
        generated_at=GENERATED_AT,
        run_id="r",
        locale="zh_CN",
        labels=labels,
    )
    assert context["lang"] == "zh-CN"
    assert context["title"] == "受托机构报告 — 示例花呗2025-1 — 2025-06"
    deal_rows = rows(context, "deal")
    assert deal_rows["Collection period"] == ["2025年6月1日至2025年6月30日"]
    assert deal_rows["Report date"] == ["2025年7月1日"]


def test_html_contains_every_formatted_figure() -> None:
    html = render_disclosure(build())
    for figure in (
        "1,234,567.89",
        "-5,432.11",
        "+11,000.00",
        "1,000.47",
        "15.23%",
        "16.59%",
        "0.823045",
        "July 26, 2025",
        "June 1, 2025 – June 30, 2025",
        "run-20250701T020000-abc123",
        "2025-07-01T02:00:00+08:00",
    ):
        assert figure in html, figure
    assert "<title>Trustee report — Demo Huabei 2025-1 — 2025-06</title>" in html
    assert '<html lang="en">' in html


def test_html_tables_are_captioned_with_scoped_headers() -> None:
    html = render_disclosure(build())
    assert html.count("<table>") == html.count("<caption>") > 0
    assert '<th scope="col"' in html
    assert '<th scope="row"' in html
    assert "tabular-nums" in html
    assert "@page { size: A4" in html


@pytest.mark.parametrize(("name", "escaped"), XSS_NAMES.items())
def test_deal_and_trigger_names_are_escaped(name: str, escaped: str) -> None:
    deal = make_deal(
        name=name,
        triggers=[{"name": name, "metric": "cumulative_default_rate", "threshold": "0.025"}],
    )
    metrics = make_metrics()
    metrics["triggers"] = [{"name": name, "threshold": 0.025, "actual": 0.01, "breached": False}]
    html = render_disclosure(build(metrics, deal))
    assert "<script" not in html
    assert "<img" not in html
    assert f"<title>Trustee report — {escaped} — 2025-06</title>" in html
    assert f'<th scope="row">{escaped}</th>' in html


def test_rendering_is_byte_identical_and_self_contained() -> None:
    first = render_disclosure(build())
    second = render_disclosure(build())
    assert first.encode() == second.encode()
    assert "http://" not in first
    assert "https://" not in first
    assert "<script" not in first
    assert "<link" not in first


def test_build_context_does_not_modify_the_metrics() -> None:
    metrics = make_metrics()
    before = copy.deepcopy(metrics)
    build(metrics)
    assert metrics == before
