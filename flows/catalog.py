"""The one place that knows where every dataset lives under the data root.

Every other module asks the catalog for a path or a frame. Writes are atomic:
the bytes go to a temporary sibling which is then renamed over the target, so
a crash leaves either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import polars as pl

from transforms.schema import Columns

LANDING_DATASETS = ("loans", "repayments", "pool_assets", "loan_tape")
PART = "part-0.parquet"

# <dataset>[.<source>]<suffix>: a source names the servicer mapping the file is read with.
_LANDING_NAME = re.compile(
    r"^(?P<dataset>loans|repayments|pool_assets|loan_tape)(?:\.(?P<source>[a-z0-9][a-z0-9_-]{0,63}))?"
    r"(?P<suffix>\.csv\.gz|\.csv|\.parquet|\.jsonl)$"
)


@dataclass(frozen=True)
class LandingName:
    """What a landing file's name says: its dataset, servicer source (if any) and format."""

    dataset: str
    source: str | None
    suffix: str


def parse_landing_name(name: str) -> LandingName | None:
    """Parse ``loans.csv`` or ``repayments.acme.csv.gz``; None for any other name."""
    match = _LANDING_NAME.match(name)
    if match is None:
        return None
    return LandingName(match["dataset"], match["source"], match["suffix"])


FAILURE_SUFFIX = ".failure.json"
DELIVERY_MANIFEST = "manifest.json"
"""A landing date's control file (``flows.delivery``)."""
SNAPSHOT_FOLDERS = ("staged", "quarantine", "curated", "marts", "state")
"""The data outputs a rollback restores (``flows.state``); reports are versioned instead."""


