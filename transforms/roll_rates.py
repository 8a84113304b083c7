"""Roll-rate matrices from loan-level transitions between consecutive month-ends.

A roll rate is not a ratio of bucket totals: each loan performing at the
previous month-end ``t-1`` is followed to month-end ``t`` (DOMAIN.md), so
``rate(k -> j) = balance at t of the loans in j at t that were in k at t-1
/ balance in k at t-1``. Besides the eight delinquency buckets a loan can
move to ``default`` (defaulted or charged off by ``t``), ``repaid`` (no
principal left), ``removed`` (repurchased out of the pool; pool scope only)
or ``unobserved`` (no snapshot at ``t``, which points at a missing
partition rather than a real transition).

Scopes as in :mod:`transforms.portfolio`: ``book`` (every loan) and ``pool``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from transforms import schema
from transforms.pool_metrics import ratio
from transforms.portfolio import previous_month_end, scoped_rows

TO_STATES: Final = (*schema.DPD_BUCKETS, "default", "repaid", "removed", "unobserved")
"""Destination states in matrix order."""

KEYS: Final = ["period_end", "scope", "pool_id"]


def roll_rates(snapshots: pl.LazyFrame, period_ends: Sequence[date]) -> pl.LazyFrame:
    """Transition matrices per period end and scope, by count and balance.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows at month-ends, including the
            month-end before each period end.
        period_ends: Month-ends ``t`` to report (a period whose previous
            month-end has no performing loan gives no rows).

    Returns:
        Columns ``period_end``, ``scope``, ``pool_id``, ``from_bucket`` (in
        ``schema.DPD_BUCKETS`` order), ``to_state`` (in :data:`TO_STATES`
        order; the full grid, zero-filled), Int64 ``count``,
        ``from_balance`` (fen at ``t-1``), ``to_balance`` (fen at ``t``),
        Float64 ``count_rate`` (share of the from-bucket's loans) and
        ``balance_rate`` (``to_balance`` over the from-bucket's balance at
        ``t-1``; null when that is zero).
    """
    ends = sorted(set(period_ends))
    ends_frame = pl.LazyFrame({"period_end": ends}, schema={"period_end": pl.Date}).with_columns(
        previous_as_of=previous_month_end(pl.col("period_end"))
    )
    previous_dates = ends_frame.select(pl.col("previous_as_of").alias("as_of_date"))
    scoped = scoped_rows(
        snapshots.filter(pl.col("as_of_date").is_in([*ends, *previous_month_ends(ends)]))
    )
    origin = (
        scoped.join(previous_dates, on="as_of_date", how="semi")
        .filter(pl.col("performing"))
        .select(
            pl.col("as_of_date").alias("previous_as_of"),
            "scope",
            "pool_id",
            "loan_id",
            pl.col("bucket").alias("from_bucket"),
            pl.col("closing_principal").alias("from_balance"),
        )
        .join(ends_frame, on="previous_as_of", how="inner")
    )
    # At t the loan is looked up in the book copy, whatever pool it is in then.
    book = pl.col("scope") == "book"
    later = snapshots.filter(pl.col("as_of_date").is_in(ends)).select(
        pl.col("as_of_date").alias("period_end"),
        "loan_id",
        pl.col("pool_id").alias("pool_at_t"),
        "status",
        "bucket",
        "default_date",
        pl.col("closing_principal").alias("to_balance"),
        pl.col("outside_defaulted_principal").alias("defaulted_outside"),
    )
    left_pool = (pl.col("status") == "repurchased") | (
        pl.col("pool_at_t").is_null() | (pl.col("pool_at_t") != pl.col("pool_id"))
    )
    to_state = (
        pl.when(pl.col("to_balance").is_null())
        .then(pl.lit("unobserved"))
        # A loan that left the pool performing and defaulted afterwards was
        # removed from the pool; its default is not the pool's.
        .when(~book & left_pool & (pl.col("defaulted_outside") > 0))
        .then(pl.lit("removed"))
        .when(pl.col("default_date").is_not_null())
        .then(pl.lit("default"))
        .when(~book & left_pool)
        .then(pl.lit("removed"))
        .when(pl.col("to_balance") == 0)
        .then(pl.lit("repaid"))
        .otherwise(pl.col("bucket"))
    )
    moves = (
        origin.join(later, on=["period_end", "loan_id"], how="left")
        .with_columns(to_state=to_state)
        .group_by(*KEYS, "from_bucket", "to_state")
        .agg(
            count=pl.len().cast(pl.Int64),
            from_balance=pl.col("from_balance").sum(),
            to_balance=pl.col("to_balance").fill_null(0).sum(),
        )
    )
    from_order = pl.LazyFrame(
        {"from_bucket": list(schema.DPD_BUCKETS), "from_order": range(len(schema.DPD_BUCKETS))},
        schema={"from_bucket": pl.String, "from_order": pl.Int32},
    )
    to_order = pl.LazyFrame(
        {"to_state": list(TO_STATES), "to_order": range(len(TO_STATES))},
        schema={"to_state": pl.String, "to_order": pl.Int32},
    )
    grid = moves.select(KEYS).unique().join(from_order, how="cross").join(to_order, how="cross")
    from_totals = pl.col("from_balance").sum().over(*KEYS, "from_bucket")
    from_counts = pl.col("count").sum().over(*KEYS, "from_bucket")
    return (
        grid.join(moves, on=[*KEYS, "from_bucket", "to_state"], how="left", nulls_equal=True)
        .with_columns(pl.col("count", "from_balance", "to_balance").fill_null(0).cast(pl.Int64))
        .with_columns(
            count_rate=ratio(pl.col("count"), from_counts),
            balance_rate=ratio(pl.col("to_balance"), from_totals),
        )
        .sort("period_end", "scope", "pool_id", "from_order", "to_order", nulls_last=False)
        .select(
            *KEYS,
            "from_bucket",
            "to_state",
            "count",
            "from_balance",
            "to_balance",
            "count_rate",
            "balance_rate",
        )
    )


def previous_month_ends(period_ends: Sequence[date]) -> list[date]:
    """The month-end before each of ``period_ends``.

    Args:
        period_ends: Dates.

    Returns:
        The previous month-ends, sorted and de-duplicated.
    """
    return sorted({date.fromordinal(d.replace(day=1).toordinal() - 1) for d in period_ends})
