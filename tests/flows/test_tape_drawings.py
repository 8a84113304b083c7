"""New drawings on revolving accounts (新增用款): a three-month card tape with known drawings.

Pool ``DR`` holds two card accounts (amounts in yuan), cut off on 31 January; the deal
revolves until 29 February:

- D1, limit 10,000: Jan 4,000; Feb 4,700 after repaying 800 (so it drew 1,500); Mar 4,200
  after repaying 1,000 (so it drew 500).
- D2, limit 5,000: Jan 2,000; Feb 1,500 after repaying 500; Mar 1,200 after repaying 300.

By hand: February opens at 6,000, collects 1,300, draws 1,500 and closes at 6,200; March
opens at 6,200, collects 1,300, draws 500 and closes at 5,400. Nothing is purchased.
February is in the revolving period: its 1,300 of principal collections pay the seller
for the drawings at par (1,300 of the 1,500; the seller funds the other 200) and no class
amortises. March is after it: the seller funds the 500 drawn, and the 1,300 collected
amortise class A.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.deals import load_deals
from flows.metrics import PoolPeriod, compute_pool_metrics, load_metrics_book
from flows.render import render_disclosures
from reports.labels import labels
from tests.flows.tape_books import build_tape_book
from tests.polars_warnings import fail_on_sortedness_warning, no_sortedness_warning
from tests.reports.html_tables import number, table
from transforms.pool_metrics import pool_rollforward, rollforward_breaks

DAY = date(2024, 3, 31)
JAN, FEB, MAR = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)

LOANS = """\
loan_id,borrower_id,product,origination_date,province
D1,B1,revolving_credit,2023-06-01,CN-GD
D2,B2,revolving_credit,2023-07-15,CN-BJ
"""
POOL = """\
pool_id,loan_id,event_date,event,reason
DR,D1,2024-01-31,added,cutoff
DR,D2,2024-01-31,added,cutoff
"""
TAPE = """\
as_of_date,loan_id,current_principal,dpd,status,principal_paid_to_date,interest_paid_to_date,\
fees_paid_to_date,recoveries_to_date,credit_limit,minimum_payment
2024-01-31,D1,4000.00,0,current,0.00,0.00,0.00,0.00,10000.00,400.00
2024-02-29,D1,4700.00,0,current,800.00,50.00,0.00,0.00,10000.00,470.00
2024-03-31,D1,4200.00,0,current,1800.00,110.00,0.00,0.00,10000.00,420.00
2024-01-31,D2,2000.00,0,current,0.00,0.00,0.00,0.00,5000.00,200.00
2024-02-29,D2,1500.00,0,current,500.00,20.00,0.00,0.00,5000.00,150.00
2024-03-31,D2,1200.00,0,current,800.00,40.00,0.00,0.00,5000.00,120.00
"""
DEAL = {
    "pool_id": "DR",
    "name": "Card pool with drawings",
    "cutoff_date": "2024-01-31",
    "closing_date": "2024-02-15",
    "revolving_period_end": "2024-02-29",
    "balance_source": "servicer",
    "delivery_calendar": "month_end",
    "tranches": [
        {"class": "A", "kind": "senior", "original_balance": "5000.00", "coupon": "0.04"},
        {"class": "C", "kind": "subordinated", "original_balance": "1000.00", "coupon": "0"},
    ],
}
GENERATED_AT = datetime(2024, 4, 2, 2, 0, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures(fail_on_sortedness_warning.__name__)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drawings") / "data"
    files = {"loans.csv": LOANS, "pool_assets.csv": POOL, "loan_tape.csv": TAPE}
    build_tape_book(root, DAY, files, {"DR": DEAL})
    return root


@pytest.fixture(scope="module")
def periods(root: Path) -> list[PoolPeriod]:
    catalog = Catalog(root)
    with no_sortedness_warning():
        return compute_pool_metrics(catalog, load_deals(catalog).deals, [FEB, MAR])


@pytest.fixture(scope="module")
def documents(root: Path, periods: list[PoolPeriod]) -> dict[str, dict[str, Any]]:
    catalog = Catalog(root)
    return {
        period: json.loads(catalog.metrics_json("DR", period).read_text(encoding="utf-8"))
        for period in ("2024-02", "2024-03")
    }


def test_a_balance_increase_of_an_account_in_the_pool_is_a_new_drawing_to_the_fen(
    root: Path,
) -> None:
    catalog = Catalog(root)
    snapshots = pl.concat(pl.read_parquet(catalog.snapshot_partition(d)) for d in (FEB, MAR))
    drawn = snapshots.sort("as_of_date", "loan_id").select("loan_id", "new_drawings")
    assert drawn.rows() == [("D1", 150_000), ("D2", 0), ("D1", 50_000), ("D2", 0)]
    assert snapshots["purchased_principal"].to_list() == [0, 0, 0, 0]


def test_the_roll_forward_closes_with_the_drawings_and_no_purchase(root: Path) -> None:
    catalog = Catalog(root)
    snapshots = pl.concat(pl.read_parquet(catalog.snapshot_partition(d)) for d in (JAN, FEB, MAR))
    roll = pool_rollforward(snapshots.lazy(), [FEB, MAR], {"DR": JAN}).collect()
    assert rollforward_breaks(roll.lazy()).collect().height == 0
    assert roll.select(
        "opening_balance",
        "scheduled_principal",
        "unscheduled_principal",
        "purchased_principal",
        "purchased_count",
        "new_drawings",
        "closing_balance",
    ).rows() == [
        (600_000, 130_000, 0, 0, 0, 150_000, 620_000),
        (620_000, 130_000, 0, 0, 0, 50_000, 540_000),
    ]


def test_metrics_json_carries_the_drawings_and_who_funded_them(
    documents: dict[str, dict[str, Any]],
) -> None:
    feb, mar = documents["2024-02"], documents["2024-03"]
    assert (feb["pool"]["new_drawings"], mar["pool"]["new_drawings"]) == ("1500.00", "500.00")
    assert (feb["pool"]["purchased_principal"], feb["revolving"]["purchased_count"]) == ("0.00", 0)
    # In the revolving period the principal collections pay the seller for the drawings.
    assert feb["revolving"]["revolving_period"] is True
    assert feb["revolving"]["drawings_paid"] == "1300.00"
    assert feb["revolving"]["drawings_seller_funded"] == "200.00"
    paid = {t["class"]: t["principal_paid"] for t in feb["tranches"]}
    assert paid == {"A": "0.00", "C": "0.00"}
    # After it, the seller funds the drawings and the collections amortise class A.
    assert mar["revolving"]["revolving_period"] is False
    assert mar["revolving"]["drawings_paid"] == "0.00"
    assert mar["revolving"]["drawings_seller_funded"] == "500.00"
    paid = {t["class"]: t["principal_paid"] for t in mar["tranches"]}
    assert paid == {"A": "1300.00", "C": "0.00"}
    # The card pool's principal is collected whole: no scheduled/unscheduled split.
    hidden = {h["section"] for h in feb["data_source"]["hidden_sections"]}
    assert "pool.scheduled_principal" in hidden


def _figure(html: str, caption: str, label: str) -> Decimal:
    """The number in the row ``label`` of the table ``caption`` (its first data cell)."""
    found = table(html, caption)
    rows = [r for r in found.rows if r and r[0] == label]
    assert len(rows) == 1, (label, [r[0] for r in found.rows])
    return number(rows[0][1])


@pytest.mark.parametrize(
    ("locale", "language", "currency"), [("en", "en", "CNY"), ("zh_CN", "zh-CN", "元")]
)
def test_the_report_shows_the_drawings_in_the_roll_forward_and_the_revolving_section(
    root: Path, periods: list[PoolPeriod], locale: str, language: str, currency: str
) -> None:
    catalog = Catalog(root)
    deals = load_deals(catalog).deals
    with no_sortedness_warning():
        book = load_metrics_book(catalog, periods)
        written = render_disclosures(
            catalog, deals, book, periods, generated_at=GENERATED_AT, run_id="r1", with_pdf=False
        )
    [page] = [p for p in written if p.name == f"disclosure.{language}.html" and "2024-02" in str(p)]
    html = page.read_text(encoding="utf-8")
    t = labels(locale, "disclosure")
    caption = t["s3.caption"]
    assert _figure(html, caption, t["s3.new_drawings"]) == Decimal("1500.00")
    assert _figure(html, caption, t["s3.principal_collected"]) == Decimal("-1300.00")
    assert _figure(html, caption, t["s3.purchased_principal"]) == Decimal("0.00")
    revolving = t["s10.caption"]
    paid = t["s10.drawings_paid"].format(currency=currency)
    assert _figure(html, revolving, paid) == Decimal("1300.00")
    seller = t["s10.drawings_seller_funded"].format(currency=currency)
    assert _figure(html, revolving, seller) == Decimal("200.00")
    assert t["s10.drawings_rule"] in unescape(html)
    # The servicer-statement account figures say why they differ from the pool's.
    assert t["s10.accounts_basis"] in unescape(html)
