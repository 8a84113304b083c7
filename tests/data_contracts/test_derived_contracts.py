"""The deal and loan_snapshots contracts judge their tables with the same runner."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from data_contracts.contract import load_contract
from data_contracts.deal import DealTerms
from data_contracts.deal_table import DEAL_COLUMNS, deal_frame
from data_contracts.validate import validate_frame
from transforms import schema

DEAL = DealTerms.model_validate(
    {
        "pool_id": "HB-2024-1",
        "name": "Huabei 2024-1",
        "cutoff_date": "2024-03-31",
        "closing_date": "2024-04-20",
        "revolving_period_end": "2024-12-31",
        "tranches": [
            {"class": "A", "kind": "senior", "original_balance": "800000000.00", "coupon": "0.028"},
            {
                "class": "Sub",
                "kind": "subordinated",
                "original_balance": "200000000.00",
                "coupon": 0,
            },
        ],
    }
)

SNAPSHOT: dict[str, Any] = {
    "as_of_date": date(2024, 4, 30),
    "loan_id": "L1",
    "pool_id": "HB-2024-1",
    "opening_principal": 1_000_000,
    "closing_principal": 921_151,
    "scheduled_principal_paid": 78_849,
    "unscheduled_principal_paid": 0,
    "interest_paid": 10_000,
    "fees_paid": 0,
    "dpd": 0,
    "bucket": "current",
    "status": "current",
    "default_date": None,
    "defaulted_principal": 0,
    "recoveries": 0,
    "purchased_principal": 0,
    "removed_principal": 0,
    "months_on_book": 1,
    "remaining_term": 11,
    **dict.fromkeys(schema.OUTSIDE_POOL_FLOWS.values(), 0),
    **dict.fromkeys(schema.OUTSIDE_POOL_DEFAULT.values(), 0),
    "new_drawings": 0,
}


def test_a_deal_becomes_one_row_that_passes_its_contract() -> None:
    frame = deal_frame([DEAL])
    assert frame.schema == pl.Schema(DEAL_COLUMNS)
    row = frame.row(0, named=True)
    assert row["notes_balance"] == 100_000_000_000
    assert row["tranche_count"] == 2
    assert str(row["max_coupon"]) == "0.028000"
    outcome = validate_frame(load_contract("deal"), frame)
    assert outcome.failures.is_empty()
    assert outcome.batch_accepted


@pytest.mark.parametrize(
    ("changes", "rule_id"),
    [
        ({"currency": "usd"}, "deal.currency.iso_4217"),
        ({"payment_day": 31}, "deal.payment_day.range"),
        ({"revolving_period_end": date(2024, 4, 1)}, "deal.revolving_period_end.after_closing"),
        ({"default_dpd": 20}, "deal.default_dpd.usual_range"),
        ({"closing_date": date(2024, 9, 1)}, "deal.closing_date.within_3_months"),
    ],
)
def test_a_deal_breaking_a_rule_is_caught(changes: dict[str, Any], rule_id: str) -> None:
    frame = deal_frame([DEAL]).with_columns(
        pl.lit(v, dtype=DEAL_COLUMNS[k]).alias(k) for k, v in changes.items()
    )
    contract = load_contract("deal")
    outcome = validate_frame(contract, frame)
    assert outcome.failures["rule_id"].to_list() == [rule_id]
    assert outcome.batch_accepted == (contract.rule(rule_id).severity == "warning")


@pytest.mark.parametrize(
    ("changes", "rule_id"),
    [
        ({"closing_principal": -1}, "loan_snapshots.closing_principal.non_negative"),
        ({"bucket": "90+"}, "loan_snapshots.bucket.valid_values"),
        ({"status": "defaulted"}, "loan_snapshots.default_date.present_when_defaulted"),
        ({"dpd": -3}, "loan_snapshots.dpd.non_negative"),
        ({"new_drawings": -1}, "loan_snapshots.new_drawings.non_negative"),
    ],
)
def test_a_snapshot_row_breaking_a_rule_rejects_the_snapshot(
    changes: dict[str, Any], rule_id: str
) -> None:
    frame = pl.DataFrame(
        [SNAPSHOT, {**SNAPSHOT, "loan_id": "L2", **changes}], schema=schema.LOAN_SNAPSHOTS
    )
    outcome = validate_frame(load_contract("loan_snapshots"), frame)
    assert outcome.failures.select("row_index", "rule_id").rows() == [(1, rule_id)]
    assert not outcome.batch_accepted


def test_a_loan_twice_in_one_snapshot_is_caught() -> None:
    frame = pl.DataFrame([SNAPSHOT, SNAPSHOT], schema=schema.LOAN_SNAPSHOTS)
    outcome = validate_frame(load_contract("loan_snapshots"), frame)
    assert set(outcome.failures["rule_id"]) == {"loan_snapshots.loan_id.once_per_as_of_date"}
