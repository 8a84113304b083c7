"""The data-quality report: both languages, compact, yuan, and no personal data."""

from __future__ import annotations

from datetime import date

import pytest

from reports.data_quality import CorrectionRecord, FileRecord, RuleRecord, build_context
from reports.render import render_data_quality
from tests.reports.samples import GENERATED_AT

DAY = date(2025, 6, 30)


def files(count: int = 3) -> list[FileRecord]:
    return [
        FileRecord(
            business_date=DAY,
            dataset="loans" if i % 2 else "repayments",
            path=f"landing/2025-06-30/part{i}.csv",
            file_format="csv",
            source=None,
            encoding="utf-8",
            sha256="c" * 64,
            rows_read=10,
            rows_accepted=9,
            rows_quarantined=1,
            rows_duplicate=0,
            rejected=None,
            error=None,
        )
        for i in range(count)
    ]


RULES = [
    RuleRecord("loans", "loans.principal.positive", "error", "principal > 0", 2, ("a.csv:3",)),
    RuleRecord("loans", "loans.credit_score.range", "warning", "score in range", 1, ("a.csv:4",)),
]
CORRECTIONS = [
    CorrectionRecord(
        loan_id="L-000123",
        business_date=DAY,
        location="landing/2025-06-30/loans.csv:17",
        previous_business_date=date(2025, 6, 1),
        # Money arrives in yuan (flows.ingest turns fen into yuan text); ids are hidden.
        changes=(("principal", "10000.00", "12000.00"), ("borrower_id", "B-9876", "B-5555")),
    )
]


def render(locale: str, many_files: int = 3) -> str:
    return render_data_quality(
        build_context(
            run_id="20250630-abc",
            start=DAY,
            end=DAY,
            files=files(many_files),
            rules=RULES,
            corrections=CORRECTIONS,
            ignored=(),
            generated_at=GENERATED_AT,
            locale=locale,
            alternate_href="20250630-abc.zh-CN.html" if locale == "en" else "20250630-abc.html",
        )
    )


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_corrections_print_no_loan_or_borrower_id_and_amounts_in_yuan(locale: str) -> None:
    html = render(locale)
    for personal in ("L-000123", "B-9876", "B-5555"):
        assert personal not in html
    assert "landing/2025-06-30/loans.csv:17" in html  # the pseudonymous row key
    assert "10,000.00 → 12,000.00" in html
    assert "10000.00" not in html  # formatted, never the raw text


def test_the_report_is_in_both_languages_and_links_the_other() -> None:
    english, chinese = render("en"), render("zh_CN")
    assert '<html lang="en">' in english
    assert '<html lang="zh-CN">' in chinese
    assert "数据质量报告 — 运行20250630-abc" in chinese
    assert "本金：10,000.00 → 12,000.00" in chinese
    assert "借款人：已变更（不披露）" in chinese
    assert "2025年6月30日" in chinese
    assert "（北京时间）" in chinese
    assert 'href="20250630-abc.html"' in chinese
    assert 'href="20250630-abc.zh-CN.html"' in english
    for text in ("Summary", "Rows quarantined", "Files received"):
        assert text not in chinese


def test_the_summary_comes_first_and_details_are_folded() -> None:
    html = render("en", many_files=400)
    assert html.index("Summary") < html.index("Rows quarantined, by rule")
    assert html.index("Rows quarantined, by rule") < html.index("<details>")
    # The per-file list, the warnings and the corrections are folded away.
    assert html.count("<details>") == 3
    files_section = html.split("<h2>Files received</h2>")[1]
    assert files_section.lstrip().startswith("<details>")
    assert "<summary>Show (400)</summary>" in files_section
    by_dataset = html.split("<caption>Rows by dataset</caption>")[1].split("</table>")[0]
    assert '<th scope="row">Loans</th><td class="num">200</td>' in by_dataset
