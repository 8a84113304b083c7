"""Characteristics of the loans bought into a pool in a collection period (持续购买).

DOMAIN.md section 3 puts the purchased loans' own characteristics beside the
pool's. A loan is bought in the period whose snapshot carries its
``purchased_principal`` (the pool event since the previous as-of date); the
principal bought is its weight:

- ``purchased_wac`` = sum(annual rate x principal bought) / sum(principal bought),
  null when a bought loan has no ``loans`` row;
- ``purchased_wam_months`` = sum(remaining term x principal bought) / sum(principal
  bought), the remaining term at the as-of date of the purchase's snapshot;
- ``purchased_average_balance`` = sum(principal bought) / loans bought, half-up to the fen.

Rows at a pool's own cut-off date are its initial pool, not a purchase. New
drawings on revolving accounts already in the pool (``new_drawings``, 新增用款) are
not purchases either: they never count here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from transforms import schema
from transforms.pool_metrics import ratio
from transforms.schedules import rate_ppm, round_half_up_div


def purchased_characteristics(
    snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    period_ends: Sequence[date],
    cutoffs: Mapping[str, date],
) -> pl.LazyFrame:
    """WAC, WAM and average balance of the loans bought per pool and collection period.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows at every date that closes a
            snapshot interval (month-ends and the pools' cut-off dates).
        loans: ``schema.LOANS`` rows (``loan_id``, ``annual_rate`` are used).
        period_ends: Month-ends to report; a purchase belongs to the month of
            its snapshot's as-of date.
        cutoffs: Cut-off date per pool (rows of a pool at its cut-off are skipped).

    Returns:
        Columns ``pool_id``, ``period_end``, Int64 ``purchased_loans``,
        ``purchased_balance`` and ``purchased_average_balance`` (fen), Float64
        ``purchased_wac`` and ``purchased_wam_months``; only periods with a
        purchase, sorted by ``pool_id``, ``period_end``.
    """
    cutoff_frame = pl.LazyFrame(
        {"pool_id": list(cutoffs), "cutoff_date": list(cutoffs.values())},
        schema={"pool_id": pl.String, "cutoff_date": pl.Date},
    )
    keys = ["pool_id", "period_end"]
    bought = (
        snapshots.filter(pl.col("pool_id").is_not_null() & (pl.col("purchased_principal") > 0))
        .join(cutoff_frame, on="pool_id", how="left")
        .filter(pl.col("cutoff_date").is_null() | (pl.col("as_of_date") != pl.col("cutoff_date")))
        .with_columns(period_end=pl.col("as_of_date").dt.month_end())
        .filter(pl.col("period_end").is_in(list(period_ends)))
        .join(
            loans.select("loan_id", rate_ppm(pl.col("annual_rate")).alias("rate_ppm")),
            on="loan_id",
            how="left",
        )
    )
    weight = pl.col("purchased_principal").cast(pl.Int64)
    return (
        bought.group_by(keys)
        .agg(
            purchased_loans=pl.col("loan_id").n_unique().cast(pl.Int64),
            purchased_balance=weight.sum(),
            rate_weighted=(pl.col("rate_ppm").cast(pl.Int128) * weight.cast(pl.Int128)).sum(),
            missing_rates=pl.col("rate_ppm").is_null().sum(),
            term_weighted=(pl.col("remaining_term").cast(pl.Int64) * weight).sum(),
        )
        .select(
            *keys,
            "purchased_loans",
            "purchased_balance",
            purchased_average_balance=round_half_up_div(
                pl.col("purchased_balance"), pl.col("purchased_loans")
            ).cast(pl.Int64),
            purchased_wac=pl.when(pl.col("missing_rates") == 0).then(
                ratio(pl.col("rate_weighted"), pl.col("purchased_balance")) / schema.RATE_SCALE
            ),
            purchased_wam_months=ratio(pl.col("term_weighted"), pl.col("purchased_balance")),
        )
        .sort(keys)
    )
