"""A revolving pool over three months: loans rows without schedule terms, balances from the tape.

Pool ``RV`` holds three Huabei-style card accounts (amounts in yuan):

- A1, limit 10,000: Jan 4,000 current; Feb 3,500 after paying 1,000 principal and 60
  interest (so it drew 500); Mar 3,000 after paying 500 principal, 50 interest, 10 fees.
- A2, limit 5,000: 2,000 throughout; pays nothing; 35 DPD in Feb, 64 DPD in Mar.
- A3, limit 8,000: Jan 1,000; Feb 0 after paying 1,000 principal and 15 interest; Mar 0
  (open, nothing owed).

By hand: payment rate Feb = (2,000 + 75 + 0) / 7,000 = 0.296428...; Mar = (500 + 50 + 10) /
5,500 = 0.101818...; utilisation = closing balance / 23,000 of limits: Feb 5,500, Mar 5,000;
30+ accounts: A2 in both months; account_count 3 (a zero balance is an open account).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.deals import load_deals
from flows.metrics import compute_pool_metrics, load_metrics_book
from flows.render import render_disclosures
from reports.formatting import NOT_AVAILABLE
from reports.labels import labels
from tests.flows.tape_books import build_tape_book
from tests.polars_warnings import fail_on_sortedness_warning
from tests.reports.html_tables import table
from transforms.pool_metrics import pool_rollforward, rollforward_breaks

DAY = date(2024, 3, 31)
JAN, FEB, MAR = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)

# No first_due_date, principal, annual_rate, term_months or repayment_method at all.
LOANS = """\
loan_id,borrower_id,product,origination_date,province
A1,B1,revolving_credit,2023-06-01,CN-GD
A2,B2,revolving_credit,2023-07-15,CN-BJ
A3,B3,revolving_credit,2023-09-20,CN-SH
"""
POOL = """\
pool_id,loan_id,event_date,event,reason
RV,A1,2024-01-31,added,cutoff
RV,A2,2024-01-31,added,cutoff
RV,A3,2024-01-31,added,cutoff
"""
TAPE = """\
as_of_date,loan_id,current_principal,dpd,status,principal_paid_to_date,interest_paid_to_date,\
fees_paid_to_date,credit_limit,minimum_payment
2024-01-31,A1,4000.00,0,current,0.00,0.00,0.00,10000.00,400.00
2024-02-29,A1,3500.00,0,current,1000.00,60.00,0.00,10000.00,350.00
2024-03-31,A1,3000.00,0,current,1500.00,110.00,10.00,10000.00,300.00
2024-01-31,A2,2000.00,0,current,0.00,0.00,0.00,5000.00,200.00
2024-02-29,A2,2000.00,35,delinquent,0.00,0.00,0.00,5000.00,400.00
2024-03-31,A2,2000.00,64,delinquent,0.00,0.00,0.00,5000.00,600.00
2024-01-31,A3,1000.00,0,current,0.00,0.00,0.00,8000.00,100.00
2024-02-29,A3,0.00,0,current,1000.00,15.00,0.00,8000.00,0.00
2024-03-31,A3,0.00,0,current,1000.00,15.00,0.00,8000.00,0.00
"""
DEAL = {
    "pool_id": "RV",
    "name": "Revolving card pool",
    "cutoff_date": "2024-01-31",
    "closing_date": "2024-02-15",
    "balance_source": "servicer",
    "delivery_calendar": "month_end",
    "tranches": [{"class": "A", "kind": "senior", "original_balance": "6000.00", "coupon": "0.04"}],
}
GENERATED_AT = datetime(2024, 4, 2, 2, 0, tzinfo=UTC)

# Polars' sortedness warning is printed, not raised, under filterwarnings = error.
pytestmark = pytest.mark.usefixtures(fail_on_sortedness_warning.__name__)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("revolving") / "data"
    files = {"loans.csv": LOANS, "pool_assets.csv": POOL, "loan_tape.csv": TAPE}
    curated = build_tape_book(root, DAY, files, {"RV": DEAL})
    assert curated.schedule_rows == 0
    return root


def test_revolving_accounts_take_the_servicers_balances_and_dpd(root: Path) -> None:
    catalog = Catalog(root)
    march = pl.read_parquet(catalog.snapshot_partition(MAR)).sort("loan_id")
    assert march["closing_principal"].to_list() == [300_000, 200_000, 0]
    assert march["dpd"].to_list() == [0, 64, 0]
    assert march["status"].to_list()[:2] == ["current", "delinquent"]
    assert march["pool_id"].to_list() == ["RV"] * 3


def test_the_pool_rolls_forward_with_the_drawing_as_a_new_drawing(root: Path) -> None:
    catalog = Catalog(root)
    snapshots = pl.concat(pl.read_parquet(catalog.snapshot_partition(d)) for d in (JAN, FEB, MAR))
    roll = pool_rollforward(snapshots.lazy(), [FEB, MAR]).collect().sort("period_end")
    assert rollforward_breaks(roll.lazy()).collect().height == 0
    # February: 7,000 - 2,000 repaid + 500 drawn = 5,500; March: 5,500 - 500 = 5,000.
    assert roll["scheduled_principal"].to_list() == [200_000, 50_000]
    assert roll["new_drawings"].to_list() == [50_000, 0]
    assert roll["purchased_principal"].to_list() == [0, 0]
    assert roll["purchased_count"].to_list() == [0, 0]
    assert roll["closing_balance"].to_list() == [550_000, 500_000]


def test_payment_rate_utilisation_and_thirty_plus_as_computed_by_hand(root: Path) -> None:
    catalog = Catalog(root)
    compute_pool_metrics(catalog, load_deals(catalog).deals, [FEB, MAR])
    feb, mar = (
        json.loads(catalog.metrics_json("RV", p).read_text(encoding="utf-8"))
        for p in ("2024-02", "2024-03")
    )
    accounts = feb["revolving_accounts"]
    assert accounts["payment_rate"] == pytest.approx(2_075 / 7_000)
    assert accounts["utilisation"] == pytest.approx(5_500 / 23_000)
    assert (accounts["account_count"], accounts["thirty_plus_count"]) == (3, 1)
    assert accounts["new_drawings"] == "500.00"
    accounts = mar["revolving_accounts"]
    assert accounts["payment_rate"] == pytest.approx(560 / 5_500)
    assert accounts["utilisation"] == pytest.approx(5_000 / 23_000)
    assert (accounts["account_count"], accounts["thirty_plus_count"]) == (3, 1)
    assert accounts["thirty_plus_balance"] == "2000.00"
    hidden = {h["section"] for h in mar["data_source"]["hidden_sections"]}
    assert hidden == {
        "characteristics.wam_months",
        "performance.smm",
        "performance.cpr",
        "pool.scheduled_principal",
    }
    # The tape gives interest and fees but no recoveries_to_date: the total is not available,
    # nor the waterfall's income (its income account).
    assert mar["data_source"]["not_available"] == [
        "collections.recoveries",
        "collections.total",
        "performance.cumulative_net_loss_rate",
        "performance.recovery_rate",
        "revolving_accounts.recoveries",
        "waterfall.income",
    ]


def test_the_revolving_disclosure_renders_with_the_hidden_sections_stated(root: Path) -> None:
    catalog = Catalog(root)
    deals = load_deals(catalog).deals
    periods = compute_pool_metrics(catalog, deals, [FEB, MAR])
    book = load_metrics_book(catalog, periods)
    written = render_disclosures(
        catalog, deals, book, periods, generated_at=GENERATED_AT, run_id="r1", with_pdf=False
    )
    english = [p for p in written if p.name.endswith(".html") and "2024-03" in str(p)]
    assert english
    text = "\n".join(p.read_text(encoding="utf-8") for p in english)
    assert "revolving accounts have no schedule, so no remaining term" in text


def test_without_recoveries_the_waterfall_income_is_stated_and_its_account_not_available(
    root: Path,
) -> None:
    catalog = Catalog(root)
    deals = load_deals(catalog).deals
    periods = compute_pool_metrics(catalog, deals, [FEB, MAR])
    book = load_metrics_book(catalog, periods)
    written = render_disclosures(
        catalog, deals, book, periods, generated_at=GENERATED_AT, run_id="r1", with_pdf=False
    )
    [page] = [p for p in written if p.name == "disclosure.en.html" and "2024-03" in str(p)]
    html = page.read_text(encoding="utf-8")
    t = labels("en", "disclosure")
    assert t["s4.income_basis"].format(parts=t["s4.recoveries"]) in unescape(html)
    ledger = table(html, t["s4.ledger_caption"])
    for account in ("account.income", "account.collection"):
        [flows] = [r for r in ledger.rows if r[0] == t[account]]
        assert flows[1:] == [NOT_AVAILABLE["en"]] * 4
    # The principal account's figures are the tape's and stay shown.
    [principal] = [r for r in ledger.rows if r[0] == t["account.principal"]]
    assert NOT_AVAILABLE["en"] not in principal
