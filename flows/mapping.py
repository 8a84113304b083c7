"""Servicer mappings: how a servicer's tape becomes the canonical landing columns.

A new servicer is configuration, not code. Its files are named
``<dataset>.<source>.<ext>`` (``loans.acme.csv``) and read with
``landing/mappings/<source>.mapping.yaml``, which states, per dataset:

- ``columns``: the servicer's column name -> the canonical column name; an
  empty header name (``""``, the unnamed first column many exports carry) may
  be mapped like any other;
- ``values``: per canonical column, the servicer's code -> the canonical code
  (``现金贷`` -> ``cash_loan``); a code not listed passes through unchanged and
  is judged by the contract (``valid_values``);
- ``status_codes`` (``loan_tape``): the servicer's status code -> the
  canonical status and the DPD range the code stands for
  (``Late (31-120 days)`` -> ``delinquent``, 31..120). Where the tape has no
  ``dpd`` column, ``dpd`` is the range's lower bound; where it has one, a DPD
  outside the code's range breaks ``<dataset>.dpd.status_code_range``;
- ``date_format``: the ``strftime`` pattern of every date column (``%Y%m%d``),
  ``date_formats`` per column; a pattern without a day (``%b-%Y``, Mar-2018)
  means the first day of the month;
- ``amount_unit``: ``yuan`` (canonical, two decimals) or ``fen`` (integers);
- ``rate_unit``: ``decimal`` (0.1095, canonical) or ``percent`` (10.95);
- ``number_format``: numbers as real tapes write them: thousands separators
  (``1,234.50``), scientific notation (``1.2E+4``), percentages (``12.5%``
  on a rate column), parentheses for negatives (``(1,234.50)``) and currency
  symbols to strip (``$``);
- ``constants``: canonical column -> a value for every row (``product:
  cash_loan``);
- ``derived``: canonical column -> an expression in a small safe language over
  the delivered columns (see :func:`compile_expression`; never ``eval``).

The file may also declare the text ``encoding`` and the CSV ``delimiter``;
undeclared, both are detected. Conversions are exact (string operations and
decimals, never floats): ``123456`` fen becomes ``1234.56`` yuan and ``10.95``
percent becomes ``0.1095``. A value that does not fit its declared format
becomes null and the row breaks ``<dataset>.<column>.type``, the same rule a
canonical file's bad value breaks. A mapping that cannot be used raises
:class:`MappingError` naming the mapping file, the rule and the column.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flows.limits import DEFAULT_LIMITS
from flows.safe_yaml import load_yaml_file
from transforms import schema

SOURCE_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""A source name: it is part of landing file names and of the mapping's file name."""

MAPPING_ERRORS: Final = "mapping_errors"
"""List column of the type rule ids a row broke while being mapped."""

Encoding = Literal["utf-8", "gb18030", "gbk"]
Delimiter = Literal[",", "|", "\t", ";"]
MappedDataset = Literal["loans", "repayments", "pool_assets", "loan_tape"]

_FEN = r"^(-?)([0-9]{1,15})$"
_PERCENT = r"^(-?)([0-9]{1,3})(?:\.([0-9]{1,4}))?$"
_NUMBER = r"^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,2}))?$"
_EXPONENTS: Final = tuple(range(-20, 21))
_WORK = pl.Decimal(38, 12)
"""Decimal type numbers are converted in: 26 integer digits, 12 decimals."""


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, rule and column."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumberFormat(_Strict):
    """How a servicer writes numbers (any of these forms may appear in one column)."""

    thousands: Literal[",", " ", "'", "."] | None = ","
    decimal: Literal[".", ","] = "."
    currency_symbols: tuple[str, ...] = ()
    """Symbols removed before parsing (``$``, ``¥``)."""

    @model_validator(mode="after")
    def _distinct(self) -> NumberFormat:
        if self.thousands == self.decimal:
            raise ValueError("number_format: thousands and decimal separators must differ")
        return self


