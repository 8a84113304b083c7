"""ABS pool metrics per pool and collection period, from loan snapshots.

Every function here reads a ``schema.LOAN_SNAPSHOTS`` frame and returns one
row per pool and period end (or per pool, period end and bucket), sorted by
those keys. A period is a calendar month: ``period_ends`` are month-ends, and
the flows of a period are those carried by the snapshot rows at the period
end (flows since the previous as-of date in the snapshots, which is also the
as-of date that gives the opening balance).

Conventions (DOMAIN.md and the team rules):

- A loan belongs to pool ``p`` for a period when its snapshot row at the
  period end has ``pool_id == p``; the performing pool is the loans with status
  ``current`` or ``delinquent``.
- Roll-forward: ``opening - scheduled - unscheduled - defaulted - removed
  + purchased + new drawings = closing``, exact to the fen. New drawings
  (新增用款) are what revolving accounts already in the pool drew in the period
  (``new_drawings``); they are never purchases, so purchase counts and
  principal, and the purchased loans' characteristics, leave them out. ``defaulted`` is the
  ``defaulted_principal`` of loans whose ``default_date`` falls in the period
  (so a loan defaulted earlier and still reported for its recoveries is not
  counted again), unless the loan was removed before it defaulted: a default
  after the removal day is the loan's, not the pool's
  (``outside_defaulted_principal``, even when the loan left with nothing owed
  and a reversal made it owe again), so a pool default is one whose
  ``defaulted_principal - outside_defaulted_principal`` is positive, and that
  is its amount in the roll-forward, the MDR cohort, the cumulative defaults
  and the waterfall's top-up.
  ``removed`` is the ``removed_principal`` of the period (the engine sets it
  only for a loan not defaulted by its removal day: a defaulted loan has
  already left the performing pool).
- Purchases and removals take effect on their event date: purchased and
  removed principal are the loan's balance that day, and the flows are those
  of the days in the pool (:func:`pool_cash`).
- Period rates follow the opening cohort (DOMAIN.md "Conventions"): the
  loans performing in the pool at the period start. ``SMM`` = the cohort's
  unscheduled principal / (its opening balance - its scheduled principal);
  ``MDR`` = the cohort's principal that defaulted in the period / its opening
  balance. Loans bought during the period are in neither part of either
  rate. The payment rate is every collection from obligors in the period
  (principal, interest and fees of the whole pool; recoveries excluded) /
  the opening pool balance -- never opening + purchases.
- Ratios whose denominator is zero are null, never 0 or infinity: a share of
  an empty pool, or a prepayment rate of a pool with nothing left to prepay,
  is undefined rather than zero.
- Money stays ``Int64`` fen; ratios are ``Float64``. The rate-weighted sum for
  WAC is accumulated in ``Int128`` so that it is exact (and order-independent)
  for pools of millions of loans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Final, Literal

import polars as pl

from transforms import schema
from transforms.schedules import rate_ppm, round_half_up_div

MONTHS_PER_YEAR: Final = 12

M_NOTATION: Final[Mapping[str, str]] = {
    "1-30": "M1",
    "31-60": "M2",
    "61-90": "M3",
    "91-120": "M3+",
    "121-150": "M3+",
    "151-180": "M3+",
    "180+": "M3+",
}
"""Delinquency bucket to the M-notation of Chinese reports (M1 = 1-30 DPD,
M2 = 31-60, M3 = 61-90, M3+ = over 90). ``current`` has no M label."""

M_BUCKETS: Final = ("M1", "M2", "M3", "M3+")
"""M-notation labels in order."""

CumulativeDenominator = Literal["initial", "initial_plus_purchases"]
"""Denominator of cumulative default and net loss rates (deal ``definitions``)."""

ROLLFORWARD_MONEY: Final = (
    "opening_balance",
    "scheduled_principal",
    "unscheduled_principal",
    "defaulted_principal",
    "removed_principal",
    "purchased_principal",
    "new_drawings",
    "closing_balance",
)

COHORT_MONEY: Final = (
    "cohort_opening_balance",
    "cohort_scheduled_principal",
    "cohort_unscheduled_principal",
    "cohort_defaulted_principal",
)
"""Opening-cohort amounts (loans performing in the pool at the period start)."""

_KEYS: Final = ["pool_id", "period_end"]
_PERFORMING: Final = pl.col("status").is_in(list(schema.PERFORMING_STATUSES))


# --------------------------------------------------------------------------- scalar rates


def _check_unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def annualise_rate(monthly: float, name: str = "monthly rate") -> float:
    """Annualise a monthly rate (SMM or MDR): ``1 - (1 - monthly)^12``.

    Args:
        monthly: The monthly rate as a fraction (0.015 is 1.5%).
        name: What the rate is, for the error message.

    Returns:
        The annualised rate (CPR or CDR) as a fraction.

    Raises:
        ValueError: If ``monthly`` is outside ``[0, 1]``.
    """
    _check_unit_interval(name, monthly)
    return 1.0 - (1.0 - monthly) ** MONTHS_PER_YEAR


def deannualise_rate(annual: float, name: str = "annual rate") -> float:
    """The inverse of :func:`annualise_rate`: ``1 - (1 - annual)^(1/12)``, the monthly rate
    (SMM or MDR) of an annualised one (CPR or CDR), both as fractions; ``name`` names the
    rate in the error raised when ``annual`` is outside ``[0, 1]``."""
    _check_unit_interval(name, annual)
    return 1.0 - math.pow(1.0 - annual, 1.0 / MONTHS_PER_YEAR)


def cpr_from_smm(smm: float) -> float:
    """The conditional prepayment rate of a single monthly mortality (:func:`annualise_rate`)."""
    return annualise_rate(smm, "smm")


def smm_from_cpr(cpr: float) -> float:
    """The single monthly mortality of a conditional prepayment rate (:func:`deannualise_rate`)."""
    return deannualise_rate(cpr, "cpr")


def cdr_from_mdr(mdr: float) -> float:
    """The constant default rate of a monthly default rate (:func:`annualise_rate`)."""
    return annualise_rate(mdr, "mdr")


def mdr_from_cdr(cdr: float) -> float:
    """The monthly default rate of a constant default rate (:func:`deannualise_rate`)."""
    return deannualise_rate(cdr, "cdr")


def annualised(monthly: pl.Expr) -> pl.Expr:
    """Annualise a monthly rate expression: ``1 - (1 - monthly)^12``.

    Args:
        monthly: A monthly rate (SMM or MDR) as a fraction.

    Returns:
        The annualised rate (CPR or CDR) expression.
    """
    return 1.0 - (1.0 - monthly).pow(MONTHS_PER_YEAR)


def ratio(numer: pl.Expr, denom: pl.Expr) -> pl.Expr:
    """``numer / denom`` as Float64, null when the denominator is zero or null.

    Args:
        numer: Numerator (any numeric type).
        denom: Denominator.

    Returns:
        The Float64 ratio expression.
    """
    return (
        pl.when(denom != 0)
        .then(numer.cast(pl.Float64) / denom.cast(pl.Float64))
        .otherwise(None)
        .cast(pl.Float64)
    )


# --------------------------------------------------------------------------- periods


def _is_month_end(day: date) -> bool:
    return (day + timedelta(days=1)).day == 1


def _period_ends_frame(period_ends: Sequence[date]) -> pl.LazyFrame:
    bad = [d for d in period_ends if not _is_month_end(d)]
    if bad:
        raise ValueError(f"period ends must be month-ends: {', '.join(map(str, bad))}")
    return pl.LazyFrame({"period_end": sorted(set(period_ends))}, schema={"period_end": pl.Date})


def _as_of_dates(snapshots: pl.LazyFrame, period_ends: Sequence[date]) -> pl.LazyFrame:
    """Every as-of date with its predecessor (``previous_as_of``, null for the first).

    Period ends are included even when the snapshots lack them, so that a
    missing snapshot shows up as an opening balance that does not roll forward
    instead of a silently missing period.
    """
    return (
        pl.concat(
            [
                snapshots.select("as_of_date"),
                pl.LazyFrame({"as_of_date": list(period_ends)}, schema={"as_of_date": pl.Date}),
            ]
        )
        .unique()
        .sort("as_of_date")
        .with_columns(previous_as_of=pl.col("as_of_date").shift(1))
    )


def _pool_rows(snapshots: pl.LazyFrame, as_of_dates: pl.LazyFrame) -> pl.LazyFrame:
    """Snapshot rows of pooled loans, with the previous as-of date of their period."""
    return snapshots.filter(pl.col("pool_id").is_not_null()).join(
        as_of_dates, on="as_of_date", how="left"
    )


def _defaulted_by_previous_row() -> pl.Expr:
    """Whether the loan had defaulted as of the row before this one.

    A loan's own previous row decides when there is one: a servicer's tape reports a
    default only at its next snapshot, while a cut-off or latest-date row in between
    repeats the last reported position, so comparing the default date with the
    previous as-of date would lose that default. The loan's first row falls back on
    the dates.
    """
    by_dates = pl.col("default_date").is_not_null() & (
        pl.col("previous_as_of").is_null() | (pl.col("default_date") <= pl.col("previous_as_of"))
    )
    return (
        pl.when(pl.col("_previous_row").is_not_null())
        .then(pl.col("_previous_default").is_not_null())
        .otherwise(by_dates)
    )


def _with_previous_row(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Each row with the as-of date and default date of the loan's previous row in its pool."""
    loan = ["pool_id", "loan_id"]
    return rows.with_columns(
        _previous_row=pl.col("as_of_date").shift(1).over(loan, order_by="as_of_date"),
        _previous_default=pl.col("default_date").shift(1).over(loan, order_by="as_of_date"),
    )


