"""The Prefect flows: the nightly run of one business date and the backfill of a range.

    landing ─ingest─▶ staged ─curate─▶ curated ─engine─▶ loan_snapshots
        ─metrics─▶ marts + metrics.json ─render─▶ disclosures + index

Tasks take paths and plain values, never frames; the work is in the stage modules
(``flows.ingest``, ``flows.curate``, ``flows.snapshots``, ``flows.metrics``, ``flows.render``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.catalog import Catalog, sha256_file
from flows.curate import CurateOutcome, curate
from flows.deals import load_deals
from flows.ingest import IngestOutcome, ingest_dates
from flows.metrics import PoolPeriod, compute_pool_metrics
from flows.periods import month_ends_between
from flows.render import render_disclosures, render_report_index
from flows.snapshots import build_loan_snapshots, snapshot_dates
from flows.version import code_version

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class RunSummary:
    """What a run did, for the CLI and the run manifest."""

    run_id: str
    start: date
    end: date
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reports: list[str] = field(default_factory=list)
    index: str | None = None
    errors: list[str] = field(default_factory=list)
    manifest: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def describe(self) -> str:
        lines = [
            f"run {self.run_id}: business dates {self.start} .. {self.end}",
            f"  rows read {self.rows_read}, accepted {self.rows_accepted}, "
            f"quarantined {self.rows_quarantined}",
            f"  disclosures written: {len(self.reports)}",
        ]
        lines += [f"  error: {e}" for e in self.errors]
        if self.manifest:
            lines.append(f"  run manifest: {self.manifest}")
        if self.index:
            lines.append(f"Disclosures: {self.index}")
        return "\n".join(lines)


def month_chunks(start: date, end: date) -> list[list[date]]:
    """Calendar days of [start, end] grouped by month."""
    chunks: list[list[date]] = []
    day = start
    while day <= end:
        if not chunks or (chunks[-1][0].year, chunks[-1][0].month) != (day.year, day.month):
            chunks.append([])
        chunks[-1].append(day)
        day += timedelta(days=1)
    return chunks


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(data_root: str, days: list[date]) -> IngestOutcome:
    outcome = ingest_dates(Catalog(Path(data_root)), days)
    get_run_logger().info("ingested %s .. %s: %d files", days[0], days[-1], len(outcome.files))
    return outcome


@task(name="curate", cache_policy=NO_CACHE)
def curate_task(data_root: str, until: date) -> CurateOutcome:
    return curate(Catalog(Path(data_root)), until)


@task(name="loan-snapshots", cache_policy=NO_CACHE)
def snapshots_task(data_root: str, as_of_dates: list[date]) -> list[date]:
    catalog = Catalog(Path(data_root))
    deals = load_deals(catalog).deals
    return build_loan_snapshots(catalog, as_of_dates, deals)


@task(name="pool-metrics", cache_policy=NO_CACHE)
def metrics_task(data_root: str, period_ends: list[date]) -> list[PoolPeriod]:
    catalog = Catalog(Path(data_root))
    deals = load_deals(catalog).deals
    return compute_pool_metrics(catalog, deals, period_ends)


@task(name="render", cache_policy=NO_CACHE)
def render_task(
    data_root: str, periods: list[PoolPeriod], generated_at: datetime, run_id: str
) -> tuple[list[Path], Path]:
    catalog = Catalog(Path(data_root))
    deals = load_deals(catalog).deals
    written = render_disclosures(catalog, deals, periods, generated_at=generated_at, run_id=run_id)
    return written, render_report_index(catalog, deals, generated_at=generated_at)


def _process(start: date, end: date, data_root: str, force: bool) -> RunSummary:
    logger = get_run_logger()
    catalog = Catalog(Path(data_root))
    timings: dict[str, float] = {}
    began = time.perf_counter()

    ingested = IngestOutcome()
    for days in month_chunks(start, end):
        ingested.merge(ingest_task(data_root, days))
    timings["ingest"] = time.perf_counter() - began

    book = load_deals(catalog)
    version = code_version()
    run_id = _run_id(catalog, start, end, version)
    summary = RunSummary(run_id=run_id, start=start, end=end, errors=list(book.errors))
    for f in ingested.files:
        summary.rows_read += f.rows_read
        summary.rows_accepted += f.rows_accepted
        summary.rows_quarantined += f.rows_quarantined
        if f.error:
            summary.errors.append(f.error)

    mark = time.perf_counter()
    curated = curate_task(data_root, end)
    timings["curate"] = time.perf_counter() - mark
    periods: list[PoolPeriod] = []
    if curated.first_origination is not None:
        mark = time.perf_counter()
        as_of = snapshot_dates(curated.first_origination, end, book.deals.values())
        snapshots_task(data_root, as_of)
        timings["snapshots"] = time.perf_counter() - mark
        mark = time.perf_counter()
        period_ends = [d for d in month_ends_between(start, end) if d >= start]
        periods = metrics_task(data_root, period_ends)
        timings["metrics"] = time.perf_counter() - mark

    mark = time.perf_counter()
    # Reports carry the business date, not the wall clock, so re-runs are byte-identical.
    generated_at = datetime.combine(end, clock(0), tzinfo=SHANGHAI)
    written, index_path = render_task(data_root, periods, generated_at, run_id)
    timings["render"] = time.perf_counter() - mark
    summary.reports = [str(p) for p in written]
    summary.index = str(index_path.resolve())
    summary.manifest = str(
        _write_manifest(catalog, summary, ingested, version, timings, force=force)
    )
    logger.info("run %s done: %d disclosures", run_id, len(written))
    return summary


def _run_id(catalog: Catalog, start: date, end: date, version: str) -> str:
    """A run id derived from what the run reads, so identical re-runs share it."""
    digest = hashlib.sha256(f"{start}|{end}|{version}".encode())
    for name in ("loans", "repayments", "pool_assets"):
        for path in catalog.staged_partitions(name, end):
            digest.update(sha256_file(path).encode())
    for path in catalog.deal_files():
        digest.update(sha256_file(path).encode())
    return f"{end:%Y%m%d}-{digest.hexdigest()[:12]}"


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
    summary: RunSummary,
    ingested: IngestOutcome,
    version: str,
    timings: dict[str, float],
    *,
    force: bool,
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
            "force": force,
        },
        "code_version": version,
        "contract_versions": dict(sorted(ingested.contract_versions.items())),
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
        "outputs": [_output(p, root) for p in outputs if p.is_file()],
        "errors": summary.errors,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    path = catalog.run_manifest(summary.run_id)
    catalog.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", path)
    return path


@flow(name="abs-pipeline-backfill", log_prints=False)
def backfill_flow(
    start: date, end: date, data_root: str = "data", force: bool = False
) -> RunSummary:
    """Process every business date of [start, end], a month of deliveries at a time."""
    return _process(start, end, data_root, force)


@flow(name="abs-pipeline-nightly", log_prints=False)
def run_flow(business_date: date, data_root: str = "data") -> RunSummary:
    """Process one business date; on a month-end, the period's disclosures are rendered."""
    return _process(business_date, business_date, data_root, force=False)
