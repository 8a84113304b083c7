"""Staging casts: canonical text columns to typed columns, exact and strict.

A landing row arrives as text. Each value either parses exactly under its
column's type or the row is marked with the rule ``<dataset>.<column>.type``;
nothing is rounded, truncated or guessed. Money in yuan with at most two
decimals becomes integer fen, rates become exact decimals.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from transforms import schema

TYPE_ERRORS: Final = "type_errors"
"""List column of the type rule ids a row broke (empty when it parsed)."""

_MONEY = r"^-?[0-9]{1,13}(\.[0-9]{1,2})?$"
_RATE = r"^-?[0-9]{1,3}(\.[0-9]{1,6})?$"
_INT = r"^-?[0-9]{1,9}$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def type_rule_id(dataset: str, column: str) -> str:
    """The rule id a value breaks when it does not parse as its column's type."""
    return f"{dataset}.{column}.type"


def _parse(text: pl.Expr, dtype: schema.Dtype) -> tuple[pl.Expr, pl.Expr]:
    """An expression parsing ``text`` to ``dtype`` and one that is true where it fits."""
    if dtype == schema.MONEY:
        fits = text.str.contains(_MONEY)
        value = (text.str.to_decimal(scale=2) * 100).cast(pl.Int64)
    elif dtype == schema.RATE:
        fits = text.str.contains(_RATE)
        value = text.str.to_decimal(scale=6).cast(schema.RATE)
    elif dtype == pl.Date:
        fits = text.str.contains(_DATE)
        value = text.str.to_date("%Y-%m-%d", strict=False)
        fits = fits & value.is_not_null()
    elif dtype in (pl.Int32, pl.Int64):
        fits = text.str.contains(_INT)
        value = text.cast(dtype, strict=False)
        fits = fits & value.is_not_null()
    else:
        return text, pl.lit(True)
    return pl.when(fits).then(value).otherwise(None), fits


def cast_landing(raw: pl.LazyFrame, dataset: str) -> pl.LazyFrame:
    """Cast a landing frame of text columns to the dataset's canonical types.

    Args:
        raw: every canonical column of ``dataset`` as text (absent optional
            columns as nulls), plus any lineage columns, which pass through.
        dataset: ``loans``, ``repayments`` or ``pool_assets``.

    Returns:
        The typed columns in canonical order, the lineage columns, and
        ``type_errors``: the type rule ids broken by the row. A value that
        does not parse becomes null and its rule id is listed; blank text is
        a null, left for the contract's required-column rules to judge.
    """
    columns = schema.INPUT_DATASETS[dataset]
    names = raw.collect_schema().names()
    lineage = [c for c in names if c not in columns]
    typed: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    for column, dtype in columns.items():
        text = pl.col(column).cast(pl.String).str.strip_chars()
        text = pl.when(text == "").then(None).otherwise(text)
        value, fits = _parse(text, dtype)
        typed.append(value.alias(column))
        errors.append(
            pl.when(text.is_not_null() & ~fits)
            .then(pl.lit(type_rule_id(dataset, column)))
            .otherwise(None)
        )
    return raw.select(
        *typed,
        *[pl.col(c) for c in lineage],
        pl.concat_list(errors).list.drop_nulls().alias(TYPE_ERRORS),
    )
