"""Loan performance engine: loan snapshots at a list of as-of dates.

Conventions are the team's loan-mechanics rules (DOMAIN.md "Loan mechanics"):

- Cash applied to instalments is ``principal_paid + interest_paid``; a
  ``reversal`` row is the same amounts with the sign flipped on its value date.
- DPD at ``t`` is ``t`` minus the due date of the oldest instalment whose
  cumulative amount due exceeds the cumulative cash by more than the tolerance,
  or 0 when the principal is fully repaid. Because cumulative amounts due only
  grow, that instalment is the first one whose cumulative amount due is at
  least ``cash + tolerance + 1``: an as-of join on amounts, not a loop.
- Between two cash dates the cash is constant, so the oldest unpaid instalment
  is fixed and DPD grows one a day. The first day DPD exceeds a threshold ``X``
  inside such an interval is ``max(interval start, due + X + 1)`` when that is
  before the next cash date; the default (charge-off) date is the earliest of
  these over the loan's intervals. Reversals are exact: an interval that starts
  on a reversal's value date has the lower cash from that day on.
- Principal paid beyond the loan's principal is capped (the cumulative
  principal is clipped to ``[0, principal]``) and reported by
  :func:`overpayments`, never absorbed into the balance.
- Per cash event, unscheduled principal is the growth of the cumulative
  principal's excess over the cumulative principal due by the value date:
  ``max(after - due, 0) - max(before - due, 0)``. For a payment this is the
  rules' ``clamp(after - max(before, due), 0, paid)``; for a reversal it takes
  back the unscheduled part first.
- Cash on or before the default date is performing cash (scheduled and
  unscheduled principal, interest, fees); cash after it is recovery.
- Pool membership follows ``pool_assets``: a purchase in a period counts from
  the period's start (``purchased_principal`` = opening principal), a removal
  at its end (``removed_principal`` = closing principal, status
  ``repurchased``), so the pool roll-forward closes from the snapshots alone.

Internally dates are whole days since 1970-01-01 (``Int32``) and loans are
numbered in ``loan_id`` order, so every join and sort works on integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl

from transforms import schema

_BEFORE_ANY_DAY: Final = -1_000_000
"""A day before every real date: the start of each loan's first cash interval."""


@dataclass(frozen=True)
class PerformanceRules:
    """Deal definitions that drive delinquency and default.

    Attributes:
        default_dpd: A loan defaults on the first day its DPD exceeds this.
        charge_off_dpd: A loan is charged off on the first day its DPD exceeds this.
        tolerance_fen: A shortfall of at most this many fen counts as paid.
    """

    default_dpd: int = 90
    charge_off_dpd: int = 180
    tolerance_fen: int = 100


def _day(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int32)


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


def _amount_key(amount: pl.Expr) -> pl.Expr:
    """Sort key of (loan, amount in fen) as one integer."""
    return pl.col("k").cast(pl.Int128) * (1 << 64) + amount.cast(pl.Int128)


def _materialise(frame: pl.LazyFrame) -> pl.LazyFrame:
    # Intermediate tables feed several later joins; computing each once is
    # much cheaper than letting every consumer re-run its plan.
    return frame.collect().lazy()


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