def _defaulted_in_period() -> pl.Expr:
    return (
        pl.col("default_date").is_not_null()
        & (pl.col("default_date") <= pl.col("as_of_date"))
        & ~_defaulted_by_previous_row()
    )


def _opening_cohort() -> pl.Expr:
    """Rows of loans performing in their pool at the period start.

    A loan bought in the period carries its purchased principal; a loan that
    had defaulted by its previous row was no longer performing.
    """
    defaulted_before = _defaulted_by_previous_row()
    return (
        (pl.col("purchased_principal") == 0)
        & (pl.col("opening_principal") > 0)
        & pl.col("previous_as_of").is_not_null()
        & ~defaulted_before
    )


def _boundaries(
    rows: pl.LazyFrame, as_of_dates: pl.LazyFrame, cutoffs: Mapping[str, date] | None
) -> pl.LazyFrame:
    """Per pool, the dates that close a period: month-ends, and its cut-off date.

    The month-end of the cut-off month is not a boundary of a pool cut off
    before it: period 1 runs from the cut-off date to the next month-end.

    Returns ``pool_id``, ``boundary`` and ``previous_boundary`` (null first).
    """
    pools = rows.select("pool_id").unique()
    month_ends = as_of_dates.filter(
        pl.col("as_of_date") == pl.col("as_of_date").dt.month_end()
    ).select(pl.col("as_of_date").alias("boundary"))
    parts = [pools.join(month_ends, how="cross")]
    if cutoffs:
        cut = _cutoff_frame(cutoffs).join(pools, on="pool_id", how="semi")
        stubs = cut.filter(pl.col("cutoff_date") != pl.col("stub_end")).select(
            "pool_id", pl.col("stub_end").alias("boundary")
        )
        parts = [
            parts[0].join(stubs, on=["pool_id", "boundary"], how="anti"),
            cut.select("pool_id", pl.col("cutoff_date").alias("boundary")),
        ]
    return (
        pl.concat(parts)
        .unique()
        .sort("pool_id", "boundary")
        .with_columns(previous_boundary=pl.col("boundary").shift(1).over("pool_id"))
    )


