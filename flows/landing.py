"""Read landing files into text frames with their lineage.

Every value is read as text so that the staging cast, not the reader, decides
what parses; each row keeps the business date, file and line it came from and
the row as delivered (``original``, JSON with the file's own column names).

Formats, by file name (see ``flows.catalog.parse_landing_name``):

- ``.csv`` and ``.csv.gz``: a header row; ``,`` or ``|`` separated (declared
  in the source's mapping, else detected from the header); fields may be
  quoted (``"a, b"``, ``""`` for a quote, line breaks inside quotes); LF or
  CRLF line ends; blank lines are skipped. Line numbers are the file's own:
  the header is line 1.
- ``.jsonl``: one JSON object per line; line numbers as in the file.
- ``.parquet``: columns of any scalar type, read as text; ``source_line`` is
  the row number (the first row is 1).

Text is UTF-8 (a byte-order mark is dropped) or GB18030/GBK, as the mapping
declares; undeclared, strict UTF-8 is tried first, then GB18030. A file that
cannot be read as a whole (bad gzip stream, undecodable bytes, broken
quoting, invalid JSON) is refused with an error naming the file and line; a
row with the wrong number of fields breaks ``<dataset>.row.field_count``.

Hostile input (``flows.limits``): a file is read only if it is a regular file
inside the data root (a symbolic link, device, FIFO or directory with a file's
name is refused by name and never opened), and is refused with the limit named
when it is larger than ``max_file_bytes``, inflates past
``max_decompressed_bytes``, has more than ``max_columns`` columns or
``max_rows`` rows, a value longer than ``max_field_bytes`` or JSON nested
deeper than ``max_json_depth``; each limit is checked before the step it
protects. A value holding a NUL byte or another control character (other than
tab and line breaks) breaks ``<dataset>.row.control_characters``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from flows.catalog import parse_landing_name
from flows.errors import InputRejectedError
from flows.limits import (
    DEFAULT_LIMITS,
    LimitExceededError,
    Limits,
    gunzip_capped,
    json_shape,
    limit_named,
    read_regular,
    refusal,
)
from flows.mapping import (
    MAPPING_ERRORS,
    DatasetMapping,
    SourceMapping,
    apply_mapping,
    map_columns,
)
from transforms import schema

READ_ERRORS: Final = "read_errors"
"""List column of the rule ids a row broke while being read or mapped."""

ORIGINAL: Final = "original"
"""The row as delivered, JSON with the file's own column names."""

_HEADER_SEPARATORS: Final = (",", "|")

CONTROL_CHARACTERS: Final = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
"""NUL and the other C0 controls except tab, line feed and carriage return, and DEL."""

_DATE_FOLDER: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_LANDING_SUBFOLDERS: Final = frozenset({"deals", "mappings"})


CONTROL_FILES: Final = frozenset({"manifest.json"})
"""Files of a delivery folder that are not data: read by the delivery check, not here."""


def control_characters_rule(dataset: str) -> str:
    """Broken by a row with a NUL byte or another control character in a value."""
    return f"{dataset}.row.control_characters"


class LandingError(ValueError):
    """A landing file that cannot be read at all; the message names the file and line."""


@dataclass(frozen=True)
class LandingFile:
    """One delivered file read as text, or the reason it could not be read."""

    dataset: str
    business_date: date
    path: Path
    relative_path: str
    frame: pl.DataFrame
    """Canonical text columns, lineage, ``original``, ``read_errors``; empty if unreadable."""
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    error: str | None = None
    source: str | None = None
    """The servicer source whose mapping the file was read with (None: canonical)."""
    file_format: str = "csv"
    encoding: str | None = None
    """The text encoding used (declared or detected); None for Parquet."""
    empty: bool = False
    """The file holds no header at all (zero bytes, or only blank lines)."""
    refused: bool = False
    """The path was refused (a link, device, FIFO, folder...) and never opened."""
    limit: str | None = None
    """The limit (``flows.limits.Limits`` field) the file went over, if that is why it failed."""


