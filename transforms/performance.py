"""Loan performance engine: loan snapshots at a list of as-of dates, and its running state.

Conventions are the team's loan-mechanics rules (DOMAIN.md "Loan mechanics"):

- Allocation. Repayments arrive split by component. ``fee_paid`` and
  ``penalty_paid`` settle penalties and fees (separate charges, reported as
  ``fees_paid``); ``interest_paid + principal_paid`` is the cash applied to
  instalments, oldest instalment first, to its interest and then its
  principal. Interest paid beyond the interest due is still cash applied to
  instalments (it covers the next amounts due, so DPD sees it), but only
  ``principal_paid`` reduces the balance: the servicer's split is never
  re-cut, and the excess stays in ``interest_paid``.
- A ``reversal`` row is the same amounts with the sign flipped on its value date.
- DPD at ``t`` is ``t`` minus the due date of the oldest instalment whose
  cumulative amount due exceeds the cumulative cash by more than the tolerance,
  or 0 when the principal is fully repaid. Because cumulative amounts due only
  grow, that instalment is the first one whose cumulative amount due is at
  least ``cash + tolerance + 1``: an as-of join on amounts, not a loop.
- Between two days with cash (or a change of rules) the cash is constant, so
  the oldest unpaid instalment is fixed and DPD grows one a day. The first day
  DPD exceeds a threshold ``X`` inside such an interval is
  ``max(interval start, due + X + 1)`` when that is before the next interval;
  the default (charge-off) date is the earliest of these. Reversals are exact:
  an interval that starts on a reversal's value date has the lower cash.
- Thresholds and tolerance: a loan follows the rules of the pool it was most
  recently added to on or before the day (``rules`` before any addition, or
  for a pool without its own), so a later purchase never restates history.
- Principal paid beyond the loan's principal is capped (the cumulative
  principal is clipped to ``[0, principal]``) and reported by
  :func:`overpayments`, never absorbed into the balance.
- Unscheduled principal. Per cash event ``e`` of a loan (ordered by
  ``value_date``, ``repayment_id``), with ``c`` the cumulative principal paid
  after ``e`` and ``d`` the cumulative scheduled principal due through its
  value date, the loan's cumulative unscheduled principal ``U`` moves as:

  * a payment: ``U(e) = max(U(e-1), max(0, c - d))`` -- the running maximum
    of the principal paid ahead of the schedule, so a borrower who prepays
    500.00 and then keeps paying full instalments is counted once, not again
    each month (paying the schedule down to the prepaid level adds nothing);
  * a reversal of ``a`` that takes the principal back below the schedule
    (``c < d``) reduces scheduled principal first and unscheduled principal
    only for what is left: ``U(e) = min(U(e-1), c)``; a reversal that leaves
    the principal at or above the schedule takes back unscheduled principal
    first: ``U(e) = max(0, U(e-1) - a)``. So a reversed prepayment undoes the
    prepayment, and a reversed instalment undoes the instalment.

  ``d`` counts the principal due through the value date plus
  ``advance_payment_days`` (DOMAIN.md "Scheduled versus unscheduled"): an
  instalment paid a few days before it falls due (a due date on a weekend or
  holiday) is scheduled principal, never a prepayment.
  ``unscheduled_e = U(e) - U(e-1)`` (never negative for a payment, at most
  ``principal_paid_e``) and ``scheduled_e = principal_paid_e - unscheduled_e``.
  Scheduled principal never exceeds the principal due, and neither part ever
  goes below zero. (Derived from amounts, not from ``kind``.)
- Prepaid versus matured: a loan whose balance reaches 0 more than
  ``advance_payment_days`` before its final due date is ``prepaid``,
  otherwise ``matured``.
- Default is the first day DPD exceeds ``default_dpd``; charge-off the first
  day DPD reaches ``charge_off_dpd`` (DOMAIN.md "Servicer status").
- Cash on or before the default date is performing cash (scheduled and
  unscheduled principal, interest, fees); cash after it is recovery.
- Pool membership follows ``pool_assets``, and purchases and removals take
  effect on their event date (DOMAIN.md "Conventions"): ``purchased_principal``
  is the balance at the end of the purchase day, ``removed_principal`` the
  balance at the end of the removal day (status ``repurchased``). A row's flows
  stay the loan's own; the part paid outside pool membership (up to the end
  of the purchase day, after the removal day) is in its ``outside_*`` columns,
  so the pool roll-forward closes from the snapshots alone. A loan already
  defaulted on its purchase day counts from the period start as before, and
  one defaulted by its removal day has no removed principal. A default after
  the removal day (cash reversed after a repaid loan left the pool) is the
  loan's, not the pool's: its defaulted principal is also in
  ``outside_defaulted_principal``.

Incremental runs. :func:`run_engine` also returns the per-loan running totals
after the last as-of date (:class:`EngineState`). Given that state, a later
run reads only the cash and rule changes dated after it and continues exactly
where it stopped: the snapshot at a date depends only on events dated on or
before it, and the state holds every running total the engine needs
(cumulative principal before the cap, cash, ``U``, performing flows,
recoveries, default and charge-off dates once reached, the day the balance
reached zero, the rules in force) plus the values at the last period end,
from which the next snapshot's flows are measured, and at a pool event after
it (where the next period's pool flows start or stop).

Internally dates are whole days since 1970-01-01 (``Int32``) and loans are
numbered in ``loan_id`` order, so every join and sort works on integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from transforms import schema

_BEFORE_ANY_DAY: Final = -1_000_000
"""A day before every real date: the start of each loan's first cash interval."""

_POOL_TOTAL_NAMES: Final = ("paid", "sched", "unsched", "interest", "fees", "recoveries")
"""Totals kept at a pool event's day: principal paid and each flow."""

ENGINE_STATE: Final[schema.Columns] = {
    "loan_id": pl.String,
    "origination_date": pl.Date,
    "raw_principal_paid": schema.MONEY,
    "cash_paid": schema.MONEY,
    "unscheduled_ahead": schema.MONEY,
    "scheduled_principal_paid": schema.MONEY,
    "unscheduled_principal_paid": schema.MONEY,
    "interest_paid": schema.MONEY,
    "fees_paid": schema.MONEY,
    "performing_principal_paid": schema.MONEY,
    "recoveries": schema.MONEY,
    "default_date": pl.Date,
    "charge_off_date": pl.Date,
    "zero_date": pl.Date,
    "default_dpd": pl.Int32,
    "charge_off_dpd": pl.Int32,
    "tolerance_fen": schema.MONEY,
    "base_principal_paid": schema.MONEY,
    "base_scheduled_principal_paid": schema.MONEY,
    "base_unscheduled_principal_paid": schema.MONEY,
    "base_interest_paid": schema.MONEY,
    "base_fees_paid": schema.MONEY,
    "base_recoveries": schema.MONEY,
    "base_pool_id": pl.String,
    "pool_added_date": pl.Date,
    **{f"pool_added_{c}": schema.MONEY for c in _POOL_TOTAL_NAMES},
    "pool_removed_date": pl.Date,
    **{f"pool_removed_{c}": schema.MONEY for c in _POOL_TOTAL_NAMES},
}
"""Per-loan running totals after a date (cumulative since origination).

``raw_principal_paid`` is the signed cumulative principal before the cap at the
loan's principal; ``cash_paid`` is cumulative principal plus interest (what DPD
compares with the amounts due); ``unscheduled_ahead`` is ``U`` of the
unscheduled-principal rule; the performing totals count cash up to the default
date and ``recoveries`` the cash after it. ``default_date`` and
``charge_off_date`` are set once reached; ``zero_date`` is the day the balance
last reached zero (null while principal is owed). The rules are those in force.
``base_*`` are the cumulative totals at the state's base date (the last period
end) and ``base_pool_id`` the pool the loan was a continuing member of then.
``pool_added_*`` and ``pool_removed_*`` are the totals at the end of the day of
a pool purchase or removal after the base (null when none): the next period's
pool flows start or stop there.
"""

_BASE_FLOWS: Final = ("sched", "unsched", "interest", "fees", "recoveries")
_STATE_FLOWS: Final = {
    "sched": "scheduled_principal_paid",
    "unsched": "unscheduled_principal_paid",
    "interest": "interest_paid",
    "fees": "fees_paid",
    "recoveries": "recoveries",
}

_BOUND_NAMES: Final = _POOL_TOTAL_NAMES
_BOUND_TOTALS: Final = tuple(f"cum_{c}" for c in _BOUND_NAMES)
"""Day-row totals read at a pool event's day."""
_POOL_EVENT_TOTALS: Final = ("added", "removed")

_I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PerformanceRules:
    """Deal definitions that drive delinquency and default.

    Attributes:
        default_dpd: A loan defaults on the first day its DPD exceeds this.
        charge_off_dpd: A loan is charged off on the first day its DPD reaches this.
        tolerance_fen: A shortfall of at most this many fen counts as paid.
        advance_payment_days: Principal paid up to this many days before its
            due date is scheduled; a loan repaid within this many days of its
            final due date has matured.
    """

    default_dpd: int = 90
    charge_off_dpd: int = 180
    tolerance_fen: int = 100
    advance_payment_days: int = 7


@dataclass(frozen=True)
class EngineState:
    """Where an engine run stopped, to continue from.

    Attributes:
        as_of: Every event dated on or before this day is in ``loans``.
        base: The as-of date the next snapshot's flows are measured from (the
            last period end on or before ``as_of``), or None before any.
        loans: ``ENGINE_STATE`` rows, one per loan, sorted by ``loan_id``.
    """

    as_of: date
    base: date | None
    loans: pl.LazyFrame


