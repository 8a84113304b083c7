"""The tape in the snapshot stage: a snapshot-only pool, a servicer charge-off, reconciliation."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.deals import load_deals
from flows.metrics import compute_pool_metrics
from flows.tape import tape_sections
from tests.flows.tape_books import build_tape_book
from tests.polars_warnings import fail_on_sortedness_warning
from transforms.pool_metrics import pool_rollforward, rollforward_breaks

DAY = date(2024, 3, 31)
JAN, FEB, MAR = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)

# Polars' sortedness warning is printed, not raised, under filterwarnings = error.
pytestmark = pytest.mark.usefixtures(fail_on_sortedness_warning.__name__)

LOANS = """\
loan_id,borrower_id,product,origination_date,first_due_date,principal,annual_rate,term_months,repayment_method,province
T1,B1,cash_loan,2024-01-05,2024-02-05,1200.00,0.12,12,equal_principal,US-CA
T2,B2,cash_loan,2024-01-08,2024-02-08,600.00,0.18,6,equal_principal,US-NY
E1,B3,cash_loan,2024-01-10,2024-02-10,1000.00,0.12,10,equal_principal,US-TX
"""
POOL = """\
pool_id,loan_id,event_date,event,reason
TP,T1,2024-01-31,added,cutoff
TP,T2,2024-01-31,added,cutoff
EP,E1,2024-01-31,added,cutoff
"""
REPAYMENTS = """\
repayment_id,loan_id,value_date,principal_paid,interest_paid,fee_paid,penalty_paid,kind
R1,E1,2024-02-10,100.00,10.00,0.00,0.00,scheduled
R2,E1,2024-03-10,100.00,9.00,0.00,0.00,scheduled
"""
# T2 pays 100.00 in February, then the servicer charges 450.00 off at 40 DPD (before
# default_dpd = 90) after 50.00 more was paid. The servicer shows E1 50 fen lower in February.
TAPE = """\
as_of_date,loan_id,current_principal,dpd,status,charged_off_principal
2024-01-31,T1,1200.00,0,current,
2024-02-29,T1,1100.00,0,current,
2024-03-31,T1,1000.00,0,current,
2024-01-31,T2,600.00,0,current,
2024-02-29,T2,500.00,0,current,
2024-03-31,T2,0.00,40,charged_off,450.00
2024-01-31,E1,1000.00,0,current,
2024-02-29,E1,899.50,0,current,
2024-03-31,E1,800.00,0,current,
"""
DEAL = {
    "pool_id": "TP",
    "name": "Tape pool",
    "currency": "USD",
    "allowed_regions": ["US"],
    "cutoff_date": "2024-01-31",
    "closing_date": "2024-02-15",
    "tranches": [{"class": "A", "kind": "senior", "original_balance": "1800.00", "coupon": "0.05"}],
}
# E1 pays by repayments in a pool of its own: in a pool fed by repayments, a loan that has
# not paid is the engine's (delinquent), so a tape-only loan sits in a pool with no cash.
ENGINE_DEAL = {
    **DEAL,
    "pool_id": "EP",
    "name": "Engine pool",
    "tranches": [{"class": "A", "kind": "senior", "original_balance": "1000.00", "coupon": "0.05"}],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tape") / "data"
    files = {
        "loans.csv": LOANS,
        "pool_assets.csv": POOL,
        "repayments.csv": REPAYMENTS,
        "loan_tape.csv": TAPE,
    }
    build_tape_book(root, DAY, files, {"TP": DEAL, "EP": ENGINE_DEAL})
    return root


def _snapshots(root: Path) -> pl.DataFrame:
    catalog = Catalog(root)
    return pl.concat(
        pl.read_parquet(catalog.snapshot_partition(d)) for d in catalog.snapshot_dates()
    ).sort("as_of_date", "loan_id")


def test_tape_only_loans_take_the_servicers_balances_and_the_pool_rolls_forward(root: Path) -> None:
    snapshots = _snapshots(root)
    t1 = snapshots.filter(pl.col("loan_id") == "T1")
    assert t1["closing_principal"].to_list() == [120_000, 110_000, 100_000]
    assert t1["status"].to_list() == ["current"] * 3
    roll = pool_rollforward(snapshots.lazy(), [FEB, MAR]).collect().sort("pool_id", "period_end")
    assert rollforward_breaks(roll.lazy()).collect().height == 0
    assert roll.filter(pl.col("pool_id") == "TP")["closing_balance"].to_list() == [
        110_000 + 50_000,
        100_000,
    ]
    assert roll.filter(pl.col("pool_id") == "EP")["closing_balance"].to_list() == [90_000, 80_000]


def test_the_servicer_charge_off_before_default_dpd_is_a_default(root: Path) -> None:
    t2 = _snapshots(root).filter(pl.col("loan_id") == "T2").row(-1, named=True)
    assert (t2["status"], t2["default_date"], t2["defaulted_principal"], t2["dpd"]) == (
        "charged_off",
        MAR,
        45_000,
        40,
    )


def test_a_loan_whose_sources_disagree_is_in_the_reconciliation_mart(root: Path) -> None:
    catalog = Catalog(root)
    mart = pl.read_parquet(catalog.mart("reconciliation"))
    assert mart.select("as_of_date", "loan_id", "balance_difference", "breaks").rows() == [
        (FEB, "E1", 50, ["balance"])
    ]
    summary = json.loads(catalog.mart_summary("reconciliation").read_text(encoding="utf-8"))
    assert (summary["compared"], summary["differing"]) == (3, 1)
    assert summary["largest"][0]["loan_id"] == "E1"
    # The engine's balance stands for E1: the deal's balance_source is the engine.
    e1 = _snapshots(root).filter((pl.col("loan_id") == "E1") & (pl.col("as_of_date") == FEB))
    assert e1["closing_principal"].to_list() == [90_000]


def test_metrics_json_states_the_source_and_what_it_cannot_give(root: Path) -> None:
    catalog = Catalog(root)
    periods = compute_pool_metrics(catalog, load_deals(catalog).deals, [FEB, MAR])
    assert sorted((p.pool_id, p.period) for p in periods) == [
        ("EP", "2024-02"),
        ("EP", "2024-03"),
        ("TP", "2024-02"),
        ("TP", "2024-03"),
    ]
    document = json.loads(catalog.metrics_json("TP", "2024-03").read_text(encoding="utf-8"))
    assert document["currency"] == "USD"
    source = document["data_source"]
    assert (source["balance_source"], source["servicer_loans"], source["engine_loans"]) == (
        "servicer",
        2,
        0,
    )
    # The tape has no interest_paid_to_date: interest-based figures are marked, never a 0.
    assert "collections.interest" in source["not_available"]
    assert "performance.payment_rate" in source["not_available"]
    assert source["hidden_sections"] == []
    assert source["requested_balance_source"] == "engine"
    assert source["regions_not_allowed"] == []
    assert document["pool"]["defaulted_principal"] == "450.00"


def test_a_pool_loan_outside_the_deals_allowed_regions_is_named(root: Path) -> None:
    catalog = Catalog(root)
    deal = load_deals(catalog).deals["TP"].model_copy(update={"allowed_regions": ("US-CA",)})
    sections = tape_sections(catalog, deal, MAR)
    assert sections["data_source"]["regions_not_allowed"] == ["US-NY"]  # type: ignore[index]
