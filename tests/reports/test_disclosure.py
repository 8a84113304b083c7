from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from markupsafe import escape

from flows.metrics import pool_terms
from reports.disclosure import DisclosureContext, build_context
from reports.formatting import (
    format_amount,
    format_count,
    format_long_date,
    format_number,
    format_rate,
)
from reports.labels import labels
from reports.layout import Section
from reports.render import render_disclosure
from reports.sources import Restatement, StratificationRow
from tests.reports.html_tables import cell_texts, number, table
from tests.reports.samples import (
    GENERATED_AT,
    PROVENANCE,
    make_data_quality,
    make_deal,
    make_history,
    make_metrics,
    make_stratifications,
    make_vintages,
)
from transforms.triggers import TRIGGER_METRICS

LOCALES = ("en", "zh_CN")


def build(
    metrics: dict[str, Any] | None = None, locale: str = "en", **kwargs: Any
) -> DisclosureContext:
    options: dict[str, Any] = {
        "history": make_history(),
        "stratifications": make_stratifications(),
        "vintages": make_vintages(),
        "data_quality": make_data_quality(),
        "alternate_href": "disclosure.zh-CN.html" if locale == "en" else "disclosure.en.html",
        "static_pool_href": f"../static_pool.{'en' if locale == 'en' else 'zh-CN'}.html",
    }
    options.update(kwargs)
    deal = options.pop("deal", make_deal())
    return build_context(
        make_metrics() if metrics is None else metrics,
        deal,
        generated_at=GENERATED_AT,
        provenance=PROVENANCE,
        locale=locale,
        **options,
    )


def section(context: DisclosureContext, key: str) -> Section:
    (found,) = [s for s in context["sections"] if s["key"] == key]
    return found


def rows(context: DisclosureContext, key: str, table: int = 0) -> dict[str, list[str]]:
    return {row["header"]: row["cells"] for row in section(context, key)["tables"][table]["rows"]}


# -- what a figure of metrics.json looks like in the report ---------------------------------
FLOAT_FORMATS: dict[str, tuple[str, int] | tuple[str, int, int]] = {
    "pool_factor": ("number", 6),
    "bond_factor": ("number", 6),
    "hhi_obligor": ("number", 6),
    "wam_months": ("number", 1),
    "wala_months": ("number", 1),
    "interest_per_100": ("number", 4),
    "principal_per_100": ("number", 4),
    "payment_per_100": ("number", 4),
    "wac": ("rate", 2),
    "smm": ("rate", 4),
    "mdr": ("rate", 4),
    "cumulative_default_rate": ("rate", 4),
    "cumulative_net_loss_rate": ("rate", 4),
    "cpr": ("rate", 2),
    "cdr": ("rate", 2),
    "recovery_rate": ("rate", 2),
    "payment_rate": ("rate", 2),
    "excess_spread": ("rate", 2),
    "balance_share": ("rate", 2),
    "top1_obligor_share": ("rate", 4),
    "top10_obligor_share": ("rate", 2),
    "subordination": ("rate", 2),
    "credit_enhancement": ("rate", 2),
    "overcollateralisation_ratio": ("rate", 2),
    "coupon": ("rate", 2, 4),
    "threshold": ("rate", 2, 4),
    "actual": ("rate", 4),
}
TEXT_SHOWN = {"pool_id", "period", "currency", "class", "name"}
TEXT_TRANSLATED = {"bucket", "kind", "account", "item", "cumulative_default_denominator"}


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item, path)
    else:
        yield path, value