@dataclass(frozen=True)
class EngineRun:
    """Snapshots of an engine run and the state after its last as-of date."""

    snapshots: pl.LazyFrame
    state: EngineState


def _day(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int32)


def _epoch_day(value: date) -> int:
    return (value - date(1970, 1, 1)).days


# Frames below are sorted by loan number ``k`` and then by a date or amount.
# Per-loan running totals and shifts use the sort order (a loan's rows are
# contiguous) instead of window functions, which regroup on every call.
_FIRST: Final = pl.col("k") != pl.col("k").shift(1).fill_null(-1)
_LAST: Final = pl.col("k") != pl.col("k").shift(-1).fill_null(-1)


def _cum_per_loan(x: pl.Expr) -> pl.Expr:
    total = x.cum_sum()
    return total - pl.when(_FIRST).then(total - x).forward_fill()


def _previous_in_loan(x: pl.Expr) -> pl.Expr:
    return pl.when(_FIRST).then(None).otherwise(x.shift(1))


def _next_in_loan(x: pl.Expr) -> pl.Expr:
    return pl.when(_LAST).then(None).otherwise(x.shift(-1))


def _day_key(day: pl.Expr) -> pl.Expr:
    """Sort key of (loan, day) as one integer, for as-of joins without groups."""
    return pl.col("k").cast(pl.Int64) * (1 << 32) + day.cast(pl.Int64)


def _collect(frame: pl.LazyFrame) -> pl.DataFrame:
    # The engine's steps are order-dependent (running sums and shifts along
    # rows sorted by loan): the in-memory engine runs them without the
    # streaming engine's reordering and fallbacks, at about two thirds of its
    # CPU time on a benchmark book.
    return frame.collect(engine="in-memory")


def _in_order(frame: pl.LazyFrame, key: str, *ties: str) -> pl.LazyFrame:
    """``frame`` computed and sorted by ``key`` and then ``ties``, each (key, ties) unique.

    Inputs usually arrive in that order already (by loan, then instalment or
    value date): one pass checks it, and only a frame out of order is sorted.
    """
    data = _collect(frame)
    after = pl.col(key) > pl.col(key).shift(1)
    tied = pl.col(key) == pl.col(key).shift(1)
    for tie in ties:
        after = after | (tied & (pl.col(tie) > pl.col(tie).shift(1)))
        tied = tied & (pl.col(tie) == pl.col(tie).shift(1))
    if not data.select(after.slice(1).fill_null(False).all()).item():
        data = data.sort(key, *ties)
    return data.lazy()


def _numbered(rows: pl.LazyFrame, book: pl.LazyFrame) -> pl.LazyFrame:
    """``rows`` with their loan's book columns (``book``: ``loan_id``, ``k``, ...), in place.

    A row whose loan is not in the book gets nulls. Inputs come grouped by
    loan (sorted by ``loan_id``), so only the first row of each run of one
    ``loan_id`` is looked up in the book, about one string per loan instead
    of one per row, and the run's rows take its values by position; rows in
    any order get the same values.
    """
    data = _collect(rows)
    ids = data.get_column("loan_id")
    starts = ids.ne_missing(ids.shift(1))
    run = starts.cum_sum() - 1
    found = (
        ids.filter(starts)
        .to_frame()
        .join(_collect(book), on="loan_id", how="left", maintain_order="left")
        .drop("loan_id")
    )
    return data.with_columns(found.get_column(c).gather(run) for c in found.columns).lazy()


def _sorted_join(rows: pl.LazyFrame, found: pl.LazyFrame) -> pl.LazyFrame:
    """``rows`` with ``found``'s columns where its ``key`` matches (a left join).

    Both sides are in ``key`` order, no key repeating: Polars merges them
    instead of hashing every key.
    """
    return rows.set_sorted("key").join(
        found.set_sorted("key"), on="key", how="left", maintain_order="left"
    )


def _materialise(frame: pl.LazyFrame) -> pl.LazyFrame:
    # Intermediate tables feed several later joins; computing each once is
    # much cheaper than letting every consumer re-run its plan.
    return _collect(frame).lazy()


def _asof(
    left: pl.LazyFrame, right: pl.LazyFrame, on: str, strategy: str = "backward"
) -> pl.LazyFrame:
    # Both sides are sorted on the composite key by construction, and every
    # loan has a sentinel row on the right, so a match never crosses loans.
    return left.join_asof(
        right,
        on=on,
        strategy=strategy,  # type: ignore[arg-type]
        check_sortedness=False,
    )


_OPENING: Final = {
    "o_raw": "raw_principal_paid",
    "o_cash": "cash_paid",
    "o_u": "unscheduled_ahead",
    "o_sched": "scheduled_principal_paid",
    "o_unsched": "unscheduled_principal_paid",
    "o_interest": "interest_paid",
    "o_fees": "fees_paid",
    "o_paid_performing": "performing_principal_paid",
    "o_recoveries": "recoveries",
    "b_paid": "base_principal_paid",
    "b_sched": "base_scheduled_principal_paid",
    "b_unsched": "base_unscheduled_principal_paid",
    "b_interest": "base_interest_paid",
    "b_fees": "base_fees_paid",
    "b_recoveries": "base_recoveries",
}
"""Book columns carrying a state's money totals (``o_``: running, ``b_``: at the base)."""


def _loan_book(
    loans: pl.LazyFrame, state: EngineState | None, rules: PerformanceRules
) -> pl.LazyFrame:
    """Loans numbered ``k`` in ``loan_id`` order, with the state they start from.

    Loans in the state start on the state's day with its totals and rules;
    the others start before any day with nothing paid and ``rules``.
    """
    book = (
        loans.select(
            pl.col("loan_id").cast(pl.String),
            _day("origination_date").alias("origination"),
            pl.col("principal").cast(pl.Int64),
        )
        .sort("loan_id")
        .with_row_index("k")
    )
    money = [pl.lit(0, dtype=pl.Int64).alias(c) for c in _OPENING]
    fresh = [
        *money,
        pl.lit(_BEFORE_ANY_DAY, dtype=pl.Int32).alias("open_day"),
        pl.lit(None, dtype=pl.Int32).alias("o_default_day"),
        pl.lit(None, dtype=pl.Int32).alias("o_charge_off_day"),
        pl.lit(None, dtype=pl.Int32).alias("o_zero_day"),
        pl.lit(rules.default_dpd, dtype=pl.Int32).alias("default_dpd"),
        pl.lit(rules.charge_off_dpd, dtype=pl.Int32).alias("charge_off_dpd"),
        pl.lit(rules.tolerance_fen, dtype=pl.Int64).alias("tolerance"),
        pl.lit(None, dtype=pl.String).alias("b_member_pool"),
        *(pl.lit(None, dtype=pl.Int32).alias(f"t_{e}_day") for e in _POOL_EVENT_TOTALS),
        *(
            pl.lit(None, dtype=pl.Int64).alias(f"t_{e}_{c}")
            for e in _POOL_EVENT_TOTALS
            for c in _BOUND_NAMES
        ),
    ]
    if state is None:
        return book.with_columns(fresh)
    carried = state.loans.select(
        pl.col("loan_id").cast(pl.String),
        pl.lit(True).alias("in_state"),
        *(pl.col(src).cast(pl.Int64).alias(dst) for dst, src in _OPENING.items()),
        _day("default_date").alias("o_default_day"),
        _day("charge_off_date").alias("o_charge_off_day"),
        _day("zero_date").alias("o_zero_day"),
        pl.col("default_dpd").cast(pl.Int32),
        pl.col("charge_off_dpd").cast(pl.Int32),
        pl.col("tolerance_fen").cast(pl.Int64).alias("tolerance"),
        pl.col("base_pool_id").cast(pl.String).alias("b_member_pool"),
        *(_day(f"pool_{e}_date").alias(f"t_{e}_day") for e in _POOL_EVENT_TOTALS),
        *(
            pl.col(f"pool_{e}_{c}").cast(pl.Int64).alias(f"t_{e}_{c}")
            for e in _POOL_EVENT_TOTALS
            for c in _BOUND_NAMES
        ),
    )
    in_state = pl.col("in_state").fill_null(False)
    return (
        book.join(carried, on="loan_id", how="left", maintain_order="left")
        .with_columns(
            *(pl.col(e.meta.output_name()).fill_null(e) for e in money),
            pl.when(in_state)
            .then(pl.lit(_epoch_day(state.as_of), dtype=pl.Int32))
            .otherwise(pl.lit(_BEFORE_ANY_DAY, dtype=pl.Int32))
            .alias("open_day"),
            pl.col("default_dpd").fill_null(rules.default_dpd),
            pl.col("charge_off_dpd").fill_null(rules.charge_off_dpd),
            pl.col("tolerance").fill_null(rules.tolerance_fen),
        )
        .drop("in_state")
    )


