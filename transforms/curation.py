"""Current views of the staged deliveries.

A loan delivered again is a correction: the latest delivery wins. A repayment
delivered again unchanged is the same cash event and is kept once; pool events
are kept once per (pool, loan, date, event).
"""

from __future__ import annotations

import polars as pl

from transforms import schema

_DELIVERY_ORDER = ("business_date", "source_file", "source_line")


def current_loans(staged: pl.LazyFrame) -> pl.LazyFrame:
    """One row per loan_id: its latest delivery, sorted by loan_id."""
    return (
        staged.sort(*_DELIVERY_ORDER)
        .unique(subset="loan_id", keep="last", maintain_order=True)
        .select(list(schema.LOANS))
        .sort("loan_id")
    )


def loan_corrections(staged: pl.LazyFrame) -> pl.LazyFrame:
    """Loans delivered more than once with different terms: one row per later delivery."""
    terms = [c for c in schema.LOANS if c != "loan_id"]
    return (
        staged.sort(*_DELIVERY_ORDER)
        .with_columns(pl.struct(terms).alias("_terms"))
        .with_columns(pl.col("_terms").shift(1).over("loan_id").alias("_previous"))
        .filter(pl.col("_previous").is_not_null() & (pl.col("_terms") != pl.col("_previous")))
        .select("loan_id", *_DELIVERY_ORDER)
        .sort("loan_id", *_DELIVERY_ORDER)
    )


def current_repayments(staged: pl.LazyFrame) -> pl.LazyFrame:
    """One row per repayment_id (the first delivery), sorted by loan, date and id."""
    return (
        staged.sort(*_DELIVERY_ORDER)
        .unique(subset="repayment_id", keep="first", maintain_order=True)
        .select(list(schema.REPAYMENTS))
        .sort("loan_id", "value_date", "repayment_id")
    )


def current_pool_assets(staged: pl.LazyFrame) -> pl.LazyFrame:
    """Pool membership events, each once, in date order."""
    keys = ["pool_id", "loan_id", "event_date", "event"]
    return (
        staged.sort(*_DELIVERY_ORDER)
        .unique(subset=keys, keep="last", maintain_order=True)
        .select(list(schema.POOL_ASSETS))
        .sort("pool_id", "event_date", "loan_id", "event")
    )
