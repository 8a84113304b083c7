"""The Prefect flows: the nightly run of one business date and the backfill of a range.

    landing ─ingest─▶ staged ─curate─▶ curated ─engine─▶ loan_snapshots
        ─metrics─▶ marts + metrics.json ─render─▶ disclosures + index

Tasks take paths and plain values, never frames; the work is in the stage modules
(``flows.ingest``, ``flows.curate``, ``flows.snapshots``, ``flows.metrics``, ``flows.render``).
Which chunks need work, and what was processed before, is ``flows.status``; one run
at a time per data root is ``flows.locking``.

Both flows go the same way: take the data root's lock; fingerprint the landing
files chunk by chunk; ingest every chunk whose inputs changed (the others are
skipped, their staged partitions stay); when anything changed, recompute the
curated views, snapshots and metrics from everything staged and re-render the
periods from the first changed date onward, listing the published figures that
moved; write the run manifest and the Prefect artifacts.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
from prefect import Flow, flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as current_flow_run
from prefect.tasks import Task, exponential_backoff

from flows.catalog import Catalog, sha256_file
from flows.curate import CurateOutcome, curate
from flows.data_quality import write_data_quality_report
from flows.deals import load_deals
from flows.ingest import IngestOutcome, ingest_dates
from flows.locking import exclusive_lock
from flows.metrics import PoolPeriod, compute_pool_metrics
from flows.periods import month_ends_between
from flows.render import render_disclosures, render_report_index
from flows.settings import Settings, yesterday
from flows.snapshots import build_loan_snapshots, snapshot_dates
from flows.status import (
    ChunkSize,
    DayState,
    Restatement,
    StateBook,
    chain_value,
    day_digest,
    days_between,
    input_key,
    restatements,
    split_chunks,
)
from flows.version import code_version

SHANGHAI = ZoneInfo("Asia/Shanghai")
ChunkOutcome = Literal["processed", "skipped", "failed"]

IO_RETRIES = 3
IO_BACKOFF_SECONDS = 2.0
"""Transient I/O errors are retried after 2, 4 and 8 seconds."""


def _transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a task only when it failed on an I/O error (a busy disk, a dropped mount)."""
    return isinstance(state.result(raise_on_failure=False), OSError)


IO_TASK: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": IO_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=IO_BACKOFF_SECONDS),
    "retry_condition_fn": _transient,
}


@dataclass(frozen=True)
class ChunkReport:
    """What became of one chunk of business dates."""

    start: date
    end: date
    outcome: ChunkOutcome
    files: int = 0
    seconds: float = 0.0
    error: str | None = None

    def describe(self) -> str:
        span = f"{self.start}" if self.start == self.end else f"{self.start} .. {self.end}"
        text = f"{span}: {self.outcome}"
        return f"{text} ({self.error})" if self.error else text


@dataclass
class RunSummary:
    """What a run did, for the CLI, the run manifest and the Prefect artifacts."""

    run_id: str
    start: date
    end: date
    pool: str | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    chunks: list[ChunkReport] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)
    """``<pool_id>/<YYYY-MM>`` of every period whose metrics and disclosure were written."""
    triggers_breached: list[str] = field(default_factory=list)
    restatements: list[Restatement] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    index: str | None = None
    up_to_date: bool = False
    """Nothing changed since the last complete run: no stage had work to do."""
    errors: list[str] = field(default_factory=list)
    manifest: str | None = None
    failure_summary: str | None = None
    data_quality: str | None = None
    """The run's data-quality report (files received, rows per rule, rejected files)."""
    data_quality_notices: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def failed_chunks(self) -> list[ChunkReport]:
        return [c for c in self.chunks if c.outcome == "failed"]

    def describe(self) -> str:
        counts = {
            outcome: sum(1 for c in self.chunks if c.outcome == outcome)
            for outcome in ("processed", "skipped", "failed")
        }
        scope = f", pool {self.pool}" if self.pool else ""
        lines = [
            f"run {self.run_id}: business dates {self.start} .. {self.end}{scope}",
            f"  chunks: {counts['processed']} processed, {counts['skipped']} skipped "
            f"(unchanged), {counts['failed']} failed",
            f"  rows read {self.rows_read}, accepted {self.rows_accepted}, "
            f"quarantined {self.rows_quarantined}",
        ]
        lines += [f"  failed chunk {c.describe()}" for c in self.failed_chunks]
        if self.up_to_date:
            lines.append("  inputs unchanged since the last complete run: nothing to recompute")
        lines.append(f"  disclosures written: {len(self.reports)}")
        lines += [f"  trigger breached: {t}" for t in self.triggers_breached]
        if self.restatements:
            lines.append(f"  restated published figures: {len(self.restatements)}")
            lines += [f"    {r.describe()}" for r in self.restatements[:RESTATEMENTS_SHOWN]]
            if len(self.restatements) > RESTATEMENTS_SHOWN:
                lines.append(
                    f"    ... and {len(self.restatements) - RESTATEMENTS_SHOWN} more "
                    "(see the run manifest)"
                )
        lines += [f"  {notice}" for notice in self.data_quality_notices]
        lines += [f"  error: {e}" for e in self.errors]
        if self.data_quality:
            lines.append(f"  data-quality report: {self.data_quality}")
        if self.manifest:
            lines.append(f"  run manifest: {self.manifest}")
        if self.failure_summary:
            lines.append(f"  failure summary: {self.failure_summary}")
        if self.index:
            lines.append(f"Disclosures: {self.index}")
        return "\n".join(lines)


