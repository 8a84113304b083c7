"""Running compiled suites on Polars frames: one broken row per rule, nulls, severities."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from data_contracts.contract import load_contract
from data_contracts.validate import FAILURE_SCHEMA, ContractError, validate_frame
from transforms import schema

LOAN: dict[str, Any] = {
    "loan_id": "L-0001",
    "borrower_id": "B.0001",
    "product": "cash_loan",
    "origination_date": date(2024, 1, 31),
    "first_due_date": date(2024, 2, 29),
    "principal": 800_000,
    "annual_rate": Decimal("0.1095"),
    "term_months": 12,
    "repayment_method": "equal_instalment",
    "province": "CN-GD",
    "borrower_age": 35,
    "credit_score": 700,
    "channel": "app",
}
REPAYMENT: dict[str, Any] = {
    "repayment_id": "R_0001",
    "loan_id": "L-0001",
    "value_date": date(2024, 2, 29),
    "principal_paid": 62_000,
    "interest_paid": 7_300,
    "fee_paid": 0,
    "penalty_paid": 0,
    "kind": "scheduled",
}
POOL_ASSET: dict[str, Any] = {
    "pool_id": "HB-2024-1",
    "loan_id": "L-0001",
    "event_date": date(2024, 3, 1),
    "event": "added",
    "reason": "cutoff",
    "purchase_price": 790_000,
}
CLEAN = {"loans": LOAN, "repayments": REPAYMENT, "pool_assets": POOL_ASSET}
ID_FIELD = {"loans": "loan_id", "repayments": "repayment_id", "pool_assets": "loan_id"}


def _frame(dataset: str, broken: dict[str, Any] | None = None, rows: int = 3) -> pl.DataFrame:
    """``rows`` clean rows with distinct ids; row 1 takes the ``broken`` overrides."""
    records = []
    for i in range(rows):
        record = {**CLEAN[dataset], ID_FIELD[dataset]: f"ID-{i}"}
        if i == 1 and broken:
            record.update(broken)
        records.append(record)
    return pl.DataFrame(records, schema=schema.INPUT_DATASETS[dataset])


BROKEN_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("loans", "loans.loan_id.required", {"loan_id": None}),
    ("loans", "loans.loan_id.unique", {"loan_id": "ID-0"}),
    ("loans", "loans.loan_id.pattern", {"loan_id": "L/../1"}),
    ("loans", "loans.borrower_id.required", {"borrower_id": None}),
    ("loans", "loans.borrower_id.pattern", {"borrower_id": "B 1"}),
    ("loans", "loans.product.required", {"product": None}),
    ("loans", "loans.product.valid_values", {"product": "credit_card"}),
    ("loans", "loans.origination_date.required", {"origination_date": None}),
    ("loans", "loans.first_due_date.required", {"first_due_date": None}),
    ("loans", "loans.first_due_date.after_origination", {"first_due_date": date(2024, 1, 31)}),
    ("loans", "loans.first_due_date.within_3_months", {"first_due_date": date(2024, 5, 31)}),
    ("loans", "loans.principal.required", {"principal": None}),
    ("loans", "loans.principal.positive", {"principal": 0}),
    ("loans", "loans.principal.upper_bound", {"principal": 1_000_000_001}),
    ("loans", "loans.annual_rate.required", {"annual_rate": None}),
    ("loans", "loans.annual_rate.range", {"annual_rate": Decimal("0.360001")}),
    ("loans", "loans.term_months.required", {"term_months": None}),
    ("loans", "loans.term_months.range", {"term_months": 61}),
    ("loans", "loans.repayment_method.required", {"repayment_method": None}),
    ("loans", "loans.repayment_method.valid_values", {"repayment_method": "balloon"}),
    ("loans", "loans.province.required", {"province": None}),
    ("loans", "loans.province.iso_3166", {"province": "cn-bj"}),
    ("loans", "loans.borrower_age.range", {"borrower_age": 17}),
    ("loans", "loans.credit_score.range", {"credit_score": 1001}),
    ("repayments", "repayments.repayment_id.required", {"repayment_id": None}),
    ("repayments", "repayments.repayment_id.pattern", {"repayment_id": "R1\n"}),
    ("repayments", "repayments.loan_id.required", {"loan_id": None}),
    ("repayments", "repayments.loan_id.pattern", {"loan_id": "x" * 65}),
    ("repayments", "repayments.value_date.required", {"value_date": None}),
    ("repayments", "repayments.principal_paid.required", {"principal_paid": None}),
    ("repayments", "repayments.principal_paid.non_negative", {"principal_paid": -1}),
    ("repayments", "repayments.principal_paid.upper_bound", {"principal_paid": 10**10}),
    ("repayments", "repayments.interest_paid.required", {"interest_paid": None}),
    ("repayments", "repayments.interest_paid.non_negative", {"interest_paid": -1}),
    ("repayments", "repayments.interest_paid.upper_bound", {"interest_paid": 10**10}),
    ("repayments", "repayments.fee_paid.required", {"fee_paid": None}),
    ("repayments", "repayments.fee_paid.non_negative", {"fee_paid": -1}),
    ("repayments", "repayments.fee_paid.upper_bound", {"fee_paid": 10**10}),
    ("repayments", "repayments.penalty_paid.required", {"penalty_paid": None}),
    ("repayments", "repayments.penalty_paid.non_negative", {"penalty_paid": -1}),
    ("repayments", "repayments.penalty_paid.upper_bound", {"penalty_paid": 10**10}),
    ("repayments", "repayments.kind.required", {"kind": None}),
    ("repayments", "repayments.kind.valid_values", {"kind": "refund"}),
    ("repayments", "repayments.amounts.any_positive", {"principal_paid": 0, "interest_paid": 0}),
    ("pool_assets", "pool_assets.pool_id.required", {"pool_id": None}),
    ("pool_assets", "pool_assets.pool_id.pattern", {"pool_id": "pool/1"}),
    ("pool_assets", "pool_assets.pool_id.not_dot_segment", {"pool_id": ".."}),
    ("pool_assets", "pool_assets.loan_id.required", {"loan_id": None}),
    ("pool_assets", "pool_assets.loan_id.pattern", {"loan_id": "贷款1"}),
    ("pool_assets", "pool_assets.event_date.required", {"event_date": None}),
    ("pool_assets", "pool_assets.event.required", {"event": None}),
    ("pool_assets", "pool_assets.event.valid_values", {"event": "moved"}),
    ("pool_assets", "pool_assets.reason.required", {"reason": None}),
    ("pool_assets", "pool_assets.reason.valid_values", {"reason": "sold"}),
    ("pool_assets", "pool_assets.reason.addition_reason", {"reason": "repurchase"}),
    ("pool_assets", "pool_assets.reason.removal_reason", {"event": "removed", "reason": "cutoff"}),
    ("pool_assets", "pool_assets.purchase_price.non_negative", {"purchase_price": -1}),
    ("pool_assets", "pool_assets.purchase_price.upper_bound", {"purchase_price": 10**10}),
    ("pool_assets", "pool_assets.purchase_price.present_when_added", {"purchase_price": None}),
    ("pool_assets", "pool_assets.event.unique", {"loan_id": "ID-0"}),
]


def test_every_rule_has_a_broken_row_case() -> None:
    covered = {rule_id for _, rule_id, _ in BROKEN_ROWS}
    declared = {
        r.rule_id for d in CLEAN for r in load_contract(d).rules if r.kind != "cross_dataset"
    }
    assert covered == declared


@pytest.mark.parametrize("dataset", sorted(CLEAN))
def test_clean_frame_has_no_failures(dataset: str) -> None:
    outcome = validate_frame(load_contract(dataset), _frame(dataset))
    assert outcome.failures.is_empty()
    assert outcome.failures.schema == pl.Schema(FAILURE_SCHEMA)
    assert all(r["success"] and r["failed_count"] == 0 for r in outcome.rule_results)
    assert outcome.error_share == 0.0
    assert outcome.batch_accepted


def _one_broken_row_per_rule(dataset: str) -> tuple[pl.DataFrame, list[str]]:
    """Row 0 is clean; row i >= 1 breaks the i-th rule of ``dataset``."""
    cases = [(rule_id, broken) for d, rule_id, broken in BROKEN_ROWS if d == dataset]
    records = [{**CLEAN[dataset], ID_FIELD[dataset]: "ID-0"}]
    for i, (_, broken) in enumerate(cases, start=1):
        records.append({**CLEAN[dataset], ID_FIELD[dataset]: f"ID-{i}", **broken})
    frame = pl.DataFrame(records, schema=schema.INPUT_DATASETS[dataset])
    return frame, [rule_id for rule_id, _ in cases]


@pytest.mark.parametrize("dataset", sorted(CLEAN))
def test_each_broken_row_fails_exactly_its_rule(dataset: str) -> None:
    contract = load_contract(dataset)
    frame, rule_ids = _one_broken_row_per_rule(dataset)
    outcome = validate_frame(contract, frame)
    expected = {(i, rule_id) for i, rule_id in enumerate(rule_ids, start=1)}
    # A duplicated key fails on every row that carries it: here the clean row 0 too.
    expected |= {(0, rule_id) for rule_id in rule_ids if rule_id.endswith(".unique")}
    assert set(outcome.failures.select("row_index", "rule_id").rows()) == expected
    assert outcome.failures.height == len(expected)
    for failure in outcome.failures.to_dicts():
        rule = contract.rule(failure["rule_id"])
        assert failure["severity"] == rule.severity
        assert failure["column"] == ",".join(rule.columns)
        assert failure["message"].startswith(rule.description + " Found: ")
    counts = {r["rule_id"]: (r["failed_count"], r["success"]) for r in outcome.rule_results}
    for rule_id in rule_ids:
        failed = 2 if rule_id.endswith(".unique") else 1
        assert counts[rule_id] == (failed, False)
    warnings_only = {
        i for i, r in enumerate(rule_ids, start=1) if contract.rule(r).severity == "warning"
    }
    duplicated_clean_row = {0} if any(r.endswith(".unique") for r in rule_ids) else set()
    errors = sorted(set(range(1, len(rule_ids) + 1)) - warnings_only | duplicated_clean_row)
    assert outcome.error_rows().to_list() == errors
    assert outcome.error_share == len(errors) / frame.height


def test_null_principal_fails_only_the_required_rule() -> None:
    outcome = validate_frame(load_contract("loans"), _frame("loans", {"principal": None}))
    assert outcome.failures.get_column("rule_id").to_list() == ["loans.principal.required"]
    assert outcome.failures.get_column("message").to_list() == [
        "principal is present for an instalment product (cash_loan, consumer_instalment)."
        " Found: null."
    ]


def test_rate_exactly_at_the_ceiling_passes() -> None:
    frame = _frame("loans", {"annual_rate": Decimal("0.36")})
    assert validate_frame(load_contract("loans"), frame).failures.is_empty()


def test_first_due_date_three_months_after_month_end_passes() -> None:
    frame = _frame(
        "loans", {"origination_date": date(2024, 1, 31), "first_due_date": date(2024, 5, 1)}
    )
    assert validate_frame(load_contract("loans"), frame).failures.is_empty()


def test_reversal_with_positive_amounts_is_valid() -> None:
    frame = _frame("repayments", {"kind": "reversal"})
    assert validate_frame(load_contract("repayments"), frame).failures.is_empty()


def test_warnings_keep_the_row_and_errors_count_towards_the_share() -> None:
    frame = pl.concat(
        [
            _frame("loans", {"credit_score": 250}, rows=2),
            _frame("loans", {"principal": -5, "borrower_age": 99}, rows=2).with_columns(
                pl.col("loan_id") + "-b"
            ),
        ]
    )
    outcome = validate_frame(load_contract("loans"), frame)
    assert outcome.failures.select("row_index", "rule_id", "severity").rows() == [
        (1, "loans.credit_score.range", "warning"),
        (3, "loans.borrower_age.range", "warning"),
        (3, "loans.principal.positive", "error"),
    ]
    assert outcome.error_rows().to_list() == [3]
    assert outcome.error_share == 0.25
    assert not outcome.batch_accepted


def test_row_index_is_the_position_in_the_input_frame() -> None:
    frame = _frame("repayments", rows=6).with_columns(
        pl.when(pl.int_range(pl.len()).is_in([0, 4]))
        .then(pl.lit("bogus"))
        .otherwise(pl.col("kind"))
        .alias("kind")
    )
    outcome = validate_frame(load_contract("repayments"), frame)
    assert outcome.failures.get_column("row_index").to_list() == [0, 4]
    assert (
        outcome.failures.get_column("message").to_list()
        == [
            "kind is scheduled, partial_prepayment, full_prepayment, recovery or reversal. "
            "Found: bogus."
        ]
        * 2
    )


def test_missing_optional_column_is_treated_as_null() -> None:
    frame = _frame("pool_assets").drop("purchase_price")
    outcome = validate_frame(load_contract("pool_assets"), frame)
    assert set(outcome.failures.get_column("rule_id")) == {
        "pool_assets.purchase_price.present_when_added"
    }
    assert outcome.error_share == 0.0


def test_missing_required_column_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="kind"):
        validate_frame(load_contract("repayments"), _frame("repayments").drop("kind"))


def test_extra_lineage_columns_are_ignored() -> None:
    frame = _frame("loans").with_columns(source_file=pl.lit("loans.csv"), source_line=pl.lit(2))
    outcome = validate_frame(load_contract("loans"), frame)
    assert outcome.failures.is_empty()
    assert (outcome.contract_id, outcome.contract_version) == ("abs-pipeline.loans", "1.2.0")


def test_empty_frame_validates_clean() -> None:
    outcome = validate_frame(load_contract("loans"), _frame("loans").clear())
    assert outcome.failures.is_empty()
    assert outcome.error_share == 0.0


def test_validation_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    validate_frame(load_contract("repayments"), _frame("repayments", {"kind": "refund"}))
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
