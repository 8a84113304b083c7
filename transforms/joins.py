"""Joins more than one stage needs: a loan's latest known row as of a date."""

from __future__ import annotations

from typing import TypeVar

import polars as pl

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def latest_per_loan(rows: FrameT, history: FrameT, *, on: str, history_on: str) -> FrameT:
    """``rows`` with the same loan's latest ``history`` row dated on or before ``on``.

    Args:
        rows: Rows with ``loan_id`` and the date column ``on``.
        history: Rows with ``loan_id`` and the date column ``history_on``; its
            other columns are added to ``rows``.
        on: The date each row is looked up at.
        history_on: The date each history row holds from.

    Returns:
        ``rows`` sorted by ``on``, the history's columns null where the loan has no
        history row on or before the date.
    """
    return rows.sort(on).join_asof(
        history.sort(history_on),
        left_on=on,
        right_on=history_on,
        by="loan_id",
        strategy="backward",
        # Sorted just above; with ``by`` Polars cannot check the order itself.
        check_sortedness=False,
    )