def _cutoff_frame(cutoffs: Mapping[str, date]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {"pool_id": list(cutoffs), "cutoff_date": list(cutoffs.values())},
        schema={"pool_id": pl.String, "cutoff_date": pl.Date},
    ).with_columns(stub_end=pl.col("cutoff_date").dt.month_end())


_FLOW_COLUMNS: Final = (
    "scheduled_principal_paid",
    "unscheduled_principal_paid",
    "interest_paid",
    "fees_paid",
    "recoveries",
    "new_drawings",
)


def pool_cash(snapshots: pl.LazyFrame) -> pl.LazyFrame:
    """Snapshot rows whose flows and default are the pool's: each less its ``outside_`` part.

    Purchases and removals take effect on their event date (DOMAIN.md
    "Conventions"): cash up to the end of a purchase day and after a removal
    day is not pool cash (``schema.OUTSIDE_POOL_FLOWS``), and a default after
    the removal day is not a pool default (``schema.OUTSIDE_POOL_DEFAULT``).

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.

    Returns:
        The same rows with the flows and the defaulted principal restricted to
        pool membership.
    """
    outside = {**schema.OUTSIDE_POOL_FLOWS, **schema.OUTSIDE_POOL_DEFAULT}
    return snapshots.with_columns(
        (pl.col(amount) - pl.col(part)).alias(amount) for amount, part in outside.items()
    )


def _from_cutoff(snapshots: pl.LazyFrame, cutoffs: Mapping[str, date] | None) -> pl.LazyFrame:
    """Snapshot rows with the cut-off month's month-end rows restated from the cut-off.

    As the snapshot store holds them, month-end rows chain month-end to
    month-end and a cut-off row carries the flows from the month-end before it
    to the cut-off date. For a pool cut off before its
    month-end, each of its rows at that month-end keeps only what happened
    after the cut-off (the row less the loan's cut-off row): cash up to the
    cut-off is the seller's. A loan in the pool at the cut-off opens at its
    cut-off balance and is no purchase; a loan bought after it already carries
    its purchase on its own day (see :func:`pool_cash`); a loan removed by the
    cut-off has left.
    """
    if not cutoffs:
        return snapshots
    cut = _cutoff_frame(cutoffs).filter(pl.col("cutoff_date") != pl.col("stub_end"))
    at_cutoff = snapshots.join(
        cut.select(pl.col("cutoff_date").alias("as_of_date")).unique(), on="as_of_date", how="semi"
    ).select(
        "loan_id",
        pl.col("as_of_date").alias("cutoff_date"),
        pl.col("pool_id").alias("c_pool_id"),
        pl.col("status").alias("c_status"),
        pl.col("closing_principal").alias("c_closing"),
        *(pl.col(c).alias(f"c_{c}") for c in _FLOW_COLUMNS),
    )
    stub = snapshots.join(
        cut.select("pool_id", pl.col("stub_end").alias("as_of_date"), "cutoff_date"),
        on=["pool_id", "as_of_date"],
        how="inner",
    ).join(at_cutoff, on=["loan_id", "cutoff_date"], how="left")
    seen = pl.col("c_closing").is_not_null()
    in_pool_at_cutoff = seen & (pl.col("c_pool_id") == pl.col("pool_id"))
    member = in_pool_at_cutoff & (pl.col("c_status") != "repurchased")
    left_by_cutoff = in_pool_at_cutoff & (pl.col("c_status") == "repurchased")
    restated = (
        stub.filter(~left_by_cutoff)
        .with_columns(
            *(
                (pl.col(c) - pl.when(member).then(pl.col(f"c_{c}")).otherwise(0)).alias(c)
                for c in _FLOW_COLUMNS
            ),
            pl.when(member)
            .then(pl.col("c_closing"))
            .otherwise(pl.col("opening_principal"))
            .alias("opening_principal"),
            pl.when(member)
            .then(0)
            .otherwise(pl.col("purchased_principal"))
            .alias("purchased_principal"),
        )
        .select(snapshots.collect_schema().names())
    )
    untouched = snapshots.join(
        cut.select("pool_id", pl.col("stub_end").alias("as_of_date")),
        on=["pool_id", "as_of_date"],
        how="anti",
    )
    return pl.concat([untouched, restated])


