"""Servicer mappings: how a servicer's tape becomes the canonical landing columns.

A new servicer is configuration, not code. Its files are named
``<dataset>.<source>.<ext>`` (``loans.acme.csv``) and read with
``landing/mappings/<source>.mapping.yaml``, which states, per dataset:

- ``columns``: the servicer's column name -> the canonical column name;
- ``values``: per canonical column, the servicer's code -> the canonical code
  (``现金贷`` -> ``cash_loan``); a code not listed passes through unchanged and
  is judged by the contract (``valid_values``);
- ``date_format``: the ``strftime`` pattern of every date column (``%Y%m%d``);
- ``amount_unit``: ``yuan`` (canonical, two decimals) or ``fen`` (integers);
- ``rate_unit``: ``decimal`` (0.1095, canonical) or ``percent`` (10.95).

The file may also declare the text ``encoding`` and the CSV ``delimiter``;
undeclared, both are detected. Conversions are exact string operations, never
floats: ``123456`` fen becomes ``1234.56`` yuan and ``10.95`` percent becomes
``0.1095``. A value that does not fit its declared format becomes null and the
row breaks ``<dataset>.<column>.type``, the same rule a canonical file's bad
value breaks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from flows.limits import DEFAULT_LIMITS
from flows.safe_yaml import load_yaml_file
from transforms import schema

SOURCE_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""A source name: it is part of landing file names and of the mapping's file name."""

MAPPING_ERRORS: Final = "mapping_errors"
"""List column of the type rule ids a row broke while being mapped."""

Encoding = Literal["utf-8", "gb18030", "gbk"]
Delimiter = Literal[",", "|", "\t", ";"]

_FEN = r"^(-?)([0-9]{1,15})$"
_PERCENT = r"^(-?)([0-9]{1,3})(?:\.([0-9]{1,4}))?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetMapping(_Strict):
    """How one of a servicer's files maps to one canonical dataset."""

    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    date_format: str | None = None
    amount_unit: Literal["yuan", "fen"] = "yuan"
    rate_unit: Literal["decimal", "percent"] = "decimal"


class SourceMapping(_Strict):
    """A servicer's ``<source>.mapping.yaml``."""

    source: str
    description: str | None = None
    encoding: Encoding | None = None
    delimiter: Delimiter | None = None
    datasets: dict[Literal["loans", "repayments", "pool_assets"], DatasetMapping]

    def table(self, dataset: str) -> DatasetMapping:
        """The mapping of ``dataset`` (an empty mapping when the file does not list it)."""
        for name, mapping in self.datasets.items():
            if name == dataset:
                return mapping
        return DatasetMapping()

    @model_validator(mode="after")
    def _canonical_targets(self) -> SourceMapping:
        if not SOURCE_PATTERN.match(self.source):
            raise ValueError(
                f"source {self.source!r} must be 1-64 lower-case letters, digits, '_' or '-'"
            )
        for dataset, mapping in self.datasets.items():
            canonical = schema.INPUT_DATASETS[dataset]
            targets = list(mapping.columns.values())
            unknown = sorted(set(targets) - set(canonical))
            if unknown:
                raise ValueError(f"{dataset}: mapped to unknown canonical columns {unknown}")
            twice = sorted({t for t in targets if targets.count(t) > 1})
            if twice:
                raise ValueError(f"{dataset}: several columns map to {twice}")
            not_text = sorted(c for c in mapping.values if canonical.get(c) != pl.String)
            if not_text:
                raise ValueError(
                    f"{dataset}: code translations only apply to text columns, not {not_text}"
                )
        return self


def load_mapping(path: Path) -> SourceMapping:
    """Read and validate a mapping file.

    Raises:
        ValueError: if the file is not a valid mapping, or names another source.
    """
    raw = load_yaml_file(path, path.parent, DEFAULT_LIMITS)  # flows.safe_yaml: guarded YAML
    mapping = SourceMapping.model_validate(raw)
    expected = path.name.removesuffix(".mapping.yaml")
    if mapping.source != expected:
        raise ValueError(f"{path.name}: declares source {mapping.source!r}, expected {expected!r}")
    return mapping


def canonical_name(dataset: str, mapping: DatasetMapping | None, column: str) -> str:
    """The canonical name of a delivered column (itself when not renamed)."""
    if mapping is None:
        return column
    return mapping.columns.get(column, column)


def _shift_point(sign: pl.Expr, digits: pl.Expr, places: int, fraction: pl.Expr) -> pl.Expr:
    """``sign digits.fraction`` with the decimal point moved ``places`` to the left."""
    padded = digits.str.zfill(places + 1)
    return pl.concat_str(
        sign,
        padded.str.slice(0, padded.str.len_chars() - places),
        pl.lit("."),
        padded.str.slice(-places),
        fraction,
    )


def _convert(
    dataset: str, column: str, text: pl.Expr, mapping: DatasetMapping
) -> tuple[pl.Expr, pl.Expr]:
    """The canonical text of ``column`` and an expression true where it did not fit."""
    dtype = schema.INPUT_DATASETS[dataset][column]
    if column in mapping.values:
        return text.replace(mapping.values[column]), pl.lit(False)
    if dtype == pl.Date and mapping.date_format is not None:
        value = text.str.strptime(pl.Date, mapping.date_format, strict=False).dt.to_string(
            "%Y-%m-%d"
        )
    elif dtype == schema.MONEY and mapping.amount_unit == "fen":
        parts = text.str.extract_groups(_FEN)
        value = pl.when(text.str.contains(_FEN)).then(
            _shift_point(parts.struct.field("1"), parts.struct.field("2"), 2, pl.lit(""))
        )
    elif dtype == schema.RATE and mapping.rate_unit == "percent":
        parts = text.str.extract_groups(_PERCENT)
        value = pl.when(text.str.contains(_PERCENT)).then(
            _shift_point(
                parts.struct.field("1"),
                parts.struct.field("2"),
                2,
                parts.struct.field("3").fill_null(""),
            )
        )
    else:
        return text, pl.lit(False)
    return value, text.is_not_null() & value.is_null()


def apply_mapping(frame: pl.DataFrame, dataset: str, mapping: DatasetMapping) -> pl.DataFrame:
    """Translate the canonical text columns of ``frame`` as ``mapping`` declares.

    Args:
        frame: canonical column names (already renamed), values as text; other
            columns pass through.
        dataset: ``loans``, ``repayments`` or ``pool_assets``.
        mapping: the dataset's part of the servicer's mapping.

    Returns:
        The frame with converted values and a :data:`MAPPING_ERRORS` list column
        of the ``<dataset>.<column>.type`` rules the row broke.
    """
    values: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    for column in schema.INPUT_DATASETS[dataset]:
        if column not in frame.columns:
            continue
        text = pl.col(column).str.strip_chars()
        text = pl.when(text == "").then(None).otherwise(text)
        value, failed = _convert(dataset, column, text, mapping)
        values.append(value.alias(column))
        errors.append(pl.when(failed).then(pl.lit(f"{dataset}.{column}.type")).otherwise(None))
    error_list = (
        pl.concat_list(errors).list.drop_nulls() if errors else pl.lit([], dtype=pl.List(pl.String))
    )
    return frame.with_columns(*values, error_list.alias(MAPPING_ERRORS))
