"""Loan batches: the engine over hash buckets or loan_id ranges gives exactly the single run."""

from __future__ import annotations

import itertools
from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.test_performance import MONTH_ENDS, _cash, _loans, _pool, _random_book
from transforms import schema
from transforms.batches import (
    LoanRange,
    bucket_count,
    combine_snapshots,
    combine_states,
    concat_ranges,
    engine_batch,
    in_bucket,
    loan_bucket,
    loan_ranges,
    merge_snapshots,
)
from transforms.performance import ENGINE_STATE, EngineState, PerformanceRules, run_engine
from transforms.schedules import build_schedules

POOL_RULES = {"P2": PerformanceRules(default_dpd=60, charge_off_dpd=90, tolerance_fen=0)}


def _inputs(seed: int) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    loans, cash, pool = _random_book(seed)
    frame = _loans(loans)
    return frame, build_schedules(frame), _cash(cash), _pool(pool)


def _batched(
    seed: int, buckets: int, dates: list[date], state: EngineState | None, base: date | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    inputs = _inputs(seed)
    runs = [
        engine_batch(
            *inputs,
            dates,
            bucket=b,
            buckets=buckets,
            state=state,
            base=base,
            rules_by_pool=POOL_RULES,
        )
        for b in range(buckets)
    ]
    snapshots = combine_snapshots([r.snapshots for r in runs]).collect()
    return snapshots, combine_states([r.state.loans for r in runs]).collect()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([2, 3, 7]))
def test_buckets_concatenate_to_exactly_the_single_run(seed: int, buckets: int) -> None:
    single = run_engine(*_inputs(seed), MONTH_ENDS, base=MONTH_ENDS[-1], rules_by_pool=POOL_RULES)
    snapshots, state = _batched(seed, buckets, MONTH_ENDS, None, MONTH_ENDS[-1])
    assert snapshots.equals(single.snapshots.collect())
    assert state.equals(single.state.loans.collect())


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_buckets_continuing_from_a_state_equal_the_single_run(seed: int) -> None:
    first, rest = MONTH_ENDS[:4], MONTH_ENDS[4:]
    opening = run_engine(*_inputs(seed), first, base=first[-1], rules_by_pool=POOL_RULES).state
    state = EngineState(opening.as_of, opening.base, opening.loans.collect().lazy())
    single = run_engine(*_inputs(seed), rest, state=state, base=rest[-1], rules_by_pool=POOL_RULES)
    snapshots, loans = _batched(seed, 3, rest, state, rest[-1])
    assert snapshots.equals(single.snapshots.collect())
    assert loans.equals(single.state.loans.collect())


@settings(max_examples=4, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([1, 2, 3, 5]))
def test_one_dates_buckets_merge_into_the_single_runs_loan_order(seed: int, buckets: int) -> None:
    single = run_engine(*_inputs(seed), MONTH_ENDS, rules_by_pool=POOL_RULES).snapshots.collect()
    inputs = _inputs(seed)
    runs = [
        engine_batch(*inputs, MONTH_ENDS, bucket=b, buckets=buckets, rules_by_pool=POOL_RULES)
        for b in range(buckets)
    ]
    for as_of in MONTH_ENDS:
        parts = [r.snapshots.filter(pl.col("as_of_date") == as_of) for r in runs]
        merged = merge_snapshots(parts).collect()
        assert merged.equals(single.filter(pl.col("as_of_date") == as_of))


def test_every_loan_falls_in_exactly_one_bucket_and_always_the_same() -> None:
    ids = pl.LazyFrame({"loan_id": [f"L{i:06d}" for i in range(5_000)]})
    parts = [in_bucket(ids, b, 7).collect() for b in range(7)]
    assert sum(p.height for p in parts) == 5_000
    assert pl.concat(parts)["loan_id"].n_unique() == 5_000
    # Roughly even: no bucket holds more than twice its share.
    assert max(p.height for p in parts) < 2 * 5_000 / 7
    again = ids.select(loan_bucket(pl.col("loan_id"), 7)).collect()
    assert again.equals(ids.select(loan_bucket(pl.col("loan_id"), 7)).collect())


def test_the_bucket_count_covers_the_book_in_batches_of_the_given_size() -> None:
    assert bucket_count(0, 500) == 1
    assert bucket_count(500, 500) == 1
    assert bucket_count(501, 500) == 2
    with pytest.raises(ValueError, match="positive"):
        bucket_count(10, 0)


@settings(max_examples=6, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([1, 2, 3, 7]))
def test_loan_ranges_concatenate_to_exactly_the_single_run(seed: int, buckets: int) -> None:
    inputs = _inputs(seed)
    single = run_engine(*inputs, MONTH_ENDS, base=MONTH_ENDS[-1], rules_by_pool=POOL_RULES)
    ids = inputs[0].select("loan_id").collect().get_column("loan_id")
    ranges = loan_ranges(ids, -(-ids.len() // buckets))
    runs = [
        engine_batch(
            *inputs, MONTH_ENDS, loan_range=r, base=MONTH_ENDS[-1], rules_by_pool=POOL_RULES
        )
        for r in ranges
    ]
    expected = single.snapshots.collect()
    for as_of in MONTH_ENDS:
        parts = [r.snapshots.filter(pl.col("as_of_date") == as_of) for r in runs]
        assert concat_ranges(parts).collect().equals(expected.filter(pl.col("as_of_date") == as_of))
    state = concat_ranges([r.state.loans for r in runs], ENGINE_STATE).collect()
    assert state.equals(single.state.loans.collect())


def test_loan_ranges_cut_the_sorted_ids_into_batches_that_cover_every_id() -> None:
    ids = pl.Series("loan_id", [f"L{i:06d}" for i in range(5_000)]).shuffle(seed=7)
    ranges = loan_ranges(ids, 1_000)
    assert len(ranges) == 5
    assert ranges[0].lower is None
    assert ranges[-1].upper is None
    frame = pl.LazyFrame({"loan_id": ids})
    parts = [r.rows(frame).collect().get_column("loan_id") for r in ranges]
    assert [p.len() for p in parts] == [1_000] * 5
    # Consecutive ranges: each part's ids all come before the next part's.
    assert all(a.max() < b.min() for a, b in itertools.pairwise(parts))  # type: ignore[operator]
    # An id not in the book still falls in exactly one range.
    unknown = pl.LazyFrame({"loan_id": ["A", "L0009999", "Z"]})
    assert sum(r.rows(unknown).collect().height for r in ranges) == 3


def test_an_id_repeated_across_a_cut_stays_in_one_range() -> None:
    ids = pl.Series("loan_id", ["A", "B", "B", "B", "B", "C"])
    ranges = loan_ranges(ids, 2)
    # Cut at the third id and the fifth: both "B", so one cut and two ranges.
    assert ranges == [LoanRange(None, "B"), LoanRange("B", None)]


def test_no_ranges_give_no_rows_of_the_columns_asked_for() -> None:
    assert concat_ranges([]).collect().schema == pl.Schema(schema.LOAN_SNAPSHOTS)
    assert concat_ranges([], ENGINE_STATE).collect().schema == pl.Schema(ENGINE_STATE)