class _StateFile:
    """A file under the data root's ``state/`` folder, read as an attribute of a catalog."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, catalog: Catalog, _owner: type[Catalog] | None = None) -> Path:
        return catalog.root / "state" / self.name


@dataclass(frozen=True)
class Catalog:
    """Dataset locations under one data root."""

    root: Path

    # -- landing -----------------------------------------------------------------
    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def deals_dir(self) -> Path:
        return self.landing / "deals"

    def landing_dir(self, business_date: date) -> Path:
        return self.landing / business_date.isoformat()

    def landing_dates(self) -> list[date]:
        """Business dates that have a landing folder, ascending."""
        if not self.landing.is_dir():
            return []
        found = []
        for child in self.landing.iterdir():
            if child.is_dir():
                try:
                    day = date.fromisoformat(child.name)
                except ValueError:
                    continue
                # Only YYYY-MM-DD: "20240305" parses too, but is not that date's folder.
                if day.isoformat() == child.name:
                    found.append(day)
        return sorted(found)

    def landing_files(self, business_date: date) -> dict[str, list[Path]]:
        """The delivery files of a business date by dataset, in name order."""
        folder = self.landing_dir(business_date)
        files: dict[str, list[Path]] = {name: [] for name in LANDING_DATASETS}
        if not folder.is_dir() or folder.is_symlink():
            return files
        for path in sorted(folder.iterdir()):
            parsed = parse_landing_name(path.name)
            if parsed is not None and _regular(path):
                files[parsed.dataset].append(path)
        return files

    @property
    def mappings_dir(self) -> Path:
        return self.landing / "mappings"

    def mapping_file(self, source: str) -> Path:
        """The servicer mapping a ``<dataset>.<source>.<ext>`` landing file is read with."""
        return self.mappings_dir / f"{source}.mapping.yaml"

    def deals_entries(self) -> list[Path]:
        """Every entry of the deals folder in name order, whatever it is (the caller vets it)."""
        return sorted(self.deals_dir.iterdir())

    def deal_files(self) -> list[Path]:
        """Regular ``.yaml`` / ``.yml`` files of the deals folder (links and folders are not)."""
        if not self.deals_dir.is_dir() or self.deals_dir.is_symlink():
            return []
        return sorted(
            p for p in self.deals_dir.iterdir() if p.suffix in (".yaml", ".yml") and _regular(p)
        )

    # -- staged and quarantine ---------------------------------------------------------
    def staged_partition(self, dataset: str, business_date: date) -> Path:
        return self.root / "staged" / dataset / f"business_date={business_date.isoformat()}" / PART

    def quarantine_partition(self, dataset: str, business_date: date) -> Path:
        return (
            self.root / "quarantine" / dataset / f"business_date={business_date.isoformat()}" / PART
        )

    def staged_partitions(self, dataset: str, until: date | None = None) -> list[Path]:
        """Staged partitions of a dataset up to and including ``until``, oldest first."""
        return list(self.staged_by_date(dataset, until).values())

    def staged_by_date(self, dataset: str, until: date | None = None) -> dict[date, Path]:
        """Staged partitions of a dataset by business date, up to and including ``until``."""
        base = self.root / "staged" / dataset
        if not base.is_dir():
            return {}
        parts = {}
        for folder in sorted(base.iterdir()):
            day = _partition_date(folder.name, "business_date")
            if day is not None and (until is None or day <= until) and (folder / PART).is_file():
                parts[day] = folder / PART
        return parts

    def staged_dates(self, dataset: str, until: date | None = None) -> list[date]:
        """Business dates with a staged partition of a dataset, ascending."""
        return list(self.staged_by_date(dataset, until))

    @staticmethod
    def staged_business_date(partition: Path) -> date:
        """The business date of a staged partition file (``.../business_date=D/part.parquet``)."""
        day = _partition_date(partition.parent.name, "business_date")
        if day is None:
            raise ValueError(f"{partition}: not a staged partition")
        return day

    # -- curated and marts -------------------------------------------------------------
    def curated(self, dataset: str) -> Path:
        return self.root / "curated" / dataset / PART

    def snapshot_partition(self, as_of: date) -> Path:
        return self.root / "curated" / "loan_snapshots" / f"as_of_date={as_of.isoformat()}" / PART

    def snapshot_dates(self) -> list[date]:
        base = self.root / "curated" / "loan_snapshots"
        if not base.is_dir():
            return []
        found = [
            _partition_date(p.name, "as_of_date") for p in base.iterdir() if (p / PART).is_file()
        ]
        return sorted(day for day in found if day is not None)

    @property
    def engine_state(self) -> Path:
        """The performance engine's per-loan running totals after its last as-of date."""
        return self.root / "state" / "engine" / PART

    @property
    def engine_state_meta(self) -> Path:
        """What the engine state was computed from: watermark, staged partitions, rules."""
        return self.root / "state" / "engine" / "state.json"

    def mart(self, name: str) -> Path:
        return self.root / "marts" / name / PART

    def mart_summary(self, name: str) -> Path:
        """A mart's summary document (``marts/<name>/summary.json``), e.g. the reconciliation's."""
        return self.root / "marts" / name / "summary.json"

    # -- reports and runs --------------------------------------------------------------
    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def report_dir(self, pool_id: str, period: str, version: int | None = None) -> Path:
        """A period's report folder: the latest copy, or a published version's (``v<N>/``)."""
        folder = self.reports / pool_id / period
        return folder if version is None else folder / f"v{version}"

    def metrics_json(self, pool_id: str, period: str) -> Path:
        return self.report_dir(pool_id, period) / "metrics.json"

    def disclosure(
        self, pool_id: str, period: str, language: str, version: int | None = None
    ) -> Path:
        """A period's disclosure in a language: the latest copy, or a published version's."""
        return self.report_dir(pool_id, period, version) / f"disclosure.{language}.html"

    @property
    def index_html(self) -> Path:
        return self.reports / "index.html"

    def index_page(self, language: str) -> Path:
        """The index in a language (BCP 47 tag): ``index.html`` in English, else
        ``index.<language>.html``."""
        return self.index_html if language == "en" else self.reports / f"index.{language}.html"

    def static_pool_report(self, pool_id: str, language: str) -> Path:
        return self.reports / pool_id / f"static_pool.{language}.html"

    def portfolio_report(self, language: str) -> Path:
        return self.reports / f"portfolio.{language}.html"

    def data_quality_report(self, run_id: str, locale: str = "en") -> Path:
        """The run's data-quality report: ``<run_id>.html`` in English, ``<run_id>.zh-CN.html``."""
        suffix = "" if locale == "en" else ".zh-CN"
        return self.reports / "data_quality" / f"{run_id}{suffix}.html"

    def data_quality_summary(self, run_id: str) -> Path:
        """The run's data-quality figures as JSON, next to its HTML report."""
        return self.reports / "data_quality" / f"{run_id}.json"

    def data_quality_summaries(self) -> list[Path]:
        folder = self.reports / "data_quality"
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def run_manifest(self, run_id: str) -> Path:
        return self.root / "runs" / f"{run_id}.json"

    def run_manifests(self) -> list[Path]:
        folder = self.root / "runs"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.json") if not p.name.endswith(FAILURE_SUFFIX))

    def failure_summary(self, run_id: str) -> Path:
        """Beside the run manifest: what a failed run knew when it stopped."""
        return self.root / "runs" / f"{run_id}{FAILURE_SUFFIX}"

    def failure_summaries(self) -> list[Path]:
        folder = self.root / "runs"
        return sorted(folder.glob(f"*{FAILURE_SUFFIX}")) if folder.is_dir() else []

    # -- orchestration state: one file each under state/ ---------------------------------
    # business_dates.json: per business date, the input key it was processed with, its run
    # id and outcome; curate.json: what the curated datasets were built from;
    # metrics_marts.json: what the marts on disk were computed from; file_hashes.json: the
    # sha256 of every file hashed so far, with the size and mtime it was taken at;
    # data-root.lock: held by the run that is writing under this data root.
    business_date_state = _StateFile("business_dates.json")
    curate_state = _StateFile("curate.json")
    metrics_marts_state = _StateFile("metrics_marts.json")
    file_hashes_state = _StateFile("file_hashes.json")
    data_root_lock = _StateFile("data-root.lock")

    # -- deliveries, versions, snapshots (publication gate) ------------------------------
    def delivery_manifest(self, business_date: date) -> Path:
        """The delivery's control file: every file with its rows and sha256."""
        return self.landing_dir(business_date) / DELIVERY_MANIFEST

    def report_version_dir(self, pool_id: str, period: str, version: int) -> Path:
        """An immutable published version of a period's disclosures."""
        return self.report_dir(pool_id, period, version)

    def report_versions(self, pool_id: str, period: str) -> list[tuple[int, Path]]:
        """(version, folder) of every published version of a period, oldest first."""
        folder = self.report_dir(pool_id, period)
        if not folder.is_dir():
            return []
        found = [
            (int(p.name[1:]), p)
            for p in folder.iterdir()
            if p.is_dir() and re.fullmatch(r"v[1-9][0-9]*", p.name)
        ]
        return sorted(found)

    def output_snapshot(self, run_id: str) -> Path:
        """Hard links of the data outputs as a successful run left them (for rollback)."""
        return self.root / "runs" / "snapshots" / run_id

    @property
    def alert_log(self) -> Path:
        """Alerts sent, one JSON line each (what was sent, to how many targets)."""
        return self.root / "state" / "alerts.jsonl"

    def version_metrics_json(self, pool_id: str, period: str, version: int) -> Path:
        """The metrics.json frozen with a published version."""
        return self.report_version_dir(pool_id, period, version) / "metrics.json"

    def restatement_note(self, pool_id: str, period: str, version: int) -> Path:
        """What a version from v2 on restated against the one it replaces."""
        return self.report_version_dir(pool_id, period, version) / "restatement.json"

    def output_snapshot_folder(self, run_id: str, name: str) -> Path:
        """A data output folder (one of ``SNAPSHOT_FOLDERS``) as a run's snapshot holds it."""
        return self.output_snapshot(run_id) / self.data_folder(name).name

    def output_snapshots(self) -> list[Path]:
        """Every kept output snapshot folder, oldest first (by modification time)."""
        folder = self.root / "runs" / "snapshots"
        if not folder.is_dir():
            return []
        return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)

    def data_folder(self, name: str) -> Path:
        """A top-level data output folder (one of ``SNAPSHOT_FOLDERS``)."""
        if name not in SNAPSHOT_FOLDERS:
            raise ValueError(f"not a data output folder: {name}")
        return self.root / name

    def rollback_staging(self, name: str) -> Path:
        """Where a rollback assembles a data output folder before swapping it in."""
        return self.root / f".rollback-{self.data_folder(name).name}"

    def chunk_backup(self, run_id: str) -> Path:
        """Hard links of the staged partitions a chunk may replace, kept until it succeeds."""
        return self.root / "state" / f".chunk-backup-{run_id}"

    def data_outputs(self) -> list[Path]:
        """Every curated and mart Parquet file, in path order (recorded in run manifests)."""
        return [
            *sorted(self.root.glob("curated/**/*.parquet")),
            *sorted(self.root.glob("marts/**/*.parquet")),
        ]

    @property
    def prefect_home(self) -> Path:
        """Prefect's home when no other is configured: inside the data root."""
        return self.root / ".prefect"

    def metrics_documents(self) -> Iterator[tuple[str, str, Path]]:
        """(pool_id, period, path) of every metrics.json written so far."""
        if not self.reports.is_dir():
            return
        for path in sorted(self.reports.glob("*/*/metrics.json")):
            yield path.parent.parent.name, path.parent.name, path

    # -- reading and writing -------------------------------------------------------
    def scan(self, path: Path) -> pl.LazyFrame:
        return pl.scan_parquet(path)

    def scan_many(self, paths: list[Path], schema: Columns) -> pl.LazyFrame:
        """Scan several partitions; an empty list gives an empty frame of ``schema``."""
        if not paths:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(paths)

    def write_frame(self, frame: pl.DataFrame, path: Path) -> None:
        """Write one Parquet partition atomically; identical frames give identical bytes."""

        def write(tmp: Path) -> None:
            frame.write_parquet(tmp, compression="zstd", statistics=True)

        atomic_write(path, write)

    def write_text(self, text: str, path: Path) -> None:
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp creates owner-only files; published data and reports follow the umask.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary siblings of ``path`` left by a writer that was killed mid-write.

    Only for a partition this process owns: another writer's live temporary would go too.
    """
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _partition_date(name: str, key: str) -> date | None:
    """The date of a ``<key>=YYYY-MM-DD`` partition folder; None for any other name."""
    value = name.removeprefix(f"{key}=")
    if value == name:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if day.isoformat() == value else None


def spill_file(folder: Path, name: str) -> Path:
    """A Parquet file in an engine run's temporary spill folder (outside the data root)."""
    return folder / f"{name}.parquet"


