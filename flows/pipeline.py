"""The Prefect flows: the nightly run of one business date and the backfill of a range.

    landing ─check─▶ plan ─ingest─▶ staged ─curate─▶ curated ─engine─▶ loan_snapshots
        ─metrics─▶ marts + metrics.json ─gate─▶ published versions ─render─▶ index

Both flows go the same way: lock the data root; check every date's delivery against
its control file and fingerprint it (``flows.delivery``); let the pure planner
(``flows.planner``) decide which chunks to ingest or skip and where the run must stop
(a missing or rejected delivery); execute the plan; when anything changed, recompute
curated views, snapshots and metrics; let the publication gate decide which periods
may be published; publish each changed period as a new immutable version (with its
restatement note); write the data-quality report, the run manifest (never
overwritten: run ids are unique per execution) and the Prefect artifacts; keep a
snapshot of the data outputs for ``rollback``.

Tasks take paths and plain values, never frames. Expected errors are
:class:`~flows.errors.PipelineError`\\ s: the run ends Failed in Prefect and the CLI
prints one line and the error's exit code.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any, Literal, ParamSpec, Protocol, TypeVar
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
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_flow_run
from prefect.tasks import Task, exponential_backoff

from data_contracts.deal import DealTerms
from flows.alerts import send_alert
from flows.catalog import LANDING_DATASETS, SNAPSHOT_FOLDERS, Catalog
from flows.curate import CurateOutcome, curate
from flows.data_quality import write_data_quality_report
from flows.deals import DealBook, load_deals
from flows.delivery import DayScan, first_delivery, required_for, scan_days, strictest
from flows.errors import (
    EXIT_FAILURE,
    EXIT_INPUT_REJECTED,
    InputRejectedError,
    PipelineError,
)
from flows.ingest import FileOutcome, IngestOutcome, ingest_dates
from flows.locking import DataRootBusyError, exclusive_lock
from flows.metrics import MetricsBook, PoolPeriod, compute_pool_metrics, load_metrics_book
from flows.planner import (
    ChunkPlan,
    ChunkSize,
    GateDecision,
    Plan,
    PlanOptions,
    days_between,
    gate,
    plan,
    plan_end_for,
    rekey,
    split_chunks,
)
from flows.render import render_disclosures, render_report_index
from flows.settings import Settings, check_data_root, load_settings, yesterday
from flows.snapshots import (
    BucketJob,
    BucketOutput,
    build_loan_snapshots,
    run_bucket,
    run_buckets_here,
    snapshot_dates,
)
from flows.state import (
    ChunkRecord,
    DayState,
    InputRecord,
    OutputRecord,
    PublishedVersion,
    RestatementRecord,
    RuleRecord,
    RunManifest,
    StateBook,
    cached_sha256,
    chain_value,
)
from flows.status import Restatement, restatements
from flows.version import code_version
from transforms.periods import month_ends_between

SHANGHAI = ZoneInfo("Asia/Shanghai")
ChunkOutcome = Literal["processed", "skipped", "failed"]

IO_RETRIES = 3
IO_BACKOFF_SECONDS = 2.0
"""Transient I/O errors are retried after 2, 4 and 8 seconds."""
FLOW_TIMEOUT_SECONDS = 6 * 3600.0
"""The flows' default timeout (the CLI applies ``ABS_PIPELINE_FLOW_TIMEOUT_SECONDS``)."""