RESTATEMENTS_SHOWN = 10


class RunFailedError(RuntimeError):
    """A run finished with errors (a failed chunk, an unreadable file, a bad deal) or stopped.

    Raised at the end of the flow so that Prefect marks the run failed and the
    failure hook writes ``runs/<run_id>.failure.json``; it carries the summary.
    """

    def __init__(self, summary: RunSummary) -> None:
        super().__init__("; ".join(summary.errors) or "run failed")
        self.summary = summary

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunFailedError, (self.summary,))


class ProgressListener(Protocol):
    """Told how a run advances (the CLI draws a progress bar from it)."""

    def planned(self, chunks: int) -> None: ...

    def chunk_done(self, report: ChunkReport) -> None: ...

    def stage(self, name: str) -> None: ...


_progress: ContextVar[ProgressListener | None] = ContextVar("abs_pipeline_progress", default=None)


@contextmanager
def reporting_progress(listener: ProgressListener) -> Iterator[None]:
    """Send the progress of flows run inside this block to ``listener``."""
    token = _progress.set(listener)
    try:
        yield
    finally:
        _progress.reset(token)


@dataclass(frozen=True)
class RunRequest:
    start: date
    end: date
    data_root: str
    pool: str | None
    force: bool
    chunk: ChunkSize


@dataclass(frozen=True)
class MetricsOutcome:
    periods: list[PoolPeriod]
    restatements: list[Restatement]


# -- tasks ------------------------------------------------------------------------------
@task(name="fingerprint", **IO_TASK)
def fingerprint_task(data_root: str, days: list[date]) -> list[tuple[date, str, int]]:
    """(day, digest of its landing files, file count) for each day of a chunk."""
    catalog = Catalog(Path(data_root))
    return [(day, *day_digest(catalog, day)) for day in days]


@task(name="ingest", **IO_TASK)
def ingest_task(data_root: str, days: list[date]) -> IngestOutcome:
    outcome = ingest_dates(Catalog(Path(data_root)), days)
    get_run_logger().info(
        "ingested %s .. %s: %d files",
        days[0],
        days[-1],
        len(outcome.files),
        extra={"chunk_start": str(days[0]), "chunk_end": str(days[-1])},
    )
    return outcome


@task(name="curate", **IO_TASK)
def curate_task(data_root: str, until: date) -> CurateOutcome:
    return curate(Catalog(Path(data_root)), until)


@task(name="loan-snapshots", **IO_TASK)
def snapshots_task(data_root: str, as_of_dates: list[date], recompute: bool = False) -> list[date]:
    catalog = Catalog(Path(data_root))
    deals = load_deals(catalog).deals
    return build_loan_snapshots(catalog, as_of_dates, deals, recompute=recompute)


