"""End to end: a tiny generated tape through the Prefect backfill flow."""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.delivery import manifest_for
from flows.generator import generate_landing
from tests.flows.books import data_root

pytestmark = pytest.mark.flow

# Four months: the generator cuts a window this short off at the end of February, so
# March and April are two published periods that chain, each with its archive PDF (laid
# out once, into v1, and copied to the latest). Every chunk and every archive PDF costs
# the run seconds: no more than that.
START, MONTHS = "2024-01", 4
END = date(2024, 4, 30)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tape") / "landing"
    generate_landing(out, loans=600, start=START, months=MONTHS, seed=11)
    return out


@pytest.fixture(scope="module")
def processed(
    harness: None, landing: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, object]:
    from flows.pipeline import backfill_flow

    root = data_root(tmp_path_factory.mktemp("run"), landing)
    # End to end, archive PDFs included (tests/conftest.py leaves them out elsewhere).
    os.environ["ABS_PIPELINE_ARCHIVE_PDF"] = "true"
    try:
        summary = backfill_flow(start=date(2024, 1, 1), end=END, data_root=str(root))
    finally:
        os.environ["ABS_PIPELINE_ARCHIVE_PDF"] = "false"
    return root, summary


def _fen(text: str) -> int:
    return int(Decimal(text) * 100)


def test_the_backfill_writes_a_disclosure_and_an_index(processed: tuple[Path, object]) -> None:
    root, summary = processed
    catalog = Catalog(root)
    documents = list(catalog.metrics_documents())
    assert documents, "no metrics.json written"
    assert catalog.index_html.is_file()
    index = catalog.index_html.read_text(encoding="utf-8")
    for pool_id, period, _ in documents:
        assert catalog.disclosure(pool_id, period, "en").is_file()
        assert f"{pool_id}/{period}/disclosure.en.html" in index
    assert not summary.failed  # type: ignore[attr-defined]


def test_every_period_rolls_forward_to_the_fen(processed: tuple[Path, object]) -> None:
    root, _ = processed
    for _, period, path in Catalog(root).metrics_documents():
        pool = json.loads(path.read_text(encoding="utf-8"))["pool"]
        closing = (
            _fen(pool["opening_balance"])
            - _fen(pool["scheduled_principal"])
            - _fen(pool["unscheduled_principal"])
            - _fen(pool["defaulted_principal"])
            - _fen(pool["removed_principal"])
            + _fen(pool["purchased_principal"])
        )
        assert closing == _fen(pool["closing_balance"]), period


def test_consecutive_periods_chain(processed: tuple[Path, object]) -> None:
    root, _ = processed
    docs = sorted(Catalog(root).metrics_documents())
    pools = [json.loads(p.read_text(encoding="utf-8")) for _, _, p in docs]
    for before, after in itertools.pairwise(pools):
        if before["pool_id"] == after["pool_id"]:
            assert before["pool"]["closing_balance"] == after["pool"]["opening_balance"]


def _yuan_display(text: str) -> str:
    return f"{Decimal(text):,.2f}"


def test_no_borrower_or_loan_id_is_anywhere_under_reports(processed: tuple[Path, object]) -> None:
    root, _ = processed
    catalog = Catalog(root)
    loans = pl.read_parquet(catalog.curated("loans"))
    ids = set(loans["borrower_id"].to_list()) | set(loans["loan_id"].to_list())
    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    pages = [p for p in catalog.reports.rglob("*") if p.suffix in {".html", ".json"}]
    assert any(p.parent.name == "data_quality" for p in pages)
    for page in pages:
        found = pattern.search(page.read_text(encoding="utf-8"))
        assert found is None, (page, found)
    # The archive PDFs are rendered from the Chinese pages checked above, once per
    # period: the latest copy is the published version's PDF, byte for byte.
    documents = list(catalog.metrics_documents())
    assert len(list(catalog.reports.rglob("disclosure.zh-CN.pdf"))) == 2 * len(documents)
    for pool_id, period, _ in documents:
        latest = catalog.report_dir(pool_id, period) / "disclosure.zh-CN.pdf"
        published = catalog.report_version_dir(pool_id, period, 1) / latest.name
        assert latest.read_bytes() == published.read_bytes()
        assert latest.read_bytes().startswith(b"%PDF-")


def test_the_disclosure_shows_the_figures_of_its_metrics(processed: tuple[Path, object]) -> None:
    root, _ = processed
    catalog = Catalog(root)
    for pool_id, period, path in catalog.metrics_documents():
        metrics = json.loads(path.read_text(encoding="utf-8"))
        html = catalog.disclosure(pool_id, period, "en").read_text(encoding="utf-8")
        for key in (
            "opening_balance",
            "closing_balance",
            "scheduled_principal",
            "unscheduled_principal",
            "defaulted_principal",
            "purchased_principal",
        ):
            assert _yuan_display(metrics["pool"][key].lstrip("-")) in html, (period, key)
        for row in metrics["delinquency"]:
            assert _yuan_display(row["balance"]) in html
        wac = Decimal(str(metrics["characteristics"]["wac"])) * 100
        assert f"{wac.quantize(Decimal('0.01'))}%" in html
        loans = pl.read_parquet(catalog.curated("loans"))
        for borrower in loans["borrower_id"].head(50).to_list():
            assert borrower not in html


def test_a_bad_row_is_quarantined_with_its_rule_and_the_run_goes_on(
    harness: None, landing: Path, tmp_path: Path
) -> None:
    from flows.pipeline import backfill_flow

    root = data_root(tmp_path, landing)
    day = min(
        p
        for p in (root / "landing").iterdir()
        if p.name[0].isdigit() and (p / "loans.csv").exists()
    )
    loans_csv = day / "loans.csv"
    lines = loans_csv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    bad = lines[1].split(",")
    bad[header.index("loan_id")] = "BAD-RATE-1"
    bad[header.index("annual_rate")] = "0.4500"
    lines.append(",".join(bad))
    loans_csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    business_date = date.fromisoformat(day.name)
    # The servicer's control file describes the delivery as sent, bad row included.
    manifest = manifest_for(day, business_date, ["repayments.principal_paid"])
    (day / "manifest.json").write_text(manifest.dumps(), encoding="utf-8")

    summary = backfill_flow(start=business_date, end=business_date, data_root=str(root))

    catalog = Catalog(root)
    quarantined = pl.read_parquet(catalog.quarantine_partition("loans", business_date))
    row = quarantined.filter(pl.col("original").str.contains("BAD-RATE-1"))
    assert row.height == 1
    assert row["rule_ids"][0].to_list() == ["loans.annual_rate.range"]
    assert row["source_line"][0] == len(lines)
    assert row["source_file"][0] == f"landing/{day.name}/loans.csv"
    staged = pl.read_parquet(catalog.staged_partition("loans", business_date))
    assert staged.height == len(lines) - 2
    assert summary.rows_read == summary.rows_accepted + summary.rows_quarantined