def _transient(_task: Task[Any, Any], _task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a task only when it failed on an I/O error (a busy disk, a dropped mount)."""
    return isinstance(state.result(raise_on_failure=False), OSError)


IO_TASK: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": IO_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=IO_BACKOFF_SECONDS),
    "retry_condition_fn": _transient,
}


# -- run context on every log line -------------------------------------------------------------
_log_context: ContextVar[str | None] = ContextVar("abs_pipeline_log_context", default=None)


class _RunContextFilter(logging.Filter):
    """Prefix every flow and task log line with the run id, business dates and pool."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _log_context.get()
        if context and not getattr(record, "abs_pipeline_context", None):
            record.msg = f"[{context}] {record.msg}"
            record.abs_pipeline_context = context
        return True


_FILTER = _RunContextFilter()


@contextmanager
def _run_context(run_id: str, dates: str, pool: str | None) -> Iterator[None]:
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    token = _log_context.set(f"run_id={run_id} business_date={dates} pool={pool or 'all'}")
    try:
        yield
    finally:
        _log_context.reset(token)


@contextmanager
def _dates_context(dates: str) -> Iterator[None]:
    """Within a task: the dates it works on replace the run's range in the prefix."""
    current = _log_context.get() or ""
    parts = [p for p in current.split(" ") if not p.startswith("business_date=")]
    token = _log_context.set(" ".join([*parts[:1], f"business_date={dates}", *parts[1:]]))
    try:
        yield
    finally:
        _log_context.reset(token)


# -- what a run reports ----------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkReport:
    """What became of one chunk of business dates."""

    start: date
    end: date
    outcome: ChunkOutcome
    files: int = 0
    seconds: float = 0.0
    error: str | None = None
    rows: int = 0

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
    fingerprint: str = ""
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    chunks: list[ChunkReport] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)
    """``<pool_id>/<YYYY-MM>`` of every period whose metrics were computed and passed the gate."""
    published: list[str] = field(default_factory=list)
    """``<pool_id>/<YYYY-MM>/v<N>`` of every version this run published."""
    blocked: list[str] = field(default_factory=list)
    """Periods the gate held back, with the reason."""
    stop: str | None = None
    """The missing or rejected delivery the run stopped at."""
    declared_empty: dict[date, str] = field(default_factory=dict)
    triggers_breached: list[str] = field(default_factory=list)
    restatements: list[Restatement] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    index: str | None = None
    up_to_date: bool = False
    """Nothing changed since the last complete run: no stage had work to do."""
    errors: list[str] = field(default_factory=list)
    input_rejected: bool = False
    """A whole file, a delivery or a deal file was rejected: the run exits 3."""
    manifest: str | None = None
    failure_summary: str | None = None
    data_quality: str | None = None
    data_quality_notices: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors) or self.stop is not None

    @property
    def failed_chunks(self) -> list[ChunkReport]:
        return [c for c in self.chunks if c.outcome == "failed"]

    @property
    def exit_code(self) -> int:
        if not self.failed:
            return 0
        return EXIT_INPUT_REJECTED if self.stop or self.input_rejected else EXIT_FAILURE

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
        lines += [
            f"  declared empty: {d} ({why})" for d, why in sorted(self.declared_empty.items())
        ]
        if self.stop:
            lines.append(f"  STOPPED: {self.stop}; nothing from that date on was processed")
        if self.up_to_date:
            lines.append("  inputs unchanged since the last complete run: nothing to recompute")
        lines.append(f"  versions published: {len(self.published)}")
        lines += [f"    {v}" for v in self.published]
        lines += [f"  not published: {b}" for b in self.blocked[:RESTATEMENTS_SHOWN]]
        if len(self.blocked) > RESTATEMENTS_SHOWN:
            lines.append(f"  ... and {len(self.blocked) - RESTATEMENTS_SHOWN} more not published")
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


class RunFailedError(PipelineError):
    """A run finished with errors (a failed chunk, a rejected file or delivery, a bad deal)
    or stopped at a missing delivery.

    Raised at the end of the flow so that Prefect marks the run Failed and the failure
    hook writes ``runs/<run_id>.failure.json``; it carries the summary and the exit code
    (3 when input was rejected or a delivery is missing, 1 otherwise).
    """

    def __init__(self, summary: RunSummary) -> None:
        first = summary.stop or (summary.errors[0] if summary.errors else "run failed")
        more = len(summary.errors) - (0 if summary.stop else 1)
        super().__init__(f"run {summary.run_id}: {first}" + (f" (+{more} more)" if more else ""))
        self.summary = summary
        self.exit_code = summary.exit_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunFailedError, (self.summary,))


class ChunkRejectedError(InputRejectedError):
    """A chunk's ingest refused a whole file (unreadable, or every row rejected)."""

    def __init__(self, message: str, outcome: IngestOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChunkRejectedError, (self.message, self.outcome))


class ProgressListener(Protocol):
    """Told how a run advances (the CLI draws a progress bar from it)."""

    def planned(self, chunks: int, files: int) -> None: ...

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


def plan_options(request: RunRequest) -> PlanOptions:
    return PlanOptions(request.start, request.end, request.force, request.chunk, code_version())


@dataclass(frozen=True)
class MetricsOutcome:
    periods: list[PoolPeriod]


# -- tasks ------------------------------------------------------------------------------
@task(name="check-deliveries", **IO_TASK)
def scan_task(
    data_root: str, days: list[date], required: frozenset[date], empty: frozenset[date]
) -> dict[date, DayScan]:
    """Each date's delivery checked against its manifest, and its fingerprint."""
    with _dates_context(f"{days[0]}..{days[-1]}"):
        return scan_days(Catalog(Path(data_root)), days, required=required, empty=empty)


REFUSED_FILES_SHOWN = 3
"""How many refused files a rejected chunk's message names in full."""


@task(name="ingest", **IO_TASK)
def ingest_task(data_root: str, days: list[date]) -> IngestOutcome:
    """Ingest a chunk; a file refused whole fails the task (and so the chunk)."""
    with _dates_context(f"{days[0]}..{days[-1]}"):
        outcome = ingest_dates(Catalog(Path(data_root)), days)
        logger = get_run_logger()
        logger.info("ingested %s .. %s: %d files", days[0], days[-1], len(outcome.files))
        refused = [
            f"{f.path}: {f.error or f.rejected}"
            for f in outcome.files
            if f.error is not None or f.rejected is not None
        ]
        if refused:
            shown = refused[:REFUSED_FILES_SHOWN]
            if len(refused) > len(shown):
                shown.append(f"and {len(refused) - len(shown)} more files (see the quarantine)")
            raise ChunkRejectedError("\n".join(shown), outcome)
        return outcome


@task(name="curate", **IO_TASK)
def curate_task(data_root: str, until: date) -> CurateOutcome:
    return curate(Catalog(Path(data_root)), until)


