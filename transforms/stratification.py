"""Stratification tables (分布表) of the performing balance at each period end.

Every dimension of DOMAIN.md's disclosure list: outstanding balance, annual
rate, remaining term, months on book, province, borrower age, credit score
and product. Numeric dimensions are cut into bands ``[lower, upper)`` by
configurable edges (:class:`BandEdges`): edges ``(a, b)`` give the bands
``< a``, ``[a, b)`` and ``>= b``. Categorical dimensions have one band per
value. A loan whose value is unknown (no age, no score, no ``loans`` row)
falls in the band ``unknown``, listed last, so that every table adds up to
the performing pool.

Per band: count, balance, balance share, count share and WAC (weighted by
closing balance). Scopes as in :mod:`transforms.portfolio`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

import polars as pl

from transforms import schema
from transforms.pool_metrics import ratio
from transforms.portfolio import performing_at
from transforms.schedules import rate_ppm

KEYS: Final = ["period_end", "scope", "pool_id"]
UNKNOWN: Final = "unknown"

DIMENSIONS: Final = (
    "balance",
    "rate",
    "remaining_term",
    "months_on_book",
    "province",
    "borrower_age",
    "credit_score",
    "product",
)
"""Stratification dimensions in report order."""

_NUMERIC: Final = (
    "balance",
    "rate",
    "remaining_term",
    "months_on_book",
    "borrower_age",
    "credit_score",
)


@dataclass(frozen=True)
class BandEdges:
    """Band edges of the numeric dimensions, ascending.

    Attributes:
        balance: Outstanding principal edges in fen.
        rate: Annual rate edges in parts per million (100_000 is 10%).
        remaining_term: Remaining instalments.
        months_on_book: Whole months since origination.
        borrower_age: Years.
        credit_score: Score points.
    """

    balance: tuple[int, ...] = (100_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000)
    rate: tuple[int, ...] = (60_000, 100_000, 140_000, 180_000, 240_000)
    remaining_term: tuple[int, ...] = (3, 6, 9, 12, 18, 24)
    months_on_book: tuple[int, ...] = (3, 6, 12, 24)
    borrower_age: tuple[int, ...] = (25, 30, 35, 40, 50, 60)
    credit_score: tuple[int, ...] = (550, 600, 650, 700, 750, 800)

    def __post_init__(self) -> None:
        for name in _NUMERIC:
            edges: tuple[int, ...] = getattr(self, name)
            if not edges or any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"{name} band edges must be non-empty and strictly ascending")


def _format_edge(dimension: str, edge: int) -> str:
    if dimension == "balance":
        return str(Decimal(edge) / schema.FEN_PER_YUAN)
    if dimension == "rate":
        return f"{(Decimal(edge) / 10_000).normalize():f}%"
    return str(edge)


def band_labels(dimension: str, edges: Sequence[int]) -> list[str]:
    """Labels of the bands cut by ``edges`` (yuan for balance, percent for rate).

    Args:
        dimension: One of the numeric :data:`DIMENSIONS`.
        edges: Ascending edges in the dimension's unit.

    Returns:
        ``len(edges) + 1`` labels, e.g. ``["< 1000", "[1000, 5000)", ">= 5000"]``.
    """
    text = [_format_edge(dimension, e) for e in edges]
    middle = [f"[{a}, {b})" for a, b in itertools.pairwise(text)]
    return [f"< {text[0]}", *middle, f">= {text[-1]}"]


def _numeric_band(value: pl.Expr, dimension: str, edges: Sequence[int]) -> tuple[pl.Expr, pl.Expr]:
    index = pl.sum_horizontal(*((value >= e).cast(pl.Int32) for e in edges))
    labels = dict(enumerate(band_labels(dimension, edges)))
    band = (
        pl.when(value.is_null())
        .then(pl.lit(UNKNOWN))
        .otherwise(index.replace_strict(labels, return_dtype=pl.String))
    )
    order = pl.when(value.is_null()).then(len(edges) + 1).otherwise(index).cast(pl.Int32)
    return band, order


def stratifications(
    snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    period_ends: Sequence[date],
    edges: BandEdges | None = None,
) -> pl.LazyFrame:
    """Stratification tables of every dimension per period end and scope.

    Args:
        snapshots: ``schema.LOAN_SNAPSHOTS`` rows.
        loans: ``schema.LOANS`` rows (``annual_rate``, ``province``,
            ``borrower_age``, ``credit_score``, ``product`` are used).
        period_ends: Dates to report.
        edges: Band edges (defaults: :class:`BandEdges`).

    Returns:
        Columns ``period_end``, ``scope``, ``pool_id``, ``dimension`` (in
        :data:`DIMENSIONS` order), ``band``, ``band_order`` (Int32: numeric
        bands low to high, categories by name, ``unknown`` last), Int64
        ``count``, ``balance`` (fen), Float64 ``balance_share``,
        ``count_share`` and ``wac`` (null when the band's balance is zero or
        a loan lacks a rate). Only bands holding loans are listed.
    """
    edges = edges or BandEdges()
    terms = loans.select(
        "loan_id",
        rate_ppm(pl.col("annual_rate")).alias("rate_ppm"),
        "province",
        pl.col("borrower_age").cast(pl.Int64),
        pl.col("credit_score").cast(pl.Int64),
        "product",
    )
    rows = performing_at(snapshots, terms, period_ends).select(
        pl.col("as_of_date").alias("period_end"),
        "scope",
        "pool_id",
        pl.col("closing_principal").alias("balance"),
        "rate_ppm",
        "province",
        "borrower_age",
        "credit_score",
        "product",
        pl.col("remaining_term").cast(pl.Int64),
        pl.col("months_on_book").cast(pl.Int64),
    )
    numeric = {
        "balance": (pl.col("balance"), edges.balance),
        "rate": (pl.col("rate_ppm"), edges.rate),
        "remaining_term": (pl.col("remaining_term"), edges.remaining_term),
        "months_on_book": (pl.col("months_on_book"), edges.months_on_book),
        "borrower_age": (pl.col("borrower_age"), edges.borrower_age),
        "credit_score": (pl.col("credit_score"), edges.credit_score),
    }
    tables = []
    for position, dimension in enumerate(DIMENSIONS):
        if dimension in numeric:
            value, cut = numeric[dimension]
            band, order = _numeric_band(value, dimension, cut)
        else:
            band = pl.col(dimension).fill_null(UNKNOWN)
            # Categories sort by name; the order of the fixed bands is set below.
            order = pl.lit(0, dtype=pl.Int32)
        grouped = (
            rows.with_columns(band=band, band_order=order)
            .group_by(*KEYS, "band", "band_order")
            .agg(
                count=pl.len().cast(pl.Int64),
                balance=pl.col("balance").sum(),
                rate_weighted=(
                    pl.col("rate_ppm").cast(pl.Int128) * pl.col("balance").cast(pl.Int128)
                ).sum(),
                missing_rates=pl.col("rate_ppm").is_null().sum(),
            )
            .with_columns(
                dimension=pl.lit(dimension, dtype=pl.String),
                dimension_order=pl.lit(position, dtype=pl.Int32),
            )
        )
        if dimension not in numeric:
            grouped = grouped.with_columns(
                band_order=pl.when(pl.col("band") == UNKNOWN)
                .then(pl.lit(1 << 30))
                .otherwise(pl.col("band").rank("dense").over(KEYS) - 1)
                .cast(pl.Int32)
            )
        tables.append(grouped)
    return (
        pl.concat(tables, how="vertical")
        .with_columns(
            balance_share=ratio(
                pl.col("balance"), pl.col("balance").sum().over(*KEYS, "dimension")
            ),
            count_share=ratio(pl.col("count"), pl.col("count").sum().over(*KEYS, "dimension")),
            wac=pl.when(pl.col("missing_rates") == 0).then(
                ratio(pl.col("rate_weighted"), pl.col("balance")) / schema.RATE_SCALE
            ),
        )
        .sort(*KEYS, "dimension_order", "band_order", "band", nulls_last=False)
        .select(
            *KEYS,
            "dimension",
            "band",
            "band_order",
            pl.col("count").cast(pl.Int64),
            pl.col("balance").cast(pl.Int64),
            "balance_share",
            "count_share",
            "wac",
        )
    )
