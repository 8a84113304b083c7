"""What the pipeline remembers between runs, as typed models written atomically.

``state/business_dates.json`` (:class:`StateBook`) records, per business date, the
*input key* it was processed with, the run that processed it, the outcome and when;
the dates an operator declared empty; and every published version of each period's
disclosure. Run manifests (``runs/<run_id>.json``, :class:`RunManifest`) are written
once per execution and never overwritten.

The input key chains the date's landing files (their sha256), the code version and
the key of the date before it, so

- a chunk whose dates all carry their current key is unchanged and is skipped;
- a late or corrected file for an old date changes that date's key and, through the
  chain, the key of every later date: everything from that date onward is recomputed;
- an interrupted backfill re-run skips the chunks that finished and resumes at the
  first one that did not.

A date whose chunk failed passes a *failed* marker down the chain, so the dates after
it are processed again once it succeeds.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from flows.catalog import Catalog, sha256_file
from flows.errors import SettingsError

DayStatus = Literal["ingested", "complete", "failed"]
STATE_FORMAT = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DayState(_Model):
    """How one business date was last processed."""

    key: str
    files: int
    status: DayStatus
    run_id: str
    error: str | None = None
    processed_at: datetime | None = None
    """When the run that last processed the date finished with it (UTC)."""


class EmptyDay(_Model):
    """A business date an operator declared to have no delivery, and why."""

    reason: str = Field(min_length=1)
    declared_at: datetime


class PublishedVersion(_Model):
    """One immutable version of a period's disclosures under ``reports/<pool>/<period>/v<N>/``."""

    version: int = Field(ge=1)
    run_id: str
    metrics_sha256: str
    published_at: datetime
    restated: int = 0
    """How many figures changed against the previous version (0 for v1)."""


class StateBook(BaseModel):
    """Every recorded business date, declared-empty dates, published versions and the last
    complete downstream recomputation."""

    model_config = ConfigDict(extra="forbid")

    format: int = STATE_FORMAT
    days: dict[date, DayState] = Field(default_factory=dict)
    empty_days: dict[date, EmptyDay] = Field(default_factory=dict)
    published: dict[str, list[PublishedVersion]] = Field(default_factory=dict)
    """``<pool_id>/<YYYY-MM>`` to its versions, oldest first."""
    downstream_key: str | None = None
    downstream_run_id: str | None = None
    last_success_at: datetime | None = None
    last_success_run_id: str | None = None

    @classmethod
    def load(cls, catalog: Catalog) -> StateBook:
        """Read the state file; a data root without one has processed nothing.

        Raises:
            SettingsError: The state file is not a state book (names the file).
        """
        path = catalog.business_date_state
        if not path.is_file():
            return cls()
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(raw, dict) and raw.get("format") == 1:
                raw = _from_format_1(raw)
            return cls.model_validate(raw)
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise SettingsError(f"not a state file ({first})", where=str(path)) from None

    def save(self, catalog: Catalog) -> None:
        """Write the state atomically (a crash leaves the previous state or this one)."""
        text = self.model_dump_json(indent=1) + "\n"
        catalog.write_text(text, catalog.business_date_state)

    def latest(self) -> date | None:
        return max(self.days) if self.days else None

    def chain_before(self, day: date) -> str:
        """The chain value the first date on or after ``day`` continues from."""
        earlier = [d for d in self.days if d < day]
        if not earlier:
            return ""
        state = self.days[max(earlier)]
        return chain_value(state.key, failed=state.status == "failed")


def _from_format_1(raw: dict[str, Any]) -> dict[str, Any]:
    """A state file of the first format (no timestamps, no publication record)."""
    return {
        "days": raw.get("business_dates", {}),
        "downstream_key": raw.get("downstream_key"),
        "downstream_run_id": raw.get("downstream_run_id"),
    }


def input_key(version: str, digest: str, previous: str) -> str:
    """The key of a business date: its files, the code, and the chain before it."""
    return hashlib.sha256(f"{version}|{digest}|{previous}".encode()).hexdigest()


def chain_value(key: str, *, failed: bool) -> str:
    """What a date passes on to the next: its key, marked when its chunk failed."""
    return hashlib.sha256(f"{key}|failed".encode()).hexdigest() if failed else key


# -- run manifests -------------------------------------------------------------------------
class ChunkRecord(_Model):
    start: date
    end: date
    outcome: Literal["processed", "skipped", "failed"]
    files: int
    rows: int = 0
    error: str | None = None


class InputRecord(_Model):
    dataset: str
    business_date: date
    path: str
    sha256: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    missing_columns: list[str]
    extra_columns: list[str]
    error: str | None
    rejected: bool


class RuleRecord(_Model):
    dataset: str
    rule_id: str
    severity: str
    rows: int


class RestatementRecord(_Model):
    pool_id: str
    period: str
    field: str
    old: Any
    new: Any