def holds_deliveries(landing: Path) -> bool:
    """Whether a landing zone already has a folder (a business date, deals or mappings)."""
    return landing.is_dir() and any(p.is_dir() for p in landing.iterdir())


def delivery_files(folder: Path) -> list[Path]:
    """Files of a landing date's folder named like a delivery file, in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and parse_landing_name(p.name))


def _regular(path: Path) -> bool:
    """A regular file itself, not a link to one (links are refused, never opened)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# -- data roots named by URL (fsspec) ----------------------------------------------------
# A data root may be a local path or an fsspec URL (``s3://bucket/abs``, ``file:///srv/abs``,
# ``memory://abs``). The engine's loan buckets read and write their Parquet files through
# these functions, so a bucket runs wherever its worker can reach the data root.
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_url(location: str) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return _URL.match(location) is not None


def absolute_root(root: str | Path) -> str:
    """The data root as workers elsewhere must see it: a local path made absolute, a URL as is."""
    text = str(root)
    return text.rstrip("/") if is_url(text) else str(Path(text).resolve())


def curated_relative(dataset: str) -> str:
    """A curated dataset's file, relative to the data root (for bucket jobs)."""
    return f"curated/{dataset}/{PART}"


ENGINE_STATE_RELATIVE = f"state/engine/{PART}"
"""The engine state's file, relative to the data root (for bucket jobs)."""


