"""Run a contract's compiled GX suite against a Polars frame.

This is the I/O edge of the contracts package and the only place a Polars
frame becomes pandas. One ephemeral GX context is created lazily per process
(analytics and progress bars off) and reused; validations are serialised
through a lock because the context's single dataframe asset is shared.

Conversions made before handing the frame to GX:

- only the contract's columns are passed; an optional column missing from the
  frame is added as all-null (a missing required column is an error);
- Decimal columns are cast to Float64: GX compares a pyarrow ``decimal128``
  column against a float bound inexactly (0.360000 fails ``max_value=0.36``).
  The cast is monotone and the bound is the float nearest to the same decimal,
  so a value equal to a bound stays equal and the order of others is kept;
- derived columns named in ``meta.derived`` are computed in Polars;
- Date columns are handed over as day numbers (Int32): GX fingerprints each
  batch with pandas' hash, which walks pyarrow dates one Python object at a
  time (about 0.6 s per column at 600,000 rows). Day numbers order exactly
  like the dates, and failure messages read the dates from the Polars frame.

Null semantics follow GX: only the not-null rules see nulls; range, set, regex
and pair rules ignore a null value, so a missing principal fails
``loans.principal.required`` and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypedDict

import polars as pl

from data_contracts.compile import compile_suite, suite_json
from data_contracts.contract import Contract

if TYPE_CHECKING:
    from great_expectations.core.validation_definition import ValidationDefinition

FAILURE_SCHEMA: Final = {
    "row_index": pl.Int64,
    "rule_id": pl.String,
    "severity": pl.String,
    "column": pl.String,
    "message": pl.String,
}
"""Columns of :attr:`ValidationOutcome.failures`."""

_NULL_DTYPES: Final[Mapping[str, pl.DataType]] = {
    "string": pl.String(),
    "date": pl.Date(),
    "integer": pl.Int64(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
}


class ContractError(ValueError):
    """The frame cannot be validated against the contract at all."""


class RuleResult(TypedDict):
    """Outcome of one rule over the batch."""

    rule_id: str
    severity: str
    description: str
    failed_count: int
    success: bool


@dataclass(frozen=True, eq=False)
class ValidationOutcome:
    """Result of validating one batch against one contract.

    Attributes:
        contract_id: the contract's ``id``.
        contract_version: the contract's ``version``.
        row_count: rows in the validated frame.
        max_error_share: the contract's batch threshold.
        failures: one row per failing row and rule (see ``FAILURE_SCHEMA``),
            sorted by ``row_index`` then ``rule_id``.
        rule_results: one entry per rule, sorted by rule id.
    """

    contract_id: str
    contract_version: str
    row_count: int
    max_error_share: float
    failures: pl.DataFrame
    rule_results: list[RuleResult]

    @classmethod
    def of(
        cls,
        contract: Contract,
        frame: pl.DataFrame,
        parts: list[pl.DataFrame],
        results: list[RuleResult],
    ) -> ValidationOutcome:
        """The outcome of ``frame`` from its failure rows (:func:`failure_rows`) and results."""
        failures = (
            pl.concat(parts).sort(["row_index", "rule_id"])
            if parts
            else pl.DataFrame(schema=FAILURE_SCHEMA)
        )
        return cls(
            contract_id=contract.contract_id,
            contract_version=contract.version,
            row_count=frame.height,
            max_error_share=contract.max_error_share,
            failures=failures,
            rule_results=sorted(results, key=lambda r: r["rule_id"]),
        )

    def error_rows(self) -> pl.Series:
        """Sorted positions of the rows with at least one error-severity failure."""
        errors = self.failures.filter(pl.col("severity") == "error")
        return errors.get_column("row_index").unique().sort()

    @property
    def error_share(self) -> float:
        """Share of rows with an error-severity failure (0 for an empty batch)."""
        if self.row_count == 0:
            return 0.0
        return self.error_rows().len() / self.row_count

    @property
    def batch_accepted(self) -> bool:
        """Whether the error share is within the contract's ``maxErrorShare``."""
        return self.error_share <= self.max_error_share


