"""The command line: the nightly default date, status, the backfill progress bar."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flows.catalog import Catalog
from flows.cli import main
from flows.status import StateBook

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def landing(tiny_landing: Path) -> Path:
    return tiny_landing


def _data_root(tmp_path: Path, landing: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(landing, root / "landing")
    return root


def test_run_without_a_date_processes_yesterday_in_shanghai(
    harness: None, landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_root(tmp_path, landing)
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

    assert main(["status", "--data-root", str(root)]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[1].split()[:4] == ["2024-02-29", "complete", "run", run_id]
    assert any(line.split()[:2] == [run_id, "2024-02-29"] for line in status[2:])


def test_a_backfill_shows_its_progress_and_a_bad_range_is_refused(
    harness: None, landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _data_root(tmp_path, landing)
    args = ["backfill", "--start", "2024-01-01", "--end", "2024-02-29", "--data-root", str(root)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "done" in captured.err
    assert "2/2" in captured.err
    assert "chunks: 2 processed, 0 skipped (unchanged), 0 failed" in captured.out

    assert main([*args, "--chunk", "day"]) == 0
    assert "chunks: 0 processed, 60 skipped (unchanged), 0 failed" in capsys.readouterr().out

    bad = ["backfill", "--start", "2024-02-01", "--end", "2024-01-01", "--data-root", str(root)]
    assert main(bad) == 2
    assert "--end is before --start" in capsys.readouterr().err