def expected_figure(path: tuple[str, ...], value: Any, locale: str) -> str | None:
    key = path[-1]
    expected: str | None
    if value is None or isinstance(value, bool) or key in TEXT_TRANSLATED:
        expected = None
    elif len(path) >= 2 and path[-2] == "province_shares":
        expected = format_rate(value, locale, 2)
    elif key in ("name", "currency") and locale != "en":
        expected = None  # trigger names: the deal's Chinese name or the test in words
    elif path[0] == "definitions" and isinstance(value, str):
        expected = None  # recorded conventions print translated (see the definitions tests)
    elif key in (
        "period_start",
        "period_end",
        "payment_date",
        "report_date",
        "interest_period_start",
        "interest_period_end",
    ):
        expected = format_long_date(date.fromisoformat(value), locale)
    elif isinstance(value, int):
        expected = format_count(value, locale)
    elif isinstance(value, float):
        kind, *places = FLOAT_FORMATS[key]
        if kind == "number":
            expected = format_number(value, locale, places[0])
        else:
            expected = format_rate(value, locale, *places)
    elif key in TEXT_SHOWN or path[0] == "definitions":
        expected = str(value)
    else:
        expected = format_amount(value.lstrip("-"), locale)
    return expected


@pytest.mark.parametrize("locale", LOCALES)
def test_every_figure_of_metrics_json_is_in_a_table_cell_formatted(locale: str) -> None:
    metrics = make_metrics()
    cells = cell_texts(render_disclosure(build(metrics, locale)))
    checked = 0
    for path, value in leaves(metrics):
        figure = expected_figure(path, value, locale)
        if figure is not None:
            assert any(figure in cell for cell in cells), (path, value, figure)
            checked += 1
    assert checked > 120


ROLLFORWARD, FACTOR = "Pool balance roll-forward", "Pool factor and loan counts"


@pytest.mark.parametrize(
    ("caption", "row", "column", "section", "key"),
    [
        (
            "Pool balance roll-forward",
            "Opening pool balance",
            "Amount (CNY)",
            "pool",
            "opening_balance",
        ),
        (
            "Pool balance roll-forward",
            "Closing pool balance",
            "Amount (CNY)",
            "pool",
            "closing_balance",
        ),
        ("Pool factor and loan counts", "Pool factor", "Value", "pool", "pool_factor"),
        (
            "Pool factor and loan counts",
            "Loans at the end of the period",
            "Value",
            "pool",
            "closing_count",
        ),
    ],
)
def test_a_pool_figure_is_printed_in_its_own_row_and_column(
    caption: str, row: str, column: str, section: str, key: str
) -> None:
    metrics = make_metrics()
    html = render_disclosure(build(metrics, "en"))

    printed = number(table(html, caption).cell(row, column))

    assert printed == Decimal(str(metrics[section][key]))


def test_each_class_of_notes_shows_its_own_payments() -> None:
    metrics = make_metrics()
    payments = table(render_disclosure(build(metrics, "en")), "Payments by class of notes")

    for tranche in metrics["tranches"]:
        name = tranche["class"]
        assert number(payments.cell(name, "Principal paid (CNY)")) == Decimal(
            tranche["principal_paid"]
        )
        assert number(payments.cell(name, "Closing balance (CNY)")) == Decimal(
            tranche["closing_balance"]
        )
        assert number(payments.cell(name, "Coupon")) == Decimal(str(tranche["coupon"]))


def test_each_delinquency_bucket_shows_its_own_balance_and_loans() -> None:
    metrics = make_metrics()
    html = render_disclosure(build(metrics, "en"))
    buckets = table(html, "Delinquency by days past due at the end of the period")
    labels = {"current": "Current", "1-30": "1–30 days (M1)", "31-60": "31–60 days (M2)"}

    for item in metrics["delinquency"]:
        if item["bucket"] in labels:
            label = labels[item["bucket"]]
            assert number(buckets.cell(label, "Outstanding balance (CNY)")) == Decimal(
                item["balance"]
            )
            assert number(buckets.cell(label, "Loans")) == item["count"]


def test_all_eighteen_sections_are_printed_in_domain_order() -> None:
    for locale in LOCALES:
        context = build(locale=locale)
        assert [s["number"] for s in context["sections"]] == list(range(18))
        assert all(s["computed"] for s in context["sections"])
        assert [entry["anchor"] for entry in context["toc"]] == [
            s["anchor"] for s in context["sections"]
        ]