def _loan_book(
    loans: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    rules: PerformanceRules,
    rules_by_pool: Mapping[str, PerformanceRules] | None,
) -> pl.LazyFrame:
    """Loans numbered ``k`` in ``loan_id`` order with the thresholds that apply.

    A loan takes the rules of the pool it was last added to (latest
    ``event_date``, then ``pool_id``); other loans take ``rules``.
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
    thresholds = {
        "default_dpd": rules.default_dpd,
        "charge_off_dpd": rules.charge_off_dpd,
        "tolerance": rules.tolerance_fen,
    }
    if not rules_by_pool:
        return book.with_columns(pl.lit(v, dtype=pl.Int64).alias(c) for c, v in thresholds.items())
    pool_ids = sorted(rules_by_pool)
    by_pool = pl.LazyFrame(
        {
            "pool_id": pool_ids,
            "default_dpd": [rules_by_pool[p].default_dpd for p in pool_ids],
            "charge_off_dpd": [rules_by_pool[p].charge_off_dpd for p in pool_ids],
            "tolerance": [rules_by_pool[p].tolerance_fen for p in pool_ids],
        },
        schema={"pool_id": pl.String, **dict.fromkeys(thresholds, pl.Int64)},
    )
    last_pool = (
        pool_assets.filter(pl.col("event") == "added")
        .select(pl.col("loan_id").cast(pl.String), pl.col("pool_id").cast(pl.String), "event_date")
        .sort("event_date", "pool_id")
        .group_by("loan_id")
        .agg(pl.col("pool_id").last())
    )
    return (
        book.join(last_pool, on="loan_id", how="left")
        .join(by_pool, on="pool_id", how="left")
        .with_columns(pl.col(c).fill_null(v) for c, v in thresholds.items())
        .drop("pool_id")
        .sort("k")
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
        .join(book.select("loan_id", "k"), on="loan_id", how="inner")
        .select(pl.exclude("loan_id"))
        .sort(_day_key(pl.col("instalment_no")))
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


def _first_unpaid(book: pl.LazyFrame, schedule: pl.LazyFrame) -> pl.LazyFrame:
    """Instalments by cumulative amount due: join key ``unpaid_key`` (loan, amount).

    Instalments of zero amount are left out: they never become the oldest
    unpaid one. Each loan ends with a row beyond any amount (no unpaid
    instalment).
    """
    beyond = book.select(
        "k",
        pl.lit(1 << 62, dtype=pl.Int64).alias("cum_due"),
        pl.lit(None, dtype=pl.Int32).alias("oldest_unpaid"),
    )
    rows = schedule.filter(pl.col("amount") > 0).select(
        "k", "cum_due", pl.col("due").alias("oldest_unpaid")
    )
    return (
        pl.concat([rows, beyond])
        .with_columns(_amount_key(pl.col("cum_due")).alias("unpaid_key"))
        .sort("unpaid_key")
        .select("unpaid_key", "oldest_unpaid")
    )


def _signed_cash(repayments: pl.LazyFrame) -> pl.LazyFrame:
    sign = pl.when(pl.col("kind") == "reversal").then(-1).otherwise(1)
    return repayments.select(
        pl.col("loan_id").cast(pl.String),
        pl.col("repayment_id").cast(pl.String),
        _day("value_date").alias("day"),
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


def _cash_days(
    book: pl.LazyFrame,
    schedule: pl.LazyFrame,
    due_by_day: pl.LazyFrame,
    repayments: pl.LazyFrame,
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Per loan and cash day: the day's flows and end-of-day cumulative state.

    Each loan starts with a row on ``_BEFORE_ANY_DAY`` with nothing paid, so
    every date falls in exactly one row's interval ``[day, next_day)``. Within
    a day the split between scheduled and unscheduled principal, and the cap
    at the loan's principal, do not depend on the order of its events (both
    telescope), so events are summed per day first.

    Returns:
        The day rows, and per loan ``k`` its ``default_day`` and
        ``charge_off_day`` (null when DPD never exceeds the threshold).
    """
    per_day = (
        _signed_cash(repayments)
        .join(book.select("loan_id", "k"), on="loan_id", how="inner")
        .group_by("k", "day")
        .agg(pl.col("principal", "interest", "fees").sum())
    )
    before_any = book.select(
        "k",
        pl.lit(_BEFORE_ANY_DAY, dtype=pl.Int32).alias("day"),
        *(pl.lit(0, dtype=pl.Int64).alias(c) for c in ("principal", "interest", "fees")),
        pl.col("principal").alias("loan_principal"),
        "tolerance",
        "default_dpd",
        "charge_off_dpd",
    )
    loan_columns = ("loan_principal", "tolerance", "default_dpd", "charge_off_dpd")
    days = (
        pl.concat([before_any, per_day], how="diagonal_relaxed")
        .with_columns(_day_key(pl.col("day")).alias("key"))
        .sort("key")
        .with_columns(pl.col(*loan_columns).forward_fill())
        .with_columns(_cum_per_loan(pl.col("principal")).alias("raw_after"))
        .with_columns(
            (pl.col("raw_after") - pl.col("principal"))
            .clip(0, pl.col("loan_principal"))
            .alias("before"),
            pl.col("raw_after").clip(0, pl.col("loan_principal")).alias("cum_paid"),
            _cum_per_loan(pl.col("principal") + pl.col("interest")).alias("cum_cash"),
            _next_in_loan(pl.col("day")).alias("next_day"),
        )
    )
    days = _asof(days, due_by_day.select("key", "cum_principal_due"), on="key")
    due = pl.col("cum_principal_due")
    unscheduled = pl.max_horizontal(pl.col("cum_paid") - due, 0) - pl.max_horizontal(
        pl.col("before") - due, 0
    )
    days = _materialise(
        days.with_columns(
            (pl.col("cum_paid") - pl.col("before")).alias("paid"),
            unscheduled.alias("unsched"),
            (pl.col("cum_paid") >= pl.col("loan_principal")).alias("repaid"),
        ).with_columns((pl.col("paid") - pl.col("unsched")).alias("sched"))
    )
    # Only the two keys travel through the re-sort by amount: the result comes
    # back in day order and is attached row for row.
    oldest_unpaid = (
        days.select(
            "key",
            _amount_key(pl.col("cum_cash") + pl.col("tolerance") + 1).alias("unpaid_key"),
        )
        .sort("unpaid_key")
        .pipe(_asof, _first_unpaid(book, schedule), on="unpaid_key", strategy="forward")
        .select("key", "oldest_unpaid")
        .sort("key")
    )
    days = _materialise(pl.concat([days, oldest_unpaid.select("oldest_unpaid")], how="horizontal"))

    def first_day_over(threshold: str) -> pl.Expr:
        # DPD is constant-slope inside [day, next_day): the first day it
        # exceeds the threshold there is the later of `day` and due + X + 1.
        start = pl.max_horizontal(
            pl.col("day"), pl.col("oldest_unpaid") + pl.col(threshold).cast(pl.Int32) + 1
        )
        inside = pl.col("next_day").is_null() | (start < pl.col("next_day"))
        return pl.when(~pl.col("repaid") & pl.col("oldest_unpaid").is_not_null() & inside).then(
            start
        )

    loan_days = (
        days.select(
            "k",
            first_day_over("default_dpd").alias("default_day"),
            first_day_over("charge_off_dpd").alias("charge_off_day"),
        )
        .group_by("k")
        .agg(pl.col("default_day", "charge_off_day").min())
    )
    loan_days = _materialise(loan_days)
    days = days.join(loan_days, on="k", how="left", maintain_order="left")
    performing = pl.col("default_day").is_null() | (pl.col("day") <= pl.col("default_day"))
    reached_zero = pl.col("repaid") & ~_previous_in_loan(pl.col("repaid")).fill_null(False)
    zero_day = (
        pl.when(reached_zero)
        .then(pl.col("day"))
        .when(_FIRST)
        .then(pl.lit(_BEFORE_ANY_DAY, dtype=pl.Int32))
        .forward_fill()
    )
    return days.select(
        "key",
        "k",
        "day",
        "repaid",
        "oldest_unpaid",
        "cum_paid",
        *(
            _cum_per_loan(pl.when(performing).then(pl.col(c)).otherwise(0)).alias(f"cum_{c}")
            for c in ("sched", "unsched", "interest", "fees")
        ),
        _cum_per_loan(pl.when(performing).then(pl.col("paid")).otherwise(0)).alias(
            "cum_paid_performing"
        ),
        _cum_per_loan(
            pl.when(performing)
            .then(0)
            .otherwise(pl.col("paid") + pl.col("interest") + pl.col("fees"))
        ).alias("cum_recoveries"),
        zero_day.alias("zero_day"),
    ), loan_days


