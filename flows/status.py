"""What has been processed: per business date state, chunk plans and restated figures.

A backfill is cut into chunks (a month of deliveries by default). Each business
date is recorded in ``state/business_dates.json`` with the *input key* it was
processed with, the run that processed it and the outcome. The key chains the
date's landing files (their sha256), the code version and the key of the date
before it, so

- a chunk whose dates all carry their current key is unchanged and is skipped;
- a late or corrected file for an old date changes that date's key and, through
  the chain, the key of every later date: everything from that date onward is
  recomputed;
- an interrupted backfill re-run skips the chunks that finished and resumes at
  the first one that did not.

A date whose chunk failed passes a *failed* marker down the chain, so the dates
after it are processed again once it succeeds (their ingest depends on the loans
it stages).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from flows.catalog import LANDING_DATASETS, Catalog, sha256_file

ChunkSize = Literal["month", "day"]
CHUNK_SIZES: tuple[ChunkSize, ...] = ("month", "day")
DayStatus = Literal["ingested", "complete", "failed"]
STATE_FORMAT = 1


@dataclass(frozen=True)
class DayState:
    """How one business date was last processed."""

    key: str
    files: int
    status: DayStatus
    run_id: str
    error: str | None = None


@dataclass
class StateBook:
    """Every recorded business date, and the last complete downstream recomputation."""

    days: dict[date, DayState] = field(default_factory=dict)
    downstream_key: str | None = None
    downstream_run_id: str | None = None

    @classmethod
    def load(cls, catalog: Catalog) -> StateBook:
        """Read the state file; a data root without one has processed nothing."""
        path = catalog.business_date_state
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        days = {
            date.fromisoformat(day): DayState(**entry)
            for day, entry in raw.get("business_dates", {}).items()
        }
        return cls(days, raw.get("downstream_key"), raw.get("downstream_run_id"))

    def save(self, catalog: Catalog) -> None:
        document = {
            "format": STATE_FORMAT,
            "downstream_key": self.downstream_key,
            "downstream_run_id": self.downstream_run_id,
            "business_dates": {
                day.isoformat(): asdict(state) for day, state in sorted(self.days.items())
            },
        }
        catalog.write_text(
            json.dumps(document, indent=1, sort_keys=True) + "\n", catalog.business_date_state
        )

    def latest(self) -> date | None:
        return max(self.days) if self.days else None

    def chain_before(self, day: date) -> str:
        """The chain value the first date on or after ``day`` continues from."""
        earlier = [d for d in self.days if d < day]
        if not earlier:
            return ""
        state = self.days[max(earlier)]
        return chain_value(state.key, failed=state.status == "failed")


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def split_chunks(days: Sequence[date], size: ChunkSize) -> list[list[date]]:
    """Consecutive days grouped into chunks of a calendar month or of one day."""
    if size == "day":
        return [[day] for day in days]
    return [
        list(group) for _, group in itertools.groupby(days, key=lambda day: (day.year, day.month))
    ]


def day_digest(catalog: Catalog, day: date) -> tuple[str, int]:
    """A digest of a business date's landing files (names and contents) and their count."""
    digest = hashlib.sha256(day.isoformat().encode())
    count = 0
    files = catalog.landing_files(day)
    for dataset in LANDING_DATASETS:
        for path in files[dataset]:
            digest.update(f"|{dataset}|{path.name}|{sha256_file(path)}".encode())
            count += 1
    return digest.hexdigest(), count


def input_key(version: str, digest: str, previous: str) -> str:
    """The key of a business date: its files, the code, and the chain before it."""
    return hashlib.sha256(f"{version}|{digest}|{previous}".encode()).hexdigest()


def chain_value(key: str, *, failed: bool) -> str:
    """What a date passes on to the next: its key, marked when its chunk failed."""
    return hashlib.sha256(f"{key}|failed".encode()).hexdigest() if failed else key


@dataclass(frozen=True)
class Restatement:
    """A published figure that changed: its pool, period, field and old and new value."""

    pool_id: str
    period: str
    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.pool_id} {self.period} {self.field}: {_show(self.old)} -> {_show(self.new)}"


LIST_ITEM_KEYS = ("bucket", "class", "name", "tranche", "province", "stratum", "period")
"""Fields that name an item of a list in metrics.json, so items are matched by name."""


def restatements(pool_id: str, period: str, old: Any, new: Any) -> list[Restatement]:
    """Every leaf of two metrics.json documents whose value differs, old to new."""
    before = dict(_leaves(old, ""))
    after = dict(_leaves(new, ""))
    return [
        Restatement(pool_id, period, name, before.get(name), after.get(name))
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]


def _leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{_item_name(item, position)}]")
    else:
        yield prefix, value


def _item_name(item: Any, position: int) -> str:
    if isinstance(item, Mapping):
        for key in LIST_ITEM_KEYS:
            if key in item and isinstance(item[key], str | int):
                return f"{key}={item[key]}"
    return str(position)


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


def status_lines(catalog: Catalog, *, by_date: bool = False) -> list[str]:
    """The processed business dates with their run ids and outcomes, and the runs.

    Consecutive dates processed by the same run with the same outcome are shown as
    one range unless ``by_date``.
    """
    book = StateBook.load(catalog)
    lines = [f"business dates under {catalog.root} ({len(book.days)} recorded):"]
    if not book.days:
        lines.append("  none processed yet")
    rows = sorted(book.days.items())
    groups: list[list[tuple[date, DayState]]] = []
    for day, state in rows:
        previous = groups[-1][-1] if groups else None
        if (
            not by_date
            and previous is not None
            and previous[0] + timedelta(days=1) == day
            and (previous[1].status, previous[1].run_id, previous[1].error)
            == (state.status, state.run_id, state.error)
        ):
            groups[-1].append((day, state))
        else:
            groups.append([(day, state)])
    for group in groups:
        first, last = group[0][0], group[-1][0]
        span = f"{first}" if first == last else f"{first} .. {last}"
        state = group[0][1]
        files = sum(s.files for _, s in group)
        line = f"  {span:<24} {state.status:<9} run {state.run_id}  files {files}"
        if state.error:
            line += f"  error: {state.error}"
        lines.append(line)
    lines.append("runs:")
    manifests = catalog.run_manifests()
    failures = catalog.failure_summaries()
    if not manifests and not failures:
        lines.append("  none yet")
    for path in manifests:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        parameters = manifest.get("parameters", {})
        outcome = "failed" if manifest.get("errors") else "ok"
        lines.append(
            f"  {manifest.get('run_id', path.stem)}  {parameters.get('start')} .. "
            f"{parameters.get('end')}  {outcome}  {path.relative_to(catalog.root).as_posix()}"
        )
    for path in failures:
        summary = json.loads(path.read_text(encoding="utf-8"))
        lines.append(
            f"  {summary.get('run_id', path.stem)}  failure: {summary.get('message', '')}  "
            f"{path.relative_to(catalog.root).as_posix()}"
        )
    return lines
