"""Delivery control files and the delivery calendar.

A landing date is *complete* when its ``manifest.json`` lists every delivery file
with its row count (data rows, header excluded) and sha256, and the files match it
(and any control totals, such as ``"repayments.principal_paid": "123.45"``). Which
dates must have a delivery is the source's calendar: ``daily`` (consumer credit
repays on weekends too), ``business_days`` (sessions of the Shanghai exchange,
XSHG, from ``exchange_calendars``) or ``month_end``.

A delivery that does not match its manifest is rejected whole, naming the file and
the mismatch; a date that must have a delivery and has none is *missing*. Both stop
a run at that date (the planner, ``flows.planner``).
"""

from __future__ import annotations

import functools
import gzip
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, Protocol

import polars as pl
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.catalog import (
    LANDING_DATASETS,
    Catalog,
    delivery_files,
    parse_landing_name,
    sha256_file,
)
from flows.state import cached_sha256

DeliveryCalendar = Literal["daily", "business_days", "month_end"]
DeliveryStatus = Literal["complete", "empty", "missing", "rejected", "optional"]
MANIFEST_NAME = "manifest.json"
_TOTAL = Decimal("0.01")


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DeliveryManifest(BaseModel):
    """A delivery's control file, ``landing/<date>/manifest.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business_date: date
    files: tuple[ManifestFile, ...]
    control_totals: dict[str, str] = Field(default_factory=dict)
    """``<dataset>.<column>`` to the sum of that column over the dataset's files, in yuan."""

    def dumps(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


@dataclass(frozen=True)
class DeliveryCheck:
    """What the control file says about one business date."""

    day: date
    status: DeliveryStatus
    reason: str | None = None

    @property
    def usable(self) -> bool:
        """Complete, declared empty, or not required and not delivered: nothing stops here."""
        return self.status in ("complete", "empty", "optional")

    def describe(self) -> str:
        text = f"{self.day}: {self.status}"
        return f"{text} ({self.reason})" if self.reason else text


def data_rows(path: Path) -> int:
    """Data rows of a landing file: lines after the header (CSV), lines (JSONL), rows (Parquet)."""
    name = parse_landing_name(path.name)
    suffix = name.suffix if name else path.suffix
    if suffix == ".parquet":
        return int(pq.read_metadata(path).num_rows)
    if suffix == ".csv.gz":
        with gzip.open(path, "rb") as packed:
            lines = _count_lines(packed)
    else:
        with path.open("rb") as plain:
            lines = _count_lines(plain)
    return max(lines - 1, 0) if suffix in (".csv", ".csv.gz") else lines


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _count_lines(handle: _Readable) -> int:
    count = 0
    last = b"\n"
    for block in iter(functools.partial(handle.read, 1 << 20), b""):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (0 if last == b"\n" else 1)


def column_total(paths: Iterable[Path], column: str) -> Decimal:
    """The exact sum of a yuan column over landing files (CSV text, summed as Decimal)."""
    total = Decimal(0)
    for path in paths:
        if path.name.endswith(".parquet"):
            values = pl.read_parquet(path, columns=[column])[column].cast(pl.String)
        elif path.name.endswith(".jsonl"):
            values = pl.read_ndjson(path).get_column(column).cast(pl.String)
        else:
            values = pl.read_csv(path, columns=[column], infer_schema=False)[column]
        total += sum((Decimal(v) for v in values.drop_nulls()), Decimal(0))
    return total


def manifest_for(folder: Path, business_date: date, totals: Iterable[str] = ()) -> DeliveryManifest:
    """The control file describing the delivery files now in ``folder``.

    Args:
        folder: A landing date's folder.
        business_date: Its business date.
        totals: ``<dataset>.<column>`` control totals to compute.
    """
    files = delivery_files(folder)
    control: dict[str, str] = {}
    for spec in totals:
        dataset, column = spec.split(".", 1)
        chosen = [p for p in files if parse_landing_name(p.name).dataset == dataset]  # type: ignore[union-attr]
        if chosen:
            control[spec] = str(column_total(chosen, column).quantize(_TOTAL))
    return DeliveryManifest(
        business_date=business_date,
        files=tuple(
            ManifestFile(name=p.name, rows=data_rows(p), sha256=sha256_file(p)) for p in files
        ),
        control_totals=control,
    )


def check_delivery(  # noqa: PLR0911 - one return per outcome of the check
    catalog: Catalog, day: date, *, required: bool, empty: bool
) -> DeliveryCheck:
    """Check a business date's delivery against its control file.

    Args:
        catalog: The data root.
        day: The business date.
        required: The calendar says the date must have a delivery.
        empty: An operator declared the date empty.

    Returns:
        ``complete`` when the files match the manifest; ``rejected`` (with the file and
        the mismatch) when they do not; ``empty`` when declared empty and nothing was
        delivered; ``missing`` when required and there is no manifest; ``optional``
        when not required and nothing was delivered.
    """
    path = catalog.delivery_manifest(day)
    if not path.is_file():
        delivered = any(catalog.landing_files(day).values())
        if empty and not delivered:
            return DeliveryCheck(day, "empty")
        if delivered:
            return DeliveryCheck(day, "rejected", f"{path}: no manifest.json for the files")
        if required:
            return DeliveryCheck(day, "missing", f"no delivery in {catalog.landing_dir(day)}")
        return DeliveryCheck(day, "optional")
    try:
        manifest = DeliveryManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0]
        return DeliveryCheck(day, "rejected", f"{path}: not a delivery manifest ({first})")
    if manifest.business_date != day:
        return DeliveryCheck(
            day, "rejected", f"{path}: business_date {manifest.business_date} is not {day}"
        )
    problem = _mismatch(catalog, day, manifest)
    if problem:
        return DeliveryCheck(day, "rejected", problem)
    return DeliveryCheck(day, "complete")


