"""Two runs never write the data root at once: the second fails clearly or waits.

Apart from tests/flows/test_orchestration.py so that pytest-xdist runs it beside the
other backfill tests: it starts the command line twice in other processes.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import Catalog
from tests.flows.books import output_text, start_cli, wait_for
from tests.flows.conftest import TINY_END

pytestmark = pytest.mark.flow


def _backfill(root: Path, start: date) -> Any:
    from flows.pipeline import backfill_flow

    return backfill_flow(start=start, end=TINY_END, data_root=str(root))


def test_two_runs_never_write_the_data_root_at_once(
    harness: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import pipeline

    root = tiny_root
    release = threading.Event()
    inside = threading.Event()
    real = pipeline.ingest_dates

    def held(catalog: Catalog, days: Sequence[date]) -> Any:
        inside.set()
        assert release.wait(120)
        return real(catalog, days)

    monkeypatch.setattr(pipeline, "ingest_dates", held)
    results: list[Any] = []
    # The first run, in this process, stops inside its (only) chunk holding the lock.
    context = contextvars.copy_context()
    march = date(2024, 3, 1)
    first = threading.Thread(target=lambda: results.append(context.run(_backfill, root, march)))
    first.start()
    args = ("run", "--date", "2024-03-31", "--data-root", str(root))
    try:
        assert inside.wait(120)
        busy, busy_output = start_cli(harness, tmp_path, *args, timeout=0.5)
        assert busy.wait(timeout=180) == 2
        error = output_text(busy_output, ".err")
        assert "data root is in use by another run" in error
        assert "range 2024-03-01 .. 2024-03-31" in error
        last_delivery = Catalog(root).landing_dates()[-1]
        assert not Catalog(root).staged_partition("loans", last_delivery).exists()

        waiting, waiting_output = start_cli(harness, tmp_path, *args, timeout=300)
        wait_for(lambda: "waiting up to 300 s" in output_text(waiting_output, ".err"), 180)
        assert waiting.poll() is None
    finally:
        release.set()
        first.join(timeout=300)
    assert waiting.wait(timeout=300) == 0, output_text(waiting_output, ".err")
    assert not results[0].failed
    assert "business dates 2024-03-31 .. 2024-03-31" in output_text(waiting_output, ".out")
