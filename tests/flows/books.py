"""Data roots for the flow tests: copies of a landing zone or of a processed root, corrected
deliveries, the comparison of two roots' outputs, and the command line in another process.

The fixtures that build them are in ``tests/flows/conftest.py``; a test that changes a
shared root works on a copy (:func:`copy_root`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import Catalog
from flows.delivery import manifest_for

OUTPUT_FOLDERS = ("staged", "quarantine", "curated", "marts", "reports")


@dataclass(frozen=True)
class Backfilled:
    """A data root after a clean backfill, the run's summary and its Prefect flow run id."""

    root: Path
    summary: Any
    flow_run_id: Any


def data_root(parent: Path, landing: Path) -> Path:
    """A new data root ``parent/data`` holding a copy of ``landing``, nothing processed."""
    root = parent / "data"
    shutil.copytree(landing, root / "landing")
    return root


def copy_root(source: Path, parent: Path) -> Path:
    """A copy of a processed data root (state, outputs and snapshots) as ``parent/data``.

    File times are kept, so the copy's inputs are unchanged for the next run.
    """
    return Path(shutil.copytree(source, parent / "data"))


def outputs(root: Path) -> dict[str, bytes]:
    """Every data file and report under ``root``, by relative path."""
    found = {}
    for folder in OUTPUT_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def assert_same_outputs(left: Path, right: Path, *, resumed: bool = False) -> None:
    """Every data file and report of two data roots is the same.

    Byte for byte, except that a float column of a mart may differ in its last bit:
    some mart aggregations sum floats in parallel, in no fixed order. A ``resumed``
    run's data-quality report covers the periods it touched, not the chunks an earlier
    run ingested before it stopped, so it (and the index rows that give its dates) are
    left out of the comparison.
    """
    import polars as pl
    from polars.testing import assert_frame_equal

    def kept(found: dict[str, bytes]) -> dict[str, bytes]:
        skip = ("reports/data_quality/", "reports/index.") if resumed else ()
        return {k: v for k, v in found.items() if not k.startswith(skip)}

    before, after = kept(outputs(left)), kept(outputs(right))
    assert sorted(before) == sorted(after)
    for name, content in before.items():
        if content == after[name]:
            continue
        assert name.startswith("marts/"), f"{name} differs"
        assert_frame_equal(
            pl.read_parquet(left / name), pl.read_parquet(right / name), rel_tol=1e-12, abs_tol=0
        )


def pool_repayment_line(root: Path, month: str, pool: str | None = None) -> tuple[Path, int]:
    """A repayment row of a pool loan delivered in ``month`` with principal to spare.

    Returns:
        The repayments file and the row's line number (1 is the first row after the header).
    """
    import polars as pl

    members = pl.read_parquet(Catalog(root).curated("pool_assets"))
    if pool is not None:
        members = members.filter(pl.col("pool_id") == pool)
    pool_loans = set(members["loan_id"].to_list())
    for folder in sorted((root / "landing").glob(f"{month}-*")):
        path = folder / "repayments.csv"
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        header = lines[0].split(",")
        for number, line in enumerate(lines[1:], start=1):
            row = dict(zip(header, line.split(","), strict=True))
            if row["loan_id"] in pool_loans and float(row["principal_paid"]) > 10:
                return path, number
    raise AssertionError(f"no pool repayment in {month}")


def redeliver(path: Path, content: str | bytes) -> None:
    """A corrected delivery: the file and its control file together."""
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    day = date.fromisoformat(path.parent.name)
    manifest = manifest_for(path.parent, day, ["repayments.principal_paid"])
    (path.parent / "manifest.json").write_text(manifest.dumps(), encoding="utf-8")


def redeliver_lower_principal(root: Path, month: str, pool: str | None = None) -> Path:
    """The servicer corrects a ``month`` delivery: one pool loan's repayment was 5.00 lower.

    Returns:
        The corrected repayments file.
    """
    path, number = pool_repayment_line(root, month, pool)
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[number].split(",")
    column = lines[0].split(",").index("principal_paid")
    cells[column] = f"{float(cells[column]) - 5:.2f}"
    lines[number] = ",".join(cells)
    redeliver(path, "\n".join(lines) + "\n")
    return path


def break_ingest(
    monkeypatch: pytest.MonkeyPatch, month: int, error: Exception
) -> Callable[[], None]:
    """Make the ingest of every chunk that starts in ``month`` raise ``error``.

    Returns:
        What mends it: ingest works again from then on.
    """
    from flows import pipeline

    real = pipeline.ingest_dates

    def broken(catalog: Catalog, days: Sequence[date]) -> Any:
        if days[0].month == month:
            raise error
        return real(catalog, days)

    monkeypatch.setattr(pipeline, "ingest_dates", broken)
    return lambda: monkeypatch.setattr(pipeline, "ingest_dates", real)


def start_cli(
    api: str, folder: Path, *args: str, timeout: float = 0
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``abs-pipeline`` in a subprocess on this test's Prefect API; output to files.

    Returns:
        The process, and the stem of its ``.out`` and ``.err`` files (:func:`output_text`).
    """
    env = {**os.environ, "PREFECT_API_URL": api, "ABS_PIPELINE_LOCK_TIMEOUT_SECONDS": str(timeout)}
    output = folder / f"cli-{time.monotonic_ns()}"
    with output.with_suffix(".out").open("wb") as out, output.with_suffix(".err").open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env,
                                   stdout=out, stderr=err)  # fmt: skip
    return process, output


def output_text(output: Path, suffix: str) -> str:
    """What a :func:`start_cli` process wrote to ``.out`` or ``.err`` so far."""
    return output.with_suffix(suffix).read_text(encoding="utf-8")


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
