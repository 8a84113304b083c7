"""Loan batches: the performance engine over loan_id hash buckets.

Every figure the engine computes belongs to one loan: its schedule, its cash,
its pool events and its running state. So the book can be split into buckets
of loans, each bucket run on its own (in this process, another one, or on
another machine), and the outputs put back together; the result is exactly
the one of a single run over the whole book. Memory then follows the size of
a bucket, not of the book.

A bucket is either a contiguous range of ``loan_id`` (:class:`LoanRange`,
cut by :func:`loan_ranges` at every ``batch_loans``-th id of the sorted
book) or a hash of the ``loan_id`` with a fixed seed, taken modulo the number
of buckets. Ranges are what the pipeline runs: the curated datasets are
sorted by ``loan_id``, so a range job reads only the Parquet row groups that
hold its loans, and the ranges' outputs of one as-of date, taken in range
order, are already in ``loan_id`` order (a concatenation, not a merge). Hash
buckets need no look at the ids first: the same id always falls in the same
bucket for a given bucket count. Which bucket a loan falls in never changes a
result, only where and when it is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl

from transforms import schema
from transforms.performance import EngineRun, EngineState, PerformanceRules, run_engine

BUCKET_SEED: Final = 20_240_101
"""Seed of the loan_id hash (fixed, so a run's split is reproducible)."""

_DEFAULT_RULES: Final = PerformanceRules()


def bucket_count(loans: int, batch_loans: int) -> int:
    """How many buckets hold ``loans`` loans with about ``batch_loans`` loans each.

    Raises:
        ValueError: If ``batch_loans`` is not positive.
    """
    if batch_loans <= 0:
        raise ValueError(f"batch size must be positive, not {batch_loans}")
    return max(1, -(-loans // batch_loans))


def loan_bucket(loan_id: pl.Expr, buckets: int) -> pl.Expr:
    """The bucket (0 .. ``buckets`` - 1) of each loan id, as ``UInt32``."""
    return (loan_id.cast(pl.String).hash(BUCKET_SEED) % buckets).cast(pl.UInt32)


def in_bucket(frame: pl.LazyFrame, bucket: int, buckets: int) -> pl.LazyFrame:
    """The rows of ``frame`` whose ``loan_id`` falls in ``bucket``."""
    return frame.filter(loan_bucket(pl.col("loan_id"), buckets) == bucket)


@dataclass(frozen=True)
class LoanRange:
    """The loans with ``lower <= loan_id < upper``; None leaves that side open."""

    lower: str | None = None
    upper: str | None = None

    def holds(self, loan_id: pl.Expr) -> pl.Expr:
        """Whether each ``loan_id`` is in the range (a filter Parquet scans push down)."""
        bounds = []
        if self.lower is not None:
            bounds.append(loan_id >= self.lower)
        if self.upper is not None:
            bounds.append(loan_id < self.upper)
        return pl.all_horizontal(bounds) if bounds else pl.lit(True)

    def rows(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """The rows of ``frame`` whose ``loan_id`` is in the range."""
        if self.lower is None and self.upper is None:
            return frame
        return frame.filter(self.holds(pl.col("loan_id")))


def loan_ranges(loan_ids: pl.Series, batch_loans: int) -> list[LoanRange]:
    """Contiguous ``loan_id`` ranges of about ``batch_loans`` loans each, in id order.

    The ranges cover every string (the first is open below, the last above),
    so a loan missing from ``loan_ids`` still falls in exactly one; they are
    cut at every ``batch_loans``-th id of the sorted ids (an id repeated
    across a cut stays in one range).

    Raises:
        ValueError: If ``batch_loans`` is not positive.
    """
    buckets = bucket_count(loan_ids.len(), batch_loans)
    ids = loan_ids.cast(pl.String).drop_nulls()
    if not ids.is_sorted():
        ids = ids.sort()
    cuts: list[str] = []
    for b in range(1, buckets):
        cut = ids[b * ids.len() // buckets]
        if not cuts or cut > cuts[-1]:
            cuts.append(cut)
    return [
        LoanRange(lower, upper) for lower, upper in zip([None, *cuts], [*cuts, None], strict=True)
    ]


def concat_ranges(
    parts: Sequence[pl.LazyFrame], columns: schema.Columns = schema.LOAN_SNAPSHOTS
) -> pl.LazyFrame:
    """Snapshots (or states) of consecutive loan ranges, taken in range order, as one run's.

    Within one as-of date each part is in ``loan_id`` order and the ranges
    follow each other, so their concatenation is in ``loan_id`` order too.
    Without parts: no rows of ``columns`` (the snapshots', unless given).
    """
    if not parts:
        return pl.LazyFrame(schema=columns)
    return pl.concat(parts, how="vertical")


def engine_batch(
    loans: pl.LazyFrame,
    schedules: pl.LazyFrame,
    repayments: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    as_of_dates: Sequence[date],
    *,
    bucket: int = 0,
    buckets: int = 1,
    loan_range: LoanRange | None = None,
    state: EngineState | None = None,
    base: date | None = None,
    rules: PerformanceRules = _DEFAULT_RULES,
    rules_by_pool: Mapping[str, PerformanceRules] | None = None,
) -> EngineRun:
    """Run the engine (:func:`transforms.performance.run_engine`) on one bucket of loans.

    Every input, and the state when given, is restricted to the bucket's loans:
    hash bucket ``bucket`` of ``buckets`` and, when given, ``loan_range``; the
    arguments are otherwise those of ``run_engine``.

    Returns:
        The bucket's snapshots (sorted by ``as_of_date``, ``loan_id``) and the
        state of its loans.
    """
    if not 0 <= bucket < buckets:
        raise ValueError(f"bucket {bucket} is not one of 0..{buckets - 1}")

    def part(frame: pl.LazyFrame) -> pl.LazyFrame:
        if loan_range is not None:
            frame = loan_range.rows(frame)
        return frame if buckets == 1 else in_bucket(frame, bucket, buckets)

    batch_state = None if state is None else EngineState(state.as_of, state.base, part(state.loans))
    return run_engine(
        part(loans),
        part(schedules),
        part(repayments),
        part(pool_assets),
        as_of_dates,
        state=batch_state,
        base=base,
        rules=rules,
        rules_by_pool=rules_by_pool,
    )


def combine_snapshots(parts: Sequence[pl.LazyFrame]) -> pl.LazyFrame:
    """Snapshots of several buckets (or several dates) as one run's: sorted by date, loan.

    Each (``as_of_date``, ``loan_id``) is in exactly one part, so the sort
    restores the order of a single run. Callers keep the sort small by
    combining one as-of date at a time.
    """
    if not parts:
        return pl.LazyFrame(schema=schema.LOAN_SNAPSHOTS)
    return pl.concat(parts, how="vertical").sort("as_of_date", "loan_id")


def merge_snapshots(parts: Sequence[pl.LazyFrame]) -> pl.LazyFrame:
    """Snapshots of one as-of date from several buckets, in ``loan_id`` order.

    Each part is one bucket's snapshots of the same as-of date, sorted by
    ``loan_id`` (as the engine writes them), so the parts are merged in one
    linear pass instead of sorted again.
    """
    if not parts:
        return pl.LazyFrame(schema=schema.LOAN_SNAPSHOTS)
    merged = list(parts)
    while len(merged) > 1:
        pairs = zip(merged[::2], merged[1::2], strict=False)
        odd = [merged[-1]] if len(merged) % 2 else []
        merged = [a.merge_sorted(b, key="loan_id") for a, b in pairs] + odd
    return merged[0]


def combine_states(parts: Sequence[pl.LazyFrame]) -> pl.LazyFrame:
    """The engine states of several buckets as one run's (sorted by ``loan_id``)."""
    return pl.concat(parts, how="vertical").sort("loan_id")