def _with_advance_days(
    book: pl.LazyFrame,
    pool_events: pl.LazyFrame,
    rules: PerformanceRules,
    rules_by_pool: Mapping[str, PerformanceRules] | None,
) -> pl.LazyFrame:
    """``advance_days`` per loan: that of the pool it was last added to, else ``rules``'."""
    fallback = pl.lit(rules.advance_payment_days, dtype=pl.Int32)
    if not rules_by_pool:
        return book.with_columns(fallback.alias("advance_days"))
    pool_ids = sorted(rules_by_pool)
    by_pool = pl.LazyFrame(
        {
            "pool_id": pool_ids,
            "advance_days": [rules_by_pool[p].advance_payment_days for p in pool_ids],
        },
        schema={"pool_id": pl.String, "advance_days": pl.Int32},
    )
    latest = (
        pool_events.filter(pl.col("added"))
        .group_by("k")
        .agg(pl.col("pool_id").sort_by("day", "pool_id").last())
        .join(by_pool, on="pool_id", how="inner")
        .select("k", "advance_days")
    )
    return book.join(latest, on="k", how="left", maintain_order="left").with_columns(
        pl.col("advance_days").fill_null(fallback)
    )


def _rule_changes(
    book: pl.LazyFrame,
    pool_events: pl.LazyFrame,
    rules: PerformanceRules,
    rules_by_pool: Mapping[str, PerformanceRules] | None,
    last_day: int,
) -> pl.LazyFrame | None:
    """Days a loan's rules change: each addition to a pool, with that pool's rules.

    Returns:
        ``key`` (loan, day), ``default_dpd``, ``charge_off_dpd``, ``tolerance``
        for additions after the loan's opening day, or None without pool rules.
    """
    if not rules_by_pool:
        return None
    pool_ids = sorted(rules_by_pool)
    by_pool = pl.LazyFrame(
        {
            "pool_id": pool_ids,
            "default_dpd": [rules_by_pool[p].default_dpd for p in pool_ids],
            "charge_off_dpd": [rules_by_pool[p].charge_off_dpd for p in pool_ids],
            "tolerance": [rules_by_pool[p].tolerance_fen for p in pool_ids],
        },
        schema={
            "pool_id": pl.String,
            "default_dpd": pl.Int32,
            "charge_off_dpd": pl.Int32,
            "tolerance": pl.Int64,
        },
    )
    return (
        pool_events.filter(pl.col("added"))
        .select("k", "pool_id", "day")
        .join(book.select("k", "open_day"), on="k", how="inner")
        .filter((pl.col("day") > pl.col("open_day")) & (pl.col("day") <= last_day))
        .join(by_pool, on="pool_id", how="left")
        .with_columns(
            pl.col("default_dpd").fill_null(rules.default_dpd),
            pl.col("charge_off_dpd").fill_null(rules.charge_off_dpd),
            pl.col("tolerance").fill_null(rules.tolerance_fen),
            _day_key(pl.col("day")).alias("key"),
        )
        # Two additions on one day: the later pool_id wins, as for every tie here.
        .sort("key", "pool_id")
        .group_by("key")
        .agg(
            pl.col("k", "day").first(), pl.col("default_dpd", "charge_off_dpd", "tolerance").last()
        )
        .pipe(_without_repeated_rules, book)
    )


def _without_repeated_rules(changes: pl.LazyFrame, book: pl.LazyFrame) -> pl.LazyFrame:
    """Rule changes that change something, in (loan, day) order.

    A change to the rules already in force (the loan's previous change, else
    its opening rules) leaves every figure as it was: it is dropped, so it
    does not split the loan's cash intervals for nothing.
    """
    rules = ("default_dpd", "charge_off_dpd", "tolerance")
    opening = book.select("k", *(pl.col(r).alias(f"opening_{r}") for r in rules))
    in_force = [
        pl.when(_FIRST).then(pl.col(f"opening_{r}")).otherwise(pl.col(r).shift(1)) for r in rules
    ]
    same = pl.all_horizontal(pl.col(r) == before for r, before in zip(rules, in_force, strict=True))
    return (
        changes.sort("key")
        .join(opening, on="k", how="left", maintain_order="left")
        .filter(~same)
        .select("key", "k", "day", *rules)
    )


def _schedule(book: pl.LazyFrame, schedules: pl.LazyFrame) -> pl.LazyFrame:
    """Schedule rows numbered by loan, with cumulative amounts due."""
    return (
        schedules.select(
            pl.col("loan_id").cast(pl.String),
            pl.col("instalment_no").cast(pl.Int32),
            _day("due_date").alias("due"),
            pl.col("principal_due").cast(pl.Int64),
            (pl.col("principal_due") + pl.col("interest_due")).cast(pl.Int64).alias("amount"),
        )
        # Numbered in place (an inner join would gather every column); the
        # sort below puts them in order once.
        .pipe(_numbered, book.select("loan_id", "k"))
        .filter(pl.col("k").is_not_null())
        .select(pl.exclude("loan_id"), _day_key(pl.col("instalment_no")).alias("order"))
        .pipe(_in_order, "order")
        .drop("order")
        .with_columns(
            _cum_per_loan(pl.col("amount")).alias("cum_due"),
            _cum_per_loan(pl.col("principal_due")).alias("cum_principal_due"),
        )
    )


def _due_by_day(book: pl.LazyFrame, schedule: pl.LazyFrame) -> pl.LazyFrame:
    """Instalments due and principal due by a day: join key ``key`` (loan, due date)."""
    before_any = book.select(
        "k",
        pl.lit(_BEFORE_ANY_DAY, dtype=pl.Int32).alias("due"),
        pl.lit(0, dtype=pl.Int32).alias("instalments_due"),
        pl.lit(0, dtype=pl.Int64).alias("cum_principal_due"),
    )
    rows = schedule.select(
        "k", "due", pl.col("instalment_no").alias("instalments_due"), "cum_principal_due"
    )
    return (
        pl.concat([before_any, rows])
        .with_columns(_day_key(pl.col("due")).alias("key"))
        .sort("key")
        .select("key", "instalments_due", "cum_principal_due")
    )


def _signed_cash(repayments: pl.LazyFrame) -> pl.LazyFrame:
    reversal = pl.col("kind") == "reversal"
    sign = pl.when(reversal).then(-1).otherwise(1)
    return repayments.select(
        pl.col("loan_id").cast(pl.String),
        pl.col("repayment_id").cast(pl.String),
        _day("value_date").alias("day"),
        reversal.alias("reversal"),
        (sign * pl.col("principal_paid")).cast(pl.Int64).alias("principal"),
        (sign * pl.col("interest_paid")).cast(pl.Int64).alias("interest"),
        (sign * (pl.col("fee_paid") + pl.col("penalty_paid"))).cast(pl.Int64).alias("fees"),
    )


def overpayments(loans: pl.LazyFrame, repayments: pl.LazyFrame) -> pl.LazyFrame:
    """Cash events that pay principal beyond what the loan still owes.

    Events are applied in ``value_date``, ``repayment_id`` order. The excess
    is left out of every principal figure in the snapshots (the balance never
    goes below zero); this lists it for follow-up.

    Args:
        loans: Loans with ``loan_id`` and ``principal`` (fen).
        repayments: ``schema.REPAYMENTS`` rows.

    Returns:
        ``loan_id``, ``repayment_id``, ``value_date`` and ``excess_principal``
        (Int64 fen, positive), one row per overpaying event, sorted by
        ``loan_id``, ``value_date``, ``repayment_id``.
    """
    book = (
        loans.select(pl.col("loan_id").cast(pl.String), pl.col("principal").cast(pl.Int64))
        .sort("loan_id")
        .with_row_index("k")
    )
    after = _cum_per_loan(pl.col("principal")) - pl.col("loan_principal")
    before = pl.col("over_after") - pl.col("principal")
    excess = pl.max_horizontal(pl.col("over_after"), 0) - pl.max_horizontal(before, 0)
    return (
        _signed_cash(repayments)
        .join(
            book.select("loan_id", "k", pl.col("principal").alias("loan_principal")),
            on="loan_id",
            how="inner",
        )
        .sort("k", "day", "repayment_id")
        .with_columns(after.alias("over_after"))
        .with_columns(excess.alias("excess_principal"))
        .filter(pl.col("excess_principal") > 0)
        .select(
            "loan_id",
            "repayment_id",
            pl.col("day").cast(pl.Date).alias("value_date"),
            "excess_principal",
        )
        .sort("loan_id", "value_date", "repayment_id")
    )


def _unscheduled_ahead(events: pl.DataFrame) -> _I64:
    """``U`` after each event (the unscheduled-principal rule of the module docstring).

    Between reversals ``U`` is a running maximum; each reversal starts a new
    segment whose opening ``U`` depends on the previous segment's last one. So
    segments are solved in rounds (all loans' first reversal, then their
    second, ...), each round vectorised over loans.

    Args:
        events: Sorted by loan and event order, with ``k``, ``reversal``,
            ``c_after``, ``c_before``, ``due`` (cumulative principal due) and
            ``o_u`` (the loan's opening ``U``).
    """
    n = events.height
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = events["k"].to_numpy()
    reversal = events["reversal"].to_numpy()
    c_after = events["c_after"].to_numpy().astype(np.int64)
    c_before = events["c_before"].to_numpy().astype(np.int64)
    due = events["due"].to_numpy().astype(np.int64)
    opening = events["o_u"].to_numpy().astype(np.int64)
    ahead = np.where(reversal, 0, np.maximum(c_after - due, 0))

    first = np.ones(n, dtype=np.bool_)
    first[1:] = k[1:] != k[:-1]
    starts = np.flatnonzero(first | reversal)
    group = np.cumsum(first | reversal) - 1
    loan_first_group = np.maximum.accumulate(np.where(first, group, 0))
    segment = (group - loan_first_group)[starts]
    peak = np.maximum.reduceat(ahead, starts)

    start_u = np.where(segment == 0, opening[starts], 0)
    end_u = np.maximum(start_u, peak)
    rounds = int(segment.max())
    if rounds:
        order = np.argsort(segment, kind="stable")
        bounds = np.searchsorted(segment[order], np.arange(rounds + 2))
        for j in range(1, rounds + 1):
            g = order[bounds[j] : bounds[j + 1]]
            r = starts[g]
            before = end_u[g - 1]
            below = c_after[r] < due[r]
            taken = c_before[r] - c_after[r]
            u = np.where(below, np.minimum(before, c_after[r]), np.maximum(before - taken, 0))
            start_u[g] = u
            end_u[g] = np.maximum(u, peak[g])

    # Within a segment U is the running maximum from its opening value: one
    # running maximum over (segment, level) keys, 64-bit where they fit.
    levels = np.maximum(start_u[group], ahead)
    top = int(levels.max()) + 1
    if int(group[-1] + 1).bit_length() + top.bit_length() <= 62:
        offsets = group.astype(np.int64) * top
        fitted: _I64 = np.maximum.accumulate(offsets + levels) - offsets
        return fitted
    level = pl.DataFrame(
        {"group": group, "level": np.maximum(start_u[group], ahead)},
        schema={"group": pl.Int128, "level": pl.Int128},
    )
    offset = pl.col("group") * (1 << 64)
    running = level.select(((offset + pl.col("level")).cum_max() - offset).cast(pl.Int64))
    result: _I64 = running.to_series().to_numpy()
    return result


