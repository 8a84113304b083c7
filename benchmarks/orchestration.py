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

With ``--nightly`` it measures instead what a night costs against what the book
costs, the way production runs: a persistent Prefect server and the served
deployments (``abs-pipeline serve``, each flow run in its own process), a full
backfill of the book up to the day before a chosen business date, then the
nightly deployment for that date. The date is the one of the last month (not a
month-end) with the fewest loans active (a cash or pool event, or a new loan).
It prints both times (the flow run's own, and from trigger to completion), their
ratio (goal <= 5 %) and each stage's seconds and share from the two runs'
manifests. The served runner polls for work every second here; a scheduled
nightly is picked up at its time, so the poll interval is no part of its cost.
A night comes hours after the backfill, not on its heels: the benchmark waits
``--settle`` seconds (default 20) before each night, so that the server has
recorded the backfill's task runs and events, and prints the machine's load
average at each trigger (the machine may be shared). ``--nights N`` runs N
consecutive nights from the chosen date (each its own flow run, as production
runs them) and compares their median with the backfill.

    .venv/bin/python benchmarks/orchestration.py --nightly --loans 20000 --months 6
"""

# Prefect reads PREFECT_HOME at import, so its imports follow the environment setup.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import stop_processes  # noqa: E402 -- after the checkout is on the path

TARGET_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=400)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--nightly", action="store_true", help="a night against a full backfill, served"
    )
    parser.add_argument("--months", type=int, default=6, help="book length with --nightly")
    parser.add_argument(
        "--nights", type=int, default=1, help="consecutive nights measured with --nightly"
    )
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds waited before each night"
    )
    args = parser.parse_args()
    if args.nightly:
        nightly(args.loans, args.months, args.seed, nights=args.nights, settle=args.settle)
        return

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


# -- a night against the book -------------------------------------------------------------
NIGHTLY_GOAL = 0.05
QUIET_SHARE = 0.003
"""The share of the book active on the measured night (issue 16)."""
REPO = Path(__file__).resolve().parents[1]


def nightly(loans: int, months: int, seed: int, *, nights: int = 1, settle: float = 20.0) -> None:
    """Full backfill, then ``nights`` nights, through served deployments on a persistent
    server."""
    import json
    import socket
    import statistics
    import subprocess

    work = Path(tempfile.mkdtemp(prefix="abs-nightly-"))
    root = work / "data"
    from flows.generator import generate_landing

    began = time.perf_counter()
    generate_landing(root / "landing", loans=loans, start="2024-01", months=months, seed=seed)
    print(f"tape: {loans} loans, {months} months ({time.perf_counter() - began:.0f} s to generate)")
    night, _ = _quiet_day(root / "landing", loans)
    first = date(2024, 1, 1)
    dates = [night + timedelta(days=n) for n in range(max(nights, 1))]
    shares = _active_loans(root / "landing", dates)
    for day in dates:
        print(f"night: {day} ({shares[day]} loans active, {shares[day] / loans:.2%} of the book)")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / ".prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        # The served flow runs import this checkout's packages.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    os.environ.update({k: env[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "DO_NOT_TRACK")})
    prefect = [sys.executable, "-m", "prefect"]
    cli = [sys.executable, "-c", "from flows.cli import main; raise SystemExit(main())"]
    started = []
    log = (work / "processes.log").open("wb")
    try:
        started.append(
            subprocess.Popen(
                [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=log, stderr=log,
            )
        )  # fmt: skip
        _wait_for_health(api)
        started.append(
            subprocess.Popen(
                [*cli, "serve", "--data-root", str(root)], env=env, cwd=REPO, stdout=log, stderr=log
            )
        )
        _wait_for_deployments()
        print(f"load average at the backfill's trigger: {_load()}")
        backfill = _run_deployment(
            "abs-pipeline-backfill/backfill",
            {"start": first.isoformat(), "end": (night - timedelta(days=1)).isoformat()},
        )
        measured = []
        for day in dates:
            time.sleep(settle)
            print(f"load average at the trigger of {day}: {_load()}")
            measured.append(
                _run_deployment("abs-pipeline-nightly/nightly", {"business_date": day.isoformat()})
            )
        manifests = sorted((root / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        runs = [json.loads(p.read_text()) for p in manifests if ".failure" not in p.name]
        runs = runs[-1 - len(dates) :]
        print(f"{'':<44}{'flow run':>10}{'in _process':>13}{'trigger..end':>14}")
        labelled = [
            (f"backfill {first} .. {night - timedelta(days=1)}", backfill),
            *((f"nightly {day}", one) for day, one in zip(dates, measured, strict=True)),
        ]
        for (label, (wall, flow_run)), run in zip(labelled, runs, strict=True):
            inside = (
                datetime.fromisoformat(run["finished_at"])
                - datetime.fromisoformat(run["started_at"])
            ).total_seconds()
            print(f"{label:<44}{flow_run:>9.1f}s{inside:>12.1f}s{wall:>13.1f}s")
        middle = sorted(range(len(dates)), key=lambda i: measured[i][1])[(len(dates) - 1) // 2]
        one = measured[middle]
        ratio = one[1] / backfill[1]
        verdict = "met" if ratio <= NIGHTLY_GOAL else "NOT met"
        which = f"the median night, {dates[middle]}" if len(dates) > 1 else "the night"
        print(
            f"night / backfill (flow runs, {which}): {ratio:.1%} "
            f"(goal <= {NIGHTLY_GOAL:.0%}: {verdict}); trigger to end: {one[0] / backfill[0]:.1%}"
        )
        if len(dates) > 1:
            print(
                "median of the nights: flow run "
                f"{statistics.median(m[1] for m in measured):.1f} s, trigger to end "
                f"{statistics.median(m[0] for m in measured):.1f} s"
            )
        stages = [run.get("stage_seconds") or run["timings_seconds"] for run in runs]
        _print_stages(stages[0], stages[1 + middle], backfill[1], one[1])
    finally:
        stop_processes(started)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _active_loans(landing: Path, days: list[date]) -> dict[date, int]:
    """Loans with a delivered row (a new loan, a cash event or a pool event) on each day."""
    import polars as pl

    counted = {}
    for day in days:
        ids = [
            pl.scan_csv(path, infer_schema=False).select("loan_id")
            for path in sorted((landing / day.isoformat()).glob("*.csv*"))
            if path.name.split(".")[0] in ("loans", "repayments", "pool_assets")
        ]
        counted[day] = pl.concat(ids).unique().collect().height if ids else 0
    return counted


def _quiet_day(landing: Path, loans: int) -> tuple[date, int]:
    """The last month's business date (not a month-end) whose share of active loans is
    closest to ``QUIET_SHARE``."""
    days = sorted(date.fromisoformat(p.name) for p in landing.iterdir() if p.name[:1].isdigit())
    last = days[-1]
    candidates = [
        d
        for d in days
        if (d.year, d.month) == (last.year, last.month)
        and (d + timedelta(days=1)).month == d.month
        and d.day > 1
    ]
    counted = _active_loans(landing, candidates)
    # Closest to 0.3 % of the book, with at least one loan active.
    night = min(
        [d for d in counted if counted[d] > 0] or list(counted),
        key=lambda d: (abs(counted[d] - QUIET_SHARE * loans), d),
    )
    return night, counted[night]


def _wait_for_health(api: str) -> None:
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the Prefect server did not start")


def _wait_for_deployments() -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 180
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                client.read_deployment_by_name("abs-pipeline-nightly/nightly")
                client.read_deployment_by_name("abs-pipeline-backfill/backfill")
                return
            except ObjectNotFound:
                time.sleep(0.5)
    raise SystemExit("the deployments were not served")


def _run_deployment(name: str, parameters: dict[str, object]) -> tuple[float, float]:
    """Trigger a served deployment and wait for it: the wall time from trigger to the end,
    and the flow run's own (from its start to its end, as the Prefect server recorded)."""
    from prefect.deployments import run_deployment

    began = time.perf_counter()
    flow_run = run_deployment(name, parameters=parameters, timeout=None, poll_interval=1)
    took = time.perf_counter() - began
    state = flow_run.state  # type: ignore[union-attr]
    if state is None or not state.is_completed():
        raise SystemExit(f"{name}: {state.name if state else 'no state'}")
    start, end = flow_run.start_time, flow_run.end_time  # type: ignore[union-attr]
    return took, (end - start).total_seconds() if start and end else took


def _print_stages(
    backfill: dict[str, float], night: dict[str, float], backfill_wall: float, night_wall: float
) -> None:
    stages = sorted(set(backfill) | set(night), key=lambda s: -backfill.get(s, 0.0))
    print(f"{'stage':<12}{'backfill s':>12}{'share':>8}{'night s':>10}{'share':>8}")
    for stage in stages:
        b, n = backfill.get(stage, 0.0), night.get(stage, 0.0)
        print(f"{stage:<12}{b:>12.1f}{b / backfill_wall:>8.1%}{n:>10.2f}{n / night_wall:>8.1%}")
    rest_b = backfill_wall - sum(backfill.values())
    rest_n = night_wall - sum(night.values())
    print(
        f"{'(outside)':<12}{rest_b:>12.1f}{rest_b / backfill_wall:>8.1%}"
        f"{rest_n:>10.2f}{rest_n / night_wall:>8.1%}"
    )


if __name__ == "__main__":
    main()