def _pool_flows(
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date] | None = None,
) -> pl.LazyFrame:
    """Roll-forward and collection amounts per pool and period.

    A period of a pool closes on each month-end and on its cut-off date
    (``cutoffs``, whose snapshots must be among ``snapshots``): period 1 opens
    at the cut-off balance and carries every flow after the cut-off (cash up
    to the cut-off date is the seller's, see :func:`_from_cutoff`). The flows
    of every as-of date inside a period add up. An as-of date after the last
    month-end is a period of its own.

    Returns one row per ``(pool_id, as_of_date)`` (``as_of_date`` the period's
    closing date) for each pool that has rows then or at the previous one (so a
    pool whose loans all vanish still gets a period whose closing is zero).
    """
    # The query below reads the snapshots, and the rows restated from the cut-off, a
    # few dozen times over: each is computed once per query and held, not re-scanned.
    snapshots = _from_cutoff(pool_cash(snapshots.cache()), cutoffs).cache()
    as_of_dates = _as_of_dates(snapshots, period_ends)
    rows = _with_previous_row(_pool_rows(snapshots, as_of_dates))
    boundaries = _boundaries(rows, as_of_dates, cutoffs)
    key_of = (
        rows.select("pool_id", "as_of_date")
        .unique()
        .sort("as_of_date")
        .join_asof(
            boundaries.select("pool_id", "boundary").sort("boundary"),
            left_on="as_of_date",
            right_on="boundary",
            by="pool_id",
            strategy="forward",
            # Both sides are sorted on the as-of key just above.
            check_sortedness=False,
        )
        .with_columns(period_key=pl.col("boundary").fill_null(pl.col("as_of_date")))
        .select("pool_id", "as_of_date", "period_key")
    )
    rows = rows.join(key_of, on=["pool_id", "as_of_date"], how="left")
    # A loan bought in any part of a period is outside that period's opening cohort.
    bought = (
        rows.filter(pl.col("purchased_principal") != 0)
        .select("pool_id", "period_key", "loan_id")
        .unique()
        .with_columns(bought_in_period=pl.lit(True))
    )
    rows = rows.join(bought, on=["pool_id", "period_key", "loan_id"], how="left").join(
        boundaries.select("pool_id", pl.col("boundary").alias("period_key"), "previous_boundary"),
        on=["pool_id", "period_key"],
        how="left",
    )
    # A loan removed before it defaulted left the pool performing; one that
    # defaulted in an earlier period had already left it. The defaulted
    # principal here is the pool's (pool_cash): nothing for a loan that
    # defaulted after it left, even one removed with nothing owed.
    removed = (pl.col("removed_principal") != 0) & ~_defaulted_by_previous_row()
    defaulted = _defaulted_in_period() & ~removed & (pl.col("defaulted_principal") > 0)
    cohort = _opening_cohort() & pl.col("bought_in_period").is_null()
    # The cohort's opening balance is read in the first part of the period.
    first_part = pl.col("previous_boundary").is_null() | (
        pl.col("previous_as_of") == pl.col("previous_boundary")
    )
    at_close = pl.col("as_of_date") == pl.col("period_key")
    per_as_of = (
        rows.group_by("pool_id", "period_key")
        .agg(
            cohort_opening_balance=pl.col("opening_principal").filter(cohort & first_part).sum(),
            cohort_scheduled_principal=pl.col("scheduled_principal_paid").filter(cohort).sum(),
            cohort_unscheduled_principal=pl.col("unscheduled_principal_paid").filter(cohort).sum(),
            cohort_defaulted_principal=pl.col("defaulted_principal")
            .filter(cohort & defaulted)
            .sum(),
            scheduled_principal=pl.col("scheduled_principal_paid").sum(),
            unscheduled_principal=pl.col("unscheduled_principal_paid").sum(),
            defaulted_principal=pl.col("defaulted_principal").filter(defaulted).sum(),
            removed_principal=pl.col("removed_principal").filter(removed).sum(),
            purchased_principal=pl.col("purchased_principal").sum(),
            new_drawings=pl.col("new_drawings").sum(),
            closing_balance=pl.col("closing_principal").filter(_PERFORMING & at_close).sum(),
            closing_count=(_PERFORMING & at_close).sum().cast(pl.Int64),
            defaulted_count=defaulted.sum().cast(pl.Int64),
            removed_count=removed.sum().cast(pl.Int64),
            purchased_count=(pl.col("purchased_principal") != 0).sum().cast(pl.Int64),
            interest=pl.col("interest_paid").sum(),
            fees=pl.col("fees_paid").sum(),
            recoveries=pl.col("recoveries").sum(),
        )
        .rename({"period_key": "as_of_date"})
    )
    # Each period opens at the closing of the boundary before it; an as-of date
    # after a pool's last boundary is a period of its own.
    last = boundaries.group_by("pool_id").agg(last_boundary=pl.col("boundary").max())
    tail = (
        as_of_dates.join(last, how="cross")
        .filter(pl.col("as_of_date") > pl.col("last_boundary"))
        .select("pool_id", "as_of_date", "previous_as_of")
    )
    periods = pl.concat(
        [
            boundaries.select(
                "pool_id",
                pl.col("boundary").alias("as_of_date"),
                pl.col("previous_boundary").alias("previous_as_of"),
            ),
            tail,
        ]
    )
    next_key = periods.select(
        "pool_id",
        pl.col("previous_as_of").alias("as_of_date"),
        pl.col("as_of_date").alias("next_as_of"),
    ).drop_nulls()
    keys = (
        pl.concat(
            [
                per_as_of.select("pool_id", "as_of_date"),
                per_as_of.select("pool_id", "as_of_date")
                .join(next_key, on=["pool_id", "as_of_date"], how="inner")
                .select("pool_id", pl.col("next_as_of").alias("as_of_date")),
            ]
        )
        .unique()
        .join(periods, on=["pool_id", "as_of_date"], how="left")
    )
    opening = per_as_of.select(
        "pool_id",
        pl.col("as_of_date").alias("previous_as_of"),
        pl.col("closing_balance").alias("opening_balance"),
        pl.col("closing_count").alias("opening_count"),
    )
    amounts = [c for c in per_as_of.collect_schema().names() if c not in {"pool_id", "as_of_date"}]
    return (
        keys.join(per_as_of, on=["pool_id", "as_of_date"], how="left")
        .join(opening, on=["pool_id", "previous_as_of"], how="left")
        .with_columns(
            pl.col([*amounts, "opening_balance", "opening_count"]).fill_null(0).cast(pl.Int64)
        )
        .sort("pool_id", "as_of_date")
    )