@task(name="loan-snapshots", **IO_TASK)
def snapshots_task(
    data_root: str, deals: dict[str, DealTerms], as_of_dates: list[date], recompute: bool = False
) -> list[date]:
    catalog = Catalog(Path(data_root))
    return build_loan_snapshots(
        catalog, as_of_dates, deals, recompute=recompute, dispatch=dispatch_buckets
    )


@task(name="engine-bucket", **IO_TASK)
def engine_bucket_task(job: BucketJob) -> BucketOutput:
    """One loan bucket of the engine: reads and writes under the job's data root."""
    return run_bucket(job)


def dispatch_buckets(jobs: Sequence[BucketJob]) -> list[BucketOutput]:
    """The engine's bucket jobs as Prefect tasks, in bucket order.

    On a Dask task runner they are all submitted at once and run on the cluster's
    workers (each worker holds one bucket at a time); on any other runner they run
    one after the other here, so memory stays that of one bucket.
    """
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if runner is None:
        return run_buckets_here(jobs)
    if type(runner).__module__.startswith("prefect_dask"):
        futures = [engine_bucket_task.submit(job) for job in jobs]
        return [future.result() for future in futures]
    return [engine_bucket_task(job) for job in jobs]


@task(name="pool-metrics", **IO_TASK)
def metrics_task(
    data_root: str,
    deals: dict[str, DealTerms],
    period_ends: list[date],
    pool: str | None,
    recompute: bool = False,
) -> MetricsOutcome:
    """Pool marts and metrics.json of the periods the gate lets through; marts whose
    inputs did not change are kept unless ``recompute``."""
    catalog = Catalog(Path(data_root))
    if pool is not None:
        deals = {pool: deals[pool]} if pool in deals else {}
    return MetricsOutcome(compute_pool_metrics(catalog, deals, period_ends, recompute=recompute))


@task(name="render-pool", **IO_TASK)
def render_task(  # noqa: PLR0917 - Prefect submits task arguments positionally
    data_root: str,
    book: DealBook,
    metrics: MetricsBook,
    periods: list[PoolPeriod],
    generated_at: datetime,
    run_id: str,
    versions: dict[tuple[str, str], int] | None = None,
    restated: dict[tuple[str, str], int] | None = None,
    archive_versions: dict[tuple[str, str], int] | None = None,
) -> list[Path]:
    """The disclosures of one pool's periods: the latest copy, or a published version.

    ``restated`` maps a restated period to how many of its published figures changed;
    its disclosure says so, dated by the business date of this run. ``archive_versions``
    names the versions already rendered whose archive PDFs the latest copy takes.
    """
    return render_disclosures(
        Catalog(Path(data_root)),
        book.deals,
        metrics,
        periods,
        deal_sources=book.sources,
        generated_at=generated_at,
        run_id=run_id,
        versions=versions,
        restated=restated,
        with_pdf=Settings().archive_pdf,
        archive_versions=archive_versions,
    )


@task(name="render-index", **IO_TASK)
def index_task(
    data_root: str, deals: dict[str, DealTerms], metrics: MetricsBook, generated_at: datetime
) -> Path:
    return render_report_index(Catalog(Path(data_root)), deals, metrics, generated_at=generated_at)


# -- the run ------------------------------------------------------------------------------
def new_run_id(end: date) -> str:
    """Unique per execution: the business date and the Prefect flow run's id (or a UUID)."""
    flow_run_id = current_flow_run.get_id()
    unique = uuid.UUID(flow_run_id).hex if flow_run_id else uuid.uuid4().hex
    return f"{end:%Y%m%d}-{unique[:12]}"


def _process(request: RunRequest) -> RunSummary:
    settings = load_settings(data_root=Path(request.data_root))
    check_data_root(settings)
    catalog = Catalog(Path(request.data_root))
    run_id = new_run_id(request.end)
    holder = {
        "run_id": run_id,
        "flow_run": current_flow_run.get_name() or "",
        "range": f"{request.start} .. {request.end}",
    }
    with (
        exclusive_lock(
            catalog.root,
            holder_file=catalog.data_root_lock,
            timeout=settings.lock_timeout_seconds,
            holder=holder,
        ),
        _run_context(run_id, f"{request.start}..{request.end}", request.pool),
    ):
        summary = _run_locked(request, catalog, run_id, settings)
        if summary.failed:
            summary.failure_summary = str(catalog.failure_summary(summary.run_id))
            _alert_failure(catalog, settings, summary)
            raise RunFailedError(summary)
        _keep_snapshot(catalog, run_id, settings.snapshots_kept)
    return summary


def _alert_failure(catalog: Catalog, settings: Settings, summary: RunSummary) -> None:
    kind: Literal["failed", "missing_delivery"] = "missing_delivery" if summary.stop else "failed"
    title = f"abs-pipeline {kind.replace('_', ' ')}: run {summary.run_id}"
    body = "\n".join([summary.stop or "", *summary.errors]).strip()
    send_alert(catalog, settings.alert_urls, kind=kind, title=title, body=body)