def test_sections_without_data_say_not_computed_and_show_no_figures() -> None:
    metrics = make_metrics()
    for key in (
        "tranches",
        "triggers",
        "revolving",
        "concentration",
        "credit_enhancement",
        "waterfall",
        "expenses",
        "accounts",
        "delinquency_m",
        "definitions",
        "period_number",
    ):
        metrics.pop(key)
    metrics["performance"] = dict.fromkeys(metrics["performance"])
    context = build(metrics, history=(), stratifications=None, vintages=None, data_quality=None)
    note = labels("en", "disclosure")["not_computed"]
    missing = {s["key"] for s in context["sections"] if not s["computed"]}
    assert missing == {
        "tranches",
        "stratifications",
        "default",
        "prepayment",
        "revolving",
        "credit_enhancement",
        "triggers",
        "static_pool",
        "concentration",
        "data_quality",
    }
    for key in missing:
        found = section(context, key)
        assert note in found["notes"]
        assert found["charts"] == []
    # Only the deal's own terms of the notes are shown where payments are missing.
    assert [t["caption"] for t in section(context, "tranches")["tables"]] == ["Notes issued"]
    html = render_disclosure(context)
    assert html.count(str(escape(note))) == len(missing)
    # Expenses absent from the document are not computed, never zero.
    assert rows(context, "collections", 2) == {
        "Taxes": ["not computed"],
        "Management fee": ["not computed"],
        "Custody fee": ["not computed"],
        "Servicer fee": ["not computed"],
    }
    assert (
        labels("en", "disclosure")["s4.ledger_missing"] in section(context, "collections")["notes"]
    )


def test_null_members_print_not_computed_instead_of_a_number() -> None:
    metrics = make_metrics()
    metrics["performance"]["cdr"] = None
    metrics["characteristics"]["wam_months"] = None
    context = build(metrics)
    assert rows(context, "default")["Annualised default rate (CDR)"] == ["not computed"]
    assert rows(context, "characteristics")["Weighted average remaining term (WAM, months)"] == [
        "not computed"
    ]


def test_deal_and_period_in_both_languages() -> None:
    english = rows(build(), "deal")
    assert english["Collection period"] == ["June 1, 2025 – June 30, 2025"]
    assert english["Payment date"] == ["July 28, 2025"]
    assert english["Report date"] == ["July 21, 2025"]
    assert english["Interest period"] == ["June 26, 2025 – July 28, 2025"]
    assert english["Period number"] == ["3"]
    assert english["Day count"] == ["ACT/365 (actual days / 365)"]
    chinese = build(locale="zh_CN")
    assert chinese["lang"] == "zh-CN"
    assert chinese["title"] == "资产管理报告 — 示例花呗2025-1 — 2025-06"
    assert chinese["running_header"] == "示例花呗2025-1 · 第3期（2025-06）"
    zh_rows = rows(chinese, "deal")
    assert zh_rows["收款期间"] == ["2025年6月1日至2025年6月30日"]
    assert zh_rows["兑付日"] == ["2025年7月28日"]
    assert zh_rows["起息日（专项计划设立日）"] == ["2025年4月15日"]
    assert zh_rows["预期到期日"] == ["2027年3月26日"]
    assert zh_rows["法定到期日"] == ["2028年12月26日"]


def test_the_report_date_comes_from_the_document_never_from_the_run() -> None:
    metrics = make_metrics()
    for key in ("payment_date", "report_date", "interest_period_start", "interest_period_end"):
        del metrics[key]
    english = rows(build(metrics), "deal")
    # GENERATED_AT is July 1, 2025: it must not appear as the report date.
    assert english["Report date"] == ["not computed"]
    assert english["Payment date"] == ["not computed"]
    metrics["definitions"]["report_date"] = "2025-07-21"
    assert rows(build(metrics), "deal")["Report date"] == ["July 21, 2025"]


