"""Typed model of the ODCS v3 data contracts in this package, and their loader.

A contract (``data_contracts/<dataset>.odcs.yaml``) follows the Open Data
Contract Standard v3.0: one schema object whose properties carry
``logicalType``, ``physicalType``, ``required``, ``unique`` and
``logicalTypeOptions.pattern``, plus ``quality`` entries of type ``library``.

Every check becomes a :class:`Rule` with a stable id, a severity and a
description:

- ``required: true`` gives ``<dataset>.<property>.required`` (not null),
- ``unique: true`` gives ``<dataset>.<property>.unique``,
- ``logicalTypeOptions.pattern`` gives ``<dataset>.<property>.pattern``,
  all of severity ``error``;
- each ``quality`` entry is one rule: its ``name`` is the rule id, ``rule``
  the kind of check, ``severity`` ``error`` or ``warning``, and its arguments
  sit in ``customProperties`` (the ODCS v3.0 slot for "additional properties
  required for rule execution"). ``mustBe: 0`` with ``unit: rows`` states the
  ODCS reading: the number of rows breaking the rule must be zero.

Checks that need more than the batch itself (another dataset, the delivery's
business date, earlier deliveries) are ``quality`` entries of type ``custom``
with ``engine: abs-pipeline``: ``implementation`` names the check
(:data:`CROSS_DATASET_CHECKS`), the entry gives its rule id, severity and
description, and the ingest stage runs it in Polars. The compiler leaves them
out of the GX suite.

The batch threshold is the contract-level custom property ``maxErrorShare``.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from open_data_contract_standard.model import OpenDataContractStandard
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

Severity = Literal["error", "warning"]

RuleKind = Literal[
    "not_null",
    "unique",
    "compound_unique",
    "pattern",
    "forbidden_pattern",
    "valid_values",
    "forbidden_values",
    "range",
    "greater_than",
    "days_between",
    "any_positive",
    "cross_dataset",
]
"""Engine-neutral kinds of row-level check; all but ``cross_dataset`` compile to GX."""

CrossDatasetCheck = Literal[
    "known_loan",
    "on_or_after_origination",
    "not_after_business_date",
    "within_outstanding",
    "id_conflict",
    "added_twice",
    "removed_not_in_pool",
    "iso_region",
]
"""Checks against other datasets or earlier deliveries, run by the ingest stage."""

CROSS_DATASET_CHECKS: tuple[str, ...] = get_args(CrossDatasetCheck)
"""The names an ``implementation`` of a custom quality entry may take."""

INPUT_DATASETS = ("loans", "repayments", "pool_assets", "loan_tape")
"""Datasets a servicer delivers, validated row by row at ingest."""

DATASETS = (*INPUT_DATASETS, "deal", "loan_snapshots")
"""Datasets with a packaged contract."""

_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def _exact_number(value: object) -> Decimal | None:
    # Bounds are held as Decimal so that a YAML float such as 0.36 keeps its
    # written value rather than its binary approximation.
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a bound must be a number, not a boolean")
    return Decimal(str(value))


ExactNumber = Annotated[Decimal | None, BeforeValidator(_exact_number)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- the ODCS subset as written in the YAML ---------------------------------------------------


class CustomProperty(_Frozen):
    """An ODCS ``customProperties`` entry."""

    property: str = Field(min_length=1)
    value: Any


class LogicalTypeOptions(_Frozen):
    """The ``logicalTypeOptions`` this project uses."""

    pattern: str | None = None
    min_length: int | None = Field(default=None, alias="minLength", ge=0)
    max_length: int | None = Field(default=None, alias="maxLength", ge=0)
    format: str | None = None


class OdcsQuality(_Frozen):
    """An ODCS v3.0 ``quality`` entry of type ``library``."""

    name: str
    type: Literal["library"] = "library"
    rule: Literal[
        "nullValues",
        "duplicateValues",
        "invalidValues",
        "valueRange",
        "propertyComparison",
        "daysBetween",
        "anyPositive",
    ]
    description: str = Field(min_length=1)
    dimension: Literal[
        "accuracy",
        "completeness",
        "conformity",
        "consistency",
        "coverage",
        "timeliness",
        "uniqueness",
    ]
    severity: Severity
    must_be: Literal[0] = Field(default=0, alias="mustBe")
    unit: Literal["rows"] = "rows"
    custom_properties: tuple[CustomProperty, ...] = Field(default=(), alias="customProperties")

    def arguments(self) -> dict[str, Any]:
        """The custom properties as a mapping (names are unique)."""
        names = [p.property for p in self.custom_properties]
        if len(names) != len(set(names)):
            raise ValueError(f"quality rule {self.name!r}: duplicate customProperties")
        return {p.property: p.value for p in self.custom_properties}


class OdcsCustomQuality(_Frozen):
    """An ODCS v3.0 ``quality`` entry of type ``custom``: a check run by the ingest stage."""

    name: str
    type: Literal["custom"]
    engine: Literal["abs-pipeline"]
    implementation: CrossDatasetCheck
    description: str = Field(min_length=1)
    dimension: Literal["accuracy", "consistency", "timeliness", "uniqueness"]
    severity: Severity
    must_be: Literal[0] = Field(default=0, alias="mustBe")
    unit: Literal["rows"] = "rows"


Quality = OdcsQuality | OdcsCustomQuality


class OdcsProperty(_Frozen):
    """An ODCS schema property (a column)."""

    name: str = Field(min_length=1)
    logical_type: Literal["string", "date", "number", "integer", "boolean"] = Field(
        alias="logicalType"
    )
    physical_type: str = Field(alias="physicalType", min_length=1)
    description: str = Field(min_length=1)
    required: bool = False
    unique: bool = False
    primary_key: bool = Field(default=False, alias="primaryKey")
    classification: str | None = None
    logical_type_options: LogicalTypeOptions | None = Field(
        default=None, alias="logicalTypeOptions"
    )
    examples: tuple[Any, ...] = ()
    quality: tuple[Quality, ...] = ()


class OdcsSchemaObject(_Frozen):
    """An ODCS schema object (a table)."""

    name: str = Field(min_length=1)
    logical_type: Literal["object"] = Field(alias="logicalType")
    physical_type: str = Field(alias="physicalType")
    physical_name: str | None = Field(default=None, alias="physicalName")
    description: str = Field(min_length=1)
    data_granularity_description: str | None = Field(
        default=None, alias="dataGranularityDescription"
    )
    properties: tuple[OdcsProperty, ...] = Field(min_length=1)
    quality: tuple[Quality, ...] = ()


class OdcsDescription(_Frozen):
    """The ODCS v3.0 contract-level ``description`` object."""

    purpose: str
    usage: str | None = None
    limitations: str | None = None


class OdcsContract(_Frozen):
    """The subset of an ODCS v3.0 document this project writes and reads."""

    api_version: Literal["v3.0.0", "v3.0.1", "v3.0.2"] = Field(alias="apiVersion")
    kind: Literal["DataContract"]
    id: str = Field(min_length=1)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    status: Literal["proposed", "draft", "active", "deprecated", "retired"]
    name: str = Field(min_length=1)
    domain: str | None = None
    data_product: str | None = Field(default=None, alias="dataProduct")
    tags: tuple[str, ...] = ()
    description: OdcsDescription
    schema_: tuple[OdcsSchemaObject] = Field(alias="schema")
    custom_properties: tuple[CustomProperty, ...] = Field(default=(), alias="customProperties")


# --- the typed contract the compiler and runner use -----------------------------------------


class Condition(_Frozen):
    """Restricts a rule to the rows where ``column`` equals ``equals`` or is one of ``in``.

    Written in the contract as ``{property: <column>, equals: <value>}`` or
    ``{property: <column>, in: [<value>, ...]}`` (exactly one of the two): a
    conditional requirement such as "schedule terms are required when the
    product is an instalment product" is a not-null rule with ``in``.
    """

    column: str = Field(alias="property")
    equals: str | None = None
    one_of: tuple[str, ...] | None = Field(default=None, alias="in", min_length=1)

    @model_validator(mode="after")
    def _one_comparison(self) -> Condition:
        if (self.equals is None) == (self.one_of is None):
            raise ValueError(f"condition on {self.column!r} needs exactly one of 'equals' or 'in'")
        return self

    @property
    def values(self) -> tuple[str, ...]:
        """The values of ``column`` on which the rule applies."""
        return self.one_of if self.one_of is not None else (self.equals or "",)


class Rule(_Frozen):
    """One row-level check with a stable id.

    ``columns`` are the columns a failure is reported against (the checked
    column first). Which parameters are set depends on ``kind``.
    """

    rule_id: str
    kind: RuleKind
    columns: tuple[str, ...] = Field(min_length=1)
    severity: Severity
    description: str
    value_set: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: ExactNumber = None
    maximum: ExactNumber = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    when: Condition | None = None
    check: CrossDatasetCheck | None = None

    @property
    def column(self) -> str:
        """The checked column (the first of ``columns``)."""
        return self.columns[0]

    @model_validator(mode="after")
    def _parameters_fit_kind(self) -> Rule:
        if not _RULE_ID.match(self.rule_id):
            raise ValueError(f"rule id {self.rule_id!r} is not of the form dataset.column.check")
        needs: dict[str, bool] = {
            "valid_values": self.value_set is not None,
            "forbidden_values": self.value_set is not None,
            "pattern": self.pattern is not None,
            "forbidden_pattern": self.pattern is not None,
            "range": self.minimum is not None or self.maximum is not None,
            "days_between": self.minimum is not None or self.maximum is not None,
            "greater_than": len(self.columns) == 2,
            "compound_unique": len(self.columns) >= 2,
            "any_positive": len(self.columns) >= 2,
            "cross_dataset": self.check is not None,
        }
        if not needs.get(self.kind, True):
            raise ValueError(f"rule {self.rule_id}: missing parameters for kind {self.kind}")
        if self.kind == "days_between" and len(self.columns) != 2:
            raise ValueError(f"rule {self.rule_id}: days_between needs a 'from' property")
        return self


class Column(_Frozen):
    """A declared column of the dataset."""

    name: str
    logical_type: Literal["string", "date", "number", "integer", "boolean"]
    physical_type: str
    required: bool
    description: str


class Contract(_Frozen):
    """A loaded data contract: identity, columns, rules and the batch threshold."""

    contract_id: str
    version: str
    dataset: str
    status: str
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...]
    max_error_share: float = Field(ge=0, le=1)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Declared column names in contract order."""
        return tuple(c.name for c in self.columns)

    def rule(self, rule_id: str) -> Rule:
        """The rule with id ``rule_id``.

        Raises:
            KeyError: if the contract has no such rule.
        """
        for rule in self.rules:
            if rule.rule_id == rule_id:
                return rule
        raise KeyError(rule_id)

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        ids = [r.rule_id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids: {duplicates}")
        known = set(self.column_names)
        for rule in self.rules:
            unknown = [c for c in rule.columns if c not in known]
            if rule.when is not None and rule.when.column not in known:
                unknown.append(rule.when.column)
            if unknown:
                raise ValueError(f"rule {rule.rule_id} refers to undeclared columns {unknown}")
            if not rule.rule_id.startswith(f"{self.dataset}."):
                raise ValueError(f"rule {rule.rule_id} does not start with {self.dataset}.")
        return self


def _implicit_rules(dataset: str, prop: OdcsProperty) -> list[Rule]:
    def rule(suffix: str, kind: RuleKind, description: str, **extra: Any) -> Rule:
        return Rule(
            rule_id=f"{dataset}.{prop.name}.{suffix}",
            kind=kind,
            columns=(prop.name,),
            severity="error",
            description=f"{prop.name} {description}",
            **extra,
        )

    rules: list[Rule] = []
    if prop.required:
        rules.append(rule("required", "not_null", "is present."))
    if prop.unique:
        rules.append(rule("unique", "unique", "occurs at most once in the batch."))
    options = prop.logical_type_options
    if options is not None and options.pattern is not None:
        rules.append(
            rule("pattern", "pattern", f"matches {options.pattern}.", pattern=options.pattern)
        )
    return rules


def _condition(args: dict[str, Any]) -> Condition | None:
    when = args.pop("when", None)
    return None if when is None else Condition.model_validate(when)


def _custom_rule(quality: OdcsCustomQuality, prop: str | None) -> Rule:
    if prop is None:
        raise ValueError(f"custom rule {quality.name}: a cross-dataset check belongs on a property")
    return Rule(
        rule_id=quality.name,
        kind="cross_dataset",
        columns=(prop,),
        severity=quality.severity,
        description=quality.description,
        check=quality.implementation,
    )


def _quality_rule(quality: Quality, prop: str | None) -> Rule:
    if isinstance(quality, OdcsCustomQuality):
        return _custom_rule(quality, prop)
    args = quality.arguments()
    common: dict[str, Any] = {
        "rule_id": quality.name,
        "severity": quality.severity,
        "description": quality.description,
        "when": _condition(args),
    }
    kind: RuleKind
    columns: tuple[str, ...]
    if quality.rule in ("duplicateValues", "anyPositive") and prop is None:
        columns = tuple(args.pop("properties"))
        kind = "compound_unique" if quality.rule == "duplicateValues" else "any_positive"
    elif prop is None:
        raise ValueError(f"quality rule {quality.name}: {quality.rule} belongs on a property")
    elif quality.rule == "nullValues":
        kind, columns = "not_null", (prop,)
    elif quality.rule == "duplicateValues":
        kind, columns = "unique", (prop,)
    elif quality.rule == "invalidValues":
        columns = (prop,)
        if "validValues" in args:
            kind = "valid_values"
            common["value_set"] = tuple(str(v) for v in args.pop("validValues"))
        elif "forbiddenValues" in args:
            kind = "forbidden_values"
            common["value_set"] = tuple(str(v) for v in args.pop("forbiddenValues"))
        elif "pattern" in args:
            kind = "pattern"
            common["pattern"] = args.pop("pattern")
        else:
            kind = "forbidden_pattern"
            common["pattern"] = args.pop("forbiddenPattern")
    elif quality.rule == "valueRange":
        kind, columns = "range", (prop,)
    elif quality.rule == "propertyComparison":
        kind, columns = "greater_than", (prop, args.pop("greaterThan"))
    elif quality.rule == "daysBetween":
        kind, columns = "days_between", (prop, args.pop("from"))
    else:
        raise ValueError(f"quality rule {quality.name}: {quality.rule} needs schema level")
    if kind in ("range", "days_between"):
        common["minimum"] = args.pop("minimum", None)
        common["maximum"] = args.pop("maximum", None)
        common["exclusive_minimum"] = bool(args.pop("exclusiveMinimum", False))
        common["exclusive_maximum"] = bool(args.pop("exclusiveMaximum", False))
    if args:
        raise ValueError(f"quality rule {quality.name}: unknown arguments {sorted(args)}")
    return Rule(kind=kind, columns=columns, **common)


def contract_from_odcs(document: OdcsContract) -> Contract:
    """Build the typed contract from a parsed ODCS document.

    Args:
        document: the validated ODCS subset.

    Returns:
        The contract with implicit and explicit rules in declaration order.

    Raises:
        ValueError: if a rule is malformed or refers to an undeclared column.
    """
    (table,) = document.schema_
    rules: list[Rule] = []
    for prop in table.properties:
        rules.extend(_implicit_rules(table.name, prop))
        rules.extend(_quality_rule(q, prop.name) for q in prop.quality)
    rules.extend(_quality_rule(q, None) for q in table.quality)
    settings = {p.property: p.value for p in document.custom_properties}
    if "maxErrorShare" not in settings:
        raise ValueError(f"contract {document.id}: customProperties lacks maxErrorShare")
    return Contract(
        contract_id=document.id,
        version=document.version,
        dataset=table.name,
        status=document.status,
        columns=tuple(
            Column.model_validate(p.model_dump(include=set(Column.model_fields)))
            for p in table.properties
        ),
        rules=tuple(rules),
        max_error_share=float(settings["maxErrorShare"]),
    )


def contract_path(dataset: str) -> Path:
    """Path of the packaged contract for ``dataset``.

    Raises:
        ValueError: if no contract is packaged for ``dataset``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"no packaged contract for {dataset!r}; known: {', '.join(DATASETS)}")
    return Path(str(resources.files("data_contracts") / f"{dataset}.odcs.yaml"))


def load_contract(name_or_path: str | Path) -> Contract:
    """Load a contract by dataset name (``"loans"``) or from a YAML file path.

    Args:
        name_or_path: a packaged dataset name, or a path to an ``.odcs.yaml`` file.

    Returns:
        The typed contract.

    Raises:
        ValueError: if the name is unknown or the document is not a valid contract.
    """
    is_name = isinstance(name_or_path, str) and not name_or_path.endswith((".yaml", ".yml"))
    if is_name:
        return _packaged_contract(str(name_or_path))
    return _read_contract(Path(name_or_path))


@functools.cache
def _packaged_contract(dataset: str) -> Contract:
    # Packaged contracts do not change while a process runs; ingest loads each once
    # per chunk, and parsing plus model validation is not free.
    return _read_contract(contract_path(dataset))


def _read_contract(path: Path) -> Contract:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    # The standard's own model (open-data-contract-standard, as datacontract-cli uses it)
    # decides whether the file is an ODCS v3 contract at all; the typed subset above then
    # reads the parts this project executes (and refuses what it cannot execute).
    standard = conforming_odcs(raw, path)
    return contract_from_odcs(
        OdcsContract.model_validate(standard.model_dump(by_alias=True, exclude_none=True))
    )


def conforming_odcs(raw: object, path: Path) -> OpenDataContractStandard:
    """``raw`` read by the ODCS v3 model of the open-data-contract-standard package.

    Raises:
        ValueError: The document is not an ODCS v3 data contract; the message names the file.
    """
    try:
        return OpenDataContractStandard.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"{path.name}: not an ODCS v3 contract ({where}: {first['msg']})"
        raise ValueError(message) from None