def _pool_membership(
    book: pl.LazyFrame, grid: pl.LazyFrame, pool_assets: pl.LazyFrame
) -> pl.LazyFrame:
    """The pool of each loan at each as-of date, and whether it left it in the period.

    A loan is in pool ``p`` at ``t`` when its latest effective event for ``p``
    on or before ``t`` is ``added`` (same-day events: ``added`` first); it
    also carries ``p`` for the period in which it is removed. A removal wins
    over a membership elsewhere, so a loan moving between pools is reported
    as repurchased from the old pool and as purchased by the new one in the
    next period.

    Returns:
        ``key`` (the grid's), ``pool_id``, ``removed`` for grid rows with a pool.
    """
    rank = pl.when(pl.col("event") == "added").then(0).otherwise(1).cast(pl.Int8)
    events = (
        pool_assets.select(
            pl.col("loan_id").cast(pl.String),
            pl.col("pool_id").cast(pl.String),
            _day("event_date").alias("event_day"),
            pl.col("event").cast(pl.String),
        )
        .filter(pl.col("event").is_in(schema.POOL_EVENTS))
        .join(book.select("loan_id", "k"), on="loan_id", how="inner")
        .with_columns(rank.alias("rank"))
        .sort("k", "pool_id", "event_day", "rank")
    )
    pairs = events.select("k", "pool_id").unique().sort("k", "pool_id").with_row_index("pair")
    pair_key = pl.col("pair").cast(pl.Int64) * (1 << 32)
    previous = pl.col("event").shift(1).over("pair")
    effective = (
        events.join(pairs, on=["k", "pool_id"], how="inner")
        .sort("pair", "event_day", "rank")
        # Repeated adds, and removals of a loan not in the pool, change nothing.
        .filter(
            ((pl.col("event") == "added") & (previous.is_null() | (previous != "added")))
            | ((pl.col("event") == "removed") & (previous == "added"))
        )
        .select(
            (pair_key + pl.col("event_day")).alias("key"),
            pl.col("pair").alias("event_pair"),
            "event_day",
            "event",
        )
    )
    candidates = (
        grid.select("k", pl.col("key").alias("grid_key"), "as_of", "previous_as_of")
        .join(pairs, on="k", how="inner")
        .with_columns((pair_key + pl.col("as_of")).alias("key"))
        .sort("key")
        .join_asof(effective, on="key", check_sortedness=False)
        # Before a pair's first event the match is another pair's last one.
        .filter(pl.col("event_pair") == pl.col("pair"))
    )
    removed = (pl.col("event") == "removed") & (
        pl.col("previous_as_of").is_null() | (pl.col("event_day") > pl.col("previous_as_of"))
    )
    return (
        candidates.with_columns(removed.alias("removed"))
        .filter((pl.col("event") == "added") | pl.col("removed"))
        .sort(
            ["grid_key", "removed", "event_day", "pool_id"],
            descending=[False, True, True, False],
        )
        .unique(subset="grid_key", keep="first", maintain_order=True)
        .select(pl.col("grid_key").alias("key"), "pool_id", "removed")
    )


