"""The demo's second servicer: a GBK tape through its mapping, end to end through snapshots."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.curate import curate
from flows.deals import load_deals
from flows.generator import generate_landing
from flows.generator.second_servicer import write_second_servicer
from flows.generator.writer import ServicerLanding
from flows.ingest import ingest_dates
from flows.snapshots import build_loan_snapshots, snapshot_dates
from transforms.pool_metrics import pool_rollforward, rollforward_breaks

MONTH_ENDS = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("second") / "data"
    pool = write_second_servicer(ServicerLanding(root / "landing", "2024-01", 4, 7), loans=80)
    assert pool.pool_id == "JB2024-2"
    catalog = Catalog(root)
    outcome = ingest_dates(catalog, MONTH_ENDS)
    assert sum(f.rows_quarantined for f in outcome.files) == 0, outcome.rule_counts
    assert {f.encoding for f in outcome.files} == {"gbk"}
    curated = curate(catalog, MONTH_ENDS[-1])
    assert curated.first_origination is not None
    deals = load_deals(catalog).deals
    assert deals["JB2024-2"].balance_source == "servicer"
    dates = snapshot_dates(curated.first_origination, MONTH_ENDS[-1], deals.values())
    build_loan_snapshots(catalog, dates, deals)
    return root


def test_the_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    first = write_second_servicer(ServicerLanding(tmp_path / "a", "2024-01", 3, 7), loans=20)
    second = write_second_servicer(ServicerLanding(tmp_path / "b", "2024-01", 3, 7), loans=20)
    assert first.tape_rows == second.tape_rows
    for path in sorted((tmp_path / "a").rglob("*.csv")):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
        path.read_bytes().decode("gbk")


def test_the_servicer_pool_rolls_forward_from_its_tape_alone(root: Path) -> None:
    catalog = Catalog(root)
    snapshots = pl.concat(
        pl.read_parquet(catalog.snapshot_partition(d)) for d in MONTH_ENDS
    ).filter(pl.col("pool_id") == "JB2024-2")
    roll = pool_rollforward(snapshots.lazy(), MONTH_ENDS[1:]).collect()
    assert roll.height == 3
    assert rollforward_breaks(roll.lazy()).collect().height == 0
    tape = pl.read_parquet(catalog.curated("loan_tape"))
    last = tape.filter(pl.col("as_of_date") == MONTH_ENDS[-1])
    closing = last.filter(pl.col("status").is_in(["current", "delinquent"]))["current_principal"]
    assert roll["closing_balance"][-1] == closing.sum()


def test_the_main_servicers_tape_reconciles_except_cash_it_posts_a_day_late(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    generate_landing(
        root / "landing", loans=400, start="2024-01", months=9, seed=11, servicer_tape=True
    )
    catalog = Catalog(root)
    dates = catalog.landing_dates()
    ingest_dates(catalog, dates)
    curated = curate(catalog, dates[-1])
    assert curated.first_origination is not None
    deals = load_deals(catalog).deals
    build_loan_snapshots(
        catalog, snapshot_dates(curated.first_origination, dates[-1], deals.values()), deals
    )
    summary = json.loads(catalog.mart_summary("reconciliation").read_text(encoding="utf-8"))
    assert summary["compared"] > 200
    breaks = pl.read_parquet(catalog.mart("reconciliation")).filter(
        pl.col("breaks").list.contains("balance")
    )
    assert breaks.height > 0
    # Every balance difference is principal the engine received on the month-end itself.
    repayments = pl.read_parquet(catalog.curated("repayments"))
    signed = pl.when(pl.col("kind") == "reversal").then(-pl.col("principal_paid"))
    on_month_end = repayments.group_by("loan_id", pl.col("value_date").alias("as_of_date")).agg(
        signed.otherwise(pl.col("principal_paid")).sum().alias("late")
    )
    joined = breaks.join(on_month_end, on=["loan_id", "as_of_date"], how="left")
    assert (joined["balance_difference"] == -joined["late"]).all()
