"""The run planner: what a run will do, decided on plain values before anything is written.

``plan(state, scan, options)`` takes the remembered state, the landing scan (each
date's delivery check and digest) and the run's options, and returns a :class:`Plan`:
the chunks to process or skip, the date where the run must stop (a missing or
rejected delivery) and the first date downstream stages must recompute from. After
the chunks ran, :func:`gate` decides which collection periods may be published and
which are blocked, and why. Nothing here reads a file, so every rule is tested on
plain values (``tests/flows/test_planner.py``); ``--dry-run`` prints the plan.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from flows.delivery import DayScan, DeliveryCheck
from flows.state import StateBook, input_key

ChunkSize = Literal["month", "day"]
CHUNK_SIZES: tuple[ChunkSize, ...] = ("month", "day")
ChunkAction = Literal["process", "skip"]


@dataclass(frozen=True)
class PlanOptions:
    start: date
    end: date
    force: bool
    chunk: ChunkSize
    code_version: str


@dataclass(frozen=True)
class ChunkPlan:
    days: tuple[date, ...]
    keys: tuple[str, ...]
    files: int
    action: ChunkAction
    reason: str

    @property
    def start(self) -> date:
        return self.days[0]

    @property
    def end(self) -> date:
        return self.days[-1]

    def describe(self) -> str:
        span = f"{self.start}" if self.start == self.end else f"{self.start} .. {self.end}"
        return f"{span}: {self.action} ({self.reason}), {self.files} files"


@dataclass(frozen=True)
class Plan:
    """What a run will do."""

    start: date
    end: date
    plan_end: date
    """The last date considered: dates processed earlier than it depend on what comes before."""
    chunks: tuple[ChunkPlan, ...]
    stop: DeliveryCheck | None
    """The first date with no complete delivery: it and every later date are not processed."""
    declared_empty: tuple[date, ...]
    fingerprint: str
    """The chain value after the last planned date: equal inputs, equal fingerprint."""
    incomplete: tuple[date, ...] = ()
    """Dates ingested by an earlier run that stopped before the downstream stages finished."""

    @property
    def to_process(self) -> list[ChunkPlan]:
        return [c for c in self.chunks if c.action == "process"]

    @property
    def changed_from(self) -> date | None:
        first = [c.start for c in self.to_process]
        return min([*first, *self.incomplete]) if first or self.incomplete else None

    def describe(self) -> list[str]:
        lines = [f"plan for {self.start} .. {self.end} (considering dates up to {self.plan_end})"]
        lines += [f"  chunk {c.describe()}" for c in self.chunks]
        if self.declared_empty:
            lines.append(
                "  declared empty: " + ", ".join(d.isoformat() for d in self.declared_empty)
            )
        if self.incomplete:
            lines.append(f"  downstream incomplete from {min(self.incomplete)}")
        if self.stop is not None:
            lines.append(
                f"  STOP at {self.stop.describe()}: nothing from {self.stop.day} on is "
                "processed and nothing is published"
            )
        elif not self.to_process and not self.incomplete:
            lines.append("  nothing to process")
        return lines


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def split_chunks(days: Sequence[date], size: ChunkSize) -> list[list[date]]:
    """Consecutive days grouped into chunks of a calendar month or of one day."""
    if size == "day":
        return [[day] for day in days]
    return [
        list(group) for _, group in itertools.groupby(days, key=lambda day: (day.year, day.month))
    ]


def plan_end_for(state: StateBook, end: date) -> date:
    """Dates processed earlier than ``end`` depend on what is staged before them, so a
    run considers every date up to the latest processed one."""
    latest = state.latest()
    return max(end, latest) if latest else end


def plan(state: StateBook, scan: Mapping[date, DayScan], options: PlanOptions) -> Plan:
    """Decide what a run does.

    Args:
        state: What earlier runs recorded.
        scan: Every date from ``options.start`` to the plan end (see :func:`plan_end_for`).
        options: The run's range, chunk size, force flag and code version.

    Returns:
        The plan: chunks (processed when a date's key changed, a date failed, its staged
        partitions are gone or ``force`` covers it; skipped otherwise), the stop date
        and the dates declared empty.
    """
    plan_end = plan_end_for(state, options.end)
    days = days_between(options.start, plan_end)
    stop = next((scan[d].check for d in days if not scan[d].check.usable), None)
    if stop is not None:
        days = [d for d in days if d < stop.day]
    chain = state.chain_before(options.start)
    chunks: list[ChunkPlan] = []
    for group in split_chunks(days, options.chunk):
        keys: list[str] = []
        for day in group:
            keys.append(input_key(options.code_version, scan[day].digest, chain))
            chain = keys[-1]
        reasons = [_reason(state, scan[d], d, k) for d, k in zip(group, keys, strict=True)]
        changed = next((r for r in reasons if r), None)
        if options.force and group[0] <= options.end:
            action: ChunkAction = "process"
            reason = "forced"
        elif changed:
            action, reason = "process", changed
        else:
            action, reason = "skip", "unchanged"
        files = sum(scan[d].files for d in group)
        chunks.append(ChunkPlan(tuple(group), tuple(keys), files, action, reason))
    incomplete = tuple(
        sorted(d for d, s in state.days.items() if s.status == "ingested" and d in set(days))
    )
    return Plan(
        start=options.start,
        end=options.end,
        plan_end=plan_end,
        chunks=tuple(chunks),
        stop=stop,
        declared_empty=tuple(d for d in days if scan[d].check.status == "empty"),
        fingerprint=chain,
        incomplete=incomplete,
    )


def _reason(state: StateBook, scan: DayScan, day: date, key: str) -> str | None:
    recorded = state.days.get(day)
    if recorded is None:
        return "new"
    if recorded.status == "failed":
        return "failed before"
    if recorded.key != key:
        return "inputs changed"
    if not scan.staged:
        return "staged partitions missing"
    return None


def rekey(
    days: Sequence[date], scan: Mapping[date, DayScan], version: str, chain: str
) -> list[str]:
    """Keys of ``days`` continuing from ``chain`` (after a failed chunk changed it)."""
    keys = []
    for day in days:
        chain = input_key(version, scan[day].digest, chain)
        keys.append(chain)
    return keys


# -- the publication gate ---------------------------------------------------------------------
@dataclass(frozen=True)
class GateDecision:
    """Which period ends may be published, and why the others may not."""

    publish: tuple[date, ...]
    blocked: dict[date, str] = field(default_factory=dict)

    def blocked_lines(self) -> list[str]:
        return [f"{end:%Y-%m}: {why}" for end, why in sorted(self.blocked.items())]


def gate(
    state: StateBook,
    period_ends: Iterable[date],
    *,
    first_delivery: date | None,
    required: Iterable[date],
    stop: DeliveryCheck | None,
) -> GateDecision:
    """Publish a period only when every date from the first delivery to its end is accepted.

    A period's figures (its opening balance included) depend on every date before its
    end, so each such date must be processed without a failed chunk ("ingested" or
    "complete" in ``state``) or declared empty; a date the calendar does not require
    and that had no delivery counts as nothing to process. A run that stopped at a
    missing or rejected delivery publishes nothing.

    Args:
        state: The state after this run's chunks.
        period_ends: Candidate collection-period ends (month-ends), ascending.
        first_delivery: The first landing date of the book (None: nothing delivered).
        required: Dates that must be processed: those the delivery calendar requires
            and those that had a delivery.
        stop: The run's stop, if it stopped.
    """
    ends = sorted(period_ends)
    if stop is not None:
        why = f"delivery {stop.status} for {stop.day}"
        return GateDecision((), dict.fromkeys(ends, why))
    needed = set(required)
    publish: list[date] = []
    blocked: dict[date, str] = {}
    for end in ends:
        if first_delivery is None or first_delivery > end:
            blocked[end] = "no delivery before the period end"
            continue
        problem = None
        for day in days_between(first_delivery, end):
            recorded = state.days.get(day)
            if day in state.empty_days:
                continue
            if recorded is None:
                if day in needed:
                    problem = f"{day} not processed"
                    break
                continue
            if recorded.status == "failed":
                problem = f"{day} failed: {recorded.error or 'chunk failed'}"
                break
        if problem:
            blocked[end] = problem
        else:
            publish.append(end)
    return GateDecision(tuple(publish), blocked)