class OutputRecord(_Model):
    path: str
    sha256: str
    rows: int | None = None


class RunManifest(_Model):
    """``runs/<run_id>.json``: what one execution read, decided and wrote."""

    run_id: str
    input_fingerprint: str
    """What the run read (landing digests, deals, code): equal fingerprints, equal outputs."""
    flow_run_id: str | None
    started_at: datetime
    finished_at: datetime
    parameters: dict[str, Any]
    code_version: str
    outcome: Literal["ok", "failed", "stopped"]
    contract_versions: dict[str, str]
    chunks: list[ChunkRecord]
    declared_empty: dict[date, str]
    """Dates of the run's range declared empty, with the operator's reason."""
    blocked: list[str]
    """Periods the publication gate held back, with the reason."""
    inputs: list[InputRecord]
    rules: list[RuleRecord]
    periods_reported: list[str]
    published: list[str]
    """``<pool>/<period>/v<N>`` written by this run."""
    triggers_breached: list[str]
    restatements: list[RestatementRecord]
    up_to_date: bool
    data_quality: str | None
    rejected_files: list[str]
    outputs: list[OutputRecord]
    errors: list[str]
    stage_seconds: dict[str, float] = Field(
        validation_alias=AliasChoices("stage_seconds", "timings_seconds")
    )
    """Seconds each stage took (plan, ingest, curate, snapshots, metrics, publish); manifests
    written before the field had this name call it ``timings_seconds``."""

    def write(self, catalog: Catalog) -> Path:
        """Write the manifest once; an existing manifest of the same run id is never replaced.

        Raises:
            FileExistsError: A manifest of this run id exists already.
        """
        path = catalog.run_manifest(self.run_id)
        if path.exists():
            raise FileExistsError(f"run manifest {path} exists; run ids are unique")
        catalog.write_text(self.model_dump_json(indent=2) + "\n", path)
        return path

    @classmethod
    def read(cls, path: Path) -> RunManifest:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


# -- file hashes ---------------------------------------------------------------------------
HASHES_FORMAT = 1


class FileHash(_Model):
    """A file's sha256 and the size and modification time it was computed at."""

    size: int = Field(ge=0)
    mtime_ns: int
    sha256: str


class HashBook(BaseModel):
    """``state/file_hashes.json``: the sha256 of every file hashed so far, by path under the
    data root. A file whose size and modification time (ns) are those recorded is not read
    again; any other file is hashed and recorded. Files are replaced by an atomic rename, so
    a rewritten file always has a new modification time."""

    model_config = ConfigDict(extra="forbid")

    format: int = HASHES_FORMAT
    files: dict[str, FileHash] = Field(default_factory=dict)

    @classmethod
    def load(cls, catalog: Catalog) -> HashBook:
        """The recorded hashes; an unreadable or missing record is an empty one (all re-hashed)."""
        path = hash_book_path(catalog)
        try:
            book = cls.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            return cls()
        return book if book.format == HASHES_FORMAT else cls()

    def save(self, catalog: Catalog) -> None:
        ordered = HashBook(files=dict(sorted(self.files.items())))
        catalog.write_text(ordered.model_dump_json(indent=0) + "\n", hash_book_path(catalog))

    def sha256(self, catalog: Catalog, path: Path) -> tuple[str, bool]:
        """The file's sha256, and whether it had to be read to get it."""
        info = path.stat()
        key = _hash_key(catalog, path)
        known = self.files.get(key)
        if known is not None and known.size == info.st_size and known.mtime_ns == info.st_mtime_ns:
            return known.sha256, False
        digest = sha256_file(path)
        self.files[key] = FileHash(size=info.st_size, mtime_ns=info.st_mtime_ns, sha256=digest)
        return digest, True


def hash_book_path(catalog: Catalog) -> Path:
    """Where the file hashes are kept (beside the business-date state)."""
    return catalog.file_hashes_state


def _hash_key(catalog: Catalog, path: Path) -> str:
    try:
        return path.resolve().relative_to(catalog.root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def cached_sha256(catalog: Catalog, paths: Iterable[Path]) -> dict[Path, str]:
    """The sha256 of each file, reading only files new or changed since they were last hashed.

    The record (:class:`HashBook`) is written back when a file had to be read, and loses
    the entries of files that no longer exist.
    """
    # Tasks of one run may hash at the same time (each month's delivery check): one
    # read-modify-write of the record at a time keeps every thread's entries.
    with _HASH_BOOK_LOCK:
        book = HashBook.load(catalog)
        digests: dict[Path, str] = {}
        read = False
        for path in paths:
            digests[path], fresh = book.sha256(catalog, path)
            read = read or fresh
        gone = [key for key in book.files if not (catalog.root / key).exists()]
        for key in gone:
            del book.files[key]
        if read or gone:
            book.save(catalog)
    return digests


_HASH_BOOK_LOCK = threading.Lock()