class StatusCode(_Strict):
    """What one servicer status code means: a canonical status and a DPD range."""

    status: Literal[
        "current", "delinquent", "defaulted", "charged_off", "prepaid", "matured", "repurchased"
    ]
    dpd: tuple[int, int | None] = (0, 0)
    """Lowest and highest DPD the code stands for (``None``: no upper bound)."""

    @model_validator(mode="after")
    def _ordered(self) -> StatusCode:
        low, high = self.dpd
        if low < 0 or (high is not None and high < low):
            raise ValueError(f"dpd range {list(self.dpd)} must be 0 <= low <= high")
        return self


class DatasetMapping(_Strict):
    """How one of a servicer's files maps to one canonical dataset."""

    columns: dict[str, str] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    status_codes: dict[str, StatusCode] = Field(default_factory=dict)
    date_format: str | None = None
    date_formats: dict[str, str] = Field(default_factory=dict)
    amount_unit: Literal["yuan", "fen"] = "yuan"
    rate_unit: Literal["decimal", "percent"] = "decimal"
    number_format: NumberFormat | None = None
    constants: dict[str, str | int] = Field(default_factory=dict)
    derived: dict[str, str] = Field(default_factory=dict)


class SourceMapping(_Strict):
    """A servicer's ``<source>.mapping.yaml``."""

    source: str
    description: str | None = None
    encoding: Encoding | None = None
    delimiter: Delimiter | None = None
    datasets: dict[MappedDataset, DatasetMapping]

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
            _check_dataset(dataset, mapping)
        return self


def _check_dataset(dataset: str, mapping: DatasetMapping) -> None:
    """Raise naming the rule (``datasets.<dataset>.<rule>``) and the column at fault."""
    canonical = schema.INPUT_DATASETS[dataset]
    where = f"rule datasets.{dataset}"
    targets = list(mapping.columns.values())
    for target in targets:
        if target not in canonical:
            raise ValueError(
                f"{where}.columns, column {target!r}: mapped to unknown canonical columns "
                f"(not a {dataset} column)"
            )
        if targets.count(target) > 1:
            raise ValueError(f"{where}.columns, column {target!r}: several columns map to it")
    for column in sorted(mapping.values):
        if canonical.get(column) != pl.String:
            raise ValueError(
                f"{where}.values, column {column!r}: code translations only apply to text columns"
            )
    for rule in ("constants", "derived", "date_formats"):
        named: Mapping[str, object] = getattr(mapping, rule)
        for column in sorted(named):
            if column not in canonical:
                raise ValueError(f"{where}.{rule}, column {column!r}: not a {dataset} column")
            if rule == "date_formats" and canonical[column] != pl.Date:
                raise ValueError(f"{where}.{rule}, column {column!r}: not a date column")
    if mapping.status_codes and "status" not in canonical:
        raise ValueError(f"{where}.status_codes, column 'status': {dataset} has no status")
    for column, text in sorted(mapping.derived.items()):
        try:
            compile_expression(text)
        except ValueError as exc:
            raise ValueError(f"{where}.derived, column {column!r}: {exc}") from exc


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_mapping(path: Path) -> SourceMapping:
    """Read and validate a mapping file.

    Raises:
        MappingError: if the file is not a valid mapping, or names another source;
            the message names the file, the rule (its place in the file) and the column.
    """
    raw = load_yaml_file(path, path.parent, DEFAULT_LIMITS)  # flows.safe_yaml: guarded YAML
    try:
        mapping = SourceMapping.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            place = _location(error["loc"])
            problems.append(message if place == "" else f"rule {place}: {message}")
        raise MappingError(f"{path.name}: " + "; ".join(problems)) from exc
    expected = path.name.removesuffix(".mapping.yaml")
    if mapping.source != expected:
        raise MappingError(
            f"{path.name}: declares source {mapping.source!r}, expected {expected!r}"
        )
    return mapping


def canonical_name(dataset: str, mapping: DatasetMapping | None, column: str) -> str:
    """The canonical name of a delivered column (itself when not renamed)."""
    if mapping is None:
        return column
    return mapping.columns.get(column, column)


