"""Portfolio metrics at every as-of date, for the whole book and for each pool.

One row per as-of date (every month-end, cut-off date and the latest business
date the snapshots hold) and *scope*: ``book`` (every loan of the servicer,
``pool_id`` null) or ``pool`` (the loans of ``pool_id``). Rows of several
scopes share one frame so that a report or a query can compare a pool with the
book it came from.

Conventions:

- Flows at an as-of date run from the month-end before it (the engine's
  snapshot convention: a mid-month snapshot never splits a collection period),
  so every row's opening balance is the performing balance at the previous
  month-end.
- Book scope: a loan performs while it has principal outstanding and has not
  defaulted; new money is the principal of loans originated in the period
  (``months_on_book == 0``); nothing is removed. Pool scope: the pool
  conventions of :mod:`transforms.pool_metrics` (performing = status
  ``current``/``delinquent``; purchases from the period start, removals at its
  end). Either way
  ``opening + new - scheduled - unscheduled - defaulted - removed = closing``
  to the fen.
- Period rates divide by the period-start balance ``opening + new`` (see
  :mod:`transforms.pool_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from transforms import schema
from transforms.pool_metrics import annualised, pool_cash, ratio
from transforms.schedules import rate_ppm, round_half_up_div

BOOK: Final = "book"
POOL: Final = "pool"
SCOPES: Final = (BOOK, POOL)
"""Scope labels: the whole book, or one pool."""

KEYS: Final = ["as_of_date", "scope", "pool_id"]

_PERFORMING_STATUS: Final = pl.col("status").is_in(list(schema.PERFORMING_STATUSES))


def previous_month_end(day: pl.Expr) -> pl.Expr:
    """The last day of the month before ``day``'s month.

    Args:
        day: A Date expression.

    Returns:
        A Date expression.
    """
    return day.dt.month_start().dt.offset_by("-1d")


def _defaulted_in_period() -> pl.Expr:
    return (
        pl.col("default_date").is_not_null()
        & (pl.col("default_date") <= pl.col("as_of_date"))
        & (pl.col("previous_as_of").is_null() | (pl.col("default_date") > pl.col("previous_as_of")))
    )


def scoped_rows(snapshots: pl.LazyFrame) -> pl.LazyFrame:
    """Each snapshot row once for the book and once more for its pool (if any).

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.

    Returns:
        The snapshot columns plus ``scope``, ``previous_as_of`` (the previous
        month-end), ``performing`` (bool), ``new_principal``,
        ``removed_in_scope`` and ``defaulted_in_period`` (Int64 fen); the book
        copy has a null ``pool_id``.
    """
    base = snapshots.with_columns(previous_as_of=previous_month_end(pl.col("as_of_date")))
    defaulted = _defaulted_in_period()
    book = base.with_columns(
        scope=pl.lit(BOOK, dtype=pl.String),
        pool_id=pl.lit(None, dtype=pl.String),
        performing=pl.col("default_date").is_null() & (pl.col("closing_principal") > 0),
        new_principal=pl.when(pl.col("months_on_book") == 0)
        .then(pl.col("opening_principal"))
        .otherwise(0),
        removed_in_scope=pl.lit(0, dtype=pl.Int64),
        defaulted_in_period=pl.when(defaulted).then(pl.col("defaulted_principal")).otherwise(0),
    )
    # Pool cash and events as of their own days; a loan removed before it
    # defaulted left the pool performing (transforms.pool_metrics).
    defaulted_before = (pl.col("default_date") <= pl.col("previous_as_of")).fill_null(False)
    removed = (pl.col("removed_principal") != 0) & ~defaulted_before
    pool = pool_cash(base.filter(pl.col("pool_id").is_not_null())).with_columns(
        scope=pl.lit(POOL, dtype=pl.String),
        performing=_PERFORMING_STATUS,
        new_principal=pl.col("purchased_principal"),
        removed_in_scope=pl.when(removed).then(pl.col("removed_principal")).otherwise(0),
        defaulted_in_period=pl.when(defaulted & ~removed)
        .then(pl.col("defaulted_principal"))
        .otherwise(0),
    )
    return pl.concat([book, pool], how="vertical")


def performing_at(
    snapshots: pl.LazyFrame, terms: pl.LazyFrame, period_ends: Sequence[date]
) -> pl.LazyFrame:
    """The performing :func:`scoped_rows` on the given dates, with loan terms joined.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        terms: Per-loan columns keyed by ``loan_id`` (left-joined: a loan
            without terms keeps nulls).
        period_ends: The as-of dates to keep.

    Returns:
        The :func:`scoped_rows` columns plus those of ``terms``, performing
        rows only.
    """
    return scoped_rows(
        snapshots.filter(pl.col("as_of_date").is_in(list(period_ends))).join(
            terms, on="loan_id", how="left"
        )
    ).filter(pl.col("performing"))


def portfolio_metrics(snapshots: pl.LazyFrame, loans: pl.LazyFrame) -> pl.LazyFrame:
    """Balances, flows, characteristics, delinquency and rates per as-of date and scope.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows of every as-of date to report
            (the previous month-end of each must be present for its opening
            balance; the first as-of date opens at zero).
        loans: ``schema.LOANS`` rows (``loan_id``, ``borrower_id`` and
            ``annual_rate`` are used).

    Returns:
        Columns ``as_of_date``, ``scope``, ``pool_id``, ``previous_as_of``;
        Int64 fen ``opening_balance``, ``new_principal``,
        ``scheduled_principal``, ``unscheduled_principal``,
        ``defaulted_principal``, ``removed_principal``, ``closing_balance``,
        ``interest``, ``fees``, ``recoveries``, ``average_balance`` (half-up),
        ``delinquent_30_plus_balance``, ``delinquent_90_plus_balance``;
        Int64 ``opening_count``, ``loan_count``, ``obligor_count``; Float64
        ``wac``, ``wam_months``, ``wala_months``,
        ``delinquency_30_plus_share``, ``delinquency_90_plus_share``, ``smm``,
        ``cpr``, ``mdr``, ``cdr``, ``payment_rate`` (null on a zero
        denominator; ``wac`` also when a performing loan lacks terms). Sorted
        by ``as_of_date``, ``scope``, ``pool_id``.
    """
    terms = loans.select(
        "loan_id", "borrower_id", rate_ppm(pl.col("annual_rate")).alias("rate_ppm")
    )
    # Join the terms once, before each row is copied into its scopes.
    rows = scoped_rows(snapshots.join(terms, on="loan_id", how="left"))
    performing = pl.col("performing")
    balance = pl.col("closing_principal").filter(performing)
    dpd = pl.col("dpd").filter(performing)
    per_date = rows.group_by(KEYS).agg(
        previous_as_of=pl.col("previous_as_of").first(),
        new_principal=pl.col("new_principal").sum(),
        scheduled_principal=pl.col("scheduled_principal_paid").sum(),
        unscheduled_principal=pl.col("unscheduled_principal_paid").sum(),
        defaulted_principal=pl.col("defaulted_in_period").sum(),
        removed_principal=pl.col("removed_in_scope").sum(),
        closing_balance=balance.sum(),
        interest=pl.col("interest_paid").sum(),
        fees=pl.col("fees_paid").sum(),
        recoveries=pl.col("recoveries").sum(),
        loan_count=performing.sum().cast(pl.Int64),
        obligor_count=pl.col("borrower_id").filter(performing).drop_nulls().n_unique(),
        rate_weighted=(
            pl.col("rate_ppm").filter(performing).cast(pl.Int128) * balance.cast(pl.Int128)
        ).sum(),
        missing_rates=pl.col("rate_ppm").filter(performing).is_null().sum(),
        term_weighted=(pl.col("remaining_term").filter(performing).cast(pl.Int64) * balance).sum(),
        age_weighted=(pl.col("months_on_book").filter(performing).cast(pl.Int64) * balance).sum(),
        delinquent_30_plus_balance=balance.filter(dpd > 30).sum(),
        delinquent_90_plus_balance=balance.filter(dpd > 90).sum(),
    )
    opening = per_date.select(
        pl.col("as_of_date").alias("previous_as_of"),
        "scope",
        "pool_id",
        pl.col("closing_balance").alias("opening_balance"),
        pl.col("loan_count").alias("opening_count"),
    )
    closing = pl.col("closing_balance")
    start = pl.col("opening_balance") + pl.col("new_principal")
    scheduled = pl.col("scheduled_principal")
    unscheduled = pl.col("unscheduled_principal")
    money = [
        "opening_balance",
        "new_principal",
        "scheduled_principal",
        "unscheduled_principal",
        "defaulted_principal",
        "removed_principal",
        "closing_balance",
        "interest",
        "fees",
        "recoveries",
    ]
    return (
        per_date.join(
            opening, on=["previous_as_of", "scope", "pool_id"], how="left", nulls_equal=True
        )
        .with_columns(
            pl.col("opening_balance", "opening_count").fill_null(0),
            pl.col("obligor_count").cast(pl.Int64),
        )
        .with_columns(
            wac=pl.when(pl.col("missing_rates") == 0).then(
                ratio(pl.col("rate_weighted"), closing) / schema.RATE_SCALE
            ),
            wam_months=ratio(pl.col("term_weighted"), closing),
            wala_months=ratio(pl.col("age_weighted"), closing),
            average_balance=pl.when(pl.col("loan_count") > 0).then(
                round_half_up_div(closing, pl.col("loan_count"))
            ),
            delinquency_30_plus_share=ratio(pl.col("delinquent_30_plus_balance"), closing),
            delinquency_90_plus_share=ratio(pl.col("delinquent_90_plus_balance"), closing),
            smm=ratio(unscheduled, start - scheduled),
            mdr=ratio(pl.col("defaulted_principal"), start),
            payment_rate=ratio(scheduled + unscheduled, start),
        )
        .with_columns(cpr=annualised(pl.col("smm")), cdr=annualised(pl.col("mdr")))
        .select(
            *KEYS,
            "previous_as_of",
            *(pl.col(c).cast(pl.Int64) for c in money),
            "opening_count",
            "loan_count",
            "obligor_count",
            "average_balance",
            "wac",
            "wam_months",
            "wala_months",
            pl.col("delinquent_30_plus_balance", "delinquent_90_plus_balance").cast(pl.Int64),
            "delinquency_30_plus_share",
            "delinquency_90_plus_share",
            "smm",
            "cpr",
            "mdr",
            "cdr",
            "payment_rate",
        )
        .sort(KEYS, nulls_last=False)
    )


def portfolio_breaks(metrics: pl.LazyFrame) -> pl.LazyFrame:
    """Rows of :func:`portfolio_metrics` whose roll-forward does not close.

    Args:
        metrics: Output of :func:`portfolio_metrics`.

    Returns:
        The failing rows with ``difference`` (Int64 fen, ``opening + new -
        scheduled - unscheduled - defaulted - removed - closing``); empty when
        every row closes.
    """
    difference = (
        pl.col("opening_balance")
        + pl.col("new_principal")
        - pl.col("scheduled_principal")
        - pl.col("unscheduled_principal")
        - pl.col("defaulted_principal")
        - pl.col("removed_principal")
        - pl.col("closing_balance")
    )
    return metrics.with_columns(difference=difference).filter(pl.col("difference") != 0)