def test_a_restated_report_keeps_its_date_and_adds_the_restatement_date() -> None:
    restated = Restatement(date(2025, 9, 3), "late repayments of June", (("x", "1", "2"),))
    context = build(restatement=restated)
    deal_rows = rows(context, "deal")
    assert deal_rows["Report date"] == ["July 21, 2025"]
    assert deal_rows["Restatement date"] == ["September 3, 2025"]
    events = rows(context, "significant_events")
    assert events["Restatement"] == [
        "Figures restated on September 3, 2025: late repayments of June"
    ]


def test_key_figures_use_the_locale_currency_format() -> None:
    zh = {f["label"]: f["value"] for f in build(locale="zh_CN")["key_figures"]}
    assert zh["期末资产池余额"] == "123.46万元"
    en = {f["label"]: f["value"] for f in build()["key_figures"]}
    assert en["Closing pool balance"] == "CNY 1,234,567.89"
    assert en["Triggers breached"] == "1 of 2"
    assert en["More than 30 days past due"] == "1.13%"


def test_rounding_is_half_up_and_stated() -> None:
    metrics = make_metrics()
    metrics["characteristics"]["average_balance"] = "1000.465"
    metrics["characteristics"]["wac"] = 0.12345
    context = build(metrics)
    assert rows(context, "characteristics")["Average outstanding balance (CNY)"] == ["1,000.47"]
    assert rows(context, "characteristics")["Weighted average coupon (WAC)"] == ["12.35%"]
    assert "rounded half-up" in context["rounding_note"]
    assert "四舍五入" in build(locale="zh_CN")["rounding_note"]


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


def test_a_roll_forward_that_does_not_close_to_the_fen_is_refused() -> None:
    metrics = make_metrics()
    metrics["pool"]["closing_balance"] = "1234567.88"
    with pytest.raises(ValueError, match="does not close"):
        build(metrics)


def test_collections_by_account_and_the_waterfall() -> None:
    context = build()
    assert rows(context, "collections", 1) == {
        "Principal account (principal collections)": ["70,000.00"],
        "Income account (interest, fees and penalties, recoveries)": ["12,450.75"],
        "Total collections": ["82,450.75"],
    }
    assert rows(context, "collections", 2) == {
        "Taxes": ["35.10"],
        "Management fee": ["50.00"],
        "Custody fee": ["10.83"],
        "Servicer fee": ["541.67"],
    }
    ledger = rows(context, "collections", 3)
    assert ledger["Principal account"] == ["4,932.11", "70,000.00", "69,500.00", "5,432.11"]
    waterfall = rows(context, "collections", 4)
    assert waterfall["2"] == [
        "Income account",
        "Class A interest",
        "12,400.75",
        "2,892.50",
        "2,892.50",
    ]
    assert waterfall["3"][1] == "Revolving purchases"


def test_delinquency_m_notation_and_thresholds() -> None:
    m_rows = rows(build(), "delinquency", 1)
    assert m_rows["M3+ (more than 90 days)"] == ["2", "2,000.00", "0.16%"]
    assert m_rows["More than 30 days past due"] == ["14", "14,000.00", "1.13%"]
    assert m_rows["More than 90 days past due"] == ["2", "2,000.00", "0.16%"]


def test_tranches_in_deal_order_with_payments_per_100_of_face_value() -> None:
    tranche_rows = rows(build(), "tranches", 1)
    assert list(tranche_rows) == ["A", "B"]
    assert tranche_rows["A"][:8] == [
        "890,000.00",
        "3.90%",
        "2,892.50",
        "2,892.50",
        "0.00",
        "44,500.00",
        "845,500.00",
        "0.950000",
    ]
    assert rows(build(), "tranches", 2)["A"] == ["0.3250", "5.0000", "5.3250"]


def test_payments_per_100_are_computed_when_the_document_has_none() -> None:
    metrics = make_metrics()
    for item in metrics["tranches"]:
        for key in ("interest_per_100", "principal_per_100", "payment_per_100"):
            del item[key]
    assert rows(build(metrics), "tranches", 2)["A"] == ["0.3250", "5.0000"]


