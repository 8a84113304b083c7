"""The snapshot stage publishes only snapshots that keep their contract."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from flows.snapshots import SnapshotContractError, check_snapshots
from tests.data_contracts.test_derived_contracts import SNAPSHOT
from transforms import schema


def _snapshot(**overrides: object) -> dict[str, object]:
    return {**SNAPSHOT, "as_of_date": date(2025, 1, 31), **overrides}


def _frame(*rows: dict[str, object]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema.LOAN_SNAPSHOTS)


def test_snapshots_that_keep_the_contract_pass() -> None:
    check_snapshots(_frame(_snapshot(), _snapshot(loan_id="L2", dpd=12, bucket="1-30",
                                                  status="delinquent")))  # fmt: skip


def test_a_negative_balance_stops_the_stage_naming_rule_and_loan() -> None:
    frame = _frame(_snapshot(), _snapshot(loan_id="L9", closing_principal=-5))
    with pytest.raises(SnapshotContractError) as raised:
        check_snapshots(frame)
    message = str(raised.value)
    assert "loan_snapshots.closing_principal.non_negative: 1 rows" in message
    assert "loan L9 as of 2025-01-31" in message


def test_a_loan_twice_in_one_snapshot_is_refused() -> None:
    with pytest.raises(SnapshotContractError, match="once_per_as_of_date"):
        check_snapshots(_frame(_snapshot(), _snapshot()))