def empty_frame(dataset: str) -> pl.DataFrame:
    """A frame of no rows with the columns :func:`read_landing_file` returns."""
    return pl.DataFrame(
        schema={
            **dict.fromkeys(schema.INPUT_DATASETS[dataset], pl.String),
            **schema.LINEAGE,
            ORIGINAL: pl.String,
            READ_ERRORS: pl.List(pl.String),
        }
    )


def unreadable(
    dataset: str,
    business_date: date,
    path: Path,
    relative: str,
    message: str,
    *,
    source: str | None = None,
    file_format: str = "csv",
    refused: bool = False,
    limit: str | None = None,
) -> LandingFile:
    """A file refused as a whole; ``message`` is prefixed with the file's path.

    ``refused``: the path itself was refused (not a regular file inside the data
    root) and the file was never opened.
    """
    return LandingFile(
        dataset,
        business_date,
        path,
        relative,
        empty_frame(dataset),
        error=f"{relative}: {message}",
        source=source,
        file_format=file_format,
        refused=refused,
        limit=limit,
    )


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _gunzip(data: bytes, limits: Limits) -> bytes:
    """Decompress every gzip member under the cap; a stream cut short names the last line."""
    try:
        return gunzip_capped(data, limits)
    except LimitExceededError:
        raise
    except ValueError as exc:
        raise LandingError(str(exc)) from exc


