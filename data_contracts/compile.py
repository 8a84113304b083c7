"""Compile a data contract into a Great Expectations 1.x expectation suite.

``compile_suite`` is pure: contract in, JSON-able dict out, one expectation per
rule, ordered by rule id. Cross-dataset rules (kind ``cross_dataset``) need
other datasets or earlier deliveries and are run by the ingest stage, not GX;
they are listed by id in the suite's ``meta.cross_dataset_rules``. The dict
loads with ``gx.ExpectationSuite(**suite)``.

Two rule kinds have no built-in expectation and are checked on a derived
column that the runner computes before validation; the expectation's
``meta.derived`` says how (``days_between``: ``columns[0] - columns[1]`` in
days; ``max_of``: the largest of ``columns``, null when any input is null).

Refresh the golden suites with::

    python -m data_contracts.compile --write-golden tests/data_contracts/golden
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from data_contracts.contract import DATASETS, Contract, Rule, RuleKind, load_contract

GOLDEN_REFRESH_COMMAND = (
    "python -m data_contracts.compile --write-golden tests/data_contracts/golden"
)

_GX_SEVERITY = {"error": "critical", "warning": "warning"}


def derived_column_name(rule_id: str) -> str:
    """Name of the helper column a derived rule is checked on."""
    return "__" + rule_id.replace(".", "__")


def _number(value: Decimal) -> int | float:
    # JSON has no decimals: integral bounds stay exact integers; fractional
    # bounds (rates) become the float nearest to the written decimal.
    return int(value) if value == value.to_integral_value() else float(value)


def python_regex(ecma_pattern: str) -> str:
    """Translate a contract pattern (ECMA-262, as ODCS specifies) for GX's pandas engine.

    In ECMA-262 a final ``$`` matches only at the end of the text; in Python it
    also matches before a trailing newline, which would let ``"L1\\n"`` pass as
    an identifier. A final unescaped ``$`` therefore becomes ``\\Z``.
    """
    body = ecma_pattern[:-1]
    trailing_backslashes = len(body) - len(body.rstrip("\\"))
    if ecma_pattern.endswith("$") and trailing_backslashes % 2 == 0:
        return body + "\\Z"
    return ecma_pattern


def _bounds(rule: Rule) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if rule.minimum is not None:
        kwargs["min_value"] = _number(rule.minimum)
        kwargs["strict_min"] = rule.exclusive_minimum
    if rule.maximum is not None:
        kwargs["max_value"] = _number(rule.maximum)
        kwargs["strict_max"] = rule.exclusive_maximum
    return kwargs


_Compiled = tuple[str, dict[str, Any], dict[str, Any] | None]
"""GX expectation type, its kwargs, and the derived-column recipe (or None)."""


def _column_rule(gx_type: str) -> Callable[[Rule], _Compiled]:
    def build(rule: Rule) -> _Compiled:
        kwargs: dict[str, Any] = {"column": rule.column}
        if rule.kind in ("pattern", "forbidden_pattern"):
            kwargs["regex"] = python_regex(rule.pattern or "")
        if rule.kind in ("valid_values", "forbidden_values"):
            kwargs["value_set"] = list(rule.value_set or ())
        if rule.kind == "range":
            kwargs.update(_bounds(rule))
        return gx_type, kwargs, None

    return build


def _compound_unique(rule: Rule) -> _Compiled:
    kwargs = {"column_list": list(rule.columns), "ignore_row_if": "any_value_is_missing"}
    return "expect_compound_columns_to_be_unique", kwargs, None


def _greater_than(rule: Rule) -> _Compiled:
    kwargs = {
        "column_A": rule.columns[0],
        "column_B": rule.columns[1],
        "or_equal": False,
        # A null on either side is the not-null rule's failure, not this one's.
        "ignore_row_if": "either_value_is_missing",
    }
    return "expect_column_pair_values_a_to_be_greater_than_b", kwargs, None


def _days_between(rule: Rule) -> _Compiled:
    kwargs = {"column": derived_column_name(rule.rule_id), **_bounds(rule)}
    derived = {"operation": "days_between", "columns": list(rule.columns)}
    return "expect_column_values_to_be_between", kwargs, derived


def _any_positive(rule: Rule) -> _Compiled:
    kwargs = {"column": derived_column_name(rule.rule_id), "min_value": 0, "strict_min": True}
    derived = {"operation": "max_of", "columns": list(rule.columns)}
    return "expect_column_values_to_be_between", kwargs, derived


_BUILDERS: dict[RuleKind, Callable[[Rule], _Compiled]] = {
    "not_null": _column_rule("expect_column_values_to_not_be_null"),
    "unique": _column_rule("expect_column_values_to_be_unique"),
    "pattern": _column_rule("expect_column_values_to_match_regex"),
    "forbidden_pattern": _column_rule("expect_column_values_to_not_match_regex"),
    "valid_values": _column_rule("expect_column_values_to_be_in_set"),
    "forbidden_values": _column_rule("expect_column_values_to_not_be_in_set"),
    "range": _column_rule("expect_column_values_to_be_between"),
    "compound_unique": _compound_unique,
    "greater_than": _greater_than,
    "days_between": _days_between,
    "any_positive": _any_positive,
}


def compile_rule(rule: Rule) -> dict[str, Any]:
    """One GX expectation configuration (``type``, ``kwargs``, ``meta``, ``severity``).

    Args:
        rule: a contract rule.

    Returns:
        The JSON-able expectation configuration; ``meta`` carries the rule id,
        severity, description and the columns failures are reported against.

    Raises:
        ValueError: if the rule is a cross-dataset check.
    """
    if rule.kind == "cross_dataset":
        raise ValueError(f"rule {rule.rule_id} is a cross-dataset check, run at ingest, not by GX")
    gx_type, kwargs, derived = _BUILDERS[rule.kind](rule)
    if rule.when is not None:
        # GX 1.x row conditions: "==" for one value, "IN" for a set of values.
        kwargs["row_condition"] = {
            "type": "comparison",
            "column": {"name": rule.when.column},
            "operator": "==" if rule.when.one_of is None else "IN",
            "parameter": rule.when.equals if rule.when.one_of is None else list(rule.when.values),
        }
    meta: dict[str, Any] = {
        "rule_id": rule.rule_id,
        "severity": rule.severity,
        "description": rule.description,
        "columns": list(rule.columns),
    }
    if derived is not None:
        meta["derived"] = derived
    return {
        "type": gx_type,
        "kwargs": kwargs,
        "meta": meta,
        "severity": _GX_SEVERITY[rule.severity],
    }


def compile_suite(contract: Contract) -> dict[str, Any]:
    """Compile a contract into a GX 1.x ExpectationSuite dict.

    Args:
        contract: the loaded contract.

    Returns:
        ``{"name", "meta", "expectations"}`` with expectations sorted by rule id.
    """
    rules = sorted(contract.rules, key=lambda r: r.rule_id)
    in_suite = [r for r in rules if r.kind != "cross_dataset"]
    return {
        "name": f"{contract.contract_id}@{contract.version}",
        "meta": {
            "contract_id": contract.contract_id,
            "contract_version": contract.version,
            "dataset": contract.dataset,
            "max_error_share": contract.max_error_share,
            "cross_dataset_rules": [r.rule_id for r in rules if r.kind == "cross_dataset"],
        },
        "expectations": [compile_rule(rule) for rule in in_suite],
    }


def suite_json(suite: dict[str, Any]) -> str:
    """Canonical JSON text of a compiled suite (sorted keys, trailing newline)."""
    return json.dumps(suite, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_golden(directory: Path, datasets: Sequence[str] = DATASETS) -> list[Path]:
    """Write ``<dataset>.suite.json`` for each packaged contract into ``directory``.

    Returns:
        The paths written, in dataset order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for dataset in datasets:
        path = directory / f"{dataset}.suite.json"
        path.write_text(suite_json(compile_suite(load_contract(dataset))), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print compiled suites, or refresh the golden files."""
    parser = argparse.ArgumentParser(prog="python -m data_contracts.compile", description=__doc__)
    parser.add_argument("datasets", nargs="*", metavar="DATASET", help=", ".join(DATASETS))
    parser.add_argument("--write-golden", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    datasets = args.datasets or list(DATASETS)
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown datasets: {', '.join(unknown)}")
    if args.write_golden is not None:
        for path in write_golden(args.write_golden, datasets):
            print(path)
        return 0
    for dataset in datasets:
        sys.stdout.write(suite_json(compile_suite(load_contract(dataset))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