# --- the safe expression language ----------------------------------------------------------------
#
# A derived column is one Python-syntax expression, parsed with ``ast`` and translated node by node
# into a Polars expression; only the nodes below are accepted, so nothing is ever executed.
#
#   names and col("a name")   a delivered column (canonical or servicer name), as text
#   "text", 12, 0.5           literals (numbers are exact decimals)
#   a + b, a - b, a * b, a / b, -a   decimal arithmetic (operands parsed as numbers)
#   a == b, a != b, a < b, ...       comparisons, for if_else
#   concat(a, b, ...)  coalesce(a, b, ...)  upper(a)  lower(a)  strip(a)  slice(a, start, length)
#   number(a)  date(a, "%b-%Y")  add_months(date, n)  month_end(date)  if_else(cond, a, b)


def _number_text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars().str.replace_all(",", "").cast(_WORK, strict=False)


def _as_number(expr: pl.Expr, node: ast.expr) -> pl.Expr:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return expr
    return _number_text(expr)


def _date_value(expr: pl.Expr, pattern: str = "%Y-%m-%d") -> pl.Expr:
    return _parse_date(expr.cast(pl.String).str.strip_chars(), pattern)


def _concat(*args: pl.Expr) -> pl.Expr:
    return pl.concat_str([a.cast(pl.String) for a in args])


def _coalesce(*args: pl.Expr) -> pl.Expr:
    return pl.coalesce([a.cast(pl.String) for a in args])


