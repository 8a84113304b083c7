"""Small landing deliveries for the ingest tests: canonical rows as CSV text, a history day."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl

from flows.catalog import Catalog
from flows.ingest import IngestOutcome, ingest_dates
from transforms import schema

HISTORY_DAY = date(2024, 3, 1)
"""Delivers loans L1..L3 (originated that day), repayment R0 of L1 and L1's pool addition."""
DAY = date(2024, 3, 5)
"""The business date of each case's delivery."""

LOAN_HEADER = ",".join(schema.LOANS)
REPAYMENT_HEADER = ",".join(schema.REPAYMENTS)
POOL_HEADER = ",".join(schema.POOL_ASSETS)


def loan(loan_id: str, **values: str) -> str:
    """A clean loans row (CSV text) with ``values`` replacing columns."""
    row = {
        "loan_id": loan_id,
        "borrower_id": f"B-{loan_id}",
        "product": "cash_loan",
        "origination_date": "2024-03-01",
        "first_due_date": "2024-04-01",
        "principal": "10000.00",
        "annual_rate": "0.1200",
        "term_months": "12",
        "repayment_method": "equal_instalment",
        "province": "CN-BJ",
        "borrower_age": "30",
        "credit_score": "700",
        "channel": "app",
        **values,
    }
    return ",".join(row[c] for c in schema.LOANS)


def repayment(repayment_id: str, loan_id: str = "L1", **values: str) -> str:
    """A clean repayments row (CSV text) with ``values`` replacing columns."""
    row = {
        "repayment_id": repayment_id,
        "loan_id": loan_id,
        "value_date": "2024-03-05",
        "principal_paid": "100.00",
        "interest_paid": "10.00",
        "fee_paid": "0.00",
        "penalty_paid": "0.00",
        "kind": "scheduled",
        **values,
    }
    return ",".join(row[c] for c in schema.REPAYMENTS)


def pool_event(loan_id: str, **values: str) -> str:
    """A clean pool_assets row (CSV text) with ``values`` replacing columns."""
    row = {
        "pool_id": "HB-1",
        "loan_id": loan_id,
        "event_date": "2024-03-05",
        "event": "added",
        "reason": "revolving_purchase",
        "purchase_price": "9000.00",
        **values,
    }
    return ",".join(row[c] for c in schema.POOL_ASSETS)


def csv_text(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


DEAL_HB1 = """\
pool_id: HB-1
name: Deal HB-1
cutoff_date: 2024-03-01
closing_date: 2024-03-08
cutoff_pool_balance: "10000.00"
tranches:
  - {class: A, kind: senior, original_balance: "8900.00", coupon: "0.039"}
  - {class: C, kind: subordinated, original_balance: "1100.00", coupon: "0"}
"""
"""The deal of pool HB-1 (pool events of a pool without a deal file are quarantined)."""


def write_history(root: Path) -> IngestOutcome:
    """Land the deal of HB-1, then land and ingest the history day."""
    deals = root / "landing" / "deals"
    deals.mkdir(parents=True, exist_ok=True)
    (deals / "HB-1.yaml").write_text(DEAL_HB1, encoding="utf-8")
    folder = root / "landing" / HISTORY_DAY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loans.csv").write_bytes(csv_text(LOAN_HEADER, loan("L1"), loan("L2"), loan("L3")))
    (folder / "repayments.csv").write_bytes(
        csv_text(REPAYMENT_HEADER, repayment("R0", value_date="2024-03-01"))
    )
    (folder / "pool_assets.csv").write_bytes(
        csv_text(POOL_HEADER, pool_event("L1", event_date="2024-03-01", reason="cutoff"))
    )
    return ingest_dates(Catalog(root), [HISTORY_DAY])


def copy_root(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def deliver(root: Path, files: dict[str, bytes], day: date = DAY) -> IngestOutcome:
    """Write ``files`` (name -> bytes; ``mappings/x`` goes to landing/mappings) and ingest."""
    for name, data in files.items():
        path = (
            root / "landing" / name
            if name.startswith("mappings/")
            else root / "landing" / day.isoformat() / name
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return ingest_dates(Catalog(root), [day])


def quarantined(root: Path, day: date = DAY) -> dict[tuple[str, int], tuple[str, ...]]:
    """(file name, line) -> rule ids of every quarantined row of ``day``."""
    catalog = Catalog(root)
    found: dict[tuple[str, int], tuple[str, ...]] = {}
    for dataset in schema.INPUT_DATASETS:
        path = catalog.quarantine_partition(dataset, day)
        if path.is_file():
            for source_file, line, rules in (
                pl.read_parquet(path).select("source_file", "source_line", "rule_ids").iter_rows()
            ):
                found[(Path(source_file).name, line)] = tuple(rules)
    return found
