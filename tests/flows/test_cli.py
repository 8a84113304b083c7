"""The command line: the nightly default date, status, the backfill progress bar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flows.catalog import Catalog
from flows.cli import main
from flows.status import StateBook

pytestmark = pytest.mark.flow


def test_run_without_a_date_processes_yesterday_in_shanghai(
    harness: str, tiny_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_root
    # 01:30 UTC on 1 March 2024 is 09:30 in Shanghai: the nightly job's business date
    # is 29 February.
    code = main(
        ["run", "--data-root", str(root)], now=lambda: datetime(2024, 3, 1, 1, 30, tzinfo=UTC)
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "business dates 2024-02-29 .. 2024-02-29" in out
    index = Catalog(root).index_html.resolve()
    assert out.strip().splitlines()[-1] == f"Disclosures: {index}"
    book = StateBook.load(Catalog(root))
    assert sorted(book.days) == [date(2024, 2, 29)]
    run_id = book.days[date(2024, 2, 29)].run_id

    # The book's earlier dates were never processed: nothing may be published yet.
    assert "not published: 2024-02: 2024-01-01 not processed" in out
    assert not (Catalog(root).reports / "HB2024-1").exists()

    assert main(["status", "--data-root", str(root)]) == 0
    status = capsys.readouterr().out.splitlines()
    line = next(line for line in status if line.startswith("  2024-02-29"))
    assert line.split()[:5] == ["2024-02-29", "delivered", "complete", "processed", "complete"]
    assert f"run {run_id}" in line
    assert any(line.split()[:4] == [run_id, "2024-02-29", "..", "2024-02-29"] for line in status)


def test_a_backfill_shows_its_progress_and_a_bad_range_is_refused(
    harness: str, tiny_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tiny_root
    args = ["backfill", "--start", "2024-01-01", "--end", "2024-02-29", "--data-root", str(root)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "done" in captured.err
    assert "2/2" in captured.err
    assert "chunks: 2 processed, 0 skipped (unchanged), 0 failed" in captured.out

    assert main([*args, "--chunk", "day"]) == 0
    assert "chunks: 0 processed, 60 skipped (unchanged), 0 failed" in capsys.readouterr().out

    assert "rows/s" in captured.err
    assert "ETA" in captured.err

    bad = ["backfill", "--start", "2024-02-01", "--end", "2024-01-01", "--data-root", str(root)]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "--end is before --start" in err
    assert "Traceback" not in err


def test_bad_settings_and_a_missing_delivery_are_one_line_errors_with_exit_codes(
    harness: str, tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--date", "2024-02-01", "--data-root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "the data root is not a directory" in err
    assert not (tmp_path / "nowhere").exists()

    root = tiny_root
    assert main(["run", "--date", "2024-06-01", "--data-root", str(root)]) == 3
    captured = capsys.readouterr()
    assert "delivery missing for 2024-06-01" in captured.err
    assert "Traceback" not in captured.err
    assert not (root / "reports").exists()

    assert main(["run", "--date", "2024-06-01", "--dry-run", "--data-root", str(root)]) == 0
    assert "STOP at 2024-06-01: missing" in capsys.readouterr().out