@task(name="pool-metrics", **IO_TASK)
def metrics_task(data_root: str, period_ends: list[date], pool: str | None) -> MetricsOutcome:
    """Pool marts and metrics.json; each re-written metrics.json is compared with the last."""
    catalog = Catalog(Path(data_root))
    deals = load_deals(catalog).deals
    if pool is not None:
        deals = {pool: deals[pool]} if pool in deals else {}
    published = {
        (pool_id, period): path.read_text(encoding="utf-8")
        for pool_id, period, path in catalog.metrics_documents()
        if pool_id in deals
    }
    periods = compute_pool_metrics(catalog, deals, period_ends)
    changed: list[Restatement] = []
    for item in periods:
        before = published.get((item.pool_id, item.period))
        if before is None:
            continue
        after = item.metrics_path.read_text(encoding="utf-8")
        if after != before:
            changed += restatements(
                item.pool_id, item.period, json.loads(before), json.loads(after)
            )
    return MetricsOutcome(periods, changed)


@task(name="render-pool", **IO_TASK)
def render_task(
    data_root: str, periods: list[PoolPeriod], generated_at: datetime, run_id: str
) -> list[Path]:
    """The disclosures of one pool's periods."""
    catalog = Catalog(Path(data_root))
    deals = load_deals(catalog).deals
    return render_disclosures(catalog, deals, periods, generated_at=generated_at, run_id=run_id)


@task(name="render-index", **IO_TASK)
def index_task(data_root: str, generated_at: datetime) -> Path:
    catalog = Catalog(Path(data_root))
    return render_report_index(catalog, load_deals(catalog).deals, generated_at=generated_at)


# -- the run ------------------------------------------------------------------------------
def _process(request: RunRequest) -> RunSummary:
    settings = Settings()
    catalog = Catalog(Path(request.data_root))
    holder = {
        "flow_run": current_flow_run.get_name() or "",
        "range": f"{request.start} .. {request.end}",
    }
    with exclusive_lock(
        catalog.data_root_lock, timeout=settings.lock_timeout_seconds, holder=holder
    ):
        summary = _run_locked(request, catalog)
    if summary.failed:
        summary.failure_summary = str(catalog.failure_summary(summary.run_id))
        raise RunFailedError(summary)
    return summary