def _events(
    book: pl.LazyFrame, due_by_day: pl.LazyFrame, repayments: pl.LazyFrame, last_day: int
) -> pl.DataFrame:
    """Every cash event after its loan's opening day, with its principal split.

    Returns:
        Per event (sorted by loan, value date, repayment id): ``key`` (loan,
        day), ``k``, ``principal`` (signed, before the cap), ``interest``,
        ``fees``, ``paid`` (principal after the cap), ``sched``, ``unsched``
        and ``u`` (``U`` after the event).
    """
    events = (
        _signed_cash(repayments)
        .pipe(
            _numbered,
            book.select(
                "loan_id",
                "k",
                pl.col("principal").alias("loan_principal"),
                "open_day",
                "o_raw",
                "o_u",
                "advance_days",
            ),
        )
        # Rows of unknown loans have no opening day: the filter drops them.
        .filter((pl.col("day") > pl.col("open_day")) & (pl.col("day") <= last_day))
        .with_columns(
            _day_key(pl.col("day")).alias("key"),
            # Principal due within advance_payment_days after the value date is scheduled.
            _day_key(pl.col("day") + pl.col("advance_days")).alias("due_key"),
        )
        .pipe(_in_order, "key", "repayment_id")
        .with_columns((pl.col("o_raw") + _cum_per_loan(pl.col("principal"))).alias("raw_after"))
        .with_columns(
            pl.col("raw_after").clip(0, pl.col("loan_principal")).alias("c_after"),
            (pl.col("raw_after") - pl.col("principal"))
            .clip(0, pl.col("loan_principal"))
            .alias("c_before"),
        )
    )
    events = _asof(
        events,
        due_by_day.select(pl.col("key").alias("due_key"), pl.col("cum_principal_due").alias("due")),
        "due_key",
    )
    frame = events.select(
        "key",
        "k",
        "day",
        "loan_principal",
        "reversal",
        "principal",
        "interest",
        "fees",
        "c_after",
        "c_before",
        "due",
        "o_u",
    ).pipe(_collect)
    u = pl.Series("u", _unscheduled_ahead(frame), dtype=pl.Int64)
    previous_u = pl.when(_FIRST).then(pl.col("o_u")).otherwise(pl.col("u").shift(1))
    return (
        frame.with_columns(u)
        .with_columns(
            (pl.col("c_after") - pl.col("c_before")).alias("paid"),
            (pl.col("u") - previous_u).alias("unsched"),
        )
        .with_columns((pl.col("paid") - pl.col("unsched")).alias("sched"))
        .select(
            "key",
            "k",
            "day",
            "loan_principal",
            "principal",
            "interest",
            "fees",
            "paid",
            "sched",
            "unsched",
            "u",
        )
    )


_DAY_FLOWS: Final = ("principal", "cash", "interest", "fees", "paid", "sched", "unsched")
"""A day row's flows: the day's sums of its cash events (the opening row: the state's totals)."""
_DAY_RULES: Final = ("default_dpd", "charge_off_dpd", "tolerance")


def _cash_by_day(events: pl.DataFrame) -> pl.LazyFrame:
    """Each loan's cash events summed by day, in (loan, day) order.

    Events arrive sorted by (loan, day), so a day's sums are differences of
    running sums at the day's last event: no grouping, no re-sort.
    """
    flows = [pl.col(c) for c in _DAY_FLOWS if c != "cash"]
    running = [
        *(c.cum_sum() for c in flows),
        (pl.col("principal") + pl.col("interest")).cum_sum().alias("cash"),
    ]
    last_of_day = pl.col("key") != pl.col("key").shift(-1).fill_null(-1)
    return (
        events.lazy()
        .select("key", "k", "day", "loan_principal", "u", *running)
        .filter(last_of_day)
        .with_columns(pl.col(c) - pl.col(c).shift(1).fill_null(0) for c in _DAY_FLOWS)
        .with_columns(pl.lit(False).alias("opening"))
    )


def _opening_rows(book: pl.LazyFrame) -> pl.LazyFrame:
    """Each loan's first day row: its opening day, with the totals it starts from."""
    return book.select(
        pl.col("k"),
        _day_key(pl.col("open_day")).alias("key"),
        pl.col("open_day").alias("day"),
        pl.col("principal").alias("loan_principal"),
        pl.lit(True).alias("opening"),
        pl.col("o_raw").alias("principal"),
        pl.col("o_cash").alias("cash"),
        pl.col("o_interest").alias("interest"),
        pl.col("o_fees").alias("fees"),
        pl.col("o_paid_performing").alias("paid"),
        pl.col("o_sched").alias("sched"),
        pl.col("o_unsched").alias("unsched"),
        pl.col("o_recoveries").alias("recovered"),
        pl.col("o_u").alias("u"),
        "o_default_day",
        "o_charge_off_day",
        "o_zero_day",
        *_DAY_RULES,
    )


def _day_rows(
    book: pl.LazyFrame, events: pl.DataFrame, rule_changes: pl.LazyFrame | None
) -> pl.LazyFrame:
    """Opening rows, days with cash and days a rule changes, in (loan, day) order.

    A rule change on a day with cash is one row: the rules join the cash row,
    and only changes on other days become rows of their own. Every part is
    sorted by ``key`` and no key repeats, so the parts are merged, not sorted.
    """
    opening = _opening_rows(book)
    cash = _cash_by_day(events)
    parts = [cash]
    changes = None if rule_changes is None else _collect(rule_changes)
    # Without a change (a pool with the rules already in force) the cash rows stand alone.
    if changes is not None and changes.height:
        rule_changes = changes.lazy()
        flagged = _sorted_join(rule_changes, cash.select("key", pl.lit(True).alias("cash_day")))
        parts = [
            _sorted_join(cash, rule_changes.select("key", *_DAY_RULES)),
            flagged.filter(pl.col("cash_day").is_null()).drop("cash_day"),
        ]
    columns = opening.collect_schema()
    aligned = [
        part.select(
            pl.col(name) if name in part.collect_schema() else pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in columns.items()
        ).cast(dict(columns))  # type: ignore[arg-type]
        for part in (opening, *parts)
    ]
    days = aligned[0]
    for part in aligned[1:]:
        days = days.merge_sorted(part, key="key")
    return days.with_columns(
        *(pl.col(c).fill_null(0) for c in (*_DAY_FLOWS, "recovered")),
        pl.col("opening").fill_null(False),
    ).with_columns(pl.col("loan_principal", "u", *_DAY_RULES).forward_fill())


def _with_running_totals(days: pl.LazyFrame) -> pl.LazyFrame:
    """End-of-day cumulative principal (before and after the cap) and cash, and ``repaid``."""
    raw = _cum_per_loan(pl.col("principal"))
    return days.with_columns(
        raw.alias("cum_raw"),
        raw.clip(0, pl.col("loan_principal")).alias("cum_paid"),
        _cum_per_loan(pl.col("cash")).alias("cum_cash"),
        _next_in_loan(pl.col("day")).alias("next_day"),
    ).with_columns((pl.col("cum_paid") >= pl.col("loan_principal")).alias("repaid"))


def _oldest_unpaid(days: pl.DataFrame, schedule: pl.DataFrame) -> pl.Series:
    """Due date of the oldest instalment not paid by each day row's cash (null: none).

    That instalment is the loan's first whose cumulative amount due is at
    least ``cum_cash + tolerance + 1`` (instalments of zero amount never are).
    Cumulative amounts due grow within a loan, so it is found by a binary
    search on one 64-bit (loan, amount) key per instalment; the day rows come
    in loan order, so the searches walk the keys forward.
    """
    due = schedule.filter(pl.col("amount") > 0)
    due_k = due["k"].to_numpy().astype(np.int64)
    cum_due = due["cum_due"].to_numpy().astype(np.int64)
    day_k = days["k"].to_numpy().astype(np.int64)
    # Amounts beyond every instalment's (or below the first) find the same one.
    top = int(cum_due.max()) + 1 if cum_due.size else 1
    owed = np.clip((days["cum_cash"] + days["tolerance"] + 1).to_numpy(), 0, top)
    if int(day_k.max(initial=0) + 1).bit_length() + top.bit_length() > 62:
        # A key too wide for 64 bits: amounts replaced by their rank.
        levels = np.unique(cum_due)
        cum_due, owed = np.searchsorted(levels, cum_due), np.searchsorted(levels, owed)
        top = levels.size
    shift = np.int64(top.bit_length())
    due_keys = (due_k << shift) + cum_due
    at = np.searchsorted(due_keys, (day_k << shift) + owed)
    if not due_keys.size:
        return pl.Series("oldest_unpaid", [None] * days.height, dtype=pl.Int32)
    inside = np.minimum(at, due_keys.size - 1)
    found = (at < due_keys.size) & (due_k[inside] == day_k)
    dates = pl.Series("oldest_unpaid", due["due"].to_numpy()[inside], dtype=pl.Int32)
    return pl.select(pl.when(pl.Series(found)).then(dates)).to_series()


