"""The metrics stage run night after night equals a recomputation from scratch.

Two data roots receive the same deliveries and run curate and the engine (the
twin of ``test_incremental``); then the metrics stage runs on both, the nightly
side keeping the marts whose inputs did not change, the scratch side with no
record of earlier marts. Every mart file and every metrics.json must be
byte-identical after every run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows import metrics as metrics_module
from flows.catalog import Catalog, sha256_file
from flows.deals import load_deals
from flows.generator import generate_landing
from flows.metrics import PoolPeriod, compute_pool_metrics, marts_record_path, pool_terms
from tests.flows.test_incremental import Twin, _business_dates, _twin
from transforms import schema
from transforms.periods import month_end, month_ends_between
from transforms.pool_marts import metric_marts


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tape")
    generate_landing(root / "landing", loans=120, start="2024-01", months=4, seed=11)
    return root / "landing"


def _mart_files(catalog: Catalog) -> dict[str, str]:
    return {
        p.relative_to(catalog.root).as_posix(): sha256_file(p)
        for p in sorted(catalog.root.glob("marts/*/*.parquet"))
    }


def _documents(periods: Sequence[PoolPeriod]) -> list[tuple[str, str, str]]:
    return [(p.pool_id, p.period, p.metrics_text) for p in periods]


@pytest.fixture
def period_mart_runs(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """One entry (the last period) per computation of the period marts."""
    runs: list[date] = []
    original: Callable[..., dict[str, pl.DataFrame]] = metric_marts

    def counting(**kwargs: Any) -> dict[str, pl.DataFrame]:
        runs.append(max(kwargs["periods"]))
        return original(**kwargs)

    monkeypatch.setattr(metrics_module, "metric_marts", counting)
    return runs


def _metrics(twin: Twin, period_ends: Sequence[date]) -> None:
    """The metrics stage on both sides (the scratch side without its record); equal outputs."""
    marts_record_path(twin.scratch).unlink(missing_ok=True)
    deals = load_deals(twin.nightly).deals
    ours = compute_pool_metrics(twin.nightly, deals, period_ends)
    full = compute_pool_metrics(twin.scratch, deals, period_ends)
    assert _mart_files(twin.nightly) == _mart_files(twin.scratch)
    assert _documents(ours) == _documents(full)


def test_nightly_metrics_equal_a_full_recomputation_night_after_night(
    landing: Path, tmp_path: Path, period_mart_runs: list[date]
) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)
    steps = [75, 1, 1, 4, 12, 1, 30]
    position, kept_nights = 0, 0
    for step in steps:
        batch = days[position : position + step]
        for day in batch:
            twin.deliver(day)
        position += step
        twin.run(batch[-1])
        before = len(period_mart_runs)
        # The periods a run would publish: those that closed in this batch.
        _metrics(twin, [d for d in month_ends_between(batch[0], batch[-1]) if d <= batch[-1]])
        # The scratch side always computes them; the nightly side only when they changed.
        nightly_computed = len(period_mart_runs) - before - 1
        closed_a_period = any(d == month_end(d) for d in batch)
        if not closed_a_period:
            kept_nights += nightly_computed == 0
        else:
            assert nightly_computed == 1, batch[-1]
    assert kept_nights >= 3


def test_the_full_computation_equals_the_marts_of_one_pass_over_every_snapshot(
    landing: Path, tmp_path: Path
) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)
    for day in days[:80]:
        twin.deliver(day)
    twin.run(days[79])
    catalog = twin.scratch
    deals = load_deals(catalog).deals
    compute_pool_metrics(catalog, deals, [])
    snapshot_days = catalog.snapshot_dates()
    ends = [d for d in snapshot_days if d == month_end(d)]
    cutoffs = sorted({d.cutoff_date for d in deals.values()} & set(snapshot_days) - set(ends))

    def scan(dates: Sequence[date]) -> pl.LazyFrame:
        return catalog.scan_many(
            [catalog.snapshot_partition(d) for d in dates], schema.LOAN_SNAPSHOTS
        )

    expected = metric_marts(
        month_end_snapshots=scan(ends),
        all_snapshots=scan(snapshot_days),
        cutoff_snapshots=scan(cutoffs),
        loans=catalog.scan(catalog.curated("loans")),
        pool_assets=catalog.scan(catalog.curated("pool_assets")),
        pools={pool_id: pool_terms(deal) for pool_id, deal in deals.items()},
        periods=ends[1:],
    )
    for name, frame in expected.items():
        assert pl.read_parquet(catalog.mart(name)).equals(frame), name


def test_a_corrected_loan_or_a_tampered_mart_recomputes_the_period_marts(
    landing: Path, tmp_path: Path, period_mart_runs: list[date]
) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)
    for day in days[:70]:
        twin.deliver(day)
    twin.run(days[69])
    _metrics(twin, [])
    # A loan of a closed period changes its province on both sides (a correction).
    for catalog in (twin.nightly, twin.scratch):
        loans = pl.read_parquet(catalog.curated("loans"))
        first = loans.sort("origination_date", "loan_id")["loan_id"][0]
        province = pl.when(pl.col("loan_id") == first).then(pl.lit("CN-XZ"))
        catalog.write_frame(
            loans.with_columns(province.otherwise(pl.col("province")).alias("province")),
            catalog.curated("loans"),
        )
    before = len(period_mart_runs)
    _metrics(twin, [])
    assert len(period_mart_runs) - before == 2  # both sides recomputed
    # A mart file that is not as written is recomputed, not trusted.
    mart = twin.nightly.mart("stratifications")
    mart.write_bytes(twin.nightly.mart("roll_rates").read_bytes())
    before = len(period_mart_runs)
    _metrics(twin, [])
    assert len(period_mart_runs) - before == 2
    # Nothing changed: the nightly side keeps every mart.
    before = len(period_mart_runs)
    deals = load_deals(twin.nightly).deals
    compute_pool_metrics(twin.nightly, deals, [])
    assert len(period_mart_runs) == before