def _run_locked(request: RunRequest, catalog: Catalog) -> RunSummary:
    logger = get_run_logger()
    listener = _progress.get()
    timings: dict[str, float] = {}
    version = code_version()
    book = load_deals(catalog)
    state = StateBook.load(catalog)
    data_root = request.data_root

    # Dates processed earlier than ``end`` depend on what is staged before them, so the
    # plan runs on to the latest processed date: unchanged dates there are skipped.
    plan_end = max(request.end, state.latest() or request.end)
    chunks = split_chunks(days_between(request.start, plan_end), request.chunk)
    mark = time.perf_counter()
    fingerprints: list[PrefectFuture[list[tuple[date, str, int]]]] = [
        fingerprint_task.submit(data_root, days) for days in chunks
    ]
    digests = {day: (digest, files) for f in fingerprints for day, digest, files in f.result()}
    timings["fingerprint"] = time.perf_counter() - mark
    run_id = _run_id(catalog, request, version, digests, state.chain_before(request.start))
    summary = RunSummary(run_id=run_id, start=request.start, end=request.end, pool=request.pool)
    summary.errors += book.errors
    for warning in book.warnings:
        logger.warning(warning)
    if request.pool is not None and request.pool not in book.deals:
        summary.errors.append(
            f"unknown pool {request.pool!r}; deals: {', '.join(sorted(book.deals)) or 'none'}"
        )
        return summary
    logger.info(
        "run %s: %d chunks over %s .. %s",
        run_id,
        len(chunks),
        request.start,
        plan_end,
        extra={"run_id": run_id},
    )
    if listener:
        listener.planned(len(chunks))

    stage = "ingest"
    try:
        ingested = IngestOutcome()
        changed_from: date | None = None
        chain = state.chain_before(request.start)
        mark = time.perf_counter()
        for days in chunks:
            keys: dict[date, str] = {}
            for day in days:
                keys[day] = input_key(version, digests[day][0], chain)
                chain = keys[day]
            files = sum(digests[day][1] for day in days)
            forced = request.force and days[0] <= request.end
            if not forced and all(_unchanged(catalog, state, day, keys[day]) for day in days):
                report = ChunkReport(days[0], days[-1], "skipped", files)
            else:
                report, outcome = _ingest_chunk(data_root, days, files)
                ingested.merge(outcome)
                for day in days:
                    state.days[day] = DayState(
                        key=keys[day],
                        files=digests[day][1],
                        status="failed" if report.outcome == "failed" else "ingested",
                        run_id=run_id,
                        error=report.error,
                    )
                chain = chain_value(keys[days[-1]], failed=report.outcome == "failed")
                state.save(catalog)
                changed_from = changed_from or days[0]
            summary.chunks.append(report)
            logger.info(
                "chunk %s: files=%d seconds=%.2f",
                report.describe(),
                report.files,
                report.seconds,
                extra={"run_id": run_id, "chunk_outcome": report.outcome},
            )
            if listener:
                listener.chunk_done(report)
        timings["ingest"] = time.perf_counter() - mark
        _count_rows(summary, ingested)

        def data_quality_report(restated: Sequence[Restatement] = ()) -> None:
            if not ingested.dates:
                return
            quality = write_data_quality_report(
                catalog,
                run_id,
                ingested,
                start=min(ingested.dates),
                end=max(ingested.dates),
                generated_at=datetime.combine(max(ingested.dates), clock(0), tzinfo=SHANGHAI),
                restatements=[
                    (r.pool_id, r.period, r.field, _text(r.old), _text(r.new)) for r in restated
                ],
            )
            summary.data_quality = str(quality.report)
            summary.data_quality_notices = quality.notices

        # Written now so the index rendered downstream links it; written again below
        # when the downstream stages restate figures of already-published periods.
        data_quality_report()
        summary.errors += [f"chunk {c.describe()}" for c in summary.failed_chunks]

        downstream_key = _downstream_key(catalog, version, chain)
        # Dates ingested by a run that stopped before the downstream stages finished.
        incomplete = sorted(d for d, s in state.days.items() if s.status == "ingested")
        if not (
            request.force
            or changed_from
            or incomplete
            or state.downstream_key != downstream_key
            or not catalog.index_html.is_file()
        ):
            summary.up_to_date = True
            summary.index = str(catalog.index_html.resolve())
        else:
            if request.force or state.downstream_key != downstream_key:
                report_from = request.start
            else:
                report_from = min(d for d in [changed_from, *incomplete] if d is not None)
            stage = "downstream"
            _downstream(
                request,
                catalog=catalog,
                summary=summary,
                report_from=report_from,
                plan_end=plan_end,
                timings=timings,
                listener=listener,
            )
            if summary.restatements:
                data_quality_report(summary.restatements)
            if request.pool is None and not summary.failed_chunks:
                for day, recorded in list(state.days.items()):
                    if recorded.status == "ingested":
                        state.days[day] = DayState(
                            recorded.key, recorded.files, "complete", run_id, None
                        )
                state.downstream_key = downstream_key
                state.downstream_run_id = run_id
                state.save(catalog)
        stage = "manifest"
        if summary.up_to_date:
            # A run that changed nothing keeps the manifest of the run that did the work.
            last = catalog.run_manifest(state.downstream_run_id or run_id)
            summary.manifest = str(last) if last.is_file() else None
        else:
            summary.manifest = str(
                _write_manifest(
                    catalog,
                    request,
                    summary=summary,
                    ingested=ingested,
                    version=version,
                    timings=timings,
                )
            )
    except Exception as exc:
        # Whatever stopped the run, the summary so far goes to the failure hook.
        summary.errors.append(f"{stage} stopped: {type(exc).__name__}: {exc}")
        logger.exception("run %s stopped in %s", run_id, stage)
        return summary
    _publish_artifacts(catalog, summary)
    logger.info(
        "run %s done: %d disclosures, %d restatements",
        run_id,
        len(summary.reports),
        len(summary.restatements),
        extra={"run_id": run_id},
    )
    return summary