def _first_day_over(threshold: str, reach: int) -> pl.Expr:
    """The first day of a row's interval on which DPD passes ``threshold`` (null: none).

    DPD grows one a day inside ``[day, next_day)``: the first day it exceeds
    the threshold there is the later of ``day`` and due + X + 1 (``reach``
    1); the first day it reaches it, due + X (``reach`` 0).
    """
    start = pl.max_horizontal(pl.col("day"), pl.col("oldest_unpaid") + pl.col(threshold) + reach)
    inside = pl.col("next_day").is_null() | (start < pl.col("next_day"))
    return pl.when(~pl.col("repaid") & pl.col("oldest_unpaid").is_not_null() & inside).then(start)


def _default_days(days: pl.LazyFrame) -> pl.LazyFrame:
    """Per loan ``k``: ``default_day`` (DPD first exceeds default_dpd) and ``charge_off_day``.

    A date the state already reached stands; null when never reached.
    """
    return (
        days.select(
            "k",
            pl.min_horizontal(_first_day_over("default_dpd", 1), "o_default_day").alias(
                "default_day"
            ),
            pl.min_horizontal(_first_day_over("charge_off_dpd", 0), "o_charge_off_day").alias(
                "charge_off_day"
            ),
        )
        .group_by("k", maintain_order=True)
        .agg(pl.col("default_day", "charge_off_day").min())
    )


def _performing_and_recovered(days: pl.LazyFrame) -> pl.LazyFrame:
    """Day rows with the loan's running performing flows, recoveries and zero day.

    Cash on or before the default day is performing; after it, a recovery.
    """
    is_open = pl.col("opening")
    performing = (
        is_open | pl.col("default_day").is_null() | (pl.col("day") <= pl.col("default_day"))
    )

    def performing_total(flow: str) -> pl.Expr:
        return _cum_per_loan(pl.when(performing).then(pl.col(flow)).otherwise(0))

    recovered = pl.col("paid") + pl.col("interest") + pl.col("fees")
    reached_zero = pl.col("repaid") & ~_previous_in_loan(pl.col("repaid")).fill_null(False)
    zero_day = (
        pl.when(is_open)
        .then(pl.col("o_zero_day").fill_null(_BEFORE_ANY_DAY))
        .when(reached_zero)
        .then(pl.col("day"))
        .forward_fill()
    )
    return days.select(
        "key",
        "k",
        "day",
        "repaid",
        "oldest_unpaid",
        "cum_raw",
        "cum_paid",
        "cum_cash",
        pl.col("u").alias("cum_u"),
        *(performing_total(c).alias(f"cum_{c}") for c in _BASE_FLOWS[:4]),
        performing_total("paid").alias("cum_paid_performing"),
        _cum_per_loan(
            pl.when(is_open).then(pl.col("recovered")).when(performing).then(0).otherwise(recovered)
        ).alias("cum_recoveries"),
        zero_day.alias("zero_day"),
        *_DAY_RULES,
    )


