"""Scale-out: the backfill on Dask clusters gives the same outputs as a local run.

One test lets the CLI start a local cluster of two worker processes; the other
starts an external cluster itself, as an operator would on several machines
(a ``dask scheduler`` and two ``dask worker`` processes, here on loopback), and
points the backfill at it with ``--dask-address`` and a relative data root that
the CLI must make absolute before the workers see it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.measure import stop_processes
from flows.cli import main
from tests.flows.books import Backfilled, assert_same_outputs
from tests.flows.conftest import TINY_END, TINY_START

pytestmark = [pytest.mark.flow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPAN = ["--start", str(TINY_START), "--end", str(TINY_END)]
"""The whole tiny tape, as the shared backfill (tests/flows/conftest.py) covers it."""


@pytest.fixture(scope="module")
def local_run(tiny_backfill: Backfilled, tiny_landing: Path) -> tuple[Path, Path]:
    """The landing zone of the tiny tape, and its backfill over SPAN by the default runner."""
    return tiny_landing, tiny_backfill.root


def test_a_dask_backfill_writes_the_same_outputs_as_the_default_runner(
    harness: str, local_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, reference = local_run
    root = tmp_path / "dask"
    shutil.copytree(landing, root / "landing")
    # The Dask workers are separate processes: they reach this test's Prefect API
    # through the environment they inherit.
    monkeypatch.setenv("PREFECT_API_URL", harness)
    monkeypatch.setenv("ABS_PIPELINE_DASK_WORKERS", "2")
    assert main(["backfill", *SPAN, "--data-root", str(root), "--task-runner", "dask"]) == 0
    assert_same_outputs(reference, root)


def test_buckets_run_one_after_the_other_on_the_default_runner_and_equal_one_bucket(
    harness: str, local_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, reference = local_run
    root = tmp_path / "buckets"
    shutil.copytree(landing, root / "landing")
    monkeypatch.setenv("ABS_PIPELINE_ENGINE_BATCH_LOANS", "70")
    before = len(_bucket_task_runs())
    assert main(["backfill", *SPAN, "--data-root", str(root)]) == 0
    assert_same_outputs(reference, root)
    assert not (root / "work" / "engine").exists()
    assert len(_bucket_task_runs()) - before >= 3


@pytest.fixture
def cluster(harness: str, tmp_path: Path) -> Iterator[str]:
    """An external Dask scheduler and two single-threaded workers on loopback."""
    from distributed import Client

    env = {
        **os.environ,
        "PREFECT_API_URL": harness,
        # The workers import this checkout's packages, whatever their working directory.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DASK_LOGGING__DISTRIBUTED": "error",
    }
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    started = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file():
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            assert started[0].poll() is None, "the Dask scheduler exited"
            time.sleep(0.2)
        for n in range(2):
            started.append(
                subprocess.Popen(
                    [*dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                     "--no-dashboard", "--local-directory", str(tmp_path / f"worker-{n}")],
                    env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            address = str(client.scheduler.address)
        yield address
    finally:
        stop_processes(started)


def test_a_backfill_on_an_external_cluster_writes_the_same_outputs_as_a_local_run(
    harness: str,
    local_run: tuple[Path, Path],
    cluster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    landing, reference = local_run
    shutil.copytree(landing, tmp_path / "remote" / "landing")
    monkeypatch.setenv("PREFECT_API_URL", harness)
    # About 70 loans a bucket: the engine's buckets run as tasks on the two workers, and
    # their outputs put together equal the reference's single run.
    monkeypatch.setenv("ABS_PIPELINE_ENGINE_BATCH_LOANS", "70")
    # A relative data root: the workers run elsewhere, so it must reach them absolute.
    monkeypatch.chdir(tmp_path)
    assert main(["backfill", *SPAN, "--data-root", "remote", "--dask-address", cluster]) == 0
    assert_same_outputs(reference, tmp_path / "remote")
    assert not (tmp_path / "remote" / "work" / "engine").exists()
    from distributed import Client

    with Client(cluster, timeout=60) as client:
        assert client.run_on_scheduler(_tasks_completed) > 0
    buckets = _bucket_task_runs()
    assert len(buckets) >= 3
    assert {run.state_name for run in buckets} == {"Completed"}


def _bucket_task_runs() -> list[Any]:
    """The engine-bucket task runs the Prefect API recorded."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="engine-bucket"))
        )


def _tasks_completed(dask_scheduler: Any) -> int:
    """Tasks the scheduler has seen finish (run on the scheduler)."""
    return sum(1 for t in dask_scheduler.transition_log if t.finish == "memory")
