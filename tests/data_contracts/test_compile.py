"""Compiling contracts to GX suites: golden files, GX acceptance, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations as gx
import pytest

from data_contracts.compile import (
    GOLDEN_REFRESH_COMMAND,
    compile_rule,
    compile_suite,
    main,
    python_regex,
    suite_json,
)
from data_contracts.contract import DATASETS, load_contract

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("dataset", DATASETS)
def test_suite_matches_golden_file(dataset: str) -> None:
    golden = GOLDEN / f"{dataset}.suite.json"
    actual = suite_json(compile_suite(load_contract(dataset)))
    expected = golden.read_text(encoding="utf-8") if golden.exists() else ""
    assert actual == expected, (
        f"{golden} is out of date with data_contracts/{dataset}.odcs.yaml; "
        f"review the change, then refresh with: {GOLDEN_REFRESH_COMMAND}"
    )


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_expectation_loads_into_gx(dataset: str) -> None:
    suite = compile_suite(load_contract(dataset))
    gx_suite = gx.ExpectationSuite(**suite)
    assert len(gx_suite.expectations) == len(suite["expectations"])
    round_trip = gx_suite.to_json_dict()["expectations"]
    assert [e["meta"]["rule_id"] for e in round_trip] == [
        e["meta"]["rule_id"] for e in suite["expectations"]
    ]


@pytest.mark.parametrize("dataset", DATASETS)
def test_one_expectation_per_rule_sorted_by_rule_id(dataset: str) -> None:
    contract = load_contract(dataset)
    suite = compile_suite(contract)
    ids = [e["meta"]["rule_id"] for e in suite["expectations"]]
    assert ids == sorted(r.rule_id for r in contract.rules if r.kind != "cross_dataset")
    assert suite["meta"]["cross_dataset_rules"] == sorted(
        r.rule_id for r in contract.rules if r.kind == "cross_dataset"
    )
    for expectation in suite["expectations"]:
        rule = contract.rule(expectation["meta"]["rule_id"])
        assert expectation["meta"]["severity"] == rule.severity
        assert expectation["severity"] == {"error": "critical", "warning": "warning"}[rule.severity]
    assert suite["meta"]["contract_version"] == contract.version
    assert json.loads(suite_json(suite)) == suite


def test_conditional_rule_compiles_to_a_row_condition() -> None:
    suite = compile_suite(load_contract("pool_assets"))
    (removal,) = [
        e
        for e in suite["expectations"]
        if e["meta"]["rule_id"] == "pool_assets.reason.removal_reason"
    ]
    assert removal["type"] == "expect_column_values_to_not_be_in_set"
    assert removal["kwargs"]["value_set"] == ["cutoff", "revolving_purchase"]
    assert removal["kwargs"]["row_condition"] == {
        "type": "comparison",
        "column": {"name": "event"},
        "operator": "==",
        "parameter": "removed",
    }


def test_fractional_bounds_are_floats_and_money_bounds_integers() -> None:
    suite = compile_suite(load_contract("loans"))
    kwargs = {e["meta"]["rule_id"]: e["kwargs"] for e in suite["expectations"]}
    assert kwargs["loans.annual_rate.range"]["max_value"] == 0.36
    assert kwargs["loans.principal.upper_bound"]["max_value"] == 1_000_000_000
    assert isinstance(kwargs["loans.principal.upper_bound"]["max_value"], int)
    assert kwargs["loans.principal.positive"] == {
        "column": "principal",
        "min_value": 0,
        "strict_min": True,
    }


@pytest.mark.parametrize(
    ("ecma", "python"),
    [
        ("^[A-Za-z0-9._-]{1,64}$", "^[A-Za-z0-9._-]{1,64}\\Z"),
        ("^\\.{1,2}$", "^\\.{1,2}\\Z"),
        ("^costs \\$", "^costs \\$"),
        ("CN-", "CN-"),
    ],
)
def test_final_dollar_anchors_at_the_very_end(ecma: str, python: str) -> None:
    assert python_regex(ecma) == python


def test_write_golden_command_reproduces_the_golden_files(tmp_path: Path) -> None:
    assert main(["--write-golden", str(tmp_path)]) == 0
    for dataset in DATASETS:
        name = f"{dataset}.suite.json"
        assert (tmp_path / name).read_text(encoding="utf-8") == suite_json(
            compile_suite(load_contract(dataset))
        )


def test_a_cross_dataset_rule_is_not_compiled_to_gx() -> None:
    rule = load_contract("repayments").rule("repayments.loan_id.known_loan")
    with pytest.raises(ValueError, match="run at ingest"):
        compile_rule(rule)