def test_a_tranche_unknown_to_the_deal_is_refused() -> None:
    metrics = make_metrics()
    metrics["tranches"][0]["class"] = "Z"
    with pytest.raises(ValueError, match="not in the deal terms: Z"):
        build(metrics)


def test_triggers_in_deal_order_with_test_status_and_effect() -> None:
    assert rows(build(), "triggers") == {
        "Cumulative default": [
            "Cumulative default rate above the threshold",
            "2.50%",
            "2.6120%",
            "BREACHED",
            "Early amortisation",
            "Yes",
        ],
        "Payment rate floor": [
            "Payment rate below the threshold",
            "5.00%",
            "5.3800%",
            "Not breached",
            "Reported only",
            "No",
        ],
    }


@pytest.mark.parametrize(
    ("locale", "note"),
    [
        ("en", "The plan's documents set no numeric trigger"),
        ("zh_CN", "专项计划文件未设置数值型触发事件"),
    ],
)
def test_a_plan_without_numeric_triggers_says_so_rather_than_not_computed(
    locale: str, note: str
) -> None:
    metrics = make_metrics()
    metrics["triggers"] = []
    triggers = section(build(metrics, locale, deal=make_deal(triggers=[])), "triggers")
    assert triggers["computed"] is True
    assert any(note in text for text in triggers["notes"])
    # The non-numeric events are still listed.
    assert [t["caption"] for t in triggers["tables"]] == [
        labels(locale, "disclosure")["s12.events_caption"]
    ]


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_every_trigger_metric_a_deal_may_name_has_a_label(locale: str) -> None:
    texts = labels(locale, "disclosure")
    assert [m for m in TRIGGER_METRICS if f"metric.{m}" not in texts] == []


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_every_convention_a_period_records_is_named_in_the_report_language(locale: str) -> None:
    deal = make_deal()
    metrics = make_metrics()
    metrics["definitions"] = pool_terms(deal).definitions
    recorded = section(build(metrics, locale, deal=deal), "definitions")["tables"][1]
    terms = [row["header"] for row in recorded["rows"]]
    assert len(terms) == len(set(terms))
    # No term is left as its key: every key has a label, a trigger goes by its own name.
    assert [t for t in terms if t in metrics["definitions"]] == []
    trigger = deal.triggers[0]
    name = trigger.name_zh if locale == "zh_CN" and trigger.name_zh else trigger.name
    assert labels(locale, "disclosure")["definition.trigger"].format(name=name) in terms


def test_a_missing_trigger_figure_is_not_computed_when_the_plan_sets_triggers() -> None:
    metrics = make_metrics()
    metrics["triggers"] = []
    assert section(build(metrics), "triggers")["computed"] is False


def test_credit_enhancement_from_the_document() -> None:
    context = build()
    assert rows(context, "credit_enhancement")["A"] == ["845,500.00", "11.59%", "31.51%"]
    overview = rows(context, "credit_enhancement", 1)
    assert overview["Overcollateralisation (CNY)"] == ["359,500.00"]
    assert overview[
        "Overcollateralisation ratio ((collateral − notes outstanding) / collateral)"
    ] == ["28.99%"]
    assert overview["Excess spread (annualised)"] == ["7.12%"]
    metrics = make_metrics()
    del metrics["credit_enhancement"]
    derived = rows(build(metrics), "credit_enhancement", 1)
    assert derived["Overcollateralisation ((pool balance − notes outstanding) / pool balance)"] == [
        "28.68%"
    ]


def test_stratifications_per_dimension_with_totals_and_local_province_names() -> None:
    context = build(locale="zh_CN")
    tables = section(context, "stratifications")["tables"]
    assert [t["caption"] for t in tables] == [
        "按未偿余额（元）分布",
        "按地区分布",
        "按产品分布",
    ]
    provinces = {row["header"]: row["cells"] for row in tables[1]["rows"]}
    assert provinces["广东省"][:2] == ["600", "617,283.94"]
    assert provinces["合计"][:3] == ["1,234", "1,234,567.89", "100.00%"]
    assert tables[2]["rows"][0]["header"] == "现金贷款"


