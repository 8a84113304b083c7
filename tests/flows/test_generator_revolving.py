"""The demo's revolving pool: card accounts without schedules, through a mapping, to snapshots."""

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
from flows.generator.revolving_pool import write_revolving_pool
from flows.generator.writer import ServicerLanding
from flows.ingest import ingest_dates
from flows.snapshots import build_loan_snapshots, snapshot_dates
from tests.polars_warnings import no_sortedness_warning
from transforms.pool_metrics import pool_rollforward, rollforward_breaks

MONTH_ENDS = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cards") / "data"
    pool = write_revolving_pool(ServicerLanding(root / "landing", "2024-01", 4, 7), accounts=120)
    assert (pool.pool_id, pool.tape_rows) == ("HB2024-R", 480)
    catalog = Catalog(root)
    with no_sortedness_warning():
        outcome = ingest_dates(catalog, MONTH_ENDS)
        assert sum(f.rows_quarantined for f in outcome.files) == 0, outcome.rule_counts
        assert {f.source for f in outcome.files} == {"card_servicer"}
        curated = curate(catalog, MONTH_ENDS[-1])
        assert curated.schedule_rows == 0
        assert curated.first_origination is not None
        deals = load_deals(catalog).deals
        assert deals["HB2024-R"].balance_source == "servicer"
        dates = snapshot_dates(curated.first_origination, MONTH_ENDS[-1], deals.values())
        build_loan_snapshots(catalog, dates, deals)
    return root


def test_the_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    first = write_revolving_pool(ServicerLanding(tmp_path / "a", "2024-01", 3, 7), accounts=30)
    second = write_revolving_pool(ServicerLanding(tmp_path / "b", "2024-01", 3, 7), accounts=30)
    assert first == second
    written = sorted(p for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(written) == 7  # loans, pool, 3 tapes, mapping, deal
    for path in written:
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_the_demo_card_deal_revolves_for_twelve_months_after_its_cutoff(root: Path) -> None:
    deal = load_deals(Catalog(root)).deals["HB2024-R"]
    assert deal.cutoff_date == date(2024, 1, 31)
    assert deal.revolving_period_end == date(2025, 1, 31)


def test_the_accounts_arrive_without_schedule_terms(root: Path) -> None:
    loans = pl.read_parquet(Catalog(root).curated("loans"))
    assert loans["product"].unique().to_list() == ["revolving_credit"]
    for column in ("first_due_date", "principal", "term_months", "repayment_method"):
        assert loans[column].null_count() == loans.height, column


def test_the_pool_takes_the_card_servicers_balances_and_has_its_card_figures(root: Path) -> None:
    catalog = Catalog(root)
    tape = pl.read_parquet(catalog.curated("loan_tape"))
    assert tape["credit_limit"].null_count() == 0
    last = pl.read_parquet(catalog.snapshot_partition(MONTH_ENDS[-1]))
    reported = tape.filter(pl.col("as_of_date") == MONTH_ENDS[-1]).sort("loan_id")
    joined = last.join(reported, on="loan_id").filter(pl.col("status") != "charged_off")
    assert (joined["closing_principal"] == joined["current_principal"]).all()
    mart = pl.read_parquet(catalog.mart("revolving_metrics")).filter(
        pl.col("pool_id") == "HB2024-R"
    )
    assert mart["as_of_date"].to_list() == MONTH_ENDS
    later = mart.filter(pl.col("as_of_date") > MONTH_ENDS[0])
    assert later["payment_rate"].is_not_null().all()
    assert later["utilisation"].is_between(0, 1).all()
    assert (later["new_drawings"] > 0).all()


def test_the_revolving_pool_rolls_forward_with_its_drawings_as_new_drawings(root: Path) -> None:
    catalog = Catalog(root)
    snapshots = pl.concat(
        pl.read_parquet(catalog.snapshot_partition(d)) for d in MONTH_ENDS
    ).filter(pl.col("pool_id") == "HB2024-R")
    roll = pool_rollforward(snapshots.lazy(), MONTH_ENDS[1:]).collect().sort("period_end")
    assert roll.height == 3
    assert rollforward_breaks(roll.lazy()).collect().height == 0
    mart = pl.read_parquet(catalog.mart("revolving_metrics")).filter(
        pl.col("as_of_date") > MONTH_ENDS[0]
    )
    # Collections are the servicer's gross repayments; drawings are new drawings, no purchase.
    assert roll["scheduled_principal"].to_list() == mart["principal_collections"].to_list()
    assert roll["new_drawings"].to_list() == mart["new_drawings"].to_list()
    assert (roll["new_drawings"] > 0).all()
    assert (roll["purchased_principal"] == 0).all()


def test_generate_adds_the_revolving_pool_to_the_book_and_its_manifests(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    summary = generate_landing(
        out, loans=200, start="2024-01", months=3, seed=7, revolving_accounts=25
    )
    assert summary.pool_ids[-1] == "HB2024-R"
    for day in MONTH_ENDS[:3]:
        manifest = json.loads((out / day.isoformat() / "manifest.json").read_text("utf-8"))
        listed = {f["name"]: f["rows"] for f in manifest["files"]}
        assert listed["loan_tape.card_servicer.csv"] == 25
    assert (out / "deals" / "HB2024-R.yaml").is_file()
    assert (out / "mappings" / "card_servicer.mapping.yaml").is_file()
