"""The packaged ODCS contracts load into the typed model and agree with the canonical schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from data_contracts.contract import (
    CROSS_DATASET_CHECKS,
    DATASETS,
    INPUT_DATASETS,
    contract_path,
    load_contract,
)
from data_contracts.deal_table import DEAL_COLUMNS
from transforms import schema

ENUMS = {
    ("loans", "product"): schema.PRODUCTS,
    ("loans", "repayment_method"): schema.REPAYMENT_METHODS,
    ("repayments", "kind"): schema.REPAYMENT_KINDS,
    ("pool_assets", "event"): schema.POOL_EVENTS,
    ("pool_assets", "reason"): schema.POOL_EVENT_REASONS,
}


@pytest.mark.parametrize("dataset", INPUT_DATASETS)
def test_contract_declares_the_canonical_columns(dataset: str) -> None:
    contract = load_contract(dataset)
    assert contract.dataset == dataset
    assert contract.column_names == tuple(schema.INPUT_DATASETS[dataset])
    optional = {c.name for c in contract.columns if not c.required}
    assert optional == schema.OPTIONAL_COLUMNS[dataset]


@pytest.mark.parametrize("dataset", INPUT_DATASETS)
def test_contract_identity_and_threshold(dataset: str) -> None:
    contract = load_contract(dataset)
    assert contract.contract_id == f"abs-pipeline.{dataset}"
    versions = {"loan_tape": "1.0.0", "loans": "1.2.0"}
    assert contract.version == versions.get(dataset, "1.1.0")
    assert contract.max_error_share == 0.05
    assert all(r.rule_id.startswith(f"{dataset}.") for r in contract.rules)


@pytest.mark.parametrize(
    ("dataset", "columns"),
    [("deal", DEAL_COLUMNS), ("loan_snapshots", schema.LOAN_SNAPSHOTS)],
)
def test_derived_contracts_declare_their_table_and_reject_any_error(
    dataset: str, columns: schema.Columns
) -> None:
    contract = load_contract(dataset)
    assert dataset in DATASETS
    assert contract.contract_id == f"abs-pipeline.{dataset}"
    assert contract.column_names == tuple(columns)
    assert contract.max_error_share == 0


def test_cross_dataset_rules_name_a_known_check_and_carry_a_severity() -> None:
    rules = {
        r.rule_id: (r.check, r.severity)
        for d in INPUT_DATASETS
        for r in load_contract(d).rules
        if r.kind == "cross_dataset"
    }
    assert rules == {
        "loans.origination_date.not_future": ("not_after_business_date", "error"),
        "repayments.repayment_id.conflict": ("id_conflict", "error"),
        "repayments.loan_id.known_loan": ("known_loan", "error"),
        "loan_tape.as_of_date.not_future": ("not_after_business_date", "error"),
        "loan_tape.loan_id.known_loan": ("known_loan", "error"),
        "loans.province.known_region": ("iso_region", "error"),
        "repayments.value_date.on_or_after_origination": ("on_or_after_origination", "error"),
        "repayments.value_date.not_future": ("not_after_business_date", "error"),
        "repayments.principal_paid.within_outstanding": ("within_outstanding", "warning"),
        "pool_assets.loan_id.known_loan": ("known_loan", "error"),
        "pool_assets.event_date.not_future": ("not_after_business_date", "error"),
        "pool_assets.event.added_twice": ("added_twice", "error"),
        "pool_assets.event.removed_not_in_pool": ("removed_not_in_pool", "error"),
    }
    assert {check for check, _ in rules.values()} == set(CROSS_DATASET_CHECKS)


@pytest.mark.parametrize(("key", "values"), sorted(ENUMS.items()))
def test_enum_rules_match_schema_constants(key: tuple[str, str], values: tuple[str, ...]) -> None:
    dataset, column = key
    rule = load_contract(dataset).rule(f"{dataset}.{column}.valid_values")
    assert rule.value_set == values


def test_regions_are_any_iso_3166_code_and_the_deal_says_which_it_allows() -> None:
    contract = load_contract("loans")
    assert contract.rule("loans.province.iso_3166").kind == "pattern"
    assert contract.rule("loans.province.known_region").check == "iso_region"


def test_identifier_columns_carry_the_identifier_pattern() -> None:
    expected = {
        "loans": ("loan_id", "borrower_id"),
        "repayments": ("repayment_id", "loan_id"),
        "pool_assets": ("pool_id", "loan_id"),
    }
    for dataset, columns in expected.items():
        contract = load_contract(dataset)
        for column in columns:
            rule = contract.rule(f"{dataset}.{column}.pattern")
            assert rule.pattern == "^[A-Za-z0-9._-]{1,64}$"
            assert rule.severity == "error"


def test_doubtful_values_are_warnings_and_wrong_values_errors() -> None:
    loans = load_contract("loans")
    assert loans.rule("loans.credit_score.range").severity == "warning"
    assert loans.rule("loans.borrower_age.range").severity == "warning"
    assert loans.rule("loans.principal.positive").severity == "error"
    repayments = load_contract("repayments")
    assert repayments.rule("repayments.amounts.any_positive").severity == "warning"


def test_loads_from_a_path(tmp_path: Path) -> None:
    copy = tmp_path / "loans.odcs.yaml"
    copy.write_text(contract_path("loans").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_contract(copy) == load_contract("loans")


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="no packaged contract"):
        load_contract("tranches")


def _edited(tmp_path: Path, edit: str) -> Path:
    document = yaml.safe_load(contract_path("repayments").read_text(encoding="utf-8"))
    kind = document["schema"][0]["properties"][-1]
    if edit == "unknown_argument":
        kind["quality"][0]["customProperties"].append({"property": "bogus", "value": 1})
    elif edit == "bad_severity":
        kind["quality"][0]["severity"] = "fatal"
    elif edit == "duplicate_rule_id":
        kind["quality"].append(dict(kind["quality"][0]))
    elif edit == "no_threshold":
        document["customProperties"] = []
    elif edit == "unknown_check":
        kind["quality"].append(
            {
                "name": "repayments.kind.magic",
                "type": "custom",
                "engine": "abs-pipeline",
                "implementation": "magic",
                "dimension": "accuracy",
                "severity": "error",
                "description": "A check nobody implements.",
            }
        )
    path = tmp_path / "edited.odcs.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("unknown_argument", "unknown arguments"),
        ("bad_severity", "severity"),
        ("duplicate_rule_id", "duplicate rule ids"),
        ("no_threshold", "maxErrorShare"),
        ("unknown_check", "implementation"),
    ],
)
def test_malformed_contracts_are_rejected(tmp_path: Path, edit: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_contract(_edited(tmp_path, edit))


def test_schedule_terms_are_required_exactly_for_the_instalment_products() -> None:
    contract = load_contract("loans")
    conditional = {r.column: r.when for r in contract.rules if r.when is not None}
    assert sorted(conditional) == sorted(schema.SCHEDULE_TERMS)
    for when in conditional.values():
        assert when is not None
        assert (when.column, when.values) == ("product", schema.INSTALMENT_PRODUCTS)
    assert set(schema.PRODUCTS) == {*schema.INSTALMENT_PRODUCTS, *schema.UNSCHEDULED_PRODUCTS}
