"""Obligor and geographic concentration of the performing balance.

Per period end and scope (:mod:`transforms.portfolio`): the largest obligor's
and the ten largest obligors' share of the performing balance, the
Herfindahl-Hirschman index over obligors (``HHI = sum of w_i^2`` with
``w_i`` an obligor's share, un-normalised: 1 for a single obligor, ``1/n``
for ``n`` equal ones) and the largest province's share. Per-province shares
are the ``province`` stratification (:mod:`transforms.stratification`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from transforms import schema
from transforms.pool_metrics import ratio
from transforms.portfolio import performing_at

KEYS: Final = ["period_end", "scope", "pool_id"]
TOP_OBLIGORS: Final = 10


def concentration(
    snapshots: pl.LazyFrame, loans: pl.LazyFrame, period_ends: Sequence[date]
) -> pl.LazyFrame:
    """Obligor concentration and the top province per period end and scope.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        loans: ``schema.LOANS`` rows (``loan_id``, ``borrower_id``,
            ``province`` are used).
        period_ends: Dates to report.

    Returns:
        Columns ``period_end``, ``scope``, ``pool_id``, Int64 ``balance``
        (performing, fen), ``obligor_count``, ``top1_obligor_balance``,
        ``top10_obligor_balance`` (fen), Float64 ``top1_obligor_share``,
        ``top10_obligor_share``, ``hhi_obligor``, String ``top_province``
        (the largest by balance, ties to the smaller code) and Float64
        ``top_province_share``; shares null for an empty scope. Sorted by
        the keys. A loan without a ``loans`` row counts as its own obligor.
    """
    terms = loans.select("loan_id", "borrower_id", "province")
    rows = performing_at(snapshots, terms, period_ends).select(
        pl.col("as_of_date").alias("period_end"),
        "scope",
        "pool_id",
        pl.coalesce("borrower_id", pl.lit("loan:") + pl.col("loan_id")).alias("obligor"),
        pl.col("province").fill_null("unknown"),
        pl.col("closing_principal").alias("balance"),
    )
    obligors = rows.group_by(*KEYS, "obligor").agg(pl.col("balance").sum())
    total = pl.col("balance").sum()
    by_obligor = obligors.group_by(KEYS).agg(
        balance=total,
        obligor_count=pl.len().cast(pl.Int64),
        top1_obligor_balance=pl.col("balance").max(),
        top10_obligor_balance=pl.col("balance").top_k(TOP_OBLIGORS).sum(),
        # Summed exactly in integers: a float sum would depend on the summation order.
        balance_squares=(
            pl.col("balance").cast(pl.Int128) * pl.col("balance").cast(pl.Int128)
        ).sum(),
    )
    top_province = (
        rows.group_by(*KEYS, "province")
        .agg(pl.col("balance").sum())
        .sort(*KEYS, "balance", "province", descending=[False, False, False, True, False])
        .group_by(KEYS, maintain_order=True)
        .agg(
            top_province=pl.col("province").first(),
            top_province_balance=pl.col("balance").first(),
        )
    )
    return (
        by_obligor.join(top_province, on=KEYS, how="left", nulls_equal=True)
        .with_columns(
            top1_obligor_share=ratio(pl.col("top1_obligor_balance"), pl.col("balance")),
            top10_obligor_share=ratio(pl.col("top10_obligor_balance"), pl.col("balance")),
            hhi_obligor=ratio(
                pl.col("balance_squares"),
                pl.col("balance").cast(pl.Int128) * pl.col("balance").cast(pl.Int128),
            ),
            top_province_share=ratio(pl.col("top_province_balance"), pl.col("balance")),
        )
        .select(
            *KEYS,
            pl.col("balance", "top1_obligor_balance", "top10_obligor_balance").cast(pl.Int64),
            "obligor_count",
            "top1_obligor_share",
            "top10_obligor_share",
            "hhi_obligor",
            "top_province",
            "top_province_share",
        )
        .sort(KEYS, nulls_last=False)
    )


LARGEST_OBLIGORS: Final = 20
"""Obligors listed one by one in a disclosure (DOMAIN.md section 15)."""
OBLIGOR_FLOOR_BP: Final = 100
"""An obligor is listed when its share of the pool balance exceeds this (basis points: 1%)."""


def top_obligors(
    snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    period_ends: Sequence[date],
    *,
    limit: int = LARGEST_OBLIGORS,
    floor_bp: int = OBLIGOR_FLOOR_BP,
) -> pl.LazyFrame:
    """The largest obligors of each pool above a share of its performing balance, by rank.

    The denominator is the pool's performing balance, as for
    :func:`concentration` (so rank 1's share is ``top1_obligor_share`` when it
    clears the floor). The rows are anonymous: the obligor is used to add up
    its loans and to order ties, and is not returned.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        loans: ``schema.LOANS`` rows (``loan_id``, ``borrower_id`` are used).
        period_ends: Dates to report.
        limit: At most this many obligors per pool and period.
        floor_bp: Only obligors whose share is strictly above this many basis points.

    Returns:
        Columns ``pool_id``, ``period_end``, Int32 ``rank`` (1 = largest),
        Int64 ``balance`` (fen) and Float64 ``balance_share``, sorted by
        ``pool_id``, ``period_end``, ``rank``; ties in balance are ranked by
        the obligor's identifier (a stable order that is not shown).
    """
    keys = ["pool_id", "period_end"]
    obligors = (
        snapshots.filter(
            pl.col("as_of_date").is_in(list(period_ends))
            & pl.col("pool_id").is_not_null()
            & pl.col("status").is_in(list(schema.PERFORMING_STATUSES))
        )
        .join(loans.select("loan_id", "borrower_id"), on="loan_id", how="left")
        .select(
            "pool_id",
            pl.col("as_of_date").alias("period_end"),
            pl.coalesce("borrower_id", pl.lit("loan:") + pl.col("loan_id")).alias("obligor"),
            pl.col("closing_principal").cast(pl.Int64).alias("balance"),
        )
        .group_by(*keys, "obligor")
        .agg(pl.col("balance").sum())
        .with_columns(total=pl.col("balance").sum().over(keys))
    )
    return (
        obligors.filter(
            pl.col("balance").cast(pl.Int128) * 10_000 > pl.col("total").cast(pl.Int128) * floor_bp
        )
        .sort(*keys, "balance", "obligor", descending=[False, False, True, False])
        .with_columns(rank=(pl.int_range(pl.len()).over(keys) + 1).cast(pl.Int32))
        .filter(pl.col("rank") <= limit)
        .select(*keys, "rank", "balance", balance_share=ratio(pl.col("balance"), pl.col("total")))
        .sort(*keys, "rank")
    )
