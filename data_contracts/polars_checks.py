"""Compile a data contract into Polars expressions, for data the pipeline derived itself.

Delivered data (landing and staged files) is validated by the contract's Great
Expectations suite (:mod:`data_contracts.validate`), whose reports matter to
the people who deliver it. Data the pipeline computes (loan snapshots, marts)
is checked against the same ODCS contracts through this module instead: each
rule becomes one boolean Polars expression that is true on a failing row, so a
million-row snapshot is checked in one vectorised pass, without converting the
frame to pandas.

``compile_checks`` is pure, like :func:`data_contracts.compile.compile_suite`,
and gives the same verdicts as the GX suite, row for row, with GX's null
semantics: only the not-null rules see nulls; range, set, pattern and pair
rules ignore a null value, and a compound-unique rule ignores a row with a
null in any of its columns. A rule with a ``when`` condition looks only at the
rows where the condition column equals the value (or is one of the values).
Patterns are ECMA-262 as ODCS specifies; Polars' regex engine reads the
contracts' patterns the same way (a final ``$`` matches only at the very end
of the text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from data_contracts.contract import Contract, Rule, RuleKind
from data_contracts.validate import (
    ContractError,
    RuleMeta,
    RuleResult,
    ValidationOutcome,
    failure_rows,
)

_NULL_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "date": pl.Date(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
}


@dataclass(frozen=True)
class PolarsCheck:
    """One contract rule as a Polars expression.

    Attributes:
        rule_id: The rule's id.
        severity: ``error`` or ``warning``.
        description: The rule's description (used in failure messages).
        columns: The columns a failure is reported against (checked column first).
        fails: True on each row that breaks the rule, false otherwise (never null).
    """

    rule_id: str
    severity: str
    description: str
    columns: tuple[str, ...]
    fails: pl.Expr


def _literal(value: Decimal) -> pl.Expr:
    # Integral bounds stay integers (exact against Int64 fen); others stay decimals.
    if value == value.to_integral_value():
        return pl.lit(int(value))
    return pl.lit(value)


def _present(rule: Rule) -> pl.Expr:
    return pl.all_horizontal(pl.col(c).is_not_null() for c in rule.columns)


def _outside(value: pl.Expr, rule: Rule) -> pl.Expr:
    below = above = pl.lit(False)
    if rule.minimum is not None:
        bound = _literal(rule.minimum)
        below = value <= bound if rule.exclusive_minimum else value < bound
    if rule.maximum is not None:
        bound = _literal(rule.maximum)
        above = value >= bound if rule.exclusive_maximum else value > bound
    return below | above


def _values(rule: Rule) -> pl.Expr:
    return pl.col(rule.column).cast(pl.String).is_in(list(rule.value_set or ()))


_BUILDERS: dict[RuleKind, Callable[[Rule], pl.Expr]] = {
    "not_null": lambda r: pl.col(r.column).is_null(),
    "unique": lambda r: pl.col(r.column).is_duplicated() & _present(r),
    "compound_unique": lambda r: pl.struct(r.columns).is_duplicated() & _present(r),
    "pattern": lambda r: ~pl.col(r.column).str.contains(r.pattern or "") & _present(r),
    "forbidden_pattern": lambda r: pl.col(r.column).str.contains(r.pattern or ""),
    "valid_values": lambda r: ~_values(r) & _present(r),
    "forbidden_values": _values,
    "range": lambda r: _outside(pl.col(r.column), r),
    "greater_than": lambda r: pl.col(r.columns[0]) <= pl.col(r.columns[1]),
    "days_between": lambda r: _outside(
        (pl.col(r.columns[0]) - pl.col(r.columns[1])).dt.total_days(), r
    ),
    "any_positive": lambda r: pl.max_horizontal(r.columns) <= 0,
}


def compile_check(rule: Rule) -> PolarsCheck:
    """The Polars expression of one rule.

    Raises:
        ValueError: If the rule is a cross-dataset check (run by the ingest stage).
    """
    if rule.kind == "cross_dataset":
        raise ValueError(f"rule {rule.rule_id} is a cross-dataset check, run at ingest")
    fails = _BUILDERS[rule.kind](rule)
    if rule.kind != "not_null":
        # A null anywhere in the rule's columns is the not-null rule's failure.
        fails = fails & _present(rule)
    if rule.when is not None:
        fails = fails & pl.col(rule.when.column).cast(pl.String).is_in(list(rule.when.values))
    return PolarsCheck(
        rule_id=rule.rule_id,
        severity=rule.severity,
        description=rule.description,
        columns=rule.columns,
        fails=fails.fill_null(False),
    )


def compile_checks(contract: Contract) -> tuple[PolarsCheck, ...]:
    """Every row-level rule of ``contract`` as a Polars check, sorted by rule id."""
    rules = sorted(contract.rules, key=lambda r: r.rule_id)
    return tuple(compile_check(r) for r in rules if r.kind != "cross_dataset")


def failing_rows(
    checks: Sequence[PolarsCheck], frame: pl.DataFrame
) -> list[tuple[PolarsCheck, list[int]]]:
    """The checks some row of ``frame`` breaks, each with the positions of those rows.

    One pass computes every check's row count; positions are gathered only for
    the checks that failed.
    """
    if not checks or frame.height == 0:
        return []
    counts = frame.select(c.fails.sum().alias(str(i)) for i, c in enumerate(checks)).row(0)
    found = []
    for check, count in zip(checks, counts, strict=True):
        if count:
            positions = frame.select(check.fails.arg_true()).to_series().to_list()
            found.append((check, positions))
    return found


def _complete(contract: Contract, frame: pl.DataFrame) -> pl.DataFrame:
    missing = [c.name for c in contract.columns if c.required and c.name not in frame]
    if missing:
        raise ContractError(
            f"{contract.dataset}: required columns missing from the frame: {missing}"
        )
    absent = [
        pl.lit(None, dtype=_NULL_DTYPES[c.logical_type]).alias(c.name)
        for c in contract.columns
        if c.name not in frame
    ]
    return frame.with_columns(absent) if absent else frame


def check_frame(contract: Contract, frame: pl.DataFrame) -> ValidationOutcome:
    """Validate ``frame`` against ``contract`` with Polars expressions.

    The outcome has the shape of :func:`data_contracts.validate.validate_frame`'s
    (failures per row and rule, per-rule results), for derived datasets.

    Raises:
        ContractError: If a required column is missing.
    """
    checks = compile_checks(contract)
    data = _complete(contract, frame)
    failed = {c.rule_id: positions for c, positions in failing_rows(checks, data)}
    parts: list[pl.DataFrame] = []
    results: list[RuleResult] = []
    for check in checks:
        positions = failed.get(check.rule_id, [])
        rule = RuleMeta(check.rule_id, check.severity, check.description)
        if positions:
            # Worded as the GX runner words it.
            parts.append(failure_rows(data, check.columns, positions, rule))
        results.append(
            RuleResult(
                rule_id=rule.rule_id,
                severity=rule.severity,
                description=rule.description,
                failed_count=len(positions),
                success=not positions,
            )
        )
    return ValidationOutcome.of(contract, frame, parts, results)