def _run_locked(
    request: RunRequest, catalog: Catalog, run_id: str, settings: Settings
) -> RunSummary:
    started = datetime.now(UTC)
    logger = get_run_logger()
    listener = _progress.get()
    timings: dict[str, float] = {}
    version = code_version()
    book = load_deals(catalog)
    state = StateBook.load(catalog)
    data_root = request.data_root
    summary = RunSummary(run_id=run_id, start=request.start, end=request.end, pool=request.pool)
    summary.errors += book.errors
    summary.input_rejected = bool(book.errors)
    for warning in book.warnings:
        logger.warning(warning)
    if request.pool is not None and request.pool not in book.deals:
        summary.errors.append(
            f"unknown pool {request.pool!r}; deals: {', '.join(sorted(book.deals)) or 'none'}"
        )
        return summary

    # -- plan --
    mark = time.perf_counter()
    calendar = strictest(d.delivery_calendar for d in book.deals.values())
    plan_end = plan_end_for(state, request.end)
    required = required_for(catalog, calendar, plan_end)
    empty = frozenset(state.empty_days)
    groups = split_chunks(days_between(request.start, plan_end), "month")
    futures = [scan_task.submit(data_root, days, required, empty) for days in groups]
    scan: dict[date, DayScan] = {}
    for future in futures:
        scan.update(future.result())
    the_plan = plan(state, scan, plan_options(request))
    timings["plan"] = time.perf_counter() - mark
    summary.fingerprint = the_plan.fingerprint
    for line in the_plan.describe():
        logger.info(line)
    if listener:
        listener.planned(len(the_plan.chunks), sum(c.files for c in the_plan.to_process))
    summary.declared_empty = {
        d: state.empty_days[d].reason for d in the_plan.declared_empty if d in state.empty_days
    }

    stage = "ingest"
    metrics_book: MetricsBook | None = None
    try:
        ingested = IngestOutcome()
        mark = time.perf_counter()
        chain = state.chain_before(request.start)
        diverted = False
        for chunk in the_plan.chunks:
            keys = list(chunk.keys)
            if diverted:
                # An earlier chunk failed: later keys carry its failed marker.
                keys = rekey(chunk.days, scan, version, chain)
            if chunk.action == "skip" and not diverted:
                report = ChunkReport(chunk.start, chunk.end, "skipped", chunk.files)
            else:
                report, outcome = _ingest_chunk(catalog, run_id, chunk)
                ingested.merge(outcome)
                failed = report.outcome == "failed"
                now = datetime.now(UTC)
                for day, key in zip(chunk.days, keys, strict=True):
                    state.days[day] = DayState(
                        key=key,
                        files=scan[day].files,
                        status="failed" if failed else "ingested",
                        run_id=run_id,
                        error=report.error,
                        processed_at=now,
                    )
                state.save(catalog)
                diverted = diverted or failed
            chain = chain_value(keys[-1], failed=report.outcome == "failed")
            summary.chunks.append(report)
            logger.info(
                "chunk %s: files=%d rows=%d seconds=%.2f",
                report.describe(),
                report.files,
                report.rows,
                report.seconds,
            )
            if listener:
                listener.chunk_done(report)
        timings["ingest"] = time.perf_counter() - mark
        _count_rows(summary, ingested)
        for failed_chunk in summary.failed_chunks:
            summary.errors.append(f"chunk {failed_chunk.describe()}")
            summary.input_rejected = summary.input_rejected or "refused" in (
                failed_chunk.error or ""
            )

        if the_plan.stop is not None:
            # Missing means stop, not zero: nothing from the stop date on, nothing published.
            stop = the_plan.stop
            summary.stop = f"delivery {stop.status} for {stop.day}" + (
                f" ({stop.reason})" if stop.reason else ""
            )
            summary.blocked = [f"every period: {summary.stop}"]
            logger.error("stopped: %s", summary.stop)
        elif summary.failed_chunks:
            # The gate: a failed chunk leaves its dates unaccepted, and a run that could not
            # accept its input publishes nothing (reports/ stays as it was).
            summary.blocked = [f"every period: {len(summary.failed_chunks)} chunk(s) failed"]
        else:
            stage = "downstream"
            metrics_book = _downstream_and_publish(
                request,
                book=book,
                catalog=catalog,
                state=state,
                the_plan=the_plan,
                summary=summary,
                ingested=ingested,
                version=version,
                required=required,
                timings=timings,
                listener=listener,
            )
        stage = "manifest"
        if not summary.failed and not summary.up_to_date:
            state.last_success_at = datetime.now(UTC)
            state.last_success_run_id = run_id
        state.save(catalog)
        summary.manifest = str(
            _write_manifest(
                catalog,
                request,
                summary=summary,
                ingested=ingested,
                version=version,
                timings=timings,
                started=started,
            )
        )
    except Exception as exc:
        # Whatever stopped the run, the summary so far goes to the failure hook.
        summary.errors.append(f"{stage} stopped: {type(exc).__name__}: {exc}")
        logger.exception("run %s stopped in %s", run_id, stage)
        return summary
    _publish_artifacts(summary, metrics_book)
    logger.info(
        "run %s done: %d versions published, %d restatements",
        run_id,
        len(summary.published),
        len(summary.restatements),
    )
    return summary


