"""Loan batches: the performance engine over loan_id hash buckets.

Every figure the engine computes belongs to one loan: its schedule, its cash,
its pool events and its running state. So the book can be split into buckets
of loans, each bucket run on its own (in this process, another one, or on
another machine), and the outputs put back together; the result is exactly
the one of a single run over the whole book. Memory then follows the size of
a bucket, not of the book.

A loan's bucket is a hash of its ``loan_id`` with a fixed seed, taken modulo
the number of buckets: the same id always falls in the same bucket for a
given bucket count, and the buckets are about equally large whatever the ids
look like. Which bucket a loan falls in never changes a result, only where
and when it is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def engine_batch(
    loans: pl.LazyFrame,
    schedules: pl.LazyFrame,
    repayments: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    as_of_dates: Sequence[date],
    *,
    bucket: int,
    buckets: int,
    state: EngineState | None = None,
    base: date | None = None,
    rules: PerformanceRules = _DEFAULT_RULES,
    rules_by_pool: Mapping[str, PerformanceRules] | None = None,
) -> EngineRun:
    """Run the engine (:func:`transforms.performance.run_engine`) on one bucket of loans.

    Every input, and the state when given, is restricted to the bucket's loans;
    the arguments are otherwise those of ``run_engine``.

    Returns:
        The bucket's snapshots (sorted by ``as_of_date``, ``loan_id``) and the
        state of its loans.
    """
    if not 0 <= bucket < buckets:
        raise ValueError(f"bucket {bucket} is not one of 0..{buckets - 1}")

    def part(frame: pl.LazyFrame) -> pl.LazyFrame:
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