def _cash_days(
    book: pl.LazyFrame,
    schedule: pl.LazyFrame,
    events: pl.DataFrame,
    rule_changes: pl.LazyFrame | None,
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Per loan and day with cash or a rule change: the day's flows and end-of-day totals.

    Each loan starts with a row on its opening day (before any day, or the
    state's day) whose flow columns hold its opening totals, so running sums
    continue from them and every later date falls in exactly one row's
    interval ``[day, next_day)``.

    Returns:
        The day rows, and per loan ``k`` its ``default_day`` and
        ``charge_off_day`` (null when DPD never exceeds the threshold).
    """
    totals = _collect(_with_running_totals(_day_rows(book, events, rule_changes)))
    days = totals.with_columns(_oldest_unpaid(totals, _collect(schedule)))
    # Every loan has an opening row: loan_days holds loans 0, 1, ... in order,
    # so a day row finds its loan's at position k.
    loan_days = _collect(_default_days(days.lazy()))
    at_loan = days.get_column("k")
    days = days.with_columns(
        loan_days.get_column(c).gather(at_loan) for c in ("default_day", "charge_off_day")
    )
    return _performing_and_recovered(days.lazy()), loan_days.lazy()


def _pool_events(book: pl.LazyFrame, pool_assets: pl.LazyFrame) -> pl.LazyFrame:
    """The book's pool membership events, read once: ``k``, ``pool_id``, ``day``, ``added``.

    Sorted by loan, pool, day, additions before removals on a day.
    """
    added = pl.col("event") == "added"
    return (
        pool_assets.select(
            pl.col("loan_id", "pool_id").cast(pl.String),
            _day("event_date").alias("day"),
            pl.col("event").cast(pl.String),
        )
        .filter(pl.col("event").is_in(schema.POOL_EVENTS))
        .join(book.select("loan_id", "k"), on="loan_id", how="inner")
        .select("k", "pool_id", "day", added.alias("added"))
        .sort("k", "pool_id", "day", ~pl.col("added"))
    )


def _pool_membership(
    book: pl.LazyFrame, grid: pl.LazyFrame, pool_events: pl.LazyFrame
) -> pl.LazyFrame:
    """The pool of each loan at each as-of date, and whether it left it in the period.

    A loan is in pool ``p`` at ``t`` when its latest effective event for ``p``
    on or before ``t`` is ``added`` (same-day events: ``added`` first); it
    also carries ``p`` for the period in which it is removed. A removal wins
    over a membership elsewhere, so a loan moving between pools is reported
    as repurchased from the old pool and as purchased by the new one in the
    next period.

    Returns:
        ``key`` (the grid's), ``pool_id``, ``removed``, ``added_day`` (the day
        of the addition in force) and ``removed_day`` (the removal's day, null
        unless ``removed``) for grid rows with a pool, in ``key`` order.
    """
    pairs = _loan_pool_pairs(pool_events)
    candidates = _pool_candidates(grid, pairs, _effective_pool_events(pool_events, pairs))
    return _one_pool_per_row(candidates).select(
        pl.col("grid_key").alias("key"),
        "pool_id",
        "removed",
        "added_day",
        pl.when(pl.col("removed")).then(pl.col("event_day")).alias("removed_day"),
    )


def _loan_pool_pairs(pool_events: pl.LazyFrame) -> pl.LazyFrame:
    """Each (loan, pool) with events, numbered ``pair`` in that order; ``shared``: the
    loan has events in more than one pool."""
    same_loan = (pl.col("k") == pl.col("k").shift(1)) | (pl.col("k") == pl.col("k").shift(-1))
    return (
        pool_events.select("k", "pool_id")
        .unique(maintain_order=True)
        .with_row_index("pair")
        .with_columns(same_loan.fill_null(False).alias("shared"))
    )


def _effective_pool_events(pool_events: pl.LazyFrame, pairs: pl.LazyFrame) -> pl.LazyFrame:
    """Events that change a membership, keyed (pair, day), with the addition in force.

    Repeated additions, and removals of a loan not in the pool, change nothing.
    """
    first_of_pair = pl.col("pair") != pl.col("pair").shift(1).fill_null(-1)
    previous_added = pl.when(first_of_pair).then(None).otherwise(pl.col("added").shift(1))
    changes = pl.when(pl.col("added")).then(previous_added.is_null() | ~previous_added)
    return (
        pool_events.join(pairs.select("k", "pool_id", "pair"), on=["k", "pool_id"], how="inner")
        .sort("pair", "day", ~pl.col("added"), maintain_order=True)
        .filter(changes.otherwise(previous_added.fill_null(False)))
        # Effective events alternate, so a removal's addition is the event before it.
        .select(
            (_pair_key(pl.col("pair")) + pl.col("day")).alias("key"),
            pl.col("pair").alias("event_pair"),
            pl.col("day").alias("event_day"),
            "added",
            pl.when(pl.col("added"))
            .then(pl.col("day"))
            .otherwise(pl.col("day").shift(1))
            .alias("added_day"),
        )
    )


def _pair_key(pair: pl.Expr) -> pl.Expr:
    return pair.cast(pl.Int64) * (1 << 32)


def _pool_candidates(
    grid: pl.LazyFrame, pairs: pl.LazyFrame, effective: pl.LazyFrame
) -> pl.LazyFrame:
    """Per grid row and pool of its loan: the latest effective event on or before the date.

    Only rows in the pool then, or removed from it within the period, are kept.
    """
    candidates = (
        pairs.join(
            grid.select("k", pl.col("key").alias("grid_key"), "as_of", "previous_as_of"),
            on="k",
            how="inner",
            maintain_order="left_right",
        )
        # Pairs in (loan, pool) order, each loan's dates in order: sorted by (pair, date).
        .with_columns((_pair_key(pl.col("pair")) + pl.col("as_of")).alias("key"))
        .join_asof(effective, on="key", check_sortedness=False)
        # Before a pair's first event the match is another pair's last one.
        .filter(pl.col("event_pair") == pl.col("pair"))
    )
    removed = ~pl.col("added") & (
        pl.col("previous_as_of").is_null() | (pl.col("event_day") > pl.col("previous_as_of"))
    )
    return candidates.with_columns(removed.alias("removed")).filter(
        pl.col("added") | pl.col("removed")
    )


def _one_pool_per_row(candidates: pl.LazyFrame) -> pl.LazyFrame:
    """One pool per grid row: a removal first, then the latest event, then the lower pool_id.

    Only loans with events in several pools can have more than one candidate.
    """
    shared = candidates.filter(pl.col("shared"))
    chosen = shared.sort(
        ["grid_key", "removed", "event_day", "pool_id"], descending=[False, True, True, False]
    ).unique(subset="grid_key", keep="first", maintain_order=True)
    # A loan in one pool has its candidates in (loan, date) order already.
    return candidates.filter(~pl.col("shared")).merge_sorted(chosen, key="grid_key")


def _bucket(dpd: pl.Expr) -> pl.Expr:
    """The position of the DPD bucket in ``schema.DPD_BUCKETS`` (named in :func:`_output`)."""
    # Bucket i holds DPD in (bound[i-1], bound[i]]; beyond the last bound is 180+.
    bounds = (0, 30, 60, 90, 120, 150, 180)
    return pl.sum_horizontal(*((dpd > b).cast(pl.UInt8) for b in bounds))


def _status(name: str) -> pl.Expr:
    """The position of a status in ``schema.LOAN_STATUSES`` (named in :func:`_output`)."""
    return pl.lit(schema.LOAN_STATUSES.index(name), dtype=pl.UInt8)


def _month_number(day: pl.Expr) -> pl.Expr:
    as_date = day.cast(pl.Date)
    return as_date.dt.year().cast(pl.Int32) * 12 + as_date.dt.month().cast(pl.Int32)


def _validate(dates: Sequence[date], state: EngineState | None, base: date | None) -> None:
    if state is not None and dates[0] <= state.as_of:
        raise ValueError(f"as-of dates must follow the state's date {state.as_of}")
    allowed = set(dates) | ({state.base} if state is not None else set())
    if base is not None and base not in allowed:
        raise ValueError(f"base {base} is neither an as-of date nor the state's base")


def run_engine(
    loans: pl.LazyFrame,
    schedules: pl.LazyFrame,
    repayments: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    as_of_dates: Sequence[date],
    *,
    state: EngineState | None = None,
    base: date | None = None,
    rules: PerformanceRules = PerformanceRules(),
    rules_by_pool: Mapping[str, PerformanceRules] | None = None,
) -> EngineRun:
    """Snapshot every loan at every as-of date and return the state after the last.

    Flows are those in ``(previous as-of, as-of]``. Without a state the first
    as-of date's period starts at origination; with one it starts after the
    state's base date. A loan appears from the first as-of date on or after
    its origination; once repaid (``prepaid``/``matured``) it appears in that
    period and afterwards only in a period with cash or a pool event (a late
    interest payment, a reversal); defaulted and charged-off loans keep
    appearing.

    Args:
        loans: ``schema.LOANS`` rows (``loan_id``, ``origination_date`` and
            ``principal`` are used).
        schedules: ``schema.SCHEDULES`` rows of those loans.
        repayments: ``schema.REPAYMENTS`` rows; rows of unknown loans, rows
            dated after the last as-of date and, for loans in ``state``, rows
            dated on or before its date are ignored.
        pool_assets: ``schema.POOL_ASSETS`` rows (all of them: membership at a
            date looks at the whole history).
        as_of_dates: Snapshot dates (sorted and de-duplicated here); with a
            state, all after its date.
        state: Where a previous run stopped; loans missing from it start from
            nothing.
        base: The as-of date (or the state's base) whose totals the returned
            state keeps as its base; None keeps none.
        rules: Thresholds before a loan joins a pool, and for pools missing
            from ``rules_by_pool``.
        rules_by_pool: Thresholds per pool, in force from the day a loan is
            added to the pool.

    Returns:
        ``schema.LOAN_SNAPSHOTS`` rows sorted by ``as_of_date``, ``loan_id``,
        and the state after the last as-of date.

    Raises:
        ValueError: If no as-of date is given, a date is not after the
            state's date, or ``base`` is not one of the allowed dates.
    """
    dates = sorted(set(as_of_dates))
    if not dates:
        raise ValueError("at least one as-of date is needed")
    _validate(dates, state, base)
    if "product" in loans.collect_schema().names():
        # Revolving accounts have no schedule: balances and DPD come from the servicer's tape.
        loans = loans.filter(~pl.col("product").is_in(schema.UNSCHEDULED_PRODUCTS).fill_null(False))
    last_day = _epoch_day(dates[-1])
    book = _materialise(_loan_book(loans, state, rules))
    pool_events = _materialise(_pool_events(book, pool_assets))
    book = _materialise(_with_advance_days(book, pool_events, rules, rules_by_pool))
    schedule = _materialise(_schedule(book, schedules))
    due_by_day = _materialise(_due_by_day(book, schedule))
    events = _events(book, due_by_day, repayments, last_day)
    changes = _rule_changes(book, pool_events, rules, rules_by_pool, last_day)
    days, loan_days = _cash_days(book, schedule, events, changes)
    days = _materialise(days)
    del events
    carried = _base_columns() if state is not None else ()
    first_previous = state.base if state is not None else None
    grid = _materialise(
        _grid(book, loan_days, schedule, dates, first_previous=first_previous, carried=carried)
    )
    membership = _materialise(_pool_membership(book, grid, pool_events))
    rows = _snapshot_rows(book, grid, days, due_by_day, membership, carried=bool(carried))
    # Every caller reads the snapshots: computed here, once, by the in-memory engine.
    snapshots = _output(_collect(book), rows).lazy()
    at_base = None
    if base is not None and (state is None or base != state.base):
        at_base = _base_rows(grid, days, membership, _epoch_day(base))
    new_state = _state_after(
        book,
        days,
        loan_days,
        _pool_event_totals(book, days, pool_events, base=base, last_day=last_day),
        at_base=at_base,
        base=base,
        last_day=last_day,
    )
    return EngineRun(snapshots, EngineState(as_of=dates[-1], base=base, loans=new_state))


def loan_snapshots(
    loans: pl.LazyFrame,
    schedules: pl.LazyFrame,
    repayments: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    as_of_dates: Sequence[date],
    *,
    rules: PerformanceRules = PerformanceRules(),
    rules_by_pool: Mapping[str, PerformanceRules] | None = None,
) -> pl.LazyFrame:
    """Snapshot every loan at every as-of date, from nothing (see :func:`run_engine`).

    Args:
        loans: ``schema.LOANS`` rows.
        schedules: ``schema.SCHEDULES`` rows of those loans.
        repayments: ``schema.REPAYMENTS`` rows.
        pool_assets: ``schema.POOL_ASSETS`` rows.
        as_of_dates: Snapshot dates (sorted and de-duplicated here).
        rules: Thresholds outside pools with their own.
        rules_by_pool: Thresholds per pool.

    Returns:
        ``schema.LOAN_SNAPSHOTS`` columns, sorted by ``as_of_date``, ``loan_id``.
    """
    if not as_of_dates:
        return pl.LazyFrame(schema=schema.LOAN_SNAPSHOTS)
    run = run_engine(
        loans,
        schedules,
        repayments,
        pool_assets,
        as_of_dates,
        rules=rules,
        rules_by_pool=rules_by_pool,
    )
    return run.snapshots


def _grid(
    book: pl.LazyFrame,
    loan_days: pl.LazyFrame,
    schedule: pl.LazyFrame,
    dates: Sequence[date],
    *,
    first_previous: date | None,
    carried: Sequence[str],
) -> pl.LazyFrame:
    """Every (loan, as-of date) from the loan's origination on, in (loan, date) order.

    Each row carries the loan's terms (``instalments``, ``final_due``), its
    default and charge-off days, the previous as-of date (``first_previous``
    before the first) and the ``carried`` base totals of the state.
    """
    terms = schedule.group_by("k").agg(
        pl.len().cast(pl.Int32).alias("instalments"), pl.col("due").max().alias("final_due")
    )
    periods = pl.LazyFrame(
        {"as_of": dates, "previous_as_of": [first_previous, *dates[:-1]]},
        schema={"as_of": pl.Date, "previous_as_of": pl.Date},
    ).select(
        _day("as_of"), _day("previous_as_of"), _month_number(pl.col("as_of")).alias("as_of_month")
    )
    # The book is in loan order and the dates are sorted: the product is in
    # (loan, date) order by construction.
    return (
        book.select(
            "k",
            "origination",
            _month_number(pl.col("origination")).alias("origination_month"),
            "principal",
            "advance_days",
            *carried,
        )
        .join(loan_days, on="k", how="left", maintain_order="left")
        .join(terms, on="k", how="left", maintain_order="left")
        .join(periods, how="cross", maintain_order="left_right")
        .filter(pl.col("as_of") >= pl.col("origination"))
        .with_columns(_day_key(pl.col("as_of")).alias("key"))
        .set_sorted("key")
    )


def _base_columns() -> tuple[str, ...]:
    return ("b_paid", *(f"b_{c}" for c in _BASE_FLOWS), "b_member_pool")


def _snapshot_rows(
    book: pl.LazyFrame,
    grid: pl.LazyFrame,
    days: pl.LazyFrame,
    due_by_day: pl.LazyFrame,
    membership: pl.LazyFrame,
    *,
    carried: bool,
) -> pl.LazyFrame:
    """Every grid row (loan, as-of date) with its snapshot columns, and ``shown``.

    ``membership`` is the grid's :func:`_pool_membership`. With ``carried``
    the grid holds the state's base totals (``b_*``), from which each loan's
    first row continues; without, a first row starts from nothing.
    """
    rows = _at_each_date(grid, days, due_by_day, membership)
    rows = _period_flows(rows, carried=carried)
    # Computed once: the rows with a pool day are taken from them apart.
    rows = _materialise(_with_pool_days(rows, _entered_pool()))
    return _shown(_terms_and_status(_pool_flows(rows, book, days)))


def _at_each_date(
    grid: pl.LazyFrame, days: pl.LazyFrame, due_by_day: pl.LazyFrame, membership: pl.LazyFrame
) -> pl.LazyFrame:
    """Grid rows with the loan's end-of-day totals, instalments due and pool at the date."""
    rows = _asof(grid, days.select("key", *_SNAPSHOT_DAY_COLUMNS), on="key")
    rows = _asof(rows, due_by_day.select("key", "instalments_due"), on="key")
    return _sorted_join(rows, membership)


def _removed() -> pl.Expr:
    return pl.col("removed").fill_null(False)


def _defaulted() -> pl.Expr:
    """Defaulted on or before the as-of date."""
    return pl.col("default_day").is_not_null() & (pl.col("default_day") <= pl.col("as_of"))


def _entered_pool() -> pl.Expr:
    """In a pool at the date, and not in that pool at the previous date."""
    previous_member = pl.col("previous_member")
    return pl.col("pool_id").is_not_null() & (
        previous_member.is_null() | (previous_member != pl.col("pool_id"))
    )


def _period_flows(rows: pl.LazyFrame, *, carried: bool) -> pl.LazyFrame:
    """Opening and closing principal, each flow since the previous date, DPD and pools.

    ``member_pool`` is the pool the loan continues in after the date (none
    once removed) and ``previous_member`` that of the previous date.
    """

    def previous(column: str, base: str) -> pl.Expr:
        # A loan's first row in this run continues from the state's base.
        if carried:
            start = pl.col(base)
        elif base == "b_member_pool":
            start = pl.lit(None, dtype=pl.String)
        else:
            start = pl.lit(0, dtype=pl.Int64)
        return pl.when(_FIRST).then(start).otherwise(pl.col(column).shift(1))

    t = pl.col("as_of")
    overdue = pl.col("oldest_unpaid").is_not_null() & (pl.col("oldest_unpaid") <= t)
    dpd = pl.when(~pl.col("repaid") & overdue).then(t - pl.col("oldest_unpaid")).otherwise(0)
    return rows.with_columns(
        pl.when(_removed()).then(None).otherwise(pl.col("pool_id")).alias("member_pool"),
        (pl.col("principal") - pl.col("cum_paid")).alias("closing_principal"),
        (pl.col("principal") - previous("cum_paid", "b_paid")).alias("opening_principal"),
        *((pl.col(f"cum_{c}") - previous(f"cum_{c}", f"b_{c}")).alias(c) for c in _BASE_FLOWS),
        dpd.cast(pl.Int32).alias("dpd"),
    ).with_columns(previous("member_pool", "b_member_pool").alias("previous_member"))


def _pool_flows(rows: pl.LazyFrame, book: pl.LazyFrame, days: pl.LazyFrame) -> pl.LazyFrame:
    """Each flow's part outside the pool, and the purchased and removed principal.

    The loan's flows while in the pool run from the end of its purchase day
    (or the period start) to the end of its removal day (or the period end).
    So only a row with a purchase or removal day inside its period has a part
    outside; those rows are computed apart, with the loan's totals on those
    days (``s_*``, ``e_*``), and every other row's parts outside are 0.
    """
    from_start = pl.col("pool_start_day").is_not_null()
    to_end = pl.col("pool_end_day").is_not_null()

    def in_pool(c: str) -> pl.Expr:
        start = pl.when(from_start).then(pl.col(f"s_{c}")).otherwise(pl.col(f"cum_{c}") - pl.col(c))
        end = pl.when(to_end).then(pl.col(f"e_{c}")).otherwise(pl.col(f"cum_{c}"))
        return end - start

    with_days = rows.filter(from_start | to_end)
    with_days = _totals_on(with_days, book, days, "pool_start_day", "s_")
    with_days = _totals_on(with_days, book, days, "pool_end_day", "e_")
    outside = with_days.select(
        "key",
        *((pl.col(c) - in_pool(c)).alias(f"outside_{c}") for c in _BASE_FLOWS),
        "s_paid",
        "e_paid",
    )
    # A loan already defaulted at the period start was never performing in the pool.
    defaulted_before_period = (pl.col("default_day") <= pl.col("previous_as_of")).fill_null(False)
    joined_pool = _entered_pool() & ~defaulted_before_period
    return _sorted_join(rows, outside).with_columns(
        *(pl.col(f"outside_{c}").fill_null(0) for c in _BASE_FLOWS),
        # A purchase takes effect on its day: the balance at the end of it.
        pl.when(joined_pool & from_start)
        .then(pl.col("principal") - pl.col("s_paid"))
        .when(joined_pool)
        .then(pl.col("opening_principal"))
        .otherwise(0)
        .alias("purchased_principal"),
        # A removal takes effect on its day; a loan that defaulted by then
        # had already left the performing pool.
        pl.when(_removed() & to_end)
        .then(pl.col("principal") - pl.col("e_paid"))
        .otherwise(0)
        .alias("removed_principal"),
    )


def _terms_and_status(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Servicer status, DPD bucket, defaulted principal (and its part outside the pool),
    months on book and remaining term."""
    t = pl.col("as_of")
    charged_off = pl.col("charge_off_day").is_not_null() & (pl.col("charge_off_day") <= t)
    repaid = pl.col("repaid")
    matured = repaid & (pl.col("zero_day") >= pl.col("final_due") - pl.col("advance_days"))
    status = (
        pl.when(_removed())
        .then(_status("repurchased"))
        .when(charged_off)
        .then(_status("charged_off"))
        .when(_defaulted())
        .then(_status("defaulted"))
        .when(matured)
        .then(_status("matured"))
        .when(repaid)
        .then(_status("prepaid"))
        .when(pl.col("dpd") > 0)
        .then(_status("delinquent"))
        .otherwise(_status("current"))
    )
    defaulted_principal = (
        pl.when(_defaulted()).then(pl.col("principal") - pl.col("cum_paid_performing")).otherwise(0)
    )
    # A default after the removal day happened once the loan had left its pool
    # performing. (A loan defaulted by its purchase day has no pool start day: it
    # counts from the period start, so its default is the pool's.)
    defaulted_outside = (pl.col("default_day") > pl.col("pool_end_day")).fill_null(False)
    return rows.with_columns(
        status.alias("status"),
        _bucket(pl.col("dpd")).alias("bucket"),
        defaulted_principal.alias("defaulted_principal"),
        pl.when(defaulted_outside)
        .then(defaulted_principal)
        .otherwise(0)
        .alias("outside_defaulted_principal"),
        pl.when(_defaulted()).then(pl.col("default_day")).alias("default_date"),
        (pl.col("as_of_month") - pl.col("origination_month")).alias("months_on_book"),
        pl.when(repaid)
        .then(0)
        .otherwise(pl.col("instalments").fill_null(0) - pl.col("instalments_due"))
        .alias("remaining_term"),
    )


def _shown(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``shown``: a row with principal, a flow, a pool event, or a default to report."""
    return rows.with_columns(
        (
            (pl.col("opening_principal") > 0)
            | (pl.col("closing_principal") > 0)
            | _defaulted()
            | _removed()
            | pl.any_horizontal(pl.col(*_BASE_FLOWS, "purchased_principal") != 0)
        ).alias("shown"),
    )


def _with_pool_days(rows: pl.LazyFrame, entered: pl.Expr) -> pl.LazyFrame:
    """``pool_start_day`` and ``pool_end_day``: a pool event inside the row's period.

    ``pool_start_day`` is the purchase day of a loan that entered its pool
    after the previous as-of date, not defaulted by then; ``pool_end_day`` the
    removal day of a loan not defaulted by then. Both are null otherwise (the
    loan is in the pool from the period start, or to its end).
    """
    added = pl.col("added_day")
    after_start = pl.col("previous_as_of").is_null() | (added > pl.col("previous_as_of"))
    defaulted_by = (pl.col("default_day") <= added).fill_null(False)
    removed_day = pl.col("removed_day")
    removed_performing = removed_day.is_not_null() & ~(
        (pl.col("default_day") <= removed_day).fill_null(False)
    )
    return rows.with_columns(
        pl.when(entered & after_start & ~defaulted_by).then(added).alias("pool_start_day"),
        pl.when(pl.col("removed").fill_null(False) & removed_performing)
        .then(removed_day)
        .alias("pool_end_day"),
    )


def _totals_on(
    rows: pl.LazyFrame, book: pl.LazyFrame, days: pl.LazyFrame, day: str, prefix: str
) -> pl.LazyFrame:
    """Add the loan's end-of-day totals on ``day`` (``prefix`` + flow name), where set."""
    wanted = rows.filter(pl.col(day).is_not_null()).select(
        "k", pl.col("key").alias("row_key"), pl.col(day).alias("day")
    )
    found = _day_totals(wanted, book, days).select(
        pl.col("row_key").alias("key"), *(pl.col(c).alias(prefix + c) for c in _BOUND_NAMES)
    )
    return _sorted_join(rows, found.sort("key"))


def _day_totals(wanted: pl.LazyFrame, book: pl.LazyFrame, days: pl.LazyFrame) -> pl.LazyFrame:
    """``wanted`` (``k``, ``day``, ...) with the loan's totals at the end of ``day``.

    A day before the loan's opening day (a pool event between the state's base
    and its date) reads the totals the state kept for that event's day.
    """
    book_days = book.select(
        "k",
        "open_day",
        *(f"t_{e}_{c}" for e in _POOL_EVENT_TOTALS for c in ("day", *_BOUND_NAMES)),
    )
    found = _asof(
        wanted.join(book_days, on="k", how="left")
        .with_columns(_day_key(pl.max_horizontal("day", "open_day")).alias("key"))
        .sort("key"),
        days.select("key", *_BOUND_TOTALS),
        on="key",
    )
    before_open = pl.col("day") < pl.col("open_day")

    def total(c: str) -> pl.Expr:
        kept = pl.lit(None, dtype=pl.Int64)
        for e in _POOL_EVENT_TOTALS:
            kept = (
                pl.when(pl.col("day") == pl.col(f"t_{e}_day"))
                .then(pl.col(f"t_{e}_{c}"))
                .otherwise(kept)
            )
        return pl.when(before_open).then(kept).otherwise(pl.col(f"cum_{c}")).alias(c)

    return found.with_columns(total(c) for c in _BOUND_NAMES)


_SNAPSHOT_DAY_COLUMNS: Final = (
    "repaid",
    "oldest_unpaid",
    "cum_paid",
    *(f"cum_{c}" for c in _BASE_FLOWS),
    "cum_paid_performing",
    "zero_day",
)
"""Day-row totals a snapshot reads (the rest serve the state)."""


def _base_rows(
    grid: pl.LazyFrame, days: pl.LazyFrame, membership: pl.LazyFrame, base_day: int
) -> pl.LazyFrame:
    """Each loan's totals and continuing pool at the base date (a grid date).

    ``membership`` is the grid's :func:`_pool_membership`.
    """
    at = grid.filter(pl.col("as_of") == base_day).select("k", "key", "as_of", "previous_as_of")
    at = _asof(at, days.select("key", "cum_paid", *(f"cum_{c}" for c in _BASE_FLOWS)), "key")
    removed = pl.col("removed").fill_null(False)
    return _sorted_join(at, membership).select(
        "k",
        pl.col("cum_paid").alias("base_principal_paid"),
        *(pl.col(f"cum_{c}").alias(f"base_{_STATE_FLOWS[c]}") for c in _BASE_FLOWS),
        pl.when(removed).then(None).otherwise(pl.col("pool_id")).alias("base_pool_id"),
    )


def _output(book: pl.DataFrame, rows: pl.LazyFrame) -> pl.DataFrame:
    """The shown rows as ``schema.LOAN_SNAPSHOTS``, in (as-of date, loan_id) order.

    Loans are numbered in loan_id order and the grid is in (loan, date)
    order, so the output order is a stable sort of the shown rows on the
    date alone; the output columns are gathered into it once, and the loan
    ids, buckets and statuses named from their positions.
    """
    t = pl.col("as_of")
    columns = _collect(
        rows.select(
            "shown",
            t.cast(pl.Date).alias("as_of_date"),
            "k",
            "pool_id",
            "opening_principal",
            "closing_principal",
            "dpd",
            "bucket",
            "status",
            pl.col("default_date").cast(pl.Date),
            "defaulted_principal",
            "outside_defaulted_principal",
            "purchased_principal",
            "removed_principal",
            "months_on_book",
            "remaining_term",
            # Repayments carry no drawings: only a revolving account's tape has them.
            pl.lit(0, dtype=pl.Int64).alias("new_drawings"),
            *(pl.col(flow).alias(name) for flow, name in _STATE_FLOWS.items()),
            *(
                pl.col(f"outside_{flow}").alias(f"outside_{name}")
                for flow, name in _STATE_FLOWS.items()
            ),
        )
    )
    shown = pl.col("shown")
    order = columns.select(
        pl.int_range(pl.len(), dtype=pl.UInt32)
        .filter(shown)
        .sort_by(pl.col("as_of_date").filter(shown), maintain_order=True)
    ).to_series()
    ordered = columns.drop("shown")[order]
    names = {
        "loan_id": book.get_column("loan_id").gather(ordered.get_column("k")),
        "bucket": pl.Series(schema.DPD_BUCKETS).gather(ordered.get_column("bucket")),
        "status": pl.Series(schema.LOAN_STATUSES).gather(ordered.get_column("status")),
    }
    return (
        ordered.with_columns(series.alias(name) for name, series in names.items())
        .select(list(schema.LOAN_SNAPSHOTS))
        .cast(schema.LOAN_SNAPSHOTS)  # type: ignore[arg-type]
    )


def _pool_event_totals(
    book: pl.LazyFrame,
    days: pl.LazyFrame,
    pool_events: pl.LazyFrame,
    *,
    base: date | None,
    last_day: int,
) -> pl.LazyFrame:
    """``ENGINE_STATE``'s ``pool_added_*``/``pool_removed_*``: totals at pool events after the base.

    The pool membership in force on ``last_day`` names the day of its
    addition and, for a removal after the base, of its removal; the next
    run's first period reads the totals at those days from here.
    """
    base_day = _epoch_day(base) if base is not None else None
    at_last = book.select(
        "k",
        _day_key(pl.lit(last_day)).alias("key"),
        pl.lit(last_day, dtype=pl.Int32).alias("as_of"),
        pl.lit(base_day, dtype=pl.Int32).alias("previous_as_of"),
    )
    membership = at_last.join(
        _pool_membership(book, at_last, pool_events), on="key", how="inner"
    ).with_columns(
        pl.when((pl.col("added_day") > base_day) if base_day is not None else pl.lit(True))
        .then(pl.col("added_day"))
        .alias("added_day")
    )
    result = book.select("k")
    for event in _POOL_EVENT_TOTALS:
        wanted = membership.filter(pl.col(f"{event}_day").is_not_null()).select(
            "k", pl.col(f"{event}_day").alias("day")
        )
        totals = _day_totals(wanted, book, days).select(
            "k",
            pl.col("day").cast(pl.Date).alias(f"pool_{event}_date"),
            *(pl.col(c).alias(f"pool_{event}_{c}") for c in _BOUND_NAMES),
        )
        result = result.join(totals, on="k", how="left", maintain_order="left")
    return result


def _state_after(
    book: pl.LazyFrame,
    days: pl.LazyFrame,
    loan_days: pl.LazyFrame,
    pool_events: pl.LazyFrame,
    *,
    at_base: pl.LazyFrame | None,
    base: date | None,
    last_day: int,
) -> pl.LazyFrame:
    """``ENGINE_STATE`` after ``last_day``: each loan's last day row and its base totals.

    ``at_base`` holds the totals at ``base`` when it is one of this run's
    dates; otherwise the base is the previous state's, carried in the book.
    """

    def known(column: str) -> pl.Expr:
        # A date beyond the last day is only a forecast: later cash may change it.
        return pl.when(pl.col(column) <= last_day).then(pl.col(column)).cast(pl.Date)

    running = (
        days.filter(_LAST)
        .join(loan_days, on="k", how="left", maintain_order="left")
        .select(
            "k",
            pl.col("cum_raw").alias("raw_principal_paid"),
            pl.col("cum_cash").alias("cash_paid"),
            pl.col("cum_u").alias("unscheduled_ahead"),
            *(pl.col(f"cum_{c}").alias(_STATE_FLOWS[c]) for c in _BASE_FLOWS[:4]),
            pl.col("cum_paid_performing").alias("performing_principal_paid"),
            pl.col("cum_recoveries").alias("recoveries"),
            known("default_day").alias("default_date"),
            known("charge_off_day").alias("charge_off_date"),
            pl.when(pl.col("repaid")).then(pl.col("zero_day")).cast(pl.Date).alias("zero_date"),
            "default_dpd",
            "charge_off_dpd",
            pl.col("tolerance").alias("tolerance_fen"),
        )
    )
    base_names = {
        "b_paid": "base_principal_paid",
        **{f"b_{c}": f"base_{_STATE_FLOWS[c]}" for c in _BASE_FLOWS},
        "b_member_pool": "base_pool_id",
    }
    if base is None:
        based = book.select(
            "k",
            *(pl.lit(0, dtype=pl.Int64).alias(v) for v in list(base_names.values())[:-1]),
            pl.lit(None, dtype=pl.String).alias("base_pool_id"),
        )
    elif at_base is None:
        based = book.select("k", *(pl.col(c).alias(v) for c, v in base_names.items()))
    else:
        based = book.select("k").join(at_base, on="k", how="left", maintain_order="left")
        based = based.with_columns(pl.col(v).fill_null(0) for v in list(base_names.values())[:-1])
    return (
        book.select("k", "loan_id", pl.col("origination").cast(pl.Date).alias("origination_date"))
        .join(running, on="k", how="left", maintain_order="left")
        .join(based, on="k", how="left", maintain_order="left")
        .join(pool_events, on="k", how="left", maintain_order="left")
        .select(list(ENGINE_STATE))
        .cast(ENGINE_STATE)  # type: ignore[arg-type]
    )