def pool_flows(
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date] | None = None,
) -> pl.LazyFrame:
    """Roll-forward and collection amounts per pool and period closing date.

    What :func:`pool_rollforward`, :func:`pool_collections`,
    :func:`delinquency_buckets`, :func:`pool_characteristics` and
    :func:`cumulative_performance` read. Collect it once and pass it to them as
    ``flows`` when several marts come from the same snapshots: its query reads
    the snapshots many times over.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        period_ends: Month-end dates to report.
        cutoffs: Cut-off date per pool (see :func:`pool_rollforward`).

    Returns:
        One row per ``pool_id`` and ``as_of_date`` (the period's closing date).

    Raises:
        ValueError: If a period end is not a month-end.
    """
    _period_ends_frame(period_ends)
    return _pool_flows(snapshots, period_ends, cutoffs)


def _flows_or(
    flows: pl.LazyFrame | None,
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date] | None = None,
) -> pl.LazyFrame:
    return flows if flows is not None else _pool_flows(snapshots, period_ends, cutoffs)


def _at_period_ends(frame: pl.LazyFrame, period_ends: Sequence[date]) -> pl.LazyFrame:
    return frame.join(
        _period_ends_frame(period_ends),
        left_on="as_of_date",
        right_on="period_end",
        how="inner",
        coalesce=False,
    ).drop("as_of_date")


def _performing_at(snapshots: pl.LazyFrame, period_ends: Sequence[date]) -> pl.LazyFrame:
    """Rows of pooled, performing loans at the period ends."""
    return snapshots.filter(
        pl.col("as_of_date").is_in(list(period_ends))
        & pl.col("pool_id").is_not_null()
        & _PERFORMING
    )


# --------------------------------------------------------------------------- roll-forward