def _bucket(dpd: pl.Expr) -> pl.Expr:
    # Bucket i holds DPD in (bound[i-1], bound[i]]; beyond the last bound is 180+.
    bounds = (0, 30, 60, 90, 120, 150, 180)
    index = pl.sum_horizontal(*((dpd > b).cast(pl.Int32) for b in bounds))
    return index.replace_strict(dict(enumerate(schema.DPD_BUCKETS)), return_dtype=pl.String)


def _month_number(day: pl.Expr) -> pl.Expr:
    as_date = day.cast(pl.Date)
    return as_date.dt.year().cast(pl.Int32) * 12 + as_date.dt.month().cast(pl.Int32)


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
    """Snapshot every loan at every as-of date.

    Flows are those in ``(previous as-of, as-of]``; the first as-of date's
    period starts at origination. A loan appears from the first as-of date on
    or after its origination; once repaid (``prepaid``/``matured``) it appears
    in that period and afterwards only in a period with cash or a pool event
    (a late interest payment, a reversal); defaulted and charged-off loans
    keep appearing.

    Args:
        loans: ``schema.LOANS`` rows (``loan_id``, ``origination_date`` and
            ``principal`` are used).
        schedules: ``schema.SCHEDULES`` rows of those loans.
        repayments: ``schema.REPAYMENTS`` rows; rows of unknown loans are ignored.
        pool_assets: ``schema.POOL_ASSETS`` rows.
        as_of_dates: Snapshot dates (sorted and de-duplicated here).
        rules: Thresholds for loans outside ``rules_by_pool``.
        rules_by_pool: Thresholds per pool; a loan uses those of the pool it
            was last added to.

    Returns:
        ``schema.LOAN_SNAPSHOTS`` columns, sorted by ``as_of_date``, ``loan_id``.
    """
    dates = sorted(set(as_of_dates))
    if not dates:
        return pl.LazyFrame(schema=schema.LOAN_SNAPSHOTS)
    book = _materialise(_loan_book(loans, pool_assets, rules, rules_by_pool))
    schedule = _materialise(_schedule(book, schedules))
    due_by_day = _materialise(_due_by_day(book, schedule))
    days, loan_days = _cash_days(book, schedule, due_by_day, repayments)
    days = _materialise(days)
    terms = schedule.group_by("k").agg(
        pl.len().cast(pl.Int32).alias("instalments"), pl.col("due").max().alias("final_due")
    )
    periods = pl.LazyFrame(
        {"as_of": dates, "previous_as_of": [None, *dates[:-1]]},
        schema={"as_of": pl.Date, "previous_as_of": pl.Date},
    ).select(_day("as_of"), _day("previous_as_of"))
    grid = (
        book.select("k", "loan_id", "origination", "principal")
        .join(loan_days, on="k", how="left")
        .join(terms, on="k", how="left")
        .join(periods, how="cross")
        .filter(pl.col("as_of") >= pl.col("origination"))
        .with_columns(_day_key(pl.col("as_of")).alias("key"))
        .sort("key")
    ).pipe(_materialise)
    state = _asof(grid, days.drop("k"), on="key")
    state = _asof(state, due_by_day.select("key", "instalments_due"), on="key")
    state = state.join(
        _pool_membership(book, grid, pool_assets),
        on="key",
        how="left",
        maintain_order="left",
    )

    def previous(column: str, default: int | bool | None) -> pl.Expr:
        shifted = _previous_in_loan(pl.col(column))
        return shifted if default is None else shifted.fill_null(default)

    t = pl.col("as_of")
    removed = pl.col("removed").fill_null(False)
    defaulted = pl.col("default_day").is_not_null() & (pl.col("default_day") <= t)
    charged_off = pl.col("charge_off_day").is_not_null() & (pl.col("charge_off_day") <= t)
    defaulted_before_period = (pl.col("default_day") <= pl.col("previous_as_of")).fill_null(False)
    overdue = pl.col("oldest_unpaid").is_not_null() & (pl.col("oldest_unpaid") <= t)
    dpd = pl.when(~pl.col("repaid") & overdue).then(t - pl.col("oldest_unpaid")).otherwise(0)
    status = (
        pl.when(removed)
        .then(pl.lit("repurchased"))
        .when(charged_off)
        .then(pl.lit("charged_off"))
        .when(defaulted)
        .then(pl.lit("defaulted"))
        .when(pl.col("repaid") & (pl.col("zero_day") >= pl.col("final_due")))
        .then(pl.lit("matured"))
        .when(pl.col("repaid"))
        .then(pl.lit("prepaid"))
        .when(pl.col("dpd") > 0)
        .then(pl.lit("delinquent"))
        .otherwise(pl.lit("current"))
    )
    # A purchase counts from the period start, so the loan enters the pool at
    # its opening principal; a loan already defaulted was never performing there.
    joined_pool = (
        pl.col("pool_id").is_not_null()
        & (
            pl.col("previous_pool").is_null()
            | (pl.col("previous_pool") != pl.col("pool_id"))
            | pl.col("previous_removed")
        )
        & ~defaulted_before_period
    )
    flows = ("sched", "unsched", "interest", "fees", "recoveries")
    snapshots = (
        state.with_columns(
            (pl.col("principal") - pl.col("cum_paid")).alias("closing_principal"),
            (pl.col("principal") - previous("cum_paid", 0)).alias("opening_principal"),
            *((pl.col(f"cum_{c}") - previous(f"cum_{c}", 0)).alias(c) for c in flows),
            dpd.cast(pl.Int32).alias("dpd"),
            previous("pool_id", None).alias("previous_pool"),
            previous("removed", False).alias("previous_removed"),
        )
        .with_columns(
            status.alias("status"),
            _bucket(pl.col("dpd")).alias("bucket"),
            pl.when(joined_pool)
            .then(pl.col("opening_principal"))
            .otherwise(0)
            .alias("purchased_principal"),
            # A defaulted loan has already left the performing pool.
            pl.when(removed & ~defaulted)
            .then(pl.col("closing_principal"))
            .otherwise(0)
            .alias("removed_principal"),
            pl.when(defaulted)
            .then(pl.col("principal") - pl.col("cum_paid_performing"))
            .otherwise(0)
            .alias("defaulted_principal"),
            pl.when(defaulted).then(pl.col("default_day")).alias("default_date"),
            (_month_number(t) - _month_number(pl.col("origination"))).alias("months_on_book"),
            pl.when(pl.col("repaid"))
            .then(0)
            .otherwise(pl.col("instalments").fill_null(0) - pl.col("instalments_due"))
            .alias("remaining_term"),
        )
        .filter(
            (pl.col("opening_principal") > 0)
            | (pl.col("closing_principal") > 0)
            | defaulted
            | removed
            | pl.any_horizontal(pl.col(*flows, "purchased_principal") != 0)
        )
    )
    # Loans are numbered in loan_id order, so (as_of, k) is the output order.
    output_order = t.cast(pl.Int64) * (1 << 32) + pl.col("k").cast(pl.Int64)
    return (
        snapshots.sort(output_order)
        .select(
            t.cast(pl.Date).alias("as_of_date"),
            "loan_id",
            "pool_id",
            "opening_principal",
            "closing_principal",
            pl.col("sched").alias("scheduled_principal_paid"),
            pl.col("unsched").alias("unscheduled_principal_paid"),
            pl.col("interest").alias("interest_paid"),
            pl.col("fees").alias("fees_paid"),
            "dpd",
            "bucket",
            "status",
            pl.col("default_date").cast(pl.Date),
            "defaulted_principal",
            "recoveries",
            "purchased_principal",
            "removed_principal",
            "months_on_book",
            "remaining_term",
        )
        .cast(schema.LOAN_SNAPSHOTS)  # type: ignore[arg-type]
    )
