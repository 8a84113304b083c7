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
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Final

import polars as pl

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
) -> LandingFile:
    """A file refused as a whole; ``message`` is prefixed with the file's path."""
    return LandingFile(
        dataset,
        business_date,
        path,
        relative,
        empty_frame(dataset),
        error=f"{relative}: {message}",
        source=source,
        file_format=file_format,
    )


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _gunzip(data: bytes) -> bytes:
    """Decompress every gzip member; a stream cut short is an error naming the last line."""
    out: list[bytes] = []
    rest = data
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(inflater.decompress(rest))
            out.append(inflater.flush())
        except zlib.error as exc:
            raise LandingError(f"not a valid gzip stream ({exc})") from exc
        if not inflater.eof:
            line = b"".join(out).count(b"\n") + 1
            raise LandingError(f"truncated gzip stream: the data ends inside line {line}")
        rest = inflater.unused_data
    return b"".join(out)


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
    repeated = sorted({n for n in names if names.count(n) > 1})
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
    text: str, separator: str, *, allow_empty: bool = False
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
        raise LandingError(f"line {consumed + 1}: malformed quoting ({exc})") from exc
    rows = pl.DataFrame(
        {"source_line": starts, "fields": records},
        schema={"source_line": pl.Int64, "fields": pl.List(pl.String)},
    )
    return header, rows


def _delimited_frame(
    text: str, declared: str | None, *, allow_empty: bool = False
) -> tuple[list[str], pl.DataFrame]:
    first_line = next((line for line in text.split("\n") if line.strip()), "")
    separator = _separator(first_line, declared)
    if '"' in text:
        header, rows = _parse_quoted(text, separator, allow_empty=allow_empty)
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


def _jsonl_frame(text: str) -> tuple[list[str], pl.DataFrame]:
    lines = _lines(text)
    if lines.height == 0:
        return [], pl.DataFrame(schema={"source_line": pl.Int64, ORIGINAL: pl.String})
    try:
        records = pl.read_ndjson(
            io.BytesIO("\n".join(lines["text"].to_list()).encode("utf-8")),
            infer_schema_length=None,
        )
    except pl.exceptions.PolarsError as exc:
        for number, line in lines.iter_rows():
            try:
                value = json.loads(line)
            except json.JSONDecodeError as bad:
                raise LandingError(f"line {number}: invalid JSON ({bad.msg})") from exc
            if not isinstance(value, dict):
                raise LandingError(f"line {number}: not a JSON object") from exc
        raise LandingError(f"unreadable JSON Lines ({exc})") from exc
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


def _parquet_frame(data: bytes) -> tuple[list[str], pl.DataFrame]:
    try:
        records = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LandingError(f"not a readable Parquet file ({exc})") from exc
    nested = [c for c, t in records.schema.items() if t.is_nested()]
    if nested:
        raise LandingError(f"columns {nested} hold nested values, not scalars")
    header = records.columns
    text = records.select(pl.all().cast(pl.String))
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
) -> LandingFile:
    """Read one landing file as canonical text columns with lineage.

    Args:
        dataset: the dataset the file delivers.
        business_date: the delivery's business date.
        path: the file.
        root: the data root (lineage paths are relative to it).
        mapping: the servicer mapping named by the file (None: canonical columns).

    Returns:
        The file's rows, or the reason it could not be read (``error``).
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
        data = path.read_bytes()
        if file_format == "parquet":
            header, rows = _parquet_frame(data)
        else:
            if file_format == "csv.gz":
                data = _gunzip(data)
            text, encoding = decode(data, declared)
            if file_format == "jsonl":
                header, rows = _jsonl_frame(text)
            else:
                delimiter = mapping.delimiter if mapping is not None else None
                # A mapping may name the column an export leaves without a header.
                unnamed = mapping is not None and "" in mapping.table(dataset).columns
                header, rows = _delimited_frame(text, delimiter, allow_empty=unnamed)
    except (LandingError, OSError) as exc:
        return unreadable(
            dataset, business_date, path, relative, str(exc), source=source, file_format=file_format
        )
    if not header and file_format in ("csv", "csv.gz"):
        file = LandingFile(dataset, business_date, path, relative, empty_frame(dataset), empty=True)
    else:
        table = mapping.table(dataset) if mapping is not None else None
        file = _canonical(dataset, business_date, path, relative, header, rows, table)
    return replace(file, source=source, file_format=file_format, encoding=encoding)


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
        )
    required = [c for c in columns if c not in schema.OPTIONAL_COLUMNS[dataset]]
    missing = tuple(c for c in required if c not in delivered)
    if mapping is None:
        selected = selected.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(MAPPING_ERRORS))
    shape = pl.when(pl.col("_shape").is_not_null()).then(
        pl.concat_list(pl.lit(f"{dataset}.row.field_count"))
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
