"""Orchestration overhead of a backfill of 365 business dates on a small tape.

The same work is done twice on fresh copies of one landing zone:

1. *plain*: the stage functions called directly, chunk by chunk (a month each),
   with no Prefect at all;
2. *flow*: ``backfill_flow`` over the same range, with its fingerprints, chunk
   state, lock, manifest, artifacts and Prefect task runs.

The orchestration overhead is the difference of the two wall times. The Prefect
temporary server's start-up is measured apart (a trivial flow run first), and an
unchanged re-run (every chunk skipped) is timed too. Target: overhead under 30 s,
and one flow run for the whole range (never one per day).

    .venv/bin/python benchmarks/orchestration.py [--loans 400] [--days 365]
"""

# Prefect reads PREFECT_HOME at import, so its imports follow the environment setup.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

TARGET_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=400)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="abs-orchestration-"))
    # Prefect reads these at import: a private home, offline, quiet.
    os.environ["PREFECT_HOME"] = str(work / ".prefect")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

    from flows.generator import generate_landing

    start = date(2024, 1, 1)
    end = start + timedelta(days=args.days - 1)
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    landing = work / "tape" / "landing"
    generate_landing(landing, loans=args.loans, start="2024-01", months=months, seed=args.seed)
    deliveries = sum(1 for p in landing.iterdir() if p.name[:1].isdigit())
    print(f"tape: {args.loans} loans, {deliveries} delivery dates; range {start} .. {end}")

    plain_root, flow_root, warm_root = work / "plain", work / "flow", work / "warm"
    for root in (plain_root, flow_root, warm_root):
        shutil.copytree(landing, root / "landing")
    # One month through every stage first, so neither timing pays the first imports
    # (Great Expectations, Polars) and cold file caches.
    _plain(warm_root, start, start + timedelta(days=30))

    began = time.perf_counter()
    _plain(plain_root, start, end)
    plain = time.perf_counter() - began
    print(f"plain stage calls:            {plain:7.1f} s")

    from prefect import flow

    @flow(name="warm-up")
    def warm_up() -> None:
        return None

    began = time.perf_counter()
    warm_up()
    server = time.perf_counter() - began
    print(f"Prefect temporary server up:  {server:7.1f} s")

    from flows.pipeline import backfill_flow

    began = time.perf_counter()
    state = backfill_flow(start=start, end=end, data_root=str(flow_root), return_state=True)
    flowed = time.perf_counter() - began
    summary = state.result()
    print(f"backfill flow:                {flowed:7.1f} s  ({len(summary.chunks)} chunks)")

    began = time.perf_counter()
    again = backfill_flow(start=start, end=end, data_root=str(flow_root))
    rerun = time.perf_counter() - began
    skipped = sum(1 for c in again.chunks if c.outcome == "skipped")
    print(f"unchanged re-run:             {rerun:7.1f} s  ({skipped} chunks skipped)")

    flow_runs, task_runs = _run_counts(state.state_details.flow_run_id)
    overhead = flowed - plain
    print(
        f"flow runs: {flow_runs} (warm-up, backfill, re-run); "
        f"task runs of the backfill: {task_runs}"
    )
    print(
        f"orchestration overhead: {overhead:.1f} s for {args.days} business dates "
        f"({overhead + server:.1f} s with the server start-up); target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if overhead + server < TARGET_SECONDS else 'NOT met'}"
    )
    shutil.rmtree(work, ignore_errors=True)


def _plain(root: Path, start: date, end: date) -> None:
    """The stages of a backfill called directly, as the flow calls them."""
    from flows.catalog import Catalog
    from flows.curate import curate
    from flows.deals import load_deals
    from flows.ingest import ingest_dates
    from flows.metrics import compute_pool_metrics, load_metrics_book
    from flows.render import render_disclosures, render_report_index
    from flows.snapshots import build_loan_snapshots, snapshot_dates
    from flows.status import days_between, split_chunks
    from transforms.periods import month_ends_between

    catalog = Catalog(root)
    for days in split_chunks(days_between(start, end), "month"):
        ingest_dates(catalog, days)
    deals = load_deals(catalog).deals
    curated = curate(catalog, end)
    if curated.first_origination is None:
        return
    build_loan_snapshots(
        catalog, snapshot_dates(curated.first_origination, end, deals.values()), deals
    )
    periods = compute_pool_metrics(catalog, deals, month_ends_between(start, end))
    generated_at = datetime.combine(end, clock(0), tzinfo=ZoneInfo("Asia/Shanghai"))
    book = load_metrics_book(catalog, periods)
    render_disclosures(catalog, deals, book, periods, generated_at=generated_at, run_id="plain")
    render_report_index(catalog, deals, book, generated_at=generated_at)


def _run_counts(flow_run_id: object) -> tuple[int, int]:
    """All flow runs so far, and the task runs of the backfill's flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200
        )
        return client.count_flow_runs(), len(tasks)


if __name__ == "__main__":
    main()
