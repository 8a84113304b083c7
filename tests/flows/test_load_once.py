"""A run loads each deal file and each period's metrics.json once.

That a run times its stages is checked on the shared clean backfill
(tests/flows/test_orchestration.py).
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.flow

START, END = date(2024, 1, 1), date(2024, 3, 31)
POOL = "HB2024-1"


class ReadCounter:
    """Counts how often each file is opened for reading, by path relative to the data root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.reads: Counter[str] = Counter()
        self.deal_loads: Counter[str] = Counter()
        self._inside = threading.local()

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        counter = self

        def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
            mode = args[0] if args and isinstance(args[0], str) else kwargs.get("mode", "r")
            if getattr(counter._inside, "active", False) or any(c in mode for c in "wax+"):
                return method(path, *args, **kwargs)
            counter._inside.active = True
            try:
                resolved = path.resolve()
                if resolved.is_relative_to(counter.root):
                    counter.reads[resolved.relative_to(counter.root).as_posix()] += 1
                return method(path, *args, **kwargs)
            finally:
                counter._inside.active = False

        return counted

    def of(self, predicate: Callable[[str], bool]) -> dict[str, int]:
        return {name: n for name, n in sorted(self.reads.items()) if predicate(name)}


@pytest.fixture
def data_root(tiny_landing: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(tiny_landing, root / "landing")
    return root


@pytest.fixture
def counted(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> ReadCounter:
    import flows.deals

    counter = ReadCounter(data_root)
    for name in ("open", "read_text", "read_bytes"):
        monkeypatch.setattr(Path, name, counter.wrap(getattr(Path, name)))
    load_yaml_file = flows.deals.load_yaml_file

    def counted_load(path: Path, root: Path, limits: Any) -> Any:
        counter.deal_loads[path.name] += 1
        return load_yaml_file(path, root, limits)

    monkeypatch.setattr(flows.deals, "load_yaml_file", counted_load)
    return counter


def _backfill(root: Path, **options: Any) -> Any:
    from flows.pipeline import backfill_flow

    return backfill_flow(start=options.pop("start", START), end=END, data_root=str(root), **options)


def _deal_file(name: str) -> bool:
    return name.startswith("landing/deals/")


def _latest_metrics(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 4 and parts[0] == "reports" and parts[3] == "metrics.json"


def test_a_backfill_loads_each_deal_and_each_periods_metrics_once(
    harness: str, data_root: Path, counted: ReadCounter
) -> None:
    summary = _backfill(data_root)
    assert summary.periods == [f"{POOL}/2024-02", f"{POOL}/2024-03"]
    assert dict(counted.deal_loads) == {f"{POOL}.yaml": 1}
    # Parsed once (above, through the guarded reader) and hashed once, for the downstream
    # key and every report's provenance.
    assert counted.of(_deal_file) == {f"landing/deals/{POOL}.yaml": 1}
    # Both periods were computed in this run: their documents are passed on, never re-read.
    assert counted.of(_latest_metrics) == {}

    counted.reads.clear()
    counted.deal_loads.clear()
    again = _backfill(data_root, start=date(2024, 3, 1), force=True)
    assert again.periods == [f"{POOL}/2024-03"]
    assert dict(counted.deal_loads) == {f"{POOL}.yaml": 1}
    # February was not recomputed: read once, for the history and the index.
    assert counted.of(_latest_metrics) == {f"reports/{POOL}/2024-02/metrics.json": 1}