def _mismatch(  # noqa: PLR0911 - the first mismatch found is the one named
    catalog: Catalog, day: date, manifest: DeliveryManifest
) -> str | None:
    folder = catalog.landing_dir(day)
    listed = {f.name: f for f in manifest.files}
    present = {p.name: p for paths in catalog.landing_files(day).values() for p in paths}
    for name in sorted(present.keys() - listed.keys()):
        return f"{folder / name}: delivered but not listed in manifest.json"
    # Hashed once: ingest later takes the same recorded sha256 (flows.state.HashBook).
    digests = cached_sha256(catalog, [present[n] for n in sorted(listed) if n in present])
    for name, entry in sorted(listed.items()):
        path = present.get(name)
        if path is None:
            return f"{folder / name}: listed in manifest.json but not delivered"
        sha = digests[path]
        if sha != entry.sha256:
            return f"{path}: sha256 {sha[:12]}… does not match the manifest's {entry.sha256[:12]}…"
        try:
            rows = data_rows(path)
        except (OSError, EOFError, ValueError) as exc:
            return f"{path}: unreadable ({exc})"
        if rows != entry.rows:
            return f"{path}: {rows} data rows, the manifest says {entry.rows}"
    for spec, expected in sorted(manifest.control_totals.items()):
        dataset, _, column = spec.partition(".")
        paths = [present[n] for n in sorted(listed) if n.split(".", 1)[0] == dataset]
        try:
            actual = column_total(paths, column).quantize(_TOTAL)
            wanted = Decimal(expected).quantize(_TOTAL)
        except (InvalidOperation, pl.exceptions.PolarsError, OSError) as exc:
            return f"{folder}: control total {spec} cannot be checked ({exc})"
        if actual != wanted:
            return f"{folder}: control total {spec} is {actual}, the manifest says {wanted}"
    return None


@dataclass(frozen=True)
class DayScan:
    """What the landing zone holds for one date."""

    check: DeliveryCheck
    digest: str
    """Digest of the date's delivery (its manifest, which lists every file's sha256)."""
    files: int
    staged: bool
    """Every dataset the date delivered has a staged partition."""


def first_delivery(catalog: Catalog) -> date | None:
    """The book's first landing date with a control file."""
    dates = [d for d in catalog.landing_dates() if catalog.delivery_manifest(d).is_file()]
    return dates[0] if dates else None


def required_for(catalog: Catalog, calendar: DeliveryCalendar, end: date) -> frozenset[date]:
    """Dates up to ``end`` that must be processed: those the calendar requires from the
    first delivery on, and every date that had a delivery."""
    first = first_delivery(catalog)
    if first is None:
        return frozenset()
    delivered = {d for d in catalog.landing_dates() if d <= end}
    return frozenset(required_dates(calendar, first, end)) | delivered


def scan_days(
    catalog: Catalog,
    days: Iterable[date],
    *,
    required: frozenset[date],
    empty: frozenset[date],
) -> dict[date, DayScan]:
    """Check each date's delivery against its control file and fingerprint it."""
    scanned = {}
    for day in days:
        check = check_delivery(catalog, day, required=day in required, empty=day in empty)
        manifest = catalog.delivery_manifest(day)
        # A complete manifest lists every file's sha256: its own digest covers them all.
        digest = sha256_file(manifest) if check.status == "complete" else f"{day}|{check.status}"
        files = catalog.landing_files(day)
        delivered = [name for name in LANDING_DATASETS if files[name]]
        scanned[day] = DayScan(
            check=check,
            digest=digest,
            files=sum(len(files[name]) for name in LANDING_DATASETS),
            staged=all(catalog.staged_partition(name, day).is_file() for name in delivered),
        )
    return scanned


# -- the calendar ------------------------------------------------------------------------
def required_dates(calendar: DeliveryCalendar, start: date, end: date) -> list[date]:
    """The dates of [start, end] that must have a delivery under ``calendar``."""
    if end < start:
        return []
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    if calendar == "daily":
        return days
    if calendar == "month_end":
        return [d for d in days if (d + timedelta(days=1)).day == 1]
    sessions = _xshg_sessions(start.year, end.year)
    return [d for d in days if d in sessions]


@functools.cache
def _xshg_sessions(first_year: int, last_year: int) -> frozenset[date]:
    import exchange_calendars as xcals  # type: ignore[import-untyped]  # noqa: PLC0415

    with warnings.catch_warnings():
        # exchange_calendars 4.x reads Series.values, which pandas 3 deprecates; the
        # sessions are unaffected (dates, no timezone).
        warnings.simplefilter("ignore", DeprecationWarning)
        calendar = xcals.get_calendar("XSHG", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
        sessions = calendar.sessions
    return frozenset(ts.date() for ts in sessions)


def strictest(calendars: Iterable[DeliveryCalendar]) -> DeliveryCalendar:
    """The calendar requiring the most dates among several sources' (``daily`` when none)."""
    chosen = set(calendars)
    order: tuple[DeliveryCalendar, ...] = ("daily", "business_days", "month_end")
    for calendar in order:
        if calendar in chosen:
            return calendar
    return "daily"
