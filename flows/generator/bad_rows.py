"""A realistic handful of bad rows in one day's delivery, so the data-quality report has content.

Real servicer files are never perfectly clean: a keying slip in a date, a figure
typed with a thousands separator, a rate in percent, a stray control character
from a legacy system, a repayment for a loan the file never delivered, a pool
event for a pool with no deal. :func:`spoil` appends such rows to one business
date's files (about 3% of each file, so no file is rejected whole for its share
of bad rows). Each bad row is a copy of a real row of the same file with new
identifiers and one value broken, so it breaks exactly one rule and nothing
else of the book changes: every real loan, repayment and pool event is kept.

The rows are part of the files as delivered (a delivery's control file counts
them), and they are rejected row by row into quarantine, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import polars as pl

SHARE_PERCENT: Final = 3
"""Bad rows per 100 rows of a spoiled file (at least one)."""

_JUDGED_BY_SHARE_FROM: Final = 20
"""``flows.ingest.MIN_ROWS_FOR_SHARE``: from this many rows a file's share of bad rows counts."""

_Break = Callable[[dict[str, str], int], dict[str, str]]


def _loan_breaks() -> tuple[_Break, ...]:
    def changed(row: dict[str, str], k: int, **values: str) -> dict[str, str]:
        return {**row, "loan_id": f"{row['loan_id']}-BAD{k}", **values}

    return (
        lambda r, k: changed(r, k, origination_date="1900-01-15"),  # keyed year
        lambda r, k: changed(r, k, principal="12,000.00"),  # thousands separator
        lambda r, k: changed(r, k, annual_rate="18.25"),  # percent, not a decimal
        lambda r, k: changed(r, k, channel=r["channel"] + "\x00"),  # legacy NUL byte
        lambda r, k: changed(r, k, first_due_date="2025-02-30"),  # no such day
    )


def _repayment_breaks() -> tuple[_Break, ...]:
    def changed(row: dict[str, str], k: int, **values: str) -> dict[str, str]:
        return {**row, "repayment_id": f"{row['repayment_id']}-BAD{k}", **values}

    return (
        lambda r, k: changed(r, k, loan_id=f"LN-NOT-DELIVERED-{k}"),  # unknown loan
        lambda r, k: changed(r, k, fee_paid="-5.00"),  # sign flipped
        lambda r, k: changed(r, k, value_date="1899-12-31"),  # legacy "no date" value
        lambda r, k: changed(r, k, principal_paid="1.5E+2"),  # scientific notation
    )


def _pool_breaks() -> tuple[_Break, ...]:
    return (
        lambda r, k: {**r, "pool_id": f"{r['pool_id']}-OLD"},  # a pool without a deal
        lambda r, k: {**r, "event_date": "2024-13-01"},  # month 13
    )


_BREAKS: Final[dict[str, Callable[[], tuple[_Break, ...]]]] = {
    "loans": _loan_breaks,
    "repayments": _repayment_breaks,
    "pool_assets": _pool_breaks,
}


def spoil(dataset: str, part: pl.DataFrame) -> pl.DataFrame:
    """``part`` (one day's rows of ``dataset``) with bad rows appended, every column as text.

    Deterministic: the rows copied are spread evenly over the file, and the kinds of
    break follow each other in a fixed order.
    """
    text = part.select(pl.all().cast(pl.String))
    if text.height == 0:
        return text
    breaks = _BREAKS[dataset]()
    count = max(1, text.height * SHARE_PERCENT // 100)
    # A small file is judged row by row whatever its share of bad rows, so it may show
    # every kind; it must stay below the size at which a share rejects it whole.
    while count < len(breaks) and text.height + count + 1 < _JUDGED_BY_SHARE_FROM:
        count += 1
    rows = text.to_dicts()
    step = max(1, text.height // count)
    bad = [
        breaks[k % len(breaks)]({c: v or "" for c, v in rows[(k * step) % len(rows)].items()}, k)
        for k in range(count)
    ]
    return pl.concat([text, pl.DataFrame(bad, schema=text.schema)])