def test_ad_hoc_loss_test_over_the_latest_twelve_periods() -> None:
    adhoc = rows(build(), "default", 1)
    assert adhoc["Collection periods counted"] == ["3"]
    # Three periods of 5,432.11 defaulted less 150.25 recovered.
    assert adhoc["Defaulted principal less recoveries (CNY)"] == ["15,845.58"]
    assert adhoc["Net losses above 10% of the outstanding principal"] == ["No"]


def test_charts_are_inline_svg_with_text_alternative_and_data_table() -> None:
    context = build()
    charts = {c["id"]: c for s in context["sections"] for c in s["charts"]}
    assert set(charts) == {
        "chart-tranches",
        "chart-pool",
        "chart-delinquency",
        "chart-rates",
        "chart-vintage",
    }
    assert charts["chart-rates"]["description"].startswith("CPR and CDR by collection period.")
    assert "CPR: 12.00% in 2025-04, 16.59% in 2025-06" in charts["chart-rates"]["description"]
    html = render_disclosure(context)
    assert html.count("<svg ") == 5
    assert html.count('role="img"') == 5
    for chart_id in charts:
        figure = html[html.index(f'<figure class="chart" id="{chart_id}">') :]
        figure = figure[: figure.index("</figure>")]
        assert f'<title id="{chart_id}-title">' in figure
        assert f'<desc id="{chart_id}-desc">' in figure
        assert "<table" in figure


def test_data_quality_section_lists_rows_rules_contracts_and_reports() -> None:
    context = build()
    assert rows(context, "data_quality")["Loans"] == ["123", "120", "3"]
    assert rows(context, "data_quality", 1)["loans.principal.positive"] == ["Loans", "2"]
    assert section(context, "data_quality")["links"] == [
        {"label": "20250630-abc123def456", "href": "../../data_quality/x.html"}
    ]


def test_reproducibility_footer_names_run_code_and_input_hashes() -> None:
    footer = rows(build(), "definitions", 2)
    assert footer["Run id"] == ["20250630-abc123def456"]
    assert footer["Code version"] == ["0.1.0+g0123456789ab"]
    assert footer["Input metrics.json (SHA-256)"] == ["a" * 64]
    recorded = rows(build(), "definitions", 1)
    assert recorded["metrics.json contract version"] == ["1.2.0"]
    assert recorded["Cumulative default rate denominator"] == [
        "Cut-off pool balance plus cumulative purchased principal and new drawings"
    ]
    assert recorded["Business-day convention"] == ["Following business day"]


def test_every_rate_is_defined_in_words_in_each_language() -> None:
    for locale in LOCALES:
        definitions = rows(build(locale=locale), "definitions")
        texts = labels(locale, "disclosure")
        for key in ("smm", "mdr", "payment_rate", "credit_enhancement", "excess_spread"):
            assert definitions[texts[f"s17.{key}"]] == [texts[f"s17.{key}_text"]]
    zh = rows(build(locale="zh_CN"), "definitions")
    assert zh["月还款率"] == [
        "本期借款人还款合计（本金、利息及费用，不含违约回收款）÷ 期初资产池余额"
    ]


def test_every_recorded_definition_is_printed_with_its_translation() -> None:
    metrics = make_metrics()
    metrics["definitions"]["advance_payment_days"] = 7
    metrics["definitions"]["some_new_convention"] = "value"
    recorded = rows(build(metrics, locale="zh_CN"), "definitions", 1)
    assert recorded["提前还款宽限天数"] == ["7"]
    assert recorded["工作日准则"] == ["顺延至下一工作日"]
    assert recorded["some_new_convention"] == ["记录的公式原文见英文版。"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pool_id": "OTHER"}, "deal is 'HB-2025-1'"),
        ({"currency": "USD"}, "currency"),
        ({"period": "2025-6"}, "YYYY-MM"),
        ({"period_start": "2025-05-01"}, "do not fit"),
        ({"period_number": 4}, "period_number 4"),
        (
            {"period": "2025-03", "period_start": "2025-03-01", "period_end": "2025-03-31"},
            "cut-off",
        ),
    ],
)
def test_documents_that_contradict_the_deal_are_refused(
    change: dict[str, Any], message: str
) -> None:
    metrics = make_metrics()
    metrics.update(change)
    with pytest.raises(ValueError, match=message):
        build(metrics)


