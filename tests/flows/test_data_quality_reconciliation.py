"""The run's data-quality report reads the reconciliation mart's summary when there is one."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from flows.catalog import Catalog
from flows.data_quality import write_data_quality_report
from flows.ingest import IngestOutcome
from reports.data_quality import loan_key
from tests.reports.samples import GENERATED_AT

DAY = date(2024, 3, 5)


def test_the_data_quality_report_shows_the_reconciliation_summary_of_the_data_root(
    tmp_path: Path,
) -> None:
    catalog = Catalog(tmp_path)
    summary = catalog.mart_summary("reconciliation")
    summary.parent.mkdir(parents=True)
    summary.write_text(
        json.dumps(
            {
                "compared": 40,
                "differing": 1,
                "by_break": {"balance": 1},
                "balance_difference_total": 12345,
                "balance_difference_abs_total": 12345,
                "largest": [
                    {
                        "as_of_date": "2024-02-29",
                        "loan_id": "JB-000017",
                        "engine_balance": 512345,
                        "servicer_balance": 500000,
                        "balance_difference": 12345,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    written = write_data_quality_report(
        catalog, "r1", IngestOutcome(), start=DAY, end=DAY, generated_at=GENERATED_AT
    )
    html = written.report.read_text(encoding="utf-8")
    assert f"<td>{loan_key('JB-000017')}</td><td>2024-02-29</td>" in html
    assert "JB-000017" not in html
    assert '<td class="num">123.45</td>' in html
    assert "Loan-dates compared" in html


def test_without_a_tape_the_report_says_nothing_was_reconciled(tmp_path: Path) -> None:
    written = write_data_quality_report(
        Catalog(tmp_path), "r1", IngestOutcome(), start=DAY, end=DAY, generated_at=GENERATED_AT
    )
    assert "No servicer tape was reconciled in this run." in written.report.read_text("utf-8")
