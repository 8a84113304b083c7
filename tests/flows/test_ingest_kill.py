"""A process killed mid-ingest leaves every partition readable and a re-run completes it.

The ingest runs in a subprocess that is SIGKILLed at random moments of its work.
After each kill every staged and quarantine file must be either the previous
run's bytes or the new run's bytes (never half of one, never unreadable), and a
final uninterrupted run must give exactly the bytes of a clean run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.catalog import Catalog
from flows.generator import generate_landing
from flows.ingest import ingest_dates
from tests.flows.test_ingest import digests

pytestmark = pytest.mark.slow

KILLS = 4

SCRIPT = """
import sys, time
from pathlib import Path
from data_contracts.validate import _engine
from flows.catalog import Catalog
from flows.ingest import ingest_dates
_engine()
catalog = Catalog(Path(sys.argv[1]))
days = [d for d in catalog.landing_dates() if d.month in (1, 2)]
print("ready", flush=True)
began = time.perf_counter()
for month in (1, 2):
    ingest_dates(catalog, [d for d in days if d.month == month])
print(f"done {time.perf_counter() - began:.3f}", flush=True)
"""


def _start(root: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _change_inputs(landing: Path) -> None:
    """A later delivery of the same dates: every file gets its last row again, once."""
    for path in sorted(landing.glob("2024-0[12]-*/*.csv")):
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join([*lines, lines[-1]]) + "\n", encoding="utf-8")


def _ingest_all(root: Path) -> None:
    catalog = Catalog(root)
    days = [d for d in catalog.landing_dates() if d.month in (1, 2)]
    for month in (1, 2):
        ingest_dates(catalog, [d for d in days if d.month == month])


def test_killed_ingests_leave_readable_partitions_and_a_rerun_completes(tmp_path: Path) -> None:
    landing = tmp_path / "tape" / "landing"
    generate_landing(landing, loans=400, start="2024-01", months=2, seed=9)
    root = tmp_path / "data"
    shutil.copytree(landing, root / "landing")
    _ingest_all(root)
    before = digests(root)
    _change_inputs(root / "landing")

    reference = tmp_path / "reference"
    shutil.copytree(root, reference)
    _ingest_all(reference)
    after = digests(reference)
    assert after != before

    timing = _start(tmp_path / "reference")
    out, _ = timing.communicate(timeout=300)
    duration = float(out.split()[-1])

    rng = random.Random(20240305)
    for attempt in range(KILLS):
        process = _start(root)
        delay = rng.uniform(0.0, duration)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        for name, digest in digests(root).items():
            path = root / name
            if path.name.endswith(".tmp"):
                continue
            assert digest in (before.get(name), after.get(name)), (attempt, delay, name)
            pq.read_table(path)

    process = _start(root)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert digests(root) == after
