"""Ingest as a whole: every row accounted for, byte-identical re-runs, the data-quality report."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows.catalog import Catalog
from flows.data_quality import write_data_quality_report
from flows.generator import generate_landing
from flows.ingest import IngestOutcome, ingest_dates
from tests.flows.ingest_cases import (
    DAY,
    LOAN_HEADER,
    copy_root,
    csv_text,
    deliver,
    loan,
    write_history,
)

GENERATED_AT = datetime(2024, 3, 5, tzinfo=ZoneInfo("Asia/Shanghai"))


def digests(root: Path) -> dict[str, str]:
    """sha256 of every staged and quarantine file under ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in ("staged", "quarantine")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("tape") / "landing"
    generate_landing(landing, loans=300, start="2024-01", months=2, seed=5)
    return landing


def _days(catalog: Catalog) -> list[date]:
    return [d for d in catalog.landing_dates() if d.month == 1]


def test_every_row_is_accounted_for_per_file(tape: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(tape, root / "landing")
    catalog = Catalog(root)
    outcome = ingest_dates(catalog, _days(catalog))
    assert outcome.files
    for f in outcome.files:
        assert f.rows_read == f.rows_accepted + f.rows_quarantined, f.path
        assert len(f.sha256) == 64
    assert sum(f.rows_read for f in outcome.files) > 100


@pytest.mark.usefixtures("ingest_checks_every_time")  # each run checks for real
def test_re_running_the_same_inputs_gives_byte_identical_partitions(
    tape: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(tape, root / "landing")
    catalog = Catalog(root)
    days = _days(catalog)
    ingest_dates(catalog, days)
    first = digests(root)
    ingest_dates(catalog, days)
    assert digests(root) == first
    # Another data root with the same inputs gives the same bytes too.
    other = tmp_path / "other"
    shutil.copytree(tape, other / "landing")
    ingest_dates(Catalog(other), days)
    assert digests(other) == first


def test_a_re_delivery_replaces_the_partition_whole(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_history(root)
    deliver(root, {"loans.csv": csv_text(LOAN_HEADER, loan("N1"), loan("N2"))})
    catalog = Catalog(root)
    (root / "landing" / DAY.isoformat() / "loans.csv").write_bytes(
        csv_text(LOAN_HEADER, loan("N1"))
    )
    outcome = ingest_dates(catalog, [DAY])
    assert [f.rows_accepted for f in outcome.files] == [1]
    stray = list((root / "staged").rglob("*.tmp"))
    assert stray == []


@pytest.fixture(scope="module")
def eventful(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IngestOutcome]:
    """A delivery with a correction, a rejected batch, a warning and an unreadable file."""
    base = tmp_path_factory.mktemp("dq") / "history"
    write_history(base)
    root = copy_root(base, base.parent / "data")
    bad_batch = [loan(f"N{i:02d}") for i in range(20)]
    bad_batch += [loan("N98", annual_rate="0.5"), loan("N99", annual_rate="0.5")]
    outcome = deliver(
        root,
        {
            "loans.csv": csv_text(
                LOAN_HEADER, loan("L2", principal="12000.00"), loan("X1", channel="<i>x</i>")
            ),
            "loans.batch.csv": csv_text(LOAN_HEADER, *bad_batch),
            "mappings/batch.mapping.yaml": b"source: batch\ndatasets: {}\n",
            "repayments.csv.gz": b"not gzip",
            "readme.md": b"<script>alert(1)</script>",
        },
    )
    return root, outcome


def test_the_data_quality_report_shows_what_the_run_received_and_rejected(
    eventful: tuple[Path, IngestOutcome],
) -> None:
    root, outcome = eventful
    written = write_data_quality_report(
        Catalog(root), "20240305-test", outcome, start=DAY, end=DAY, generated_at=GENERATED_AT
    )
    html = written.report.read_text(encoding="utf-8")
    assert written.report == root / "reports" / "data_quality" / "20240305-test.html"
    assert f"landing/{DAY}/loans.batch.csv" in html
    assert "loans.batch.error_share" in html
    assert "loans.annual_rate.range" in html
    assert "principal: 10,000.00 → 12,000.00" in html
    assert f"landing/{DAY}/repayments.csv.gz: not a valid gzip stream" in html
    assert "&lt;script&gt;" not in html  # file names are listed, contents never
    assert f"landing/{DAY}/readme.md" in html
    assert written.notices == [
        f"rejected whole: landing/{DAY}/loans.batch.csv: share of rows breaking error rules "
        "above the contract's limit (batch rejected whole: 22 of 22 rows quarantined)"
    ]


def test_the_data_quality_report_is_self_contained_and_reproducible(
    eventful: tuple[Path, IngestOutcome],
) -> None:
    root, outcome = eventful
    catalog = Catalog(root)
    first = write_data_quality_report(
        catalog, "r1", outcome, start=DAY, end=DAY, generated_at=GENERATED_AT
    )
    html = first.report.read_bytes()
    again = write_data_quality_report(
        catalog, "r1", outcome, start=DAY, end=DAY, generated_at=GENERATED_AT
    )
    assert again.report.read_bytes() == html
    text = html.decode("utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert "<link" not in text
    assert "<script" not in text
