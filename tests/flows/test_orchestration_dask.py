"""Scale-out: the backfill on a local Dask cluster of two workers gives the same outputs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli import main
from flows.generator import generate_landing
from tests.flows.test_orchestration import assert_same_outputs

pytestmark = [pytest.mark.flow, pytest.mark.slow]


@pytest.fixture(scope="module")
def harness() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


def test_a_dask_backfill_writes_the_same_outputs_as_the_default_runner(
    harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "tape" / "landing"
    generate_landing(landing, loans=200, start="2024-01", months=3, seed=7)
    roots = {}
    for runner in ("threads", "dask"):
        root = tmp_path / runner
        shutil.copytree(landing, root / "landing")
        roots[runner] = root
    # The Dask workers are separate processes: they reach this test's Prefect API
    # through the environment they inherit.
    monkeypatch.setenv("PREFECT_API_URL", harness)
    monkeypatch.setenv("ABS_PIPELINE_DASK_WORKERS", "2")
    span = ["--start", "2024-01-01", "--end", "2024-03-31"]
    assert main(["backfill", *span, "--data-root", str(roots["threads"])]) == 0
    assert (
        main(["backfill", *span, "--data-root", str(roots["dask"]), "--task-runner", "dask"]) == 0
    )
    assert_same_outputs(roots["threads"], roots["dask"])