def test_links_must_stay_relative() -> None:
    with pytest.raises(ValueError, match="relative path"):
        build(alternate_href="https://example.org/x.html")


def test_html_is_print_ready_and_accessible() -> None:
    for locale in LOCALES:
        html = render_disclosure(build(locale=locale))
        assert f'<html lang="{"en" if locale == "en" else "zh-CN"}">' in html
        assert html.count("<table") == html.count("<caption>") > 20
        assert '<th scope="col"' in html
        assert '<th scope="row"' in html
        assert "tabular-nums" in html
        assert "size: A4;" in html
        assert "@page { @top-left { content: " in html
        assert "counter(page)" in html
        assert "720px" not in html
        assert "190mm" not in html
        assert '<nav class="toc"' in html


def test_rendering_is_byte_identical_and_self_contained() -> None:
    first = render_disclosure(build())
    second = render_disclosure(build())
    assert first.encode() == second.encode()
    for forbidden in ("http://", "https://", "<script", "<link", "<img", "url("):
        assert forbidden not in first


def test_build_context_does_not_modify_its_inputs() -> None:
    metrics = make_metrics()
    history = make_history()
    before = (copy.deepcopy(metrics), copy.deepcopy(history))
    build(metrics, history=history)
    assert (metrics, history) == before


def test_history_ignores_other_pools_and_later_periods() -> None:
    later = make_metrics()
    later.update(period="2025-07", period_start="2025-07-01", period_end="2025-07-31")
    later["performance"]["cpr"] = 0.99
    other = make_metrics()
    other["pool_id"] = "OTHER"
    other["period"] = "2025-05"
    context = build(history=[*make_history(), later, other])
    chart = next(c for s in context["sections"] for c in s["charts"] if c["id"] == "chart-rates")
    assert [row["header"] for row in chart["table"]["rows"]] == ["2025-04", "2025-05", "2025-06"]
    assert "99.00%" not in chart["description"]


def test_no_personal_data_is_printed() -> None:
    html = render_disclosure(build())
    assert not re.search(r"borrower|身份证|\b\d{17}[\dX]\b", html)
    assert Decimal("1")  # the sample carries no borrower fields to leak


@pytest.mark.parametrize(
    ("dimension", "band", "chinese", "english"),
    [
        ("balance", "[10000, 50000)", "1万–5万元", "10,000–50,000"),
        ("balance", "< 1000", "1,000元以下", "under 1,000"),
        ("balance", ">= 50000", "5万元及以上", "50,000 and over"),
        ("annual_rate", "[12%, 18%)", "12%–18%", "12%–18%"),
        ("remaining_term", "[6, 12)", "6–12个月", "6–12 months"),
        ("borrower_age", ">= 50", "50岁及以上", "50 years and over"),
    ],
)
def test_bands_are_labelled_in_words_not_interval_notation(
    dimension: str, band: str, chinese: str, english: str
) -> None:
    strata = [StratificationRow(dimension, band, 1, "100.00", 1.0, 0.1)]
    for locale, expected in (("zh_CN", chinese), ("en", english)):
        table = section(build(locale=locale, stratifications=strata), "stratifications")
        assert table["tables"][0]["rows"][0]["header"] == expected


