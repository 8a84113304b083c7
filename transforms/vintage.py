"""Vintage (static pool, 静态池) curves of the whole book.

For origination month ``v`` and months on book ``m`` (``m = 0`` is the
origination month itself): the cumulative defaulted principal of ``v``'s
loans by the month-end of ``v + m``, over ``v``'s original principal, and the
same net of recoveries. The curves are right-censored: a point exists only
when the month-end ``v + m`` has been observed, and vintages are never
averaged, so a young vintage simply has a shorter curve (DOMAIN.md).

Two scopes, as in :mod:`transforms.portfolio`: ``book`` is the originator's
book (Regulation AB Item 1105 static pool data: every loan in ``loans``,
whichever pool it was sold to); ``pool`` is the loans that ever entered the
pool (an ``added`` event in ``pool_assets``), with the defaults and
recoveries of the months they were in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from transforms.pool_metrics import pool_cash, ratio
from transforms.portfolio import BOOK, POOL, previous_month_end

CURVE_KEYS: Final = ["scope", "pool_id", "vintage"]


def _month_index(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int32) * 12 + day.dt.month().cast(pl.Int32) - 1


def vintage_curves(
    snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    period_ends: Sequence[date],
    pool_assets: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Cumulative default and net loss curves per origination month and month on book.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows at consecutive month-ends
            (each loan's default is counted at the first month-end on or after
            its default date, so no month-end may be missing).
        loans: ``schema.LOANS`` rows (``origination_date``, ``principal``).
        period_ends: The observed month-ends; the last one censors the curves.
        pool_assets: ``schema.POOL_ASSETS`` rows for the pool scope (None:
            book scope only).

    Returns:
        Columns ``scope``, ``pool_id`` (null for the book), ``vintage``
        (Date, first day of the origination month),
        ``months_on_book`` (Int32), ``as_of_date`` (the month-end observed),
        Int64 ``loan_count``, ``original_principal``,
        ``defaulted_principal`` (in that month), ``cumulative_defaulted_principal``,
        ``cumulative_recoveries`` (fen), Float64 ``cumulative_default_rate``
        and ``cumulative_net_loss_rate`` (over ``original_principal``), sorted
        by ``scope``, ``pool_id``, ``vintage``, ``months_on_book``. Vintages
        originated after the last observed month-end have no points.
    """
    ends = sorted(set(period_ends))
    if not ends:
        return pl.LazyFrame(
            schema={
                "scope": pl.String,
                "pool_id": pl.String,
                "vintage": pl.Date,
                "months_on_book": pl.Int32,
                "as_of_date": pl.Date,
                "loan_count": pl.Int64,
                "original_principal": pl.Int64,
                "defaulted_principal": pl.Int64,
                "cumulative_defaulted_principal": pl.Int64,
                "cumulative_recoveries": pl.Int64,
                "cumulative_default_rate": pl.Float64,
                "cumulative_net_loss_rate": pl.Float64,
            }
        )
    last = ends[-1]
    originated = loans.filter(pl.col("origination_date") <= last).select(
        "loan_id", "principal", vintage=pl.col("origination_date").dt.month_start()
    )
    members = [originated.with_columns(scope=pl.lit(BOOK), pool_id=pl.lit(None, pl.String))]
    if pool_assets is not None:
        entered = (
            pool_assets.filter(pl.col("event") == "added").select("pool_id", "loan_id").unique()
        )
        members.append(
            originated.join(entered, on="loan_id", how="inner").with_columns(scope=pl.lit(POOL))
        )
    vintages = (
        pl.concat(members, how="diagonal")
        .group_by("scope", "pool_id", "vintage")
        .agg(
            loan_count=pl.len().cast(pl.Int64),
            original_principal=pl.col("principal").sum().cast(pl.Int64),
        )
    )
    observed = pl.LazyFrame({"as_of_date": ends}, schema={"as_of_date": pl.Date})
    grid = (
        vintages.join(observed, how="cross")
        .filter(pl.col("as_of_date") >= pl.col("vintage"))
        .with_columns(
            months_on_book=(_month_index(pl.col("as_of_date")) - _month_index(pl.col("vintage")))
        )
    )
    previous = previous_month_end(pl.col("as_of_date"))
    defaulted_now = (
        pl.col("default_date").is_not_null()
        & (pl.col("default_date") > previous)
        & (pl.col("default_date") <= pl.col("as_of_date"))
    )
    at_ends = snapshots.filter(pl.col("as_of_date").is_in(ends))
    scoped = [at_ends.with_columns(scope=pl.lit(BOOK), pool_id=pl.lit(None, pl.String))]
    if pool_assets is not None:
        # The pool's own defaults and recoveries: a default after the loan
        # left the pool is not the pool's (transforms.pool_metrics.pool_cash).
        scoped.append(
            pool_cash(at_ends.filter(pl.col("pool_id").is_not_null())).with_columns(
                scope=pl.lit(POOL)
            )
        )
    flows = (
        pl.concat(scoped, how="vertical")
        .with_columns(vintage_index=_month_index(pl.col("as_of_date")) - pl.col("months_on_book"))
        .with_columns(
            vintage=pl.date(pl.col("vintage_index") // 12, pl.col("vintage_index") % 12 + 1, 1)
        )
        .group_by("scope", "pool_id", "vintage", "as_of_date")
        .agg(
            defaulted_principal=pl.col("defaulted_principal").filter(defaulted_now).sum(),
            recoveries=pl.col("recoveries").sum(),
        )
    )
    return (
        grid.join(
            flows, on=["scope", "pool_id", "vintage", "as_of_date"], how="left", nulls_equal=True
        )
        .with_columns(pl.col("defaulted_principal", "recoveries").fill_null(0).cast(pl.Int64))
        .sort("scope", "pool_id", "vintage", "as_of_date", nulls_last=False)
        .with_columns(
            cumulative_defaulted_principal=pl.col("defaulted_principal").cum_sum().over(CURVE_KEYS),
            cumulative_recoveries=pl.col("recoveries").cum_sum().over(CURVE_KEYS),
        )
        .with_columns(
            cumulative_default_rate=ratio(
                pl.col("cumulative_defaulted_principal"), pl.col("original_principal")
            ),
            cumulative_net_loss_rate=ratio(
                pl.col("cumulative_defaulted_principal") - pl.col("cumulative_recoveries"),
                pl.col("original_principal"),
            ),
        )
        .select(
            "scope",
            "pool_id",
            "vintage",
            pl.col("months_on_book").cast(pl.Int32),
            "as_of_date",
            "loan_count",
            "original_principal",
            "defaulted_principal",
            "cumulative_defaulted_principal",
            "cumulative_recoveries",
            "cumulative_default_rate",
            "cumulative_net_loss_rate",
        )
    )