def _ingest_chunk(
    catalog: Catalog, run_id: str, chunk: ChunkPlan
) -> tuple[ChunkReport, IngestOutcome]:
    """Ingest one chunk; on failure its previous staged partitions are put back.

    A failed chunk never leaves an empty or partial partition: the partitions it may
    replace are hard-linked aside first (writes replace files by rename, so the links
    keep the previous bytes) and restored when the ingest fails.
    """
    days = list(chunk.days)
    began = time.perf_counter()
    backup = catalog.chunk_backup(run_id)
    kept = _link_aside(catalog, days, backup)
    try:
        future = ingest_task.submit(str(catalog.root), days)
        future.wait()
        result = future.result(raise_on_failure=False)
        seconds = time.perf_counter() - began
        if isinstance(result, IngestOutcome):
            rows = sum(f.rows_read for f in result.files)
            return ChunkReport(
                chunk.start, chunk.end, "processed", chunk.files, seconds, None, rows
            ), result
        _restore(catalog, days, backup, kept)
        if isinstance(result, ChunkRejectedError):
            error = f"input refused: {result.message}"
            outcome = result.outcome
        else:
            error = f"{type(result).__name__}: {result}"
            outcome = IngestOutcome()
        return ChunkReport(chunk.start, chunk.end, "failed", chunk.files, seconds, error), outcome
    finally:
        shutil.rmtree(backup, ignore_errors=True)