def _ingest_chunk(
    data_root: str, days: list[date], files: int
) -> tuple[ChunkReport, IngestOutcome]:
    """Ingest one chunk; a failure is reported for this chunk and the run goes on."""
    began = time.perf_counter()
    future = ingest_task.submit(data_root, days)
    future.wait()
    result = future.result(raise_on_failure=False)
    seconds = time.perf_counter() - began
    if isinstance(result, BaseException) or not isinstance(result, IngestOutcome):
        error = f"{type(result).__name__}: {result}"
        return ChunkReport(days[0], days[-1], "failed", files, seconds, error), IngestOutcome()
    unreadable = [f.error for f in result.files if f.error]
    if unreadable:
        return ChunkReport(
            days[0], days[-1], "failed", files, seconds, "; ".join(unreadable)
        ), result
    return ChunkReport(days[0], days[-1], "processed", files, seconds), result


def _unchanged(catalog: Catalog, state: StateBook, day: date, key: str) -> bool:
    """Processed before with the same key, and its staged partitions are still there."""
    recorded = state.days.get(day)
    if recorded is None or recorded.key != key or recorded.status == "failed":
        return False
    delivered = catalog.landing_files(day)
    return all(
        catalog.staged_partition(dataset, day).is_file()
        for dataset, paths in delivered.items()
        if paths
    )


def _downstream(
    request: RunRequest,
    *,
    catalog: Catalog,
    summary: RunSummary,
    report_from: date,
    plan_end: date,
    timings: dict[str, float],
    listener: ProgressListener | None,
) -> None:
    """Curate, snapshots, metrics and disclosures from everything staged."""
    data_root = request.data_root
    staged = [
        d for name in ("loans", "repayments", "pool_assets") for d in _staged_dates(catalog, name)
    ]
    horizon = max([plan_end, *staged])
    deals = load_deals(catalog).deals

    def step(name: str) -> float:
        if listener:
            listener.stage(name)
        return time.perf_counter()

    mark = step("curate")
    curated = curate_task(data_root, horizon)
    timings["curate"] = time.perf_counter() - mark
    metrics = MetricsOutcome([], [])
    if curated.first_origination is not None:
        mark = step("snapshots")
        as_of = snapshot_dates(curated.first_origination, horizon, deals.values())
        snapshots_task(data_root, as_of, recompute=request.force)
        timings["snapshots"] = time.perf_counter() - mark
        mark = step("metrics")
        period_ends = [d for d in month_ends_between(report_from, horizon) if d >= report_from]
        metrics = metrics_task(data_root, period_ends, request.pool)
        timings["metrics"] = time.perf_counter() - mark
    summary.restatements = metrics.restatements
    summary.periods = [f"{p.pool_id}/{p.period}" for p in metrics.periods]
    summary.triggers_breached = _breached(metrics.periods)

    mark = step("render")
    # Reports carry the business date, not the wall clock, so re-runs are byte-identical.
    generated_at = datetime.combine(horizon, clock(0), tzinfo=SHANGHAI)
    by_pool: dict[str, list[PoolPeriod]] = {}
    for item in metrics.periods:
        by_pool.setdefault(item.pool_id, []).append(item)
    rendered = [
        render_task.submit(data_root, periods, generated_at, summary.run_id)
        for _, periods in sorted(by_pool.items())
    ]
    summary.reports = [str(p) for future in rendered for p in future.result()]
    summary.index = str(index_task(data_root, generated_at).resolve())
    timings["render"] = time.perf_counter() - mark


def _text(value: object) -> str:
    return "null" if value is None else str(value)


def _staged_dates(catalog: Catalog, dataset: str) -> list[date]:
    return [
        date.fromisoformat(p.parent.name.removeprefix("business_date="))
        for p in catalog.staged_partitions(dataset)
    ]


def _breached(periods: Sequence[PoolPeriod]) -> list[str]:
    breached = []
    for item in periods:
        document = json.loads(item.metrics_path.read_text(encoding="utf-8"))
        for trigger in document.get("triggers") or []:
            if trigger.get("breached"):
                breached.append(f"{item.pool_id} {item.period} {trigger.get('name')}")
    return breached


def _count_rows(summary: RunSummary, ingested: IngestOutcome) -> None:
    for f in ingested.files:
        summary.rows_read += f.rows_read
        summary.rows_accepted += f.rows_accepted
        summary.rows_quarantined += f.rows_quarantined