def decode(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode landing bytes as ``declared``, else as UTF-8, else as GB18030.

    Returns:
        The text (without a byte-order mark) and the encoding used.

    Raises:
        LandingError: naming the line of the first byte that does not decode.
    """
    if declared is not None:
        try:
            return data.decode(declared).removeprefix("\ufeff"), declared
        except UnicodeDecodeError as exc:
            line = _line_of(data, exc.start)
            raise LandingError(f"line {line}: not valid {declared} text") from exc
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    # Whole lines of multi-byte UTF-8 before the bad line make it a UTF-8 file with a
    # broken line, not GB18030: decoding it as GB18030 would garble every Chinese value.
    # (Within the bad line itself, GBK bytes can pass for a UTF-8 character or two.)
    line_start = data.rfind(b"\n", 0, utf8_error.start) + 1
    if any(b >= 0x80 for b in data[:line_start]):
        line = _line_of(data, utf8_error.start)
        raise LandingError(f"line {line}: not valid UTF-8 text (the lines before it are UTF-8)")
    try:
        return data.decode("gb18030").removeprefix("\ufeff"), "gb18030"
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        raise LandingError(f"line {line}: neither UTF-8 nor GB18030 text") from exc


def _lines(text: str) -> pl.DataFrame:
    """Non-blank lines of ``text`` with their 1-based line numbers."""
    lines = pl.Series("text", text.split("\n"), dtype=pl.String).str.strip_suffix("\r")
    return (
        pl.DataFrame(lines)
        .with_row_index("source_line", offset=1)
        .with_columns(pl.col("source_line").cast(pl.Int64))
        .filter(pl.col("text").str.strip_chars() != "")
    )


def _separator(header: str, declared: str | None) -> str:
    if declared is not None:
        return declared
    return max(_HEADER_SEPARATORS, key=header.count)


def _check_header(header: Sequence[str], *, allow_empty: bool = False) -> list[str]:
    names = [h.strip() for h in header]
    repeated = sorted(n for n, seen in Counter(names).items() if seen > 1)
    if repeated:
        raise LandingError(f"line 1: the header repeats the columns {repeated}")
    if any(n == "" for n in names) and not allow_empty:
        raise LandingError("line 1: the header has an empty column name")
    return names


def _split_rows(
    text: str, separator: str, *, allow_empty: bool = False
) -> tuple[list[str], pl.DataFrame]:
    """Header and rows (a list of fields each) of unquoted delimited text."""
    lines = _lines(text)
    if lines.height == 0:
        return [], pl.DataFrame(schema={"source_line": pl.Int64, "fields": pl.List(pl.String)})
    header = _check_header(lines["text"][0].split(separator), allow_empty=allow_empty)
    rows = lines.slice(1).select("source_line", pl.col("text").str.split(separator).alias("fields"))
    return header, rows


def _parse_quoted(
    text: str, separator: str, limits: Limits, *, allow_empty: bool = False
) -> tuple[list[str], pl.DataFrame]:
    """Header and rows of delimited text with quoted fields, keeping each record's first line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    header: list[str] = []
    starts: list[int] = []
    records: list[list[str]] = []
    consumed = 0
    try:
        for record in reader:
            start = consumed + 1
            consumed = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if not header:
                header = _check_header(record, allow_empty=allow_empty)
                continue
            starts.append(start)
            records.append(record)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise LimitExceededError(
                f"line {consumed + 1}: a value over {limits.describe('max_field_bytes')}"
            ) from exc
        raise LandingError(f"line {consumed + 1}: malformed quoting ({exc})") from exc
    rows = pl.DataFrame(
        {"source_line": starts, "fields": records},
        schema={"source_line": pl.Int64, "fields": pl.List(pl.String)},
    )
    return header, rows


def _first_line(text: str) -> str:
    """The first line that is not blank, found without splitting the whole text."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if text[start:end].strip():
            return text[start:end]
        start = end + 1
    return ""


def _delimited_frame(
    text: str, declared: str | None, limits: Limits, *, allow_empty: bool = False
) -> tuple[list[str], pl.DataFrame]:
    first_line = _first_line(text)
    separator = _separator(first_line, declared)
    # Counted before the header is split: a header of 200,000 names is refused unread.
    named = first_line.count(separator) + 1
    if named > limits.max_columns:
        raise LimitExceededError(
            f"line 1: the header has {named} columns, over {limits.describe('max_columns')}"
        )
    if '"' in text:
        header, rows = _parse_quoted(text, separator, limits, allow_empty=allow_empty)
    else:
        header, rows = _split_rows(text, separator, allow_empty=allow_empty)
    width = len(header)
    columns = [
        pl.col("fields").list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(header)
    ]
    whole = pl.col("fields").list.len() == width
    original = pl.when(whole).then(
        pl.struct(header).struct.json_encode() if header else pl.lit("{}")
    )
    frame = rows.select(
        "source_line",
        *columns,
        pl.col("fields"),
    ).with_columns(
        original.otherwise(pl.struct(pl.col("fields")).struct.json_encode()).alias(ORIGINAL),
        pl.when(whole)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.lit("field_count"))
        .alias("_shape"),
    )
    return header, frame.drop("fields")


def _jsonl_frame(text: str, limits: Limits) -> tuple[list[str], pl.DataFrame]:
    lines = _lines(text)
    # Before any parser sees them: only lines that could nest or be too wide are scanned
    # exactly (a flat record has one brace), so a clean file costs one vectorised pass.
    suspect = lines.filter(
        (pl.col("text").str.count_matches(r"[\[{]") > 1)
        | (pl.col("text").str.count_matches(":") > limits.max_columns)
    )["text"]
    depth, keys = json_shape("\n".join(suspect.to_list())) if suspect.len() else (1, 0)
    if depth > limits.max_json_depth:
        raise LimitExceededError(
            f"JSON nested {depth} levels deep, over {limits.describe('max_json_depth')}"
        )
    if keys > limits.max_columns:
        raise LimitExceededError(f"a record has {keys} keys, over {limits.describe('max_columns')}")
    if lines.height == 0:
        return [], pl.DataFrame(schema={"source_line": pl.Int64, ORIGINAL: pl.String})
    try:
        records = pl.read_ndjson(
            io.BytesIO("\n".join(lines["text"].to_list()).encode("utf-8")),
            infer_schema_length=None,
        )
    except pl.exceptions.PolarsError:
        # Numbers too large for the fast reader (a 400-digit balance) are kept as the
        # text delivered, so the row is judged by its type rule instead of the file failing.
        records = _json_records_as_text(lines)
    nested = [c for c, t in records.schema.items() if t.is_nested()]
    if nested:
        raise LandingError(f"columns {nested} hold nested values, not scalars")
    header = records.columns
    frame = records.select(
        pl.Series("source_line", lines["source_line"]),
        *[pl.col(c).cast(pl.String) for c in header],
        pl.struct(header).struct.json_encode().alias(ORIGINAL)
        if header
        else pl.lit("{}").alias(ORIGINAL),
    )
    return header, frame.with_columns(pl.lit(None, dtype=pl.String).alias("_shape"))


def _json_records_as_text(lines: pl.DataFrame) -> pl.DataFrame:
    """Parse JSON Lines one by one, every number kept as the text it was written as."""
    records: list[dict[str, str | None]] = []
    for number, line in lines.iter_rows():
        try:
            value = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
        except json.JSONDecodeError as bad:
            raise LandingError(f"line {number}: invalid JSON ({bad.msg})") from bad
        except (ValueError, RecursionError) as bad:
            raise LandingError(f"line {number}: unreadable JSON ({bad})") from bad
        if not isinstance(value, dict):
            raise LandingError(f"line {number}: not a JSON object")
        nested = sorted(k for k, v in value.items() if isinstance(v, dict | list))
        if nested:
            raise LandingError(f"columns {nested} hold nested values, not scalars")
        records.append({k: _json_text(v) for k, v in value.items()})
    names = list(dict.fromkeys(k for record in records for k in record))
    return pl.DataFrame(
        [[record.get(name) for name in names] for record in records],
        schema=dict.fromkeys(names, pl.String),
        orient="row",
    )


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parquet_frame(data: bytes, limits: Limits) -> tuple[list[str], pl.DataFrame]:
    # The footer says how large the file is before any column is read.
    try:
        metadata = pq.read_metadata(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise LandingError(f"not a readable Parquet file ({exc})") from exc
    if metadata.num_columns > limits.max_columns:
        raise LimitExceededError(
            f"{metadata.num_columns} columns, over {limits.describe('max_columns')}"
        )
    if metadata.num_rows > limits.max_rows:
        raise LimitExceededError(f"{metadata.num_rows} rows, over {limits.describe('max_rows')}")
    uncompressed = sum(
        metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)
    )
    if uncompressed > limits.max_decompressed_bytes:
        raise LimitExceededError(
            f"{uncompressed} bytes of column data, over {limits.describe('max_decompressed_bytes')}"
        )
    try:
        records = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LandingError(f"not a readable Parquet file ({exc})") from exc
    nested = [c for c, t in records.schema.items() if t.is_nested()]
    if nested:
        raise LandingError(f"columns {nested} hold nested values, not scalars")
    header = records.columns
    casts = []
    for name, dtype in records.schema.items():
        try:
            casts.append(records.get_column(name).cast(pl.String))
        except pl.exceptions.PolarsError as exc:
            first = str(exc).splitlines()[0]
            message = f"column {name!r} ({dtype}) cannot be read as text: {first}"
            raise LandingError(message) from exc
    text = pl.DataFrame(casts)
    frame = text.with_row_index("source_line", offset=1).select(
        pl.col("source_line").cast(pl.Int64),
        *header,
        (pl.struct(header).struct.json_encode() if header else pl.lit("{}")).alias(ORIGINAL),
        pl.lit(None, dtype=pl.String).alias("_shape"),
    )
    return header, frame


def read_landing_file(
    dataset: str,
    business_date: date,
    path: Path,
    root: Path,
    *,
    mapping: SourceMapping | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LandingFile:
    """Read one landing file as canonical text columns with lineage.

    Args:
        dataset: the dataset the file delivers.
        business_date: the delivery's business date.
        path: the file.
        root: the data root (lineage paths are relative to it).
        mapping: the servicer mapping named by the file (None: canonical columns).
        limits: the resource limits the file must stay within.

    Returns:
        The file's rows, or the reason it could not be read (``error``): refused
        (not a regular file inside the data root, never opened), over a limit
        (the limit and its setting named), or unreadable (file and line named).
    """
    relative = path.relative_to(root).as_posix()
    name = path.name
    file_format = "parquet" if name.endswith(".parquet") else "jsonl"
    if name.endswith((".csv", ".csv.gz")):
        file_format = "csv.gz" if name.endswith(".gz") else "csv"
    source = mapping.source if mapping is not None else None
    declared = mapping.encoding if mapping is not None else None
    encoding: str | None = None
    try:
        data = read_regular(path, root, limits.max_file_bytes, "max_file_bytes", limits)
        if file_format == "parquet":
            header, rows = _parquet_frame(data, limits)
        else:
            if file_format == "csv.gz":
                data = _gunzip(data, limits)
            # Counted before anything is decoded or split.
            lines = data.count(b"\n")
            if lines > limits.max_rows:
                raise LimitExceededError(
                    f"more than {limits.max_rows} rows ({lines} lines), over "
                    f"{limits.describe('max_rows')}"
                )
            text, encoding = decode(data, declared)
            del data
            if file_format == "jsonl":
                header, rows = _jsonl_frame(text, limits)
            else:
                delimiter = mapping.delimiter if mapping is not None else None
                # A mapping may name the column an export leaves without a header.
                unnamed = mapping is not None and "" in mapping.table(dataset).columns
                header, rows = _delimited_frame(text, delimiter, limits, allow_empty=unnamed)
        _check_sizes(header, rows, limits)
    except InputRejectedError as exc:
        return unreadable(
            dataset,
            business_date,
            path,
            relative,
            exc.message,
            source=source,
            file_format=file_format,
            refused=refusal(path, root) is not None,
            limit=limit_named(exc.message),
        )
    except (LandingError, LimitExceededError, OSError) as exc:
        return unreadable(
            dataset,
            business_date,
            path,
            relative,
            str(exc),
            source=source,
            file_format=file_format,
            limit=limit_named(str(exc)),
        )
    if not header and file_format in ("csv", "csv.gz"):
        file = LandingFile(dataset, business_date, path, relative, empty_frame(dataset), empty=True)
    elif file_format == "jsonl" and rows.height == 0:
        # JSON Lines has no header: no lines is a delivery of no records.
        file = LandingFile(dataset, business_date, path, relative, empty_frame(dataset))
    else:
        table = mapping.table(dataset) if mapping is not None else None
        file = _canonical(dataset, business_date, path, relative, header, rows, table)
    return replace(file, source=source, file_format=file_format, encoding=encoding)


def _check_sizes(header: list[str], rows: pl.DataFrame, limits: Limits) -> None:
    """Refuse a file with more columns than allowed or a name or value that is too long."""
    if len(header) > limits.max_columns:
        raise LimitExceededError(f"{len(header)} columns, over {limits.describe('max_columns')}")
    cap = limits.max_field_bytes
    long_names = [h for h in header if len(h.encode("utf-8", "replace")) > cap]
    if long_names:
        raise LimitExceededError(
            f"line 1: a column name is longer than {limits.describe('max_field_bytes')}"
        )
    value_columns = [h for h in header if h in rows.columns] + (
        ["fields"] if "fields" in rows.columns else []
    )
    if rows.height == 0 or not value_columns:
        return
    lengths = [
        pl.col(h).list.eval(pl.element().str.len_bytes()).list.max()
        if h == "fields"
        else pl.col(h).cast(pl.String).str.len_bytes()
        for h in value_columns
    ]
    longest = rows.select(
        "source_line", pl.max_horizontal(lengths).fill_null(0).alias("_bytes")
    ).filter(pl.col("_bytes") > cap)
    if longest.height:
        line, size = longest.row(0)
        raise LimitExceededError(
            f"line {line}: a value of {size} bytes, over {limits.describe('max_field_bytes')}"
        )


def _canonical(  # noqa: PLR0917 (the parts of one file, each named at the call)
    dataset: str,
    business_date: date,
    path: Path,
    relative: str,
    header: list[str],
    rows: pl.DataFrame,
    mapping: DatasetMapping | None,
) -> LandingFile:
    columns = schema.INPUT_DATASETS[dataset]
    renames = {h: (mapping.columns.get(h, h) if mapping is not None else h) for h in header}
    delivered = set(renames.values())
    extra = tuple(h for h in header if renames[h] not in columns)
    control = pl.any_horizontal(
        [pl.col(h).cast(pl.String).str.contains(CONTROL_CHARACTERS) for h in header]
        or [pl.lit(False)]
    ).fill_null(False)
    rows = rows.with_columns(control.alias("_control"))
    if mapping is not None:
        mapped, delivered = map_columns(rows, header, dataset, mapping)
        selected = apply_mapping(mapped, dataset, mapping)
        delivered = {c for c in selected.columns if c in columns}
    else:
        selected = rows.select(
            *[pl.col(h).alias(renames[h]) for h in header if renames[h] in columns],
            "source_line",
            ORIGINAL,
            "_shape",
            "_control",
        )
    required = [c for c in columns if c not in schema.OPTIONAL_COLUMNS[dataset]]
    missing = tuple(c for c in required if c not in delivered)
    if mapping is None:
        selected = selected.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(MAPPING_ERRORS))
    shape = (
        pl.when(pl.col("_shape").is_not_null())
        .then(pl.concat_list(pl.lit(f"{dataset}.row.field_count")))
        .when(pl.col("_control"))
        .then(pl.concat_list(pl.lit(control_characters_rule(dataset))))
    )
    frame = selected.select(
        *[
            (pl.col(c) if c in delivered else pl.lit(None, dtype=pl.String)).alias(c)
            for c in columns
        ],
        pl.lit(business_date, dtype=pl.Date).alias("business_date"),
        pl.lit(relative).alias("source_file"),
        pl.col("source_line"),
        pl.col(ORIGINAL),
        shape.otherwise(pl.col(MAPPING_ERRORS)).alias(READ_ERRORS),
    )
    return LandingFile(dataset, business_date, path, relative, frame, missing, extra)


# -- what a landing folder holds ---------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A landing entry refused by its path (never opened), and why."""

    dataset: str | None
    """The dataset its name claims; None for a business date folder refused whole."""
    path: Path
    reason: str


@dataclass(frozen=True)
class DayEntries:
    """A business date folder: its delivery files, entries refused by path, entries ignored."""

    files: dict[str, list[Path]]
    refused: list[Refused] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    """(entry, reason): names that are not a delivery file, so they are not read."""


def scan_day(root: Path, folder: Path) -> DayEntries:
    """Sort a business date folder's entries by ``lstat`` alone, opening none of them.

    A regular file named like a delivery (``loans.csv``, ``repayments.acme.csv.gz``)
    is a delivery file; one so named that is a link, device, FIFO or directory is
    refused; any other name is ignored (listed with the reason). A folder that is
    itself a link is refused whole and not listed.
    """
    files: dict[str, list[Path]] = {name: [] for name in schema.INPUT_DATASETS}
    try:
        folder.lstat()
    except FileNotFoundError:
        return DayEntries(files)
    except OSError as exc:
        return DayEntries(files, [Refused(None, folder, f"cannot be examined ({exc.strerror})")])
    reason = refusal(folder, root, directory=True)
    if reason is not None:
        return DayEntries(files, [Refused(None, folder, reason)])
    refused: list[Refused] = []
    ignored: list[tuple[Path, str]] = []
    for path in sorted(folder.iterdir()):
        if path.name in CONTROL_FILES:
            continue
        parsed = parse_landing_name(path.name)
        if parsed is None or parsed.dataset not in files:
            ignored.append((path, _IGNORED_NAME))
            continue
        reason = refusal(path, root)
        if reason is None:
            files[parsed.dataset].append(path)
        else:
            refused.append(Refused(parsed.dataset, path, reason))
    return DayEntries(files, refused, ignored)


_IGNORED_NAME: Final = (
    "not a delivery file name (<dataset>[.<source>].csv, .csv.gz, .parquet or .jsonl): not read"
)


def scan_landing(root: Path, landing: Path) -> list[tuple[Path, str]]:
    """Entries directly under ``landing/`` that are not a business date folder, with the reason.

    ``deals/`` and ``mappings/`` are not business dates; a folder named like a date
    (``YYYY-MM-DD``) is one even when it is a link (the day's ingest refuses it).
    """
    if refusal(landing, root, directory=True) is not None:
        return []
    ignored: list[tuple[Path, str]] = []
    for path in sorted(landing.iterdir()):
        name = path.name
        if name in _LANDING_SUBFOLDERS:
            continue
        if _DATE_FOLDER.fullmatch(name):
            try:
                date.fromisoformat(name)
            except ValueError:
                ignored.append((path, f"{name} is not a calendar date: folder not read"))
            continue
        kind = "folder" if path.is_dir() and not path.is_symlink() else "entry"
        ignored.append(
            (path, f"not a business date folder (the name must be YYYY-MM-DD): {kind} not read")
        )
    return ignored