def _link_aside(catalog: Catalog, days: Sequence[date], backup: Path) -> dict[Path, Path]:
    kept: dict[Path, Path] = {}
    for dataset in LANDING_DATASETS:
        for day in days:
            path = catalog.staged_partition(dataset, day)
            if path.is_file():
                target = backup / path.relative_to(catalog.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
                kept[path] = target
    return kept


def _restore(
    catalog: Catalog, days: Sequence[date], backup: Path, kept: Mapping[Path, Path]
) -> None:
    for dataset in LANDING_DATASETS:
        for day in days:
            path = catalog.staged_partition(dataset, day)
            if path in kept:
                os.replace(kept[path], path)
            else:
                path.unlink(missing_ok=True)


def _downstream_and_publish(
    request: RunRequest,
    *,
    book: DealBook,
    catalog: Catalog,
    state: StateBook,
    the_plan: Plan,
    summary: RunSummary,
    ingested: IngestOutcome,
    version: str,
    required: frozenset[date],
    timings: dict[str, float],
    listener: ProgressListener | None,
) -> MetricsBook | None:
    """Curate, snapshots and metrics from everything staged; the gate; publication.

    Returns:
        Every pool period's metrics as published (None when the outputs were up to date).
    """
    deals = book.deals
    downstream_key = _downstream_key(book, version, the_plan.fingerprint)
    changed_from = the_plan.changed_from
    if not (
        request.force
        or changed_from
        or state.downstream_key != downstream_key
        or not catalog.index_html.is_file()
    ):
        summary.up_to_date = True
        summary.index = str(catalog.index_html.resolve())
        return None
    if request.force or state.downstream_key != downstream_key or changed_from is None:
        report_from = request.start
    else:
        report_from = changed_from
    data_root = request.data_root
    staged = [d for name in LANDING_DATASETS for d in catalog.staged_dates(name)]
    horizon = max([the_plan.plan_end, *staged])

    def step(name: str) -> float:
        if listener:
            listener.stage(name)
        return time.perf_counter()

    mark = step("curate")
    curated = curate_task(data_root, horizon)
    timings["curate"] = time.perf_counter() - mark
    decision = GateDecision(())
    periods: list[PoolPeriod] = []
    if curated.first_origination is not None:
        mark = step("snapshots")
        as_of = snapshot_dates(curated.first_origination, horizon, deals.values())
        snapshots_task(data_root, deals, as_of, recompute=request.force)
        timings["snapshots"] = time.perf_counter() - mark
        mark = step("metrics")
        candidates = [d for d in month_ends_between(report_from, horizon) if d >= report_from]
        decision = gate(
            state,
            candidates,
            first_delivery=first_delivery(catalog),
            required=required,
            stop=None,
        )
        summary.blocked = decision.blocked_lines()
        periods = metrics_task(
            data_root, deals, list(decision.publish), request.pool, request.force
        ).periods
        timings["metrics"] = time.perf_counter() - mark
    summary.periods = [f"{p.pool_id}/{p.period}" for p in periods]
    summary.triggers_breached = _breached(periods)

    mark = step("publish")
    metrics = load_metrics_book(catalog, periods)
    changed = _new_versions(catalog, periods)
    summary.restatements = [r for _, _, restated in changed for r in restated]
    _data_quality(catalog, summary, ingested, summary.restatements, state)
    # Reports carry the business date, not the wall clock, so re-runs are byte-identical,
    # and the input fingerprint as their provenance, so equal inputs give equal reports.
    generated_at = datetime.combine(horizon, clock(0), tzinfo=SHANGHAI)
    provenance = f"{the_plan.fingerprint[:12]}" if the_plan.fingerprint else summary.run_id
    by_pool: dict[str, list[PoolPeriod]] = {}
    for item, _, _ in changed:
        by_pool.setdefault(item.pool_id, []).append(item)
    versions = {(item.pool_id, item.period): number for item, number, _ in changed}
    restated_counts = {
        (item.pool_id, item.period): len(figures) for item, number, figures in changed if number > 1
    }
    # The published versions first: the latest copies take their archive PDFs as written.
    frozen = [
        render_task.submit(
            data_root, book, metrics, items, generated_at, provenance, versions, restated_counts
        )
        for _, items in sorted(by_pool.items())
    ]
    frozen_reports = [p for future in frozen for p in future.result()]
    latest = [
        render_task.submit(
            data_root,
            book,
            metrics,
            items,
            generated_at,
            provenance,
            None,
            restated_counts,
            versions,
        )
        for _, items in sorted(by_pool.items())
    ]
    latest_reports = [p for future in latest for p in future.result()]
    summary.reports = [str(p) for p in [*latest_reports, *frozen_reports]]
    published_at = datetime.now(UTC)
    for item, number, restated in changed:
        _freeze_version(
            catalog,
            item,
            number=number,
            restated=restated,
            run_id=summary.run_id,
            published_at=published_at,
        )
        state.published.setdefault(f"{item.pool_id}/{item.period}", []).append(
            PublishedVersion(
                version=number,
                run_id=summary.run_id,
                metrics_sha256=item.metrics_sha256,
                published_at=published_at,
                restated=len(restated),
            )
        )
        summary.published.append(f"{item.pool_id}/{item.period}/v{number}")
    summary.index = str(index_task(data_root, deals, metrics, generated_at).resolve())
    timings["publish"] = time.perf_counter() - mark
    if request.pool is None and not summary.failed_chunks:
        now = datetime.now(UTC)
        for day, recorded in list(state.days.items()):
            if recorded.status == "ingested":
                state.days[day] = recorded.model_copy(
                    update={"status": "complete", "run_id": summary.run_id, "processed_at": now}
                )
        state.downstream_key = downstream_key
        state.downstream_run_id = summary.run_id
    return metrics


def _new_versions(
    catalog: Catalog, periods: Sequence[PoolPeriod]
) -> list[tuple[PoolPeriod, int, list[Restatement]]]:
    """Periods whose metrics differ from their latest published version (or have none):
    each with the version number it gets and its restated figures in report order."""
    changed: list[tuple[PoolPeriod, int, list[Restatement]]] = []
    for item in periods:
        text = item.metrics_text
        versions = catalog.report_versions(item.pool_id, item.period)
        if not versions:
            changed.append((item, 1, []))
            continue
        number = versions[-1][0]
        before = catalog.version_metrics_json(item.pool_id, item.period, number).read_text(
            encoding="utf-8"
        )
        if before == text:
            continue
        restated = restatements(item.pool_id, item.period, json.loads(before), item.metrics)
        changed.append((item, number + 1, restated))
    return changed


def _freeze_version(
    catalog: Catalog,
    item: PoolPeriod,
    *,
    number: int,
    restated: Sequence[Restatement],
    run_id: str,
    published_at: datetime,
) -> None:
    """Complete a published version: its metrics.json and, from v2 on, the restatement note."""
    catalog.write_text(
        item.metrics_text,
        catalog.version_metrics_json(item.pool_id, item.period, number),
    )
    if number > 1:
        note = {
            "pool_id": item.pool_id,
            "period": item.period,
            "version": number,
            "replaces": number - 1,
            "run_id": run_id,
            "restated_at": published_at.isoformat(),
            "changes": [{"field": r.field, "old": r.old, "new": r.new} for r in restated],
        }
        catalog.write_text(
            json.dumps(note, indent=2, ensure_ascii=False) + "\n",
            catalog.restatement_note(item.pool_id, item.period, number),
        )


def _data_quality(
    catalog: Catalog,
    summary: RunSummary,
    ingested: IngestOutcome,
    restated: Sequence[Restatement],
    state: StateBook,
) -> None:
    """The run's data-quality report, written once the restatements are known.

    It covers whole periods: from the first day of the first month this run ingested to
    its last date, the files of dates an earlier run ingested (a resumed backfill) are
    taken from that run's manifest.
    """
    if not ingested.dates:
        return
    ingested = _whole_periods(catalog, ingested, state)
    # Dates declared empty are listed with the operator's reason (not read: nothing came).
    ingested.ignored.extend(
        f"{catalog.landing_dir(day).relative_to(catalog.root).as_posix()}: declared empty "
        f"({reason})"
        for day, reason in sorted(summary.declared_empty.items())
    )
    # Named by what was read (the business date and the input fingerprint), not by the
    # execution: disclosures link it, and equal inputs must give byte-identical reports.
    report_id = f"{summary.end:%Y%m%d}-{summary.fingerprint[:12]}"
    quality = write_data_quality_report(
        catalog,
        report_id,
        ingested,
        start=min(ingested.dates),
        end=max(ingested.dates),
        generated_at=datetime.combine(max(ingested.dates), clock(0), tzinfo=SHANGHAI),
        restatements=[(r.pool_id, r.period, r.field, _text(r.old), _text(r.new)) for r in restated],
    )
    summary.data_quality = str(quality.report)
    summary.data_quality_notices = quality.notices


_RECORDED_FILE_FIELDS = (
    "dataset",
    "business_date",
    "path",
    "sha256",
    "rows_read",
    "rows_accepted",
    "rows_quarantined",
    "error",
)
"""What a run manifest keeps of each input file, besides its column lists."""


def _input_record(f: FileOutcome) -> InputRecord:
    """A file's outcome as the run manifest records it."""
    return InputRecord(
        **{name: getattr(f, name) for name in _RECORDED_FILE_FIELDS},
        missing_columns=list(f.missing_columns),
        extra_columns=list(f.extra_columns),
        rejected=f.rejected is not None,
    )


def _file_outcome(record: InputRecord) -> FileOutcome:
    """A recorded input file back as an outcome (for a report covering earlier runs)."""
    return FileOutcome(
        **record.model_dump(include=set(_RECORDED_FILE_FIELDS)),
        missing_columns=tuple(record.missing_columns),
        extra_columns=tuple(record.extra_columns),
    )


def _whole_periods(catalog: Catalog, ingested: IngestOutcome, state: StateBook) -> IngestOutcome:
    covered = IngestOutcome()
    covered.merge(ingested)
    done = set(ingested.dates)
    manifests: dict[str, RunManifest | None] = {}
    for day in days_between(min(done).replace(day=1), max(done)):
        recorded = state.days.get(day)
        if day in done or recorded is None:
            continue
        if recorded.run_id not in manifests:
            path = catalog.run_manifest(recorded.run_id)
            manifests[recorded.run_id] = RunManifest.read(path) if path.is_file() else None
        manifest = manifests[recorded.run_id]
        if manifest is None:
            continue
        covered.files.extend(_file_outcome(f) for f in manifest.inputs if f.business_date == day)
        covered.dates.append(day)
    covered.files.sort(key=lambda f: (f.business_date, f.dataset, f.path))
    covered.dates.sort()
    return covered


def _text(value: object) -> str:
    return "null" if value is None else str(value)


def _breached(periods: Sequence[PoolPeriod]) -> list[str]:
    breached = []
    for item in periods:
        for trigger in item.metrics.get("triggers") or []:
            if trigger.get("breached"):
                breached.append(f"{item.pool_id} {item.period} {trigger.get('name')}")
    return breached


def _count_rows(summary: RunSummary, ingested: IngestOutcome) -> None:
    for f in ingested.files:
        summary.rows_read += f.rows_read
        summary.rows_accepted += f.rows_accepted
        summary.rows_quarantined += f.rows_quarantined


def _downstream_key(book: DealBook, version: str, chain: str) -> str:
    """What the curated data onward was computed from: the inputs' chain, deals, code."""
    import hashlib  # noqa: PLC0415 - only here

    digest = hashlib.sha256(f"{version}|{chain}".encode())
    for name, sha256 in sorted(book.sources.values()):
        digest.update(f"|{name.removeprefix('deals/')}|{sha256}".encode())
    return digest.hexdigest()


# -- snapshots for rollback --------------------------------------------------------------------
def _keep_snapshot(catalog: Catalog, run_id: str, kept: int) -> None:
    """Hard-link the data outputs as this successful run left them (cheap: writes replace
    files by rename, so a link keeps its bytes), and drop the oldest beyond ``kept``."""
    target = catalog.output_snapshot(run_id)
    for folder in SNAPSHOT_FOLDERS:
        source = catalog.data_folder(folder)
        if source.is_dir():
            shutil.copytree(
                source,
                catalog.output_snapshot_folder(run_id, folder),
                copy_function=os.link,
                ignore=shutil.ignore_patterns(
                    "data-root.lock", "alerts.jsonl", ".chunk-backup-*", ".*.tmp"
                ),
            )
    target.mkdir(parents=True, exist_ok=True)
    snapshots = catalog.output_snapshots()
    for old in snapshots[: max(len(snapshots) - kept, 0)]:
        shutil.rmtree(old, ignore_errors=True)


# -- manifest and artifacts -------------------------------------------------------------
def _output(path: Path, root: Path, sha256: str) -> OutputRecord:
    rows = pq.read_metadata(path).num_rows if path.suffix == ".parquet" else None
    return OutputRecord(path=path.relative_to(root).as_posix(), sha256=sha256, rows=rows)


def _write_manifest(
    catalog: Catalog,
    request: RunRequest,
    *,
    summary: RunSummary,
    ingested: IngestOutcome,
    version: str,
    timings: dict[str, float],
    started: datetime,
) -> Path:
    root = catalog.root
    outputs = (
        []
        if summary.up_to_date
        else [
            *catalog.data_outputs(),
            *(Path(s) for s in summary.reports),
        ]
    )
    # Outputs the run did not rewrite keep their recorded sha256 (flows.state.HashBook).
    digests = cached_sha256(catalog, [p for p in outputs if p.is_file()])
    outcome: Literal["ok", "failed", "stopped"] = (
        "stopped" if summary.stop else "failed" if summary.failed else "ok"
    )
    manifest = RunManifest(
        run_id=summary.run_id,
        input_fingerprint=summary.fingerprint,
        flow_run_id=current_flow_run.get_id(),
        started_at=started,
        finished_at=datetime.now(UTC),
        parameters={
            "start": summary.start.isoformat(),
            "end": summary.end.isoformat(),
            "pool": request.pool,
            "force": request.force,
            "chunk": request.chunk,
        },
        code_version=version,
        outcome=outcome,
        contract_versions=dict(sorted(ingested.contract_versions.items())),
        chunks=[ChunkRecord.model_validate(c, from_attributes=True) for c in summary.chunks],
        declared_empty=summary.declared_empty,
        blocked=summary.blocked,
        inputs=[_input_record(f) for f in ingested.files],
        rules=[
            RuleRecord(dataset=d, rule_id=r, severity=s, rows=n)
            for (d, r, s), n in sorted(ingested.rule_counts.items())
        ],
        periods_reported=summary.periods,
        published=summary.published,
        triggers_breached=summary.triggers_breached,
        restatements=[
            RestatementRecord(
                pool_id=r.pool_id, period=r.period, field=r.field, old=r.old, new=r.new
            )
            for r in summary.restatements
        ],
        up_to_date=summary.up_to_date,
        data_quality=(
            Path(summary.data_quality).relative_to(root).as_posix()
            if summary.data_quality
            else None
        ),
        rejected_files=summary.data_quality_notices,
        outputs=[_output(p, root, digest) for p, digest in digests.items()],
        errors=[*([summary.stop] if summary.stop else []), *summary.errors],
        stage_seconds={k: round(v, 3) for k, v in timings.items()},
    )
    return manifest.write(catalog)


KEY_METRICS = (
    ("opening balance", ("pool", "opening_balance")),
    ("closing balance", ("pool", "closing_balance")),
    ("pool factor", ("pool", "pool_factor")),
    ("CPR", ("performance", "cpr")),
    ("CDR", ("performance", "cdr")),
    ("cumulative default rate", ("performance", "cumulative_default_rate")),
)


def _publish_artifacts(summary: RunSummary, metrics: MetricsBook | None) -> None:
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
        document = metrics.document(pool_id, period) if metrics is not None else None
        if document is None:
            continue
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
    """Write ``runs/<run_id>.failure.json`` beside the run manifest when a run fails.

    Nothing is written when the run never held the data root (a busy lock, a bad
    setting): a run that did not get the lock writes nothing under the data root.
    """
    error = state.result(raise_on_failure=False)
    if isinstance(error, DataRootBusyError) or (
        isinstance(error, PipelineError) and not isinstance(error, RunFailedError)
    ):
        return
    parameters = dict(flow_run.parameters)
    catalog = Catalog(Path(str(parameters.get("data_root", "data"))))
    if not catalog.root.is_dir():
        return
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
            "exit_code": summary.exit_code,
            "stop": summary.stop,
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
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _pipeline_flow(name: str) -> Callable[[Callable[_P, _R]], Flow[_P, _R]]:
    """The decorator of a processing flow: a failed or crashed run writes its failure summary."""
    return flow(
        name=name,
        log_prints=False,
        timeout_seconds=FLOW_TIMEOUT_SECONDS,
        on_failure=[write_failure_summary],
        on_crashed=[write_failure_summary],
    )


@_pipeline_flow("abs-pipeline-backfill")
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
    disclosures to one pool. A date without a complete delivery stops the run there.
    """
    return _process(RunRequest(start, end, data_root, pool, force, chunk))


@_pipeline_flow("abs-pipeline-nightly")
def run_flow(
    business_date: date | None = None,
    data_root: str = "data",
    pool: str | None = None,
    force: bool = False,
) -> RunSummary:
    """Process one business date (default: yesterday in the business timezone).

    On a month-end, the period's disclosures are published when the gate allows.
    """
    day = business_date or yesterday(Settings().timezone)
    return _process(RunRequest(day, day, data_root, pool, force, "day"))


@flow(name="abs-pipeline-late-check", log_prints=False, timeout_seconds=300)
def late_check_flow(data_root: str = "data", now: datetime | None = None) -> bool:
    """Alert when yesterday's business date has not succeeded by the late hour.

    Returns:
        Whether the nightly is late (an alert was sent).
    """
    settings = load_settings(data_root=Path(data_root))
    return check_late(Catalog(Path(data_root)), settings, now=now)


def check_late(catalog: Catalog, settings: Settings, *, now: datetime | None = None) -> bool:
    """Whether yesterday (in the business timezone) is unprocessed past ``late_hour``;
    alerts when it is."""
    zone = ZoneInfo(settings.timezone)
    instant = (now or datetime.now(UTC)).astimezone(zone)
    day = yesterday(settings.timezone, instant)
    if instant.hour < settings.late_hour:
        return False
    recorded = StateBook.load(catalog).days.get(day)
    if recorded is not None and recorded.status == "complete":
        return False
    what = "not processed" if recorded is None else recorded.status
    send_alert(
        catalog,
        settings.alert_urls,
        kind="late",
        title=f"abs-pipeline nightly late: {day} {what} at {instant:%H:%M} {settings.timezone}",
        body=f"No successful run for business date {day} by {settings.late_hour:02d}:00.",
        now=now,
    )
    return True
