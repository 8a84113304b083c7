"""Read landing files into text frames with their lineage.

Every value is read as text so that the staging cast, not the reader, decides
what parses; each row keeps the business date, file and line it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from transforms import schema


@dataclass(frozen=True)
class LandingFile:
    """One delivered file read as text, or the reason it could not be read."""

    dataset: str
    business_date: date
    path: Path
    relative_path: str
    frame: pl.DataFrame
    """Canonical columns as text plus lineage; empty when unreadable."""
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    error: str | None = None


def _read_text_frame(path: Path) -> pl.DataFrame:
    name = path.name
    if name.endswith(".parquet"):
        frame = pl.read_parquet(path)
        return frame.select(pl.all().cast(pl.String))
    if name.endswith(".jsonl"):
        frame = pl.read_ndjson(path, infer_schema_length=None)
        return frame.select(pl.all().cast(pl.String))
    # CSV and CSV.gz (Polars decompresses gzip by itself); all text, BOM tolerated.
    return pl.read_csv(path, infer_schema=False, encoding="utf8", truncate_ragged_lines=False)


def read_landing_file(dataset: str, business_date: date, path: Path, root: Path) -> LandingFile:
    """Read one landing file as canonical text columns with lineage.

    Lines are numbered as in the file: the header is line 1, the first row line 2.
    """
    relative = path.relative_to(root).as_posix()
    columns = schema.INPUT_DATASETS[dataset]
    required = [c for c in columns if c not in schema.OPTIONAL_COLUMNS[dataset]]
    empty = pl.DataFrame(schema={**dict.fromkeys(columns, pl.String), **schema.LINEAGE})
    try:
        raw = _read_text_frame(path)
    except pl.exceptions.NoDataError:
        return LandingFile(dataset, business_date, path, relative, empty)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, EOFError) as exc:
        message = f"{relative}: unreadable {dataset} file: {type(exc).__name__}: {exc}"
        return LandingFile(dataset, business_date, path, relative, empty, error=message)
    raw = raw.rename({c: c.lstrip("\ufeff").strip() for c in raw.columns})
    missing = tuple(c for c in required if c not in raw.columns)
    extra = tuple(c for c in raw.columns if c not in columns)
    frame = raw.with_row_index("source_line", offset=2).select(
        *[
            (pl.col(c) if c in raw.columns else pl.lit(None, dtype=pl.String)).alias(c)
            for c in columns
        ],
        pl.lit(business_date, dtype=pl.Date).alias("business_date"),
        pl.lit(relative).alias("source_file"),
        pl.col("source_line").cast(pl.Int64),
    )
    return LandingFile(dataset, business_date, path, relative, frame, missing, extra)