class _Engine:
    """The process's GX context with one pandas dataframe asset.

    Suites are registered once per compiled content (the context refuses to
    run a validation definition whose suite it does not hold).
    """

    def __init__(self) -> None:
        # Imported here: importing great_expectations takes seconds, and modules
        # that only compile or load contracts should not pay for it.
        import great_expectations as gx  # noqa: PLC0415 (slow import, see above)
        from great_expectations.data_context.types.base import (  # noqa: PLC0415
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        self._gx = gx
        self._context = gx.get_context(mode="ephemeral", project_config=config)
        asset = self._context.data_sources.add_pandas("abs_pipeline").add_dataframe_asset("batch")
        self._batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
        self._definitions: dict[str, ValidationDefinition] = {}
        self.lock = threading.Lock()

    def definition(self, suite: dict[str, Any]) -> ValidationDefinition:
        """The registered validation definition for a compiled suite (caller holds the lock)."""
        key = hashlib.sha256(suite_json(suite).encode()).hexdigest()[:16]
        if key not in self._definitions:
            gx_suite = self._gx.ExpectationSuite(**{**suite, "name": f"{suite['name']}#{key}"})
            if len(gx_suite.expectations) != len(suite["expectations"]):
                raise ContractError(f"GX did not accept every expectation of {suite['name']}")
            definition = self._gx.ValidationDefinition(
                name=gx_suite.name,
                data=self._batch_definition,
                suite=self._context.suites.add(gx_suite),
            )
            self._definitions[key] = self._context.validation_definitions.add(definition)
        return self._definitions[key]


@functools.cache
def _engine() -> _Engine:
    return _Engine()


def _derive(operation: str, columns: list[str]) -> pl.Expr:
    if operation == "days_between":
        return (pl.col(columns[0]) - pl.col(columns[1])).dt.total_days()
    if operation == "max_of":
        any_null = pl.any_horizontal(pl.col(c).is_null() for c in columns)
        return pl.when(any_null).then(None).otherwise(pl.max_horizontal(columns))
    raise ContractError(f"unknown derived column operation {operation!r}")


def _prepare(contract: Contract, suite: dict[str, Any], frame: pl.DataFrame) -> pl.DataFrame:
    missing_required = [c.name for c in contract.columns if c.required and c.name not in frame]
    if missing_required:
        raise ContractError(
            f"{contract.dataset}: required columns missing from the frame: {missing_required}"
        )
    columns: list[pl.Expr] = []
    for column in contract.columns:
        if column.name not in frame:
            dtype = _NULL_DTYPES[column.logical_type]
            columns.append(pl.lit(None, dtype=dtype).alias(column.name))
        elif isinstance(frame.schema[column.name], pl.Decimal):
            columns.append(pl.col(column.name).cast(pl.Float64))
        else:
            columns.append(pl.col(column.name))
    prepared = frame.select(columns)
    derived = [
        _derive(e["meta"]["derived"]["operation"], e["meta"]["derived"]["columns"]).alias(
            e["kwargs"]["column"]
        )
        for e in suite["expectations"]
        if "derived" in e["meta"]
    ]
    return prepared.with_columns(derived) if derived else prepared


def failure_rows(
    frame: pl.DataFrame, columns: Sequence[str], indices: list[int], rule: RuleMeta
) -> pl.DataFrame:
    """One ``FAILURE_SCHEMA`` row per failing row of a rule: the rule's description and the
    values found ("Found: 0." or, with several columns, "Found: charge_off_dpd 180, ...").

    Args:
        frame: The validated frame.
        columns: The rule's columns.
        indices: Positions of the failing rows.
        rule: The rule's id, severity and description.
    """
    named = len(columns) > 1
    found = pl.concat_str(
        [
            pl.concat_str(
                pl.lit(f"{c} " if named else ""), pl.col(c).cast(pl.String).fill_null("null")
            )
            for c in columns
        ],
        separator=", ",
    ).str.replace_all("\n", "\\n", literal=True)
    return frame.select(columns)[indices].select(
        pl.Series("row_index", indices, dtype=pl.Int64),
        pl.lit(rule.rule_id).alias("rule_id"),
        pl.lit(rule.severity).alias("severity"),
        pl.lit(",".join(columns)).alias("column"),
        pl.format("{} Found: {}.", pl.lit(rule.description), found).alias("message"),
    )


@dataclass(frozen=True)
class RuleMeta:
    """What a failure row says of its rule."""

    rule_id: str
    severity: str
    description: str


def validate_frame(contract: Contract, frame: pl.DataFrame) -> ValidationOutcome:
    """Validate ``frame`` against ``contract`` with its compiled GX suite.

    Args:
        contract: the loaded contract.
        frame: the staged rows; extra columns (lineage) are ignored.

    Returns:
        The per-row failures and per-rule results.

    Raises:
        ContractError: if a required column is missing, or GX could not
            evaluate a rule (an evaluation error is never a pass).
    """
    suite = compile_suite(contract)
    prepared = _prepare(contract, suite, frame)
    # Dates go to GX as day numbers (see the module docstring).
    data = prepared.with_columns(pl.col(pl.Date).cast(pl.Int32))
    engine = _engine()
    with engine.lock:
        result = engine.definition(suite).run(
            batch_parameters={"dataframe": data.to_pandas(use_pyarrow_extension_array=True)},
            result_format={"result_format": "COMPLETE"},
        )

    if len(result.results) != len(suite["expectations"]):
        raise ContractError(f"{contract.contract_id}: GX returned results for only some rules")
    parts: list[pl.DataFrame] = []
    rule_results: list[RuleResult] = []
    for expectation_result in result.results:
        meta = expectation_result.expectation_config.meta
        rule_id = str(meta["rule_id"])
        if expectation_result.exception_info.get("raised_exception"):
            message = expectation_result.exception_info.get("exception_message")
            raise ContractError(f"rule {rule_id} could not be evaluated: {message}")
        # The offending values are read back from the frame by position: GX caps
        # ``unexpected_list`` at a few hundred values even with result_format
        # COMPLETE, while ``unexpected_index_list`` is complete.
        indices = expectation_result.result.get("unexpected_index_list") or []
        rule = RuleMeta(rule_id, str(meta["severity"]), str(meta["description"]))
        if indices:
            parts.append(failure_rows(prepared, list(meta["columns"]), indices, rule))
        rule_results.append(
            RuleResult(
                rule_id=rule_id,
                severity=rule.severity,
                description=rule.description,
                failed_count=len(indices),
                success=bool(expectation_result.success),
            )
        )
    return ValidationOutcome.of(contract, frame, parts, rule_results)