def _run_id(
    catalog: Catalog,
    request: RunRequest,
    version: str,
    digests: dict[date, tuple[str, int]],
    chain: str,
) -> str:
    """A run id derived from what the run reads, so identical re-runs share it."""
    scope = f"{request.start}|{request.end}|{request.pool}|{request.chunk}|{version}|{chain}"
    digest = hashlib.sha256(scope.encode())
    for day in sorted(digests):
        digest.update(digests[day][0].encode())
    for path in catalog.deal_files():
        digest.update(sha256_file(path).encode())
    return f"{request.end:%Y%m%d}-{digest.hexdigest()[:12]}"


def _downstream_key(catalog: Catalog, version: str, chain: str) -> str:
    """What the curated data onward was computed from: the inputs' chain, deals, code."""
    digest = hashlib.sha256(f"{version}|{chain}".encode())
    for path in catalog.deal_files():
        digest.update(f"|{path.name}|{sha256_file(path)}".encode())
    return digest.hexdigest()


# -- manifest and artifacts -------------------------------------------------------------
def _output(path: Path, root: Path) -> dict[str, object]:
    entry: dict[str, object] = {
        "path": path.relative_to(root).as_posix(),
        "sha256": sha256_file(path),
    }
    if path.suffix == ".parquet":
        entry["rows"] = pq.read_metadata(path).num_rows
    return entry