_UNARY: Final[dict[str, Callable[[pl.Expr], pl.Expr]]] = {
    "upper": lambda a: a.cast(pl.String).str.to_uppercase(),
    "lower": lambda a: a.cast(pl.String).str.to_lowercase(),
    "strip": lambda a: a.cast(pl.String).str.strip_chars(),
    "number": _number_text,
    "month_end": lambda a: _date_value(a).dt.month_end(),
}
_ARITHMETIC: Final[dict[type[ast.operator], Callable[[pl.Expr, pl.Expr], pl.Expr]]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_COMPARISON: Final[dict[type[ast.cmpop], Callable[[pl.Expr, pl.Expr], pl.Expr]]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


def _literal(node: ast.Constant) -> pl.Expr:
    value = node.value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"literal {value!r} is not allowed")
    if isinstance(value, str):
        return pl.lit(value, dtype=pl.String)
    if isinstance(value, (int, float)):
        return pl.lit(Decimal(repr(value)), dtype=_WORK)
    raise ValueError(f"literal {value!r} is not allowed")


def _text_argument(node: ast.expr, function: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise ValueError(f"{function}() takes a quoted text here")


def _int_argument(node: ast.expr, function: str) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
        return -node.operand.value
    raise ValueError(f"{function}() takes a whole number here")


def _call(node: ast.Call) -> pl.Expr:  # noqa: PLR0911 (one branch per function)
    if not isinstance(node.func, ast.Name) or node.keywords:
        raise ValueError("only the listed functions may be called, with plain arguments")
    name = node.func.id
    args = node.args
    if name == "col" and len(args) == 1:
        return pl.col(_text_argument(args[0], name))
    if name in _UNARY and len(args) == 1:
        return _UNARY[name](_translate(args[0]))
    if name == "concat" and args:
        return _concat(*(_translate(a) for a in args))
    if name == "coalesce" and args:
        return _coalesce(*(_translate(a) for a in args))
    if name == "slice" and len(args) == 3:
        start, length = _int_argument(args[1], name), _int_argument(args[2], name)
        return _translate(args[0]).cast(pl.String).str.slice(start, length)
    if name == "date" and len(args) == 2:
        return _date_value(_translate(args[0]), _text_argument(args[1], name))
    if name == "add_months" and len(args) == 2:
        months = _int_argument(args[1], name)
        return _date_value(_translate(args[0])).dt.offset_by(f"{months}mo")
    if name == "if_else" and len(args) == 3:
        return pl.when(_translate(args[0])).then(_translate(args[1])).otherwise(_translate(args[2]))
    raise ValueError(f"unknown function or wrong number of arguments: {name}()")


def _translate(node: ast.expr) -> pl.Expr:
    if isinstance(node, ast.Name):
        return pl.col(node.id)
    if isinstance(node, ast.Constant):
        return _literal(node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_as_number(_translate(node.operand), node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _as_number(_translate(node.left), node.left)
        right = _as_number(_translate(node.right), node.right)
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARISON:
        left, right = _translate(node.left), _translate(node.comparators[0])
        if isinstance(node.comparators[0], ast.Constant) and not isinstance(
            node.comparators[0].value, str
        ):
            left = _number_text(left)
        return _COMPARISON[type(node.ops[0])](left, right)
    if isinstance(node, ast.Call):
        return _call(node)
    raise ValueError(f"{type(node).__name__} is not part of the expression language")


def compile_expression(text: str) -> pl.Expr:
    """Translate a derived-column expression into a Polars expression.

    The text is parsed (never evaluated) and only column names, literals,
    arithmetic, comparisons and the listed functions are accepted.

    Raises:
        ValueError: naming what is not allowed or does not parse.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r} does not parse ({exc.msg})") from exc
    return _translate(tree.body)


# --- value conversions ---------------------------------------------------------------------------


def _parse_date(text: pl.Expr, pattern: str) -> pl.Expr:
    """Dates in ``pattern``; a pattern without a day means the first of the month."""
    if "%d" not in pattern and "%j" not in pattern and "%F" not in pattern:
        return pl.concat_str(pl.lit("01 "), text).str.strptime(
            pl.Date, f"%d {pattern}", strict=False
        )
    return text.str.strptime(pl.Date, pattern, strict=False)


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


def parse_number(text: pl.Expr, fmt: NumberFormat) -> tuple[pl.Expr, pl.Expr]:
    """Exact decimal value of numbers written as ``fmt`` says, and whether it was a percentage.

    ``1,234.50``, ``(1,234.50)`` (negative), ``1.2E+4``, ``12.5%`` and ``$1,234.50``
    all parse; anything else is null. No float is involved: the mantissa is a
    decimal and the exponent shifts it by an exact power of ten.
    """
    cleaned = text.str.strip_chars()
    for symbol in fmt.currency_symbols:
        cleaned = cleaned.str.replace_all(symbol, "", literal=True)
    cleaned = cleaned.str.strip_chars()
    negative = cleaned.str.contains(r"^\(.*\)$")
    cleaned = cleaned.str.strip_prefix("(").str.strip_suffix(")").str.strip_chars()
    percent = cleaned.str.ends_with("%")
    cleaned = cleaned.str.strip_suffix("%").str.strip_chars()
    if fmt.thousands is not None:
        # A group separator only between digit groups of three: 1,234.50 (never 1,23).
        grouped = rf"^[+-]?[0-9]{{1,3}}(?:{re.escape(fmt.thousands)}[0-9]{{3}})+(?:\D|$)"
        ungrouped = cleaned.str.replace_all(fmt.thousands, "", literal=True)
        has_group = cleaned.str.contains(re.escape(fmt.thousands))
        cleaned = (
            pl.when(has_group & ~cleaned.str.contains(grouped)).then(None).otherwise(ungrouped)
        )
    if fmt.decimal != ".":
        cleaned = cleaned.str.replace(fmt.decimal, ".", literal=True)
    parts = cleaned.str.extract_groups(_NUMBER)
    sign = parts.struct.field("1")
    whole = parts.struct.field("2")
    fraction = parts.struct.field("3").fill_null("")
    exponent = parts.struct.field("4").fill_null("0").cast(pl.Int32, strict=False)
    has_digits = (whole.str.len_chars() + fraction.str.len_chars()) > 0
    mantissa = pl.concat_str(
        pl.when(sign == "-").then(pl.lit("-")).otherwise(pl.lit("")),
        pl.when(whole == "").then(pl.lit("0")).otherwise(whole),
        pl.lit("."),
        pl.when(fraction == "").then(pl.lit("0")).otherwise(fraction),
    ).cast(_WORK, strict=False)
    scale = exponent.replace_strict(
        list(_EXPONENTS), [Decimal(10) ** k for k in _EXPONENTS], default=None, return_dtype=_WORK
    )
    parsed: pl.Expr = pl.when(cleaned.str.contains(_NUMBER) & has_digits).then(mantissa * scale)
    return pl.when(negative).then(-parsed).otherwise(parsed), percent


def _decimal_text(value: pl.Expr, places: int) -> pl.Expr:
    """Canonical text of ``value`` with ``places`` decimals; null unless exact at that scale."""
    exact = value == value.round(places)
    return pl.when(exact).then(value.cast(pl.Decimal(38, places)).cast(pl.String))


def _formatted_number(
    dataset: str, column: str, text: pl.Expr, mapping: DatasetMapping, fmt: NumberFormat
) -> pl.Expr:
    dtype = schema.INPUT_DATASETS[dataset][column]
    value, percent = parse_number(text, fmt)
    if dtype == schema.MONEY:
        if mapping.amount_unit == "fen":
            value = value / pl.lit(Decimal(100), dtype=_WORK)
        return pl.when(~percent).then(_decimal_text(value, 2))
    if dtype == schema.RATE:
        as_rate = pl.when(percent | pl.lit(mapping.rate_unit == "percent")).then(
            value / pl.lit(Decimal(100), dtype=_WORK)
        )
        return _decimal_text(as_rate.otherwise(value), 6).str.strip_chars_end("0")
    return pl.when(~percent).then(_decimal_text(value, 0).str.strip_suffix("."))


def _convert(
    dataset: str, column: str, text: pl.Expr, mapping: DatasetMapping
) -> tuple[pl.Expr, pl.Expr]:
    """The canonical text of ``column`` and an expression true where it did not fit."""
    dtype = schema.INPUT_DATASETS[dataset][column]
    date_format = mapping.date_formats.get(column, mapping.date_format)
    numeric = dtype in (schema.MONEY, schema.RATE, pl.Int32, pl.Int64)
    if column in mapping.values:
        return text.replace(mapping.values[column]), pl.lit(False)
    if dtype == pl.Date and date_format is not None:
        value = _parse_date(text, date_format).dt.to_string("%Y-%m-%d")
    elif numeric and mapping.number_format is not None:
        value = _formatted_number(dataset, column, text, mapping, mapping.number_format)
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


def _derived_text(dataset: str, column: str, expression: str) -> pl.Expr:
    """A derived value as canonical text of its column's type."""
    value = compile_expression(expression)
    dtype = schema.INPUT_DATASETS[dataset][column]
    if dtype == pl.Date:
        return value.cast(pl.Date, strict=False).dt.to_string("%Y-%m-%d")
    if dtype == schema.MONEY:
        return _decimal_text(value.cast(_WORK, strict=False), 2)
    if dtype == schema.RATE:
        return _decimal_text(value.cast(_WORK, strict=False), 6)
    if dtype in (pl.Int32, pl.Int64):
        return _decimal_text(value.cast(_WORK, strict=False), 0).str.strip_suffix(".")
    return value.cast(pl.String)


def _status_columns(
    dataset: str, frame: pl.DataFrame, mapping: DatasetMapping
) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """``status`` and ``dpd`` from the status code table, and the range rule where DPD is given."""
    codes = sorted(mapping.status_codes.items())
    code = pl.col("status").str.strip_chars()
    status = code.replace_strict(
        [c for c, _ in codes], [s.status for _, s in codes], default=code, return_dtype=pl.String
    )
    low = code.replace_strict(
        [c for c, _ in codes], [s.dpd[0] for _, s in codes], default=None, return_dtype=pl.Int64
    )
    high = code.replace_strict(
        [c for c, _ in codes],
        [s.dpd[1] if s.dpd[1] is not None else 1_000_000 for _, s in codes],
        default=None,
        return_dtype=pl.Int64,
    )
    if "dpd" not in frame.columns:
        return [status.alias("status"), low.cast(pl.String).alias("dpd")], []
    given = pl.col("dpd").str.strip_chars().cast(pl.Int64, strict=False)
    outside = given.is_not_null() & low.is_not_null() & ((given < low) | (given > high))
    rule = pl.when(outside).then(pl.lit(f"{dataset}.dpd.status_code_range"))
    return [status.alias("status")], [rule]


def map_columns(
    frame: pl.DataFrame, header: list[str], dataset: str, mapping: DatasetMapping
) -> tuple[pl.DataFrame, set[str]]:
    """Give the delivered columns their canonical names and add the mapping's constants.

    Args:
        frame: the file's rows as text, one column per ``header`` name, plus lineage.
        header: the delivered column names.
        dataset: the canonical dataset.
        mapping: the dataset's part of the servicer's mapping.

    Returns:
        The frame with a canonical column for each renamed one (the servicer's
        column is kept too, so derivations may use either name), constants as
        text, and the set of canonical columns now present.
    """
    canonical = schema.INPUT_DATASETS[dataset]
    renames = {h: mapping.columns[h] for h in header if h in mapping.columns}
    # A servicer column named like a canonical one that another column maps to is dropped.
    clashing = [h for h in header if h not in renames and h in renames.values()]
    aliased = frame.drop(clashing).with_columns(
        *[pl.col(h).alias(target) for h, target in renames.items() if h != target],
        *[pl.lit(str(v), dtype=pl.String).alias(c) for c, v in mapping.constants.items()],
    )
    present = {c for c in aliased.columns if c in canonical} | set(mapping.derived)
    return aliased, present


def apply_mapping(frame: pl.DataFrame, dataset: str, mapping: DatasetMapping) -> pl.DataFrame:
    """Translate the canonical text columns of ``frame`` as ``mapping`` declares.

    Args:
        frame: canonical column names (already renamed, see :func:`map_columns`),
            values as text; other columns pass through.
        dataset: a canonical input dataset (``loans``, ``loan_tape``, ...).
        mapping: the dataset's part of the servicer's mapping.

    Returns:
        The frame with converted values and a :data:`MAPPING_ERRORS` list column
        of the ``<dataset>.<column>.type`` rules the row broke.
    """
    values: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    derived = set(mapping.constants)
    for column in schema.INPUT_DATASETS[dataset]:
        if column not in frame.columns or column in mapping.derived:
            continue
        text = pl.col(column).cast(pl.String).str.strip_chars()
        text = pl.when(text == "").then(None).otherwise(text)
        if column in derived or (column == "status" and mapping.status_codes):
            values.append(text.alias(column))
            continue
        value, failed = _convert(dataset, column, text, mapping)
        values.append(value.alias(column))
        errors.append(pl.when(failed).then(pl.lit(f"{dataset}.{column}.type")).otherwise(None))
    error_list = (
        pl.concat_list(errors).list.drop_nulls() if errors else pl.lit([], dtype=pl.List(pl.String))
    )
    frame = frame.with_columns(*values, error_list.alias(MAPPING_ERRORS))
    if mapping.derived:
        # Derivations see the converted canonical columns and the servicer's own columns.
        frame = frame.with_columns(
            *[_derived_text(dataset, c, e).alias(c) for c, e in sorted(mapping.derived.items())]
        )
    if mapping.status_codes and "status" in frame.columns:
        # Evaluated together: the range rule reads the servicer's code, not the mapped status.
        extra, rules = _status_columns(dataset, frame, mapping)
        broken = pl.concat_list(pl.col(MAPPING_ERRORS), *rules).list.drop_nulls()
        frame = frame.with_columns(*extra, broken.alias(MAPPING_ERRORS))
    return frame
