from __future__ import annotations

from reports import static_pool
from reports.render import render_static_pool
from reports.sources import VintageCurves
from tests.reports.samples import GENERATED_AT, PROVENANCE, make_deal, make_history, make_vintages


def build(vintages: VintageCurves, locale: str = "en") -> static_pool.StaticPoolContext:
    return static_pool.build_context(
        make_deal(),
        vintages=vintages,
        history=make_history(),
        generated_at=GENERATED_AT,
        provenance=PROVENANCE,
        locale=locale,
        alternate_href="static_pool.zh-CN.html",
    )


def test_vintage_curves_are_right_censored_matrices_with_charts() -> None:
    context = build(make_vintages())
    curves = context["sections"][0]
    assert [c["id"] for c in curves["charts"]] == ["chart-vintage-default", "chart-vintage-loss"]
    matrix = curves["charts"][0]["table"]
    assert [c["label"] for c in matrix["columns"]] == ["Vintage", "0", "1", "2", "3", "4", "5"]
    by_vintage = {r["header"]: r["cells"] for r in matrix["rows"]}
    assert by_vintage["2025-01"][-1] == "0.50%"
    # The younger vintage is not extended (right-censored).
    assert by_vintage["2025-02"][-1] == "–"
    assert any("whole book" in note for note in curves["notes"])


def test_performance_history_by_period() -> None:
    history = {
        r["header"]: r["cells"] for r in build(make_vintages())["sections"][1]["tables"][0]["rows"]
    }
    assert list(history) == ["2025-04", "2025-05", "2025-06"]
    assert history["2025-06"][:2] == ["1,234,567.89", "0.823045"]


def test_absent_vintages_are_stated_not_invented() -> None:
    context = build(VintageCurves(()), locale="zh_CN")
    assert context["sections"][0]["computed"] is False
    assert context["sections"][0]["notes"] == ["本资产池尚未计算静态池曲线。"]
    html = render_static_pool(context)
    assert '<html lang="zh-CN">' in html
    assert "<svg" not in html


def test_rendering_is_byte_identical() -> None:
    assert render_static_pool(build(make_vintages())) == render_static_pool(build(make_vintages()))


def test_a_prepayment_rate_that_does_not_apply_is_marked_in_the_history() -> None:
    history = make_history()
    for document in history:
        document["performance"]["cpr"] = 0.0
        document["data_source"] = {
            "hidden_sections": [
                {
                    "section": "performance.cpr",
                    "reason": "schedule-based prepayment does not apply to revolving accounts",
                }
            ]
        }
    context = static_pool.build_context(
        make_deal(),
        vintages=make_vintages(),
        history=history,
        generated_at=GENERATED_AT,
        provenance=PROVENANCE,
        locale="zh_CN",
    )
    table = context["sections"][1]["tables"][0]
    labels = [column["label"] for column in table["columns"][1:]]
    assert {dict(zip(labels, r["cells"], strict=True))["CPR"] for r in table["rows"]} == {"不适用"}
    assert context["sections"][1]["notes"] == [
        "CPR不适用于本资产池，基于还款计划的提前还款指标不适用于循环账户。"
    ]
