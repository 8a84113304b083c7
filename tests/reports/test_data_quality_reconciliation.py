"""The data-quality report's reconciliation of the engine against the servicer tape."""

from __future__ import annotations

from typing import Any

import pytest

from reports.data_quality import build_context, loan_key
from reports.render import render_data_quality
from tests.reports.samples import GENERATED_AT
from tests.reports.test_data_quality import DAY, files

SUMMARY: dict[str, Any] = {
    "compared": 1200,
    "differing": 3,
    "by_break": {"balance": 2, "dpd": 1, "status": 1},
    "balance_difference_total": -150050,
    "balance_difference_abs_total": 250050,
    "largest": [
        {
            "as_of_date": "2024-06-30",
            "loan_id": "L-000777",
            "engine_balance": 1000000,
            "servicer_balance": 1200050,
            "balance_difference": -200050,
        },
        {
            "as_of_date": "2024-05-31",
            "loan_id": "L-000042",
            "engine_balance": 550000,
            "servicer_balance": 500000,
            "balance_difference": 50000,
        },
    ],
}


def render(locale: str, summary: dict[str, Any] | None) -> str:
    return render_data_quality(
        build_context(
            run_id="20250630-abc",
            start=DAY,
            end=DAY,
            files=files(),
            rules=[],
            corrections=[],
            ignored=(),
            generated_at=GENERATED_AT,
            locale=locale,
            reconciliation=summary,
        )
    )


@pytest.mark.parametrize(
    ("locale", "title", "kind"),
    [
        ("en", "Reconciliation: engine against servicer tape", "Kind of difference: Days past due"),
        ("zh_CN", "对账：系统计算与资产服务机构资产明细", "差异类型: 逾期天数"),
    ],
)
def test_the_reconciliation_section_renders_counts_amounts_in_yuan_and_the_largest(
    locale: str, title: str, kind: str
) -> None:
    html = render(locale, SUMMARY)
    assert title in html
    assert kind in html
    assert '<td class="num">1,200</td>' in html
    assert '<td class="num">-1,500.50</td>' in html
    assert '<td class="num">2,500.50</td>' in html
    # The largest difference first, by pseudonymous loan key with both balances in yuan;
    # the loan id itself is never printed.
    first, second = loan_key("L-000777"), loan_key("L-000042")
    assert first.startswith("loan-")
    assert len(first) == len("loan-") + 12
    assert first != second
    assert html.index(first) < html.index(second)
    assert f"<td>{first}</td><td>2024-06-30</td>" in html
    assert "L-000777" not in html
    assert "L-000042" not in html
    assert '<td class="num">12,000.50</td>' in html
    assert "1200050" not in html


def test_only_the_ten_largest_differences_are_listed() -> None:
    many = dict(SUMMARY)
    many["largest"] = [
        {
            "as_of_date": "2024-06-30",
            "loan_id": f"L-{i:06d}",
            "engine_balance": 100,
            "servicer_balance": 0,
            "balance_difference": 100,
        }
        for i in range(12)
    ]
    context = build_context(
        run_id="r",
        start=DAY,
        end=DAY,
        files=[],
        rules=[],
        corrections=[],
        ignored=(),
        generated_at=GENERATED_AT,
        reconciliation=many,
    )
    assert context["reconciliation"] is not None
    assert len(context["reconciliation"]["largest"]) == 10


def test_a_run_without_a_tape_says_nothing_was_reconciled() -> None:
    assert "No servicer tape was reconciled in this run." in render("en", None)


def test_a_malformed_amount_is_refused_by_name() -> None:
    broken = dict(SUMMARY, balance_difference_total="12.5")
    with pytest.raises(ValueError, match=r"'12\.5' is not an integer of fen"):
        render("en", broken)
