"""Contracts compiled to Polars expressions judge rows exactly as the GX suites do."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from data_contracts.contract import load_contract
from data_contracts.polars_checks import check_frame, compile_check, compile_checks
from data_contracts.validate import validate_frame
from tests.data_contracts.test_derived_contracts import SNAPSHOT
from tests.data_contracts.test_validate import BROKEN_ROWS, CLEAN, _one_broken_row_per_rule
from transforms import schema

_JUDGED = ["row_index", "rule_id", "severity", "column"]


@pytest.mark.parametrize("dataset", sorted(CLEAN))
def test_each_broken_row_fails_the_same_rules_as_under_gx(dataset: str) -> None:
    contract = load_contract(dataset)
    frame, rule_ids = _one_broken_row_per_rule(dataset)
    mine = check_frame(contract, frame)
    theirs = validate_frame(contract, frame)
    assert mine.failures.select(_JUDGED).equals(theirs.failures.select(_JUDGED))
    assert [(r["rule_id"], r["failed_count"]) for r in mine.rule_results] == [
        (r["rule_id"], r["failed_count"]) for r in theirs.rule_results
    ]
    assert set(mine.failures["rule_id"]) >= set(rule_ids)


def test_nulls_fail_only_the_not_null_rules_as_under_gx() -> None:
    contract = load_contract("loans")
    row = {**CLEAN["loans"], "loan_id": "ID-0"}
    nulls = dict.fromkeys(("principal", "annual_rate", "province", "term_months"))
    frame = pl.DataFrame([row, {**row, "loan_id": "ID-1", **nulls}], schema=schema.LOANS)
    mine = check_frame(contract, frame).failures.select(_JUDGED)
    assert mine.equals(validate_frame(contract, frame).failures.select(_JUDGED))
    assert set(mine["rule_id"]) == {
        r.rule_id for r in contract.rules if r.kind == "not_null" and r.column in nulls
    }


_SNAPSHOT_CASES: list[dict[str, Any]] = [
    {"closing_principal": -1},
    {"bucket": "90+"},
    {"status": "defaulted"},
    {"dpd": -3},
    {"loan_id": "L 2"},
    {"loan_id": "L1"},
    {"status": "defaulted", "default_date": SNAPSHOT["as_of_date"]},
    {"outside_defaulted_principal": -1},
]


def test_snapshot_rows_are_judged_as_under_gx() -> None:
    rows = [
        SNAPSHOT,
        *({**SNAPSHOT, "loan_id": f"L{i + 2}", **c} for i, c in enumerate(_SNAPSHOT_CASES)),
    ]
    frame = pl.DataFrame(rows, schema=schema.LOAN_SNAPSHOTS)
    contract = load_contract("loan_snapshots")
    mine = check_frame(contract, frame)
    theirs = validate_frame(contract, frame)
    assert mine.failures.equals(theirs.failures)
    assert mine.failures["rule_id"].n_unique() == 7


def test_a_cross_dataset_rule_has_no_polars_check() -> None:
    contract = load_contract("repayments")
    cross = [r for r in contract.rules if r.kind == "cross_dataset"]
    assert cross
    with pytest.raises(ValueError, match="cross-dataset"):
        compile_check(cross[0])
    assert {c.rule_id for c in compile_checks(contract)}.isdisjoint(r.rule_id for r in cross)


def test_every_input_rule_kind_is_covered_by_the_broken_rows() -> None:
    covered = {rule_id for _, rule_id, _ in BROKEN_ROWS}
    compiled = {c.rule_id for d in CLEAN for c in compile_checks(load_contract(d))}
    assert compiled == covered


def test_schedule_terms_are_required_only_for_instalment_products_as_under_gx() -> None:
    contract = load_contract("loans")
    terms = dict.fromkeys(
        ("first_due_date", "principal", "annual_rate", "term_months", "repayment_method")
    )
    row = {**CLEAN["loans"], **terms}
    frame = pl.DataFrame(
        [
            {**row, "loan_id": "ID-0", "product": "revolving_credit"},
            {**row, "loan_id": "ID-1", "product": "cash_loan"},
            {**row, "loan_id": "ID-2", "product": "consumer_instalment"},
        ],
        schema=schema.LOANS,
    )
    mine = check_frame(contract, frame).failures.select(_JUDGED)
    assert mine.equals(validate_frame(contract, frame).failures.select(_JUDGED))
    # The revolving account (row 0) breaks nothing; each instalment row breaks each term rule.
    assert sorted(set(mine["row_index"].to_list())) == [1, 2]
    assert sorted(mine.filter(pl.col("row_index") == 1)["rule_id"].to_list()) == sorted(
        f"loans.{c}.required" for c in terms
    )


def test_a_condition_takes_exactly_one_of_equals_or_in() -> None:
    from pydantic import ValidationError

    from data_contracts.contract import Condition

    assert Condition.model_validate({"property": "product", "in": ["a", "b"]}).values == ("a", "b")
    assert Condition.model_validate({"property": "product", "equals": "a"}).values == ("a",)
    with pytest.raises(ValidationError, match="exactly one of"):
        Condition.model_validate({"property": "product", "equals": "a", "in": ["b"]})
    with pytest.raises(ValidationError, match="exactly one of"):
        Condition.model_validate({"property": "product"})
