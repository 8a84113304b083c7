"""The metrics stage on a generated tape, run stage by stage without Prefect.

Checks what must hold on every period of a realistic book: the roll-forward
closes, an independent DuckDB implementation agrees with the Polars marts,
every metrics.json has every DOMAIN.md key and passes its contract. The book is
the one tests/flows/test_early_amortisation.py reads (built once per test run):
800 loans over twelve months, revolving for two periods, then amortising.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from benchmarks.metrics_reference import reference_metrics
from data_contracts.metrics_contract import metrics_errors
from flows.catalog import Catalog
from transforms import schema
from transforms.periods import month_end
from transforms.pool_metrics import rollforward_breaks
from transforms.portfolio import portfolio_breaks
from transforms.stratification import DIMENSIONS

DOMAIN_KEYS = {
    "pool_id": None,
    "period": None,
    "period_start": None,
    "period_end": None,
    "currency": None,
    "pool": {
        "opening_balance",
        "scheduled_principal",
        "unscheduled_principal",
        "defaulted_principal",
        "removed_principal",
        "purchased_principal",
        "closing_balance",
        "cutoff_balance",
        "pool_factor",
        "opening_count",
        "closing_count",
    },
    "collections": {"principal", "interest", "fees", "recoveries", "total"},
    "characteristics": {
        "wac",
        "wam_months",
        "wala_months",
        "average_balance",
        "loan_count",
        "obligor_count",
    },
    "performance": {
        "smm",
        "cpr",
        "mdr",
        "cdr",
        "cumulative_default_rate",
        "cumulative_net_loss_rate",
        "recovery_rate",
        "payment_rate",
        "excess_spread",
    },
    "revolving": {"purchased_count", "purchased_principal"},
    "concentration": {
        "top1_obligor_share",
        "top10_obligor_share",
        "hhi_obligor",
        "province_shares",
    },
}
LIST_KEYS = {
    "delinquency": {"bucket", "count", "balance", "balance_share"},
    "tranches": {
        "class",
        "opening_balance",
        "interest_paid",
        "principal_paid",
        "closing_balance",
        "coupon",
        "bond_factor",
    },
    "triggers": {"name", "threshold", "actual", "breached"},
}


@pytest.fixture(scope="module")
def root(amortising_book: Path) -> Path:
    """The shared early-amortisation book (tests/flows/books.py), read only."""
    return amortising_book


def mart(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(Catalog(root).mart(name))


def month_end_snapshots(root: Path) -> pl.DataFrame:
    catalog = Catalog(root)
    days = [d for d in catalog.snapshot_dates() if d == month_end(d)]
    return pl.concat([pl.read_parquet(catalog.snapshot_partition(d)) for d in days])


def documents(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for _, _, path in Catalog(root).metrics_documents()
    ]


def test_every_period_of_the_tape_rolls_forward_to_the_fen(root: Path) -> None:
    rollforward = mart(root, "pool_rollforward")
    assert rollforward.height >= 5
    assert rollforward_breaks(rollforward.lazy()).collect().height == 0
    portfolio = mart(root, "portfolio_metrics")
    assert set(portfolio["scope"]) == {"book", "pool"}
    # The first as-of date of the book opens at zero; every other one closes.
    first = portfolio["as_of_date"].min()
    assert (
        portfolio_breaks(portfolio.lazy())
        .filter(pl.col("as_of_date") != first)
        .collect()
        .is_empty()
    )
    pool_rows = portfolio.filter(
        (pl.col("scope") == "pool")
        & pl.col("as_of_date").is_in(rollforward["period_end"].implode())
    )
    assert pool_rows["closing_balance"].to_list() == rollforward["closing_balance"].to_list()


def test_an_independent_duckdb_implementation_agrees(root: Path) -> None:
    snapshots = month_end_snapshots(root)
    loans = pl.read_parquet(Catalog(root).curated("loans"))
    rollforward = mart(root, "pool_rollforward")
    periods = rollforward["period_end"].to_list()
    reference = reference_metrics(snapshots, loans, periods)

    assert_frame_equal(
        reference["rollforward"], rollforward.select(reference["rollforward"].columns)
    )
    # The cut-off month is no collection period (period 1 opens at the cut-off), but
    # the delinquency mart keeps its month-end stock: compare the periods in common.
    delinquency = mart(root, "pool_delinquency").filter(pl.col("period_end").is_in(periods))
    assert_frame_equal(
        reference["delinquency"],
        delinquency.select(reference["delinquency"].columns),
        check_exact=False,
        rel_tol=1e-12,
    )
    wac = (
        mart(root, "pool_characteristics")
        .select("pool_id", "period_end", "wac")
        .filter(pl.col("period_end").is_in(periods))
    )
    assert_frame_equal(reference["wac"], wac, check_exact=False, rel_tol=1e-12)
    # The performance mart starts with the first collection period after the cut-off.
    cpr = mart(root, "pool_performance").select("pool_id", "period_end", "smm", "cpr")
    assert cpr.height >= 4
    assert_frame_equal(
        reference["cpr"].join(cpr.select("pool_id", "period_end"), on=["pool_id", "period_end"]),
        cpr,
        check_exact=False,
        rel_tol=1e-12,
        abs_tol=1e-15,
    )


def test_every_metrics_json_has_every_key_and_passes_its_contract(root: Path) -> None:
    docs = documents(root)
    assert len(docs) >= 4
    for doc in docs:
        assert metrics_errors(doc) == []
        for key, inner in DOMAIN_KEYS.items():
            assert key in doc, key
            if inner is not None:
                assert inner <= set(doc[key]), key
        for key, inner in LIST_KEYS.items():
            assert doc[key], key
            for row in doc[key]:
                assert inner <= set(row), key
        shares = sum(row["balance_share"] for row in doc["delinquency"])
        assert shares == pytest.approx(1.0, abs=1e-8)
        assert sum(doc["concentration"]["province_shares"].values()) == pytest.approx(1.0, abs=1e-8)
        assert 0 <= doc["performance"]["smm"] <= 1
        assert 0 < doc["characteristics"]["wac"] < 0.36


def test_the_tranche_balances_chain_and_match_the_waterfall(root: Path) -> None:
    docs = sorted(documents(root), key=lambda d: d["period"])
    for before, after in itertools.pairwise(docs):
        closing = {t["class"]: t["closing_balance"] for t in before["tranches"]}
        assert {t["class"]: t["opening_balance"] for t in after["tranches"]} == closing
    for doc in docs:
        for tranche in doc["tranches"]:
            opening = Decimal(tranche["opening_balance"])
            paid = Decimal(tranche["principal_paid"])
            assert opening - paid == Decimal(tranche["closing_balance"])
        assert doc["period_number"] >= 1
        assert doc["revolving"]["revolving_period"] in (True, False)


def test_stratifications_add_up_to_the_pool_in_every_dimension(root: Path) -> None:
    strat = mart(root, "stratifications").filter(pl.col("scope") == "pool")
    rollforward = mart(root, "pool_rollforward").select("pool_id", "period_end", "closing_balance")
    totals = strat.group_by("pool_id", "period_end", "dimension").agg(
        pl.col("balance").sum(), pl.col("balance_share").sum()
    )
    joined = totals.join(rollforward, on=["pool_id", "period_end"], how="inner")
    assert set(joined["dimension"]) == set(DIMENSIONS)
    assert (joined["balance"] == joined["closing_balance"]).all()
    assert joined["balance_share"].to_list() == pytest.approx([1.0] * joined.height, abs=1e-9)


def test_vintage_curves_are_right_censored(root: Path) -> None:
    curves = mart(root, "vintage_curves").filter(pl.col("scope") == "book")
    last = curves["as_of_date"].max()
    assert isinstance(last, date)
    ages = curves.group_by("vintage").agg(pl.col("months_on_book").max(), pl.len())
    for vintage, oldest, points in ages.iter_rows():
        assert oldest == (last.year - vintage.year) * 12 + last.month - vintage.month
        assert points == oldest + 1
    monotone = curves.sort("vintage", "months_on_book").with_columns(
        step=pl.col("cumulative_defaulted_principal").diff().over("vintage")
    )
    assert (monotone["step"].drop_nulls() >= 0).all()


def test_roll_rates_start_from_the_previous_buckets(root: Path) -> None:
    rates = mart(root, "roll_rates").filter(pl.col("scope") == "pool")
    delinquency = mart(root, "pool_delinquency")
    start = rates.group_by("pool_id", "period_end", "from_bucket").agg(pl.col("from_balance").sum())
    previous = delinquency.with_columns(
        period_end=pl.col("period_end").dt.offset_by("1mo").dt.month_end()
    ).rename({"bucket": "from_bucket"})
    joined = start.join(previous, on=["pool_id", "period_end", "from_bucket"], how="inner")
    assert joined.height > 0
    assert (joined["from_balance"] == joined["balance"]).all()
    shares = (
        rates.group_by("pool_id", "period_end", "from_bucket")
        .agg(pl.col("count_rate").sum(), pl.col("count").sum())
        .filter(pl.col("count") > 0)
    )
    assert shares.height > 0
    assert shares["count_rate"].to_list() == pytest.approx([1.0] * shares.height, abs=1e-12)


def test_the_marts_have_their_schemas(root: Path) -> None:
    catalog = Catalog(root)
    for name in (
        "portfolio_metrics",
        "pool_period_metrics",
        "stratifications",
        "vintage_curves",
        "roll_rates",
        "concentration",
        "tranche_payments",
        "trigger_tests",
        "waterfall_steps",
        "pool_waterfall",
        "waterfall_accounts",
        "top_obligors",
        "purchased_characteristics",
    ):
        frame = pl.read_parquet(catalog.mart(name))
        assert frame.height > 0, name
        money = [c for c, t in frame.schema.items() if "balance" in c and t != pl.Float64]
        assert all(frame.schema[c] == schema.MONEY for c in money), name
