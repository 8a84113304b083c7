"""The run planner and the publication gate, on plain values."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flows.delivery import DayScan, DeliveryCheck, DeliveryStatus
from flows.planner import PlanOptions, days_between, gate, plan
from flows.state import DayState, EmptyDay, StateBook, input_key

VERSION = "1.0"
JAN1, JAN31, FEB29 = date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 29)


def _scan(
    start: date, end: date, status: dict[date, DeliveryStatus] | None = None
) -> dict[date, DayScan]:
    status = status or {}
    return {
        day: DayScan(
            check=DeliveryCheck(day, status.get(day, "complete"), "why"),
            digest=f"digest {day}",
            files=2,
            staged=True,
        )
        for day in days_between(start, end)
    }


def _options(start: date = JAN1, end: date = FEB29, *, force: bool = False) -> PlanOptions:
    return PlanOptions(start, end, force, "month", VERSION)


def _processed(scan: dict[date, DayScan], until: date) -> StateBook:
    """A state in which every date up to ``until`` was processed with its current key."""
    book = StateBook()
    chain = ""
    for day in sorted(scan):
        if day > until:
            break
        chain = input_key(VERSION, scan[day].digest, chain)
        book.days[day] = DayState(key=chain, files=2, status="complete", run_id="r1")
    return book


def test_a_fresh_root_processes_every_chunk() -> None:
    result = plan(StateBook(), _scan(JAN1, FEB29), _options())
    assert [(c.start, c.end, c.action, c.reason) for c in result.chunks] == [
        (JAN1, JAN31, "process", "new"),
        (date(2024, 2, 1), FEB29, "process", "new"),
    ]
    assert result.stop is None
    assert result.changed_from == JAN1


def test_a_missing_date_stops_the_plan_there_and_nothing_later_is_planned() -> None:
    missing = date(2024, 2, 10)
    result = plan(StateBook(), _scan(JAN1, FEB29, {missing: "missing"}), _options())
    assert result.stop is not None
    assert result.stop.day == missing
    assert max(day for chunk in result.chunks for day in chunk.days) == date(2024, 2, 9)
    assert any("STOP at 2024-02-10: missing" in line for line in result.describe())


def test_a_rejected_delivery_stops_like_a_missing_one() -> None:
    result = plan(StateBook(), _scan(JAN1, JAN31, {JAN1: "rejected"}), _options(end=JAN31))
    assert result.stop == DeliveryCheck(JAN1, "rejected", "why")
    assert result.chunks == ()


def test_a_date_declared_empty_is_planned_and_listed() -> None:
    empty = date(2024, 1, 7)
    result = plan(StateBook(), _scan(JAN1, JAN31, {empty: "empty"}), _options(end=JAN31))
    assert result.stop is None
    assert result.declared_empty == (empty,)


def test_unchanged_chunks_are_skipped_changed_ones_processed_and_force_processes_all() -> None:
    scan = _scan(JAN1, FEB29)
    state = _processed(scan, FEB29)
    assert [c.action for c in plan(state, scan, _options()).chunks] == ["skip", "skip"]

    corrected = dict(scan)
    corrected[date(2024, 2, 3)] = DayScan(scan[date(2024, 2, 3)].check, "new digest", 2, True)
    assert [(c.action, c.reason) for c in plan(state, corrected, _options()).chunks] == [
        ("skip", "unchanged"),
        ("process", "inputs changed"),
    ]
    forced = plan(state, scan, _options(force=True))
    assert [c.action for c in forced.chunks] == ["process", "process"]


def test_a_run_of_one_date_considers_every_date_processed_after_it() -> None:
    scan = _scan(JAN1, FEB29)
    state = _processed(scan, FEB29)
    result = plan(state, scan, _options(start=JAN31, end=JAN31))
    assert result.plan_end == FEB29
    assert [c.action for c in result.chunks] == ["skip", "skip"]


def test_the_gate_publishes_only_periods_whose_every_date_was_accepted() -> None:
    scan = _scan(JAN1, FEB29)
    state = _processed(scan, FEB29)
    failed = date(2024, 2, 12)
    state.days[failed] = DayState(key="x", files=1, status="failed", run_id="r2", error="bad gzip")
    decision = gate(state, [JAN31, FEB29], first_delivery=JAN1, required=set(scan), stop=None)
    assert decision.publish == (JAN31,)
    assert decision.blocked == {FEB29: "2024-02-12 failed: bad gzip"}


def test_the_gate_blocks_periods_with_unprocessed_dates_unless_declared_empty() -> None:
    scan = _scan(JAN1, JAN31)
    state = _processed(scan, JAN31)
    hole = date(2024, 1, 20)
    del state.days[hole]
    decision = gate(state, [JAN31], first_delivery=JAN1, required=set(scan), stop=None)
    assert decision.blocked == {JAN31: "2024-01-20 not processed"}
    state.empty_days[hole] = EmptyDay(reason="servicer holiday", declared_at=datetime.now(UTC))
    decision = gate(state, [JAN31], first_delivery=JAN1, required=set(scan), stop=None)
    assert decision.publish == (JAN31,)


def test_a_stopped_run_publishes_nothing() -> None:
    scan = _scan(JAN1, FEB29)
    state = _processed(scan, FEB29)
    stop = DeliveryCheck(date(2024, 3, 1), "missing", "no delivery")
    decision = gate(state, [JAN31, FEB29], first_delivery=JAN1, required=set(scan), stop=stop)
    assert decision.publish == ()
    assert set(decision.blocked) == {JAN31, FEB29}
    assert decision.blocked[JAN31] == "delivery missing for 2024-03-01"