def test_top_obligors_are_anonymous_ranks_above_one_percent() -> None:
    metrics = make_metrics()
    metrics["concentration"]["top_obligors"].append(
        {"rank": 4, "balance": "9000.00", "balance_share": 0.0073, "borrower_id": "B-SECRET"}
    )
    context = build(metrics, locale="zh_CN")
    top = rows(context, "concentration", 1)
    assert list(top) == ["借款人1", "借款人2", "借款人3"]
    assert top["借款人1"] == ["15,234.00", "1.23%"]
    assert "B-SECRET" not in render_disclosure(context)


def test_significant_events_list_rating_actions_breaches_and_repurchases_or_say_none() -> None:
    events = rows(build(locale="zh_CN"), "significant_events")
    assert events["评级调整"] == ["B档：中诚信国际于2025年6月20日将评级由AA+调整为AAA"]
    assert events["触发事件"] == ["累计违约率触发事件：本期已触发"]
    assert events["赎回或移出基础资产"] == ["本期赎回或移出基础资产本金1,000.00元"]
    quiet = make_metrics()
    quiet["pool"]["removed_principal"] = "0.00"
    quiet["pool"]["purchased_principal"] = "10000.00"
    for item in quiet["triggers"]:
        item["breached"] = False
    deal = make_deal(
        tranches=[t.model_dump(by_alias=True, exclude={"ratings"}) for t in make_deal().tranches]
    )
    assert rows(build(quiet, locale="zh_CN", deal=deal), "significant_events") == {
        "无": ["本期未发生重大事项。"]
    }


def test_non_numeric_events_are_listed_with_their_status() -> None:
    events = rows(build(locale="zh_CN"), "triggers", 1)
    assert events["违约事件"] == ["专项计划违约事件", "未发生", "–"]
    bare = make_deal(events=[])
    assert rows(build(locale="zh_CN", deal=bare), "triggers", 1)["权利完善事件"] == ["无", "–", "–"]


def test_participants_and_the_responsibility_statement_come_first() -> None:
    context = build(locale="zh_CN")
    notice = section(context, "notice")
    assert context["sections"][0] is notice
    assert rows(context, "notice")["计划管理人"] == ["示例证券股份有限公司"]
    assert rows(context, "notice")["托管人"] == ["示例银行股份有限公司"]
    assert "示例证券股份有限公司" in notice["notes"][0]
    securities = rows(context, "tranches")
    assert securities["B"][:6] == ["HB251B", "花呗251B", "中间级", "AA+", "AAA", "中诚信国际"]
    assert securities["C"][3:5] == ["未评级", "未评级"]


def test_a_shortfall_against_the_forecast_is_flagged() -> None:
    deal = make_deal(forecast_collections=[{"period": "2025-06", "amount": "110000.00"}])
    context = build(deal=deal)
    forecast = rows(context, "default", 2)
    assert forecast["Shortfall against the forecast (forecast − actual) / forecast"] == ["25.04%"]
    assert forecast["Collections 20% or more below the forecast"] == [
        "Yes — ad hoc disclosure required"
    ]
    assert rows(context, "significant_events")["Ad hoc disclosure"] == [
        "Collections 25.04% below the forecast"
    ]


def test_accounts_that_do_not_reconcile_are_refused() -> None:
    metrics = make_metrics()
    metrics["accounts"][1]["closing"] = "5432.10"
    with pytest.raises(ValueError, match="account principal does not reconcile"):
        build(metrics)


def test_a_residual_is_its_own_column_not_interest() -> None:
    metrics = make_metrics()
    for item in metrics["tranches"]:
        item["residual_paid"] = "0.00"
    metrics["tranches"][-1]["residual_paid"] = "123.45"
    table = section(build(metrics), "tranches")["tables"][1]
    headers = [column["label"] for column in table["columns"]]
    # The residual sits between interest and principal, apart from interest paid.
    assert headers.index("Residual paid (CNY)") == headers.index("Interest shortfall (CNY)") + 1
    cells = rows(build(metrics), "tranches", 1)[metrics["tranches"][-1]["class"]]
    residual = headers.index("Residual paid (CNY)") - 1
    assert cells[residual] == "123.45"