def _write_manifest(
    catalog: Catalog,
    request: RunRequest,
    *,
    summary: RunSummary,
    ingested: IngestOutcome,
    version: str,
    timings: dict[str, float],
) -> Path:
    root = catalog.root
    outputs = [
        *sorted(root.glob("curated/**/*.parquet")),
        *sorted(root.glob("marts/**/*.parquet")),
        *sorted(root.glob("reports/*/*/metrics.json")),
        *(Path(s) for s in summary.reports),
    ]
    manifest = {
        "run_id": summary.run_id,
        "parameters": {
            "start": summary.start.isoformat(),
            "end": summary.end.isoformat(),
            "pool": request.pool,
            "force": request.force,
            "chunk": request.chunk,
        },
        "code_version": version,
        "contract_versions": dict(sorted(ingested.contract_versions.items())),
        "chunks": [
            {
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "outcome": c.outcome,
                "files": c.files,
                "error": c.error,
            }
            for c in summary.chunks
        ],
        "inputs": [
            {
                "dataset": f.dataset,
                "business_date": f.business_date.isoformat(),
                "path": f.path,
                "sha256": f.sha256,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "rows_quarantined": f.rows_quarantined,
                "missing_columns": list(f.missing_columns),
                "extra_columns": list(f.extra_columns),
                "error": f.error,
                "rejected": f.rejected,
            }
            for f in ingested.files
        ],
        "rules": [
            {"dataset": d, "rule_id": r, "severity": s, "rows": n}
            for (d, r, s), n in sorted(ingested.rule_counts.items())
        ],
        "periods_reported": summary.periods,
        "triggers_breached": summary.triggers_breached,
        "restatements": [
            {"pool_id": r.pool_id, "period": r.period, "field": r.field, "old": r.old, "new": r.new}
            for r in summary.restatements
        ],
        "up_to_date": summary.up_to_date,
        "data_quality": (
            Path(summary.data_quality).relative_to(root).as_posix()
            if summary.data_quality
            else None
        ),
        "rejected_files": summary.data_quality_notices,
        "outputs": [_output(p, root) for p in outputs if p.is_file()],
        "errors": summary.errors,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    path = catalog.run_manifest(summary.run_id)
    catalog.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", path)
    return path


KEY_METRICS = (
    ("opening balance", ("pool", "opening_balance")),
    ("closing balance", ("pool", "closing_balance")),
    ("pool factor", ("pool", "pool_factor")),
    ("CPR", ("performance", "cpr")),
    ("CDR", ("performance", "cdr")),
    ("cumulative default rate", ("performance", "cumulative_default_rate")),
)


def _publish_artifacts(catalog: Catalog, summary: RunSummary) -> None:
    """The run's summary, its key pool metrics and a link to the disclosures, in Prefect."""
    lines = [
        f"# abs-pipeline run `{summary.run_id}`",
        "",
        f"Business dates **{summary.start} .. {summary.end}**"
        + (f", pool **{summary.pool}**" if summary.pool else ""),
        "",
        "| rows in | accepted | quarantined |",
        "|---:|---:|---:|",
        f"| {summary.rows_read} | {summary.rows_accepted} | {summary.rows_quarantined} |",
        "",
        "## Chunks",
        "",
        *[f"- {c.describe()}" for c in summary.chunks],
        "",
        "## Periods reported",
        "",
        *([f"- {p}" for p in summary.periods] or ["- none"]),
        "",
        "## Triggers breached",
        "",
        *([f"- {t}" for t in summary.triggers_breached] or ["- none"]),
        "",
        "## Restated published figures",
        "",
        *([f"- {r.describe()}" for r in summary.restatements] or ["- none"]),
    ]
    if summary.errors:
        lines += ["", "## Errors", "", *[f"- {e}" for e in summary.errors]]
    create_markdown_artifact(
        "\n".join(lines) + "\n",
        key="abs-pipeline-run-summary",
        description=f"run {summary.run_id}",
    )
    table: list[dict[str, Any]] = []
    for item in summary.periods:
        pool_id, period = item.split("/")
        document = json.loads(catalog.metrics_json(pool_id, period).read_text(encoding="utf-8"))
        row: dict[str, Any] = {"pool": pool_id, "period": period}
        for label, (section, name) in KEY_METRICS:
            row[label] = (document.get(section) or {}).get(name)
        table.append(row)
    if table:
        create_table_artifact(
            table, key="abs-pipeline-pool-metrics", description=f"run {summary.run_id}"
        )
    if summary.index:
        create_link_artifact(
            Path(summary.index).as_uri(),
            link_text="Disclosures (reports/index.html)",
            key="abs-pipeline-disclosures",
            description=f"run {summary.run_id}",
        )


# -- failure hook ---------------------------------------------------------------------------
def write_failure_summary(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Write ``runs/<run_id>.failure.json`` beside the run manifest when a run fails."""
    parameters = dict(flow_run.parameters)
    catalog = Catalog(Path(str(parameters.get("data_root", "data"))))
    error = state.result(raise_on_failure=False)
    document: dict[str, Any] = {
        "flow": flow.name,
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "state": state.type.value,
        "message": state.message,
        "parameters": {k: str(v) if v is not None else None for k, v in parameters.items()},
        "error": f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else None,
    }
    if isinstance(error, RunFailedError):
        summary = error.summary
        run_id = summary.run_id
        document |= {
            "run_id": run_id,
            "errors": summary.errors,
            "failed_chunks": [c.describe() for c in summary.failed_chunks],
            "chunks": [c.describe() for c in summary.chunks],
            "run_manifest": summary.manifest,
        }
    else:
        run_id = f"flow-run-{flow_run.id}"
        document["run_id"] = run_id
    path = catalog.failure_summary(run_id)
    catalog.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", path)


# -- flows -----------------------------------------------------------------------------
@flow(
    name="abs-pipeline-backfill",
    log_prints=False,
    on_failure=[write_failure_summary],
    on_crashed=[write_failure_summary],
)
def backfill_flow(
    start: date,
    end: date,
    data_root: str = "data",
    *,
    pool: str | None = None,
    force: bool = False,
    chunk: ChunkSize = "month",
) -> RunSummary:
    """Process every business date of [start, end], a chunk (a month) of deliveries at a time.

    Unchanged chunks are skipped unless ``force``; ``pool`` restricts metrics and
    disclosures to one pool.
    """
    return _process(RunRequest(start, end, data_root, pool, force, chunk))


@flow(
    name="abs-pipeline-nightly",
    log_prints=False,
    on_failure=[write_failure_summary],
    on_crashed=[write_failure_summary],
)
def run_flow(
    business_date: date | None = None,
    data_root: str = "data",
    pool: str | None = None,
    force: bool = False,
) -> RunSummary:
    """Process one business date (default: yesterday in the business timezone).

    On a month-end, the period's disclosures are rendered.
    """
    day = business_date or yesterday(Settings().timezone)
    return _process(RunRequest(day, day, data_root, pool, force, "day"))
