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


# -- books built once per test run ------------------------------------------------------
# A processed book that several test files read is built once per `pytest` run, whichever
# xdist worker asks first, into a folder both workers share; the other waits on the lock
# and reads the same files. Such a book is read-only: copy it (copy_root) to change it.


def shared_book(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The data root ``name`` built by ``build`` once per test run (all workers), then kept.

    Args:
        factory: The session's temporary path factory.
        name: The book's folder name, unique per way of building it.
        build: Writes the book into the (new, empty) data root it is given.

    Returns:
        The built data root.
    """
    import fcntl

    base = factory.getbasetemp()
    # Under xdist each worker's base is a folder of the run's own: their parent is shared.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "shared-books"
    folder.mkdir(exist_ok=True)
    root, done = folder / name / "data", folder / f"{name}.built"
    with (folder / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                shutil.rmtree(root.parent, ignore_errors=True)
                root.mkdir(parents=True)
                build(root)
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root


AMORTISING_START, AMORTISING_END = date(2024, 1, 1), date(2024, 12, 31)
"""The business dates of the early-amortisation book (:func:`build_amortising_book`)."""


def force_breach_in_period_3(catalog: Catalog) -> None:
    """The deal's one trigger: payment rate below 0 until period 3 (never), below 10 from it."""
    import yaml

    [path] = catalog.deal_files()
    deal = yaml.safe_load(path.read_text(encoding="utf-8"))
    deal["triggers"] = [
        {
            "name": "Forced breach",
            "metric": "payment_rate",
            "comparison": "below",
            "schedule": [
                {"from_period": 1, "threshold": "0"},
                {"from_period": 3, "threshold": "10"},
            ],
            "consequence": "early_amortisation",
        }
    ]
    path.write_text(yaml.safe_dump(deal, allow_unicode=True), encoding="utf-8")


def build_amortising_book(root: Path) -> None:
    """800 loans over 2024 (seed 3), the breach forced in period 3, run stage by stage.

    Ingest, curation, loan snapshots and the metrics stage, without Prefect. The deal's
    cut-off is in June: periods July to December, revolving in the first two.
    """
    from flows.curate import curate
    from flows.deals import load_deals
    from flows.generator import generate_landing
    from flows.ingest import ingest_dates
    from flows.metrics import compute_pool_metrics
    from flows.snapshots import build_loan_snapshots, snapshot_dates
    from transforms.periods import month_ends_between

    generate_landing(root / "landing", loans=800, start="2024-01", months=12, seed=3)
    catalog = Catalog(root)
    force_breach_in_period_3(catalog)
    ingest_dates(catalog, catalog.landing_dates())
    curated = curate(catalog, AMORTISING_END)
    assert curated.first_origination is not None
    deals = load_deals(catalog).deals
    build_loan_snapshots(
        catalog, snapshot_dates(curated.first_origination, AMORTISING_END, deals.values()), deals
    )
    compute_pool_metrics(catalog, deals, month_ends_between(AMORTISING_START, AMORTISING_END))