def pool_rollforward(
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date] | None = None,
    *,
    flows: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Pool roll-forward per pool and period end, exact to the fen.

    The opening balance is the performing closing balance of the pool's loans
    at the period's start: the previous month-end, or for period 1 the pool's
    cut-off date when ``cutoffs`` names it (its snapshots must then be among
    ``snapshots``; period 1 carries every flow after the cut-off and cash up
    to it is the seller's). The closing balance is the performing closing
    balance at the period end. A purchase takes effect on its day at the
    loan's balance that day, a removal likewise, and the flows are those of
    the days in the pool (:func:`pool_cash`), so the identity closes.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        period_ends: Month-end dates to report.
        cutoffs: Cut-off date per pool; a pool not named has month-end periods only.
        flows: Their :func:`pool_flows` with the same arguments, when already
            computed.

    Returns:
        Columns ``pool_id``, ``period_end``, ``opening_balance``,
        ``scheduled_principal``, ``unscheduled_principal``,
        ``defaulted_principal``, ``removed_principal``, ``purchased_principal``,
        ``new_drawings``, ``closing_balance`` (Int64 fen), ``opening_count``, ``closing_count``,
        ``defaulted_count``, ``removed_count``, ``purchased_count`` (Int64),
        sorted by ``pool_id``, ``period_end``.

    Raises:
        ValueError: If a period end is not a month-end.
    """
    return (
        _at_period_ends(_flows_or(flows, snapshots, period_ends, cutoffs), period_ends)
        .select(
            *_KEYS,
            *ROLLFORWARD_MONEY,
            "opening_count",
            "closing_count",
            "defaulted_count",
            "removed_count",
            "purchased_count",
            *COHORT_MONEY,
        )
        .sort(_KEYS)
    )


def rollforward_breaks(rollforward: pl.LazyFrame) -> pl.LazyFrame:
    """Roll-forward rows that do not close to the fen.

    Args:
        rollforward: Output of :func:`pool_rollforward`.

    Returns:
        The failing rows with an extra ``difference`` column (Int64 fen,
        ``opening - scheduled - unscheduled - defaulted - removed + purchased
        + new drawings - closing``); empty when every period closes.
    """
    difference = (
        pl.col("opening_balance")
        - pl.col("scheduled_principal")
        - pl.col("unscheduled_principal")
        - pl.col("defaulted_principal")
        - pl.col("removed_principal")
        + pl.col("purchased_principal")
        + pl.col("new_drawings")
        - pl.col("closing_balance")
    )
    return rollforward.with_columns(difference=difference).filter(pl.col("difference") != 0)


# --------------------------------------------------------------------------- pool factor


def cutoff_balances(snapshots: pl.LazyFrame, cutoffs: Mapping[str, date]) -> pl.LazyFrame:
    """Cut-off pool balance: performing closing principal at each pool's cut-off date.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows, including the cut-off as-of dates.
        cutoffs: Cut-off date per pool_id.

    Returns:
        Columns ``pool_id``, ``cutoff_date``, ``cutoff_balance`` (Int64 fen),
        ``cutoff_count`` (Int64), one row per pool in ``cutoffs`` (zero when
        the snapshots hold no performing loan of the pool at that date),
        sorted by ``pool_id``.
    """
    pools = pl.LazyFrame(
        {"pool_id": list(cutoffs), "cutoff_date": list(cutoffs.values())},
        schema={"pool_id": pl.String, "cutoff_date": pl.Date},
    )
    at_cutoff = (
        snapshots.join(pools, on="pool_id", how="inner")
        .filter((pl.col("as_of_date") == pl.col("cutoff_date")) & _PERFORMING)
        .group_by("pool_id")
        .agg(
            cutoff_balance=pl.col("closing_principal").sum(),
            cutoff_count=pl.len().cast(pl.Int64),
        )
    )
    return (
        pools.join(at_cutoff, on="pool_id", how="left")
        .with_columns(pl.col("cutoff_balance", "cutoff_count").fill_null(0).cast(pl.Int64))
        .sort("pool_id")
    )


def with_pool_factor(rollforward: pl.LazyFrame, cutoff_balances: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``cutoff_balance`` and ``pool_factor = closing_balance / cutoff_balance``.

    Args:
        rollforward: Output of :func:`pool_rollforward`.
        cutoff_balances: Columns ``pool_id``, ``cutoff_balance`` (fen), e.g.
            from :func:`cutoff_balances`.

    Returns:
        ``rollforward`` with ``cutoff_balance`` (Int64, null for a pool without
        one) and ``pool_factor`` (Float64, null when the cut-off balance is
        zero or unknown), sorted by ``pool_id``, ``period_end``.
    """
    return (
        rollforward.join(
            cutoff_balances.select("pool_id", "cutoff_balance"), on="pool_id", how="left"
        )
        .with_columns(pool_factor=ratio(pl.col("closing_balance"), pl.col("cutoff_balance")))
        .sort(_KEYS)
    )


# --------------------------------------------------------------------------- delinquency


def delinquency_buckets(
    snapshots: pl.LazyFrame, period_ends: Sequence[date], *, flows: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Performing loans by DPD bucket, all buckets present, per pool and period end.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        period_ends: Month-end dates to report.
        flows: Their :func:`pool_flows` (no cut-offs), when already
            computed.

    Returns:
        Columns ``pool_id``, ``period_end``, ``bucket`` (in ``schema.DPD_BUCKETS``
        order, empty buckets as zero rows), ``count`` (Int64), ``balance``
        (Int64 fen, closing principal), ``balance_share`` (Float64 share of the
        pool's performing closing balance; null when that balance is zero).

    Raises:
        ValueError: If a period end is not a month-end.
    """
    keys = _at_period_ends(_flows_or(flows, snapshots, period_ends), period_ends).select(_KEYS)
    buckets = pl.LazyFrame(
        {"bucket": list(schema.DPD_BUCKETS), "bucket_order": range(len(schema.DPD_BUCKETS))},
        schema={"bucket": pl.String, "bucket_order": pl.Int32},
    )
    by_bucket = (
        _performing_at(snapshots, period_ends)
        .group_by(pl.col("pool_id"), pl.col("as_of_date").alias("period_end"), "bucket")
        .agg(count=pl.len().cast(pl.Int64), balance=pl.col("closing_principal").sum())
    )
    return (
        keys.join(buckets, how="cross")
        .join(by_bucket, on=[*_KEYS, "bucket"], how="left")
        .with_columns(pl.col("count", "balance").fill_null(0).cast(pl.Int64))
        .with_columns(balance_share=ratio(pl.col("balance"), pl.col("balance").sum().over(_KEYS)))
        .sort(*_KEYS, "bucket_order")
        .select(*_KEYS, "bucket", "count", "balance", "balance_share")
    )


def delinquency_m_notation(buckets: pl.LazyFrame) -> pl.LazyFrame:
    """Collapse delinquency buckets into M1, M2, M3 and M3+.

    Args:
        buckets: Output of :func:`delinquency_buckets`.

    Returns:
        Columns ``pool_id``, ``period_end``, ``m_bucket`` (``M_BUCKETS`` order,
        all four present), ``count``, ``balance`` (Int64 fen) and
        ``balance_share`` (Float64 share of the performing balance, null when
        that balance is zero).
    """
    order = {label: i for i, label in enumerate(M_BUCKETS)}
    return (
        buckets.with_columns(
            pool_balance=pl.col("balance").sum().over(_KEYS),
            m_bucket=pl.col("bucket").replace_strict(
                dict(M_NOTATION), default=None, return_dtype=pl.String
            ),
        )
        .filter(pl.col("m_bucket").is_not_null())
        .group_by(*_KEYS, "m_bucket")
        .agg(
            pl.col("count").sum(),
            pl.col("balance").sum(),
            pl.col("pool_balance").first(),
        )
        .with_columns(
            balance_share=ratio(pl.col("balance"), pl.col("pool_balance")),
            m_order=pl.col("m_bucket").replace_strict(order, return_dtype=pl.Int32),
        )
        .sort(*_KEYS, "m_order")
        .select(*_KEYS, "m_bucket", "count", "balance", "balance_share")
    )


# --------------------------------------------------------------------------- characteristics


def pool_characteristics(
    snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    period_ends: Sequence[date],
    *,
    flows: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Balance-weighted characteristics of the performing pool at each period end.

    Weights are closing balances (never original amounts, DOMAIN.md).

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        loans: ``schema.LOANS`` rows (``loan_id``, ``borrower_id``,
            ``annual_rate`` are used).
        period_ends: Month-end dates to report.
        flows: Their :func:`pool_flows` (no cut-offs), when already
            computed.

    Returns:
        Columns ``pool_id``, ``period_end``, ``wac``, ``wam_months``,
        ``wala_months`` (Float64; null when the performing balance is zero,
        ``wac`` also null when a performing loan has no row in ``loans``),
        ``average_balance`` (Int64 fen, rounded half-up; null for an empty
        pool), ``loan_count``, ``obligor_count`` (Int64; distinct
        ``borrower_id``).

    Raises:
        ValueError: If a period end is not a month-end.
    """
    keys = _at_period_ends(_flows_or(flows, snapshots, period_ends), period_ends).select(_KEYS)
    terms = loans.select(
        "loan_id", "borrower_id", rate_ppm(pl.col("annual_rate")).alias("rate_ppm")
    )
    balance = pl.col("closing_principal")
    performing = (
        _performing_at(snapshots, period_ends)
        .rename({"as_of_date": "period_end"})
        .join(terms, on="loan_id", how="left")
    )
    per_pool = performing.group_by(_KEYS).agg(
        balance=balance.sum(),
        rate_weighted=(pl.col("rate_ppm").cast(pl.Int128) * balance.cast(pl.Int128)).sum(),
        missing_rates=pl.col("rate_ppm").is_null().sum(),
        term_weighted=(pl.col("remaining_term").cast(pl.Int64) * balance).sum(),
        age_weighted=(pl.col("months_on_book").cast(pl.Int64) * balance).sum(),
        loan_count=pl.len().cast(pl.Int64),
        obligor_count=pl.col("borrower_id").drop_nulls().n_unique().cast(pl.Int64),
    )
    wac = pl.when(pl.col("missing_rates") == 0).then(
        ratio(pl.col("rate_weighted"), pl.col("balance")) / schema.RATE_SCALE
    )
    return (
        keys.join(per_pool, on=_KEYS, how="left")
        .with_columns(pl.col("balance", "loan_count", "obligor_count").fill_null(0))
        .with_columns(
            wac=wac,
            wam_months=ratio(pl.col("term_weighted"), pl.col("balance")),
            wala_months=ratio(pl.col("age_weighted"), pl.col("balance")),
            average_balance=pl.when(pl.col("loan_count") > 0).then(
                round_half_up_div(pl.col("balance"), pl.col("loan_count"))
            ),
        )
        .select(
            *_KEYS,
            "wac",
            "wam_months",
            "wala_months",
            "average_balance",
            "loan_count",
            "obligor_count",
        )
        .sort(_KEYS)
    )


# --------------------------------------------------------------------------- collections


def pool_collections(
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date] | None = None,
    *,
    flows: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Cash collected per pool and period, by component.

    Pre-default cash is principal (scheduled and unscheduled), interest and
    fees (fees and penalties); all cash after a loan's default is recoveries.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        period_ends: Month-end dates to report.
        cutoffs: Cut-off date per pool (see :func:`pool_rollforward`).
        flows: Their :func:`pool_flows` with the same arguments, when already
            computed.

    Returns:
        Columns ``pool_id``, ``period_end``, ``scheduled_principal``,
        ``unscheduled_principal``, ``principal`` (their sum), ``interest``,
        ``fees``, ``recoveries``, ``total`` (all Int64 fen).

    Raises:
        ValueError: If a period end is not a month-end.
    """
    return (
        _at_period_ends(_flows_or(flows, snapshots, period_ends, cutoffs), period_ends)
        .with_columns(principal=pl.col("scheduled_principal") + pl.col("unscheduled_principal"))
        .with_columns(
            total=pl.col("principal") + pl.col("interest") + pl.col("fees") + pl.col("recoveries")
        )
        .select(
            *_KEYS,
            "scheduled_principal",
            "unscheduled_principal",
            "principal",
            "interest",
            "fees",
            "recoveries",
            "total",
        )
        .sort(_KEYS)
    )


# --------------------------------------------------------------------------- performance


def with_period_rates(rollforward: pl.LazyFrame, collections: pl.LazyFrame) -> pl.LazyFrame:
    """Add the period prepayment, default and payment rates to a roll-forward.

    Over the opening cohort (see the module docstring): ``smm = cohort
    unscheduled / (cohort opening - cohort scheduled)``, ``cpr = 1 - (1 -
    smm)^12``, ``mdr = cohort defaulted / cohort opening``, ``cdr = 1 - (1 -
    mdr)^12``; ``payment_rate = (principal + interest + fees collected) /
    opening balance``.

    Args:
        rollforward: Output of :func:`pool_rollforward`.
        collections: Output of :func:`pool_collections` (same keys).

    Returns:
        ``rollforward`` with Float64 ``smm``, ``cpr``, ``mdr``, ``cdr`` and
        ``payment_rate``; each rate is null when its denominator is zero.
    """
    cohort = pl.col("cohort_opening_balance")
    obligor_cash = collections.select(
        *_KEYS,
        (pl.col("principal") + pl.col("interest") + pl.col("fees")).alias("obligor_collections"),
    )
    return (
        rollforward.join(obligor_cash, on=_KEYS, how="left")
        .with_columns(
            smm=ratio(
                pl.col("cohort_unscheduled_principal"),
                cohort - pl.col("cohort_scheduled_principal"),
            ),
            mdr=ratio(pl.col("cohort_defaulted_principal"), cohort),
            payment_rate=ratio(
                pl.col("obligor_collections").fill_null(0), pl.col("opening_balance")
            ),
        )
        .with_columns(cpr=annualised(pl.col("smm")), cdr=annualised(pl.col("mdr")))
        .drop("obligor_collections")
        .sort(_KEYS)
    )


def delinquency_shares(buckets: pl.LazyFrame) -> pl.LazyFrame:
    """Shares of the performing balance more than 30 and more than 90 days past due.

    Args:
        buckets: Output of :func:`delinquency_buckets`.

    Returns:
        Columns ``pool_id``, ``period_end``, ``delinquent_30_plus_balance``,
        ``delinquent_90_plus_balance`` (Int64 fen), ``delinquency_30_plus_share``
        ``delinquency_90_plus_share`` and ``delinquency_ratio`` (the balance
        31 DPD to default_dpd / closing pool balance; Float64, null for an
        empty pool),
        sorted by ``pool_id``, ``period_end``.
    """
    over_30 = pl.col("bucket").is_in(list(schema.DPD_BUCKETS[2:]))
    over_90 = pl.col("bucket").is_in(list(schema.DPD_BUCKETS[4:]))
    return (
        buckets.group_by(_KEYS)
        .agg(
            pool_balance=pl.col("balance").sum(),
            delinquent_30_plus_balance=pl.col("balance").filter(over_30).sum(),
            delinquent_90_plus_balance=pl.col("balance").filter(over_90).sum(),
        )
        .with_columns(
            delinquency_30_plus_share=ratio(
                pl.col("delinquent_30_plus_balance"), pl.col("pool_balance")
            ),
            delinquency_90_plus_share=ratio(
                pl.col("delinquent_90_plus_balance"), pl.col("pool_balance")
            ),
            # Performing loans are at most default_dpd past due, so 31+ among
            # them is the 31 DPD .. default_dpd balance of DOMAIN.md's ratio.
            delinquency_ratio=ratio(pl.col("delinquent_30_plus_balance"), pl.col("pool_balance")),
        )
        .drop("pool_balance")
        .sort(_KEYS)
    )


def cumulative_performance(
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date],
    *,
    denominator: CumulativeDenominator = "initial_plus_purchases",
    flows: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Cumulative default, loss and recovery since each pool's cut-off.

    Cumulative amounts add up the roll-forward's defaulted and purchased
    principal, new drawings and the recoveries of every period after the cut-off date up to
    and including the period end.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows, including each cut-off date.
        period_ends: Month-end dates to report.
        cutoffs: Cut-off date per pool_id; pools not listed are left out.
        denominator: ``initial`` (cut-off balance) or ``initial_plus_purchases``
            (cut-off balance plus cumulative purchased principal and new drawings:
            both are receivables that entered the pool after the cut-off).
        flows: Their :func:`pool_flows` with the same arguments, when already
            computed.

    Returns:
        Columns ``pool_id``, ``period_end``, ``cutoff_balance``,
        ``cumulative_defaulted_principal``, ``cumulative_recoveries``,
        ``cumulative_purchased_principal``, ``cumulative_new_drawings``,
        ``denominator_balance`` (Int64 fen),
        ``cumulative_default_denominator`` (String), and Float64
        ``cumulative_default_rate``, ``cumulative_net_loss_rate``
        (``(defaulted - recoveries) / denominator``) and ``recovery_rate``
        (``recoveries / defaulted``), null on a zero denominator.

    Raises:
        ValueError: If a period end is not a month-end or ``denominator`` is unknown.
    """
    if denominator not in ("initial", "initial_plus_purchases"):
        raise ValueError(f"unknown cumulative default denominator {denominator!r}")
    cutoff = cutoff_balances(snapshots, cutoffs)
    cumulative = (
        _flows_or(flows, snapshots, period_ends, cutoffs)
        .join(cutoff.select("pool_id", "cutoff_date"), on="pool_id", how="inner")
        # Collection periods start the month after the cut-off month: the cut-off
        # month's own flows (including the cut-off additions) precede the deal.
        .filter(pl.col("as_of_date") > pl.col("cutoff_date").dt.month_end())
        .sort("pool_id", "as_of_date")
        .select(
            "pool_id",
            "as_of_date",
            cumulative_defaulted_principal=pl.col("defaulted_principal").cum_sum().over("pool_id"),
            cumulative_recoveries=pl.col("recoveries").cum_sum().over("pool_id"),
            cumulative_purchased_principal=pl.col("purchased_principal").cum_sum().over("pool_id"),
            cumulative_new_drawings=pl.col("new_drawings").cum_sum().over("pool_id"),
        )
    )
    base = pl.col("cutoff_balance")
    if denominator == "initial_plus_purchases":
        base = base + pl.col("cumulative_purchased_principal") + pl.col("cumulative_new_drawings")
    defaulted = pl.col("cumulative_defaulted_principal")
    recoveries = pl.col("cumulative_recoveries")
    return (
        _at_period_ends(cumulative, period_ends)
        .join(cutoff.select("pool_id", "cutoff_balance"), on="pool_id", how="left")
        .with_columns(
            denominator_balance=base,
            cumulative_default_denominator=pl.lit(denominator, dtype=pl.String),
        )
        .with_columns(
            cumulative_default_rate=ratio(defaulted, pl.col("denominator_balance")),
            cumulative_net_loss_rate=ratio(defaulted - recoveries, pl.col("denominator_balance")),
            recovery_rate=ratio(recoveries, defaulted),
        )
        .select(
            *_KEYS,
            "cutoff_balance",
            "cumulative_defaulted_principal",
            "cumulative_recoveries",
            "cumulative_purchased_principal",
            "cumulative_new_drawings",
            "denominator_balance",
            "cumulative_default_denominator",
            "cumulative_default_rate",
            "cumulative_net_loss_rate",
            "recovery_rate",
        )
        .sort(_KEYS)
    )


def pool_performance(
    snapshots: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date],
    *,
    denominator: CumulativeDenominator = "initial_plus_purchases",
    flows: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Period and cumulative performance per pool and period end.

    Takes the arguments of :func:`cumulative_performance` and raises as it does.

    Returns:
        Columns ``pool_id``, ``period_end``, the opening-cohort amounts
        (:data:`COHORT_MONEY`), ``smm``, ``cpr``, ``mdr``, ``cdr``, ``payment_rate`` (from
        :func:`with_period_rates`) and every
        column of :func:`cumulative_performance`.
    """
    flows = _flows_or(flows, snapshots, period_ends, cutoffs)
    rates = with_period_rates(
        pool_rollforward(snapshots, period_ends, cutoffs, flows=flows),
        pool_collections(snapshots, period_ends, cutoffs, flows=flows),
    ).select(*_KEYS, *COHORT_MONEY, "smm", "cpr", "mdr", "cdr", "payment_rate")
    cumulative = cumulative_performance(
        snapshots, period_ends, cutoffs, denominator=denominator, flows=flows
    )
    return rates.join(cumulative, on=_KEYS, how="inner").sort(_KEYS)