def located(root: str, relative: str | Path) -> str:
    """The location of ``relative`` (a POSIX path under the data root) under ``root``."""
    relative = Path(relative).as_posix()
    return f"{root.rstrip('/')}/{relative}" if is_url(root) else str(Path(root) / relative)


def read_parquet_at(location: str) -> pl.DataFrame:
    """Read a Parquet file at a local path or fsspec URL."""
    if not is_url(location):
        return pl.read_parquet(location)
    with _fsspec().open(location, "rb") as handle:
        return pl.read_parquet(handle)


def scan_parquet_at(location: str) -> pl.LazyFrame:
    """A local Parquet file scanned lazily; a file at a URL read, then lazy."""
    return read_parquet_at(location).lazy() if is_url(location) else pl.scan_parquet(location)


def write_parquet_at(
    frame: pl.DataFrame, location: str, *, compression: Literal["zstd", "lz4"] = "zstd"
) -> None:
    """Write a Parquet file at a local path (atomically) or fsspec URL (an object store
    writes the object whole when the file is closed)."""

    def write(target: object) -> None:
        frame.write_parquet(target, compression=compression, statistics=True)  # type: ignore[arg-type]

    if not is_url(location):
        atomic_write(Path(location), write)
        return
    with _fsspec().open(location, "wb", auto_mkdir=True) as handle:
        write(handle)


def remove_tree_at(location: str) -> None:
    """Remove a folder and everything in it (nothing when it does not exist)."""
    if not is_url(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    filesystem, path = _fsspec().core.url_to_fs(location)
    if filesystem.exists(path):
        filesystem.rm(path, recursive=True)


def _fsspec() -> Any:
    import fsspec  # type: ignore[import-untyped]  # noqa: PLC0415 - only for URL data roots

    return fsspec


def deal_check_result(catalog: Catalog, key: str) -> Path:
    """The deal contract's failures on one version of the deal terms (``key``: a digest of
    the terms, the contract and the code), kept so that a run does not check them again."""
    return catalog.root / "state" / "deal_checks" / f"{key}.parquet"
