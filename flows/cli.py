"""The ``abs-pipeline`` command line."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.settings import Settings, configure_prefect, yesterday

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 3


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}")
    return text


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abs-pipeline",
        description="Consumer-loan ABS: ingest, validate, compute and disclose.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def data_root(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-root",
            type=Path,
            default=None,
            help="data root (default: $ABS_PIPELINE_DATA_ROOT or ./data)",
        )

    def run_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--pool", default=None, help="restrict metrics and disclosures to a pool")
        sub.add_argument("--force", action="store_true", help="reprocess unchanged chunks too")
        sub.add_argument(
            "--task-runner",
            choices=("threads", "dask"),
            default="threads",
            help="where per-chunk and per-pool tasks run (default: threads in this process)",
        )
        sub.add_argument(
            "--dask-address",
            default=None,
            help="scheduler of an existing Dask cluster (tcp://host:8786); "
            "default: a local cluster of $ABS_PIPELINE_DASK_WORKERS workers",
        )
        data_root(sub)

    gen = commands.add_parser("generate", help="write a synthetic landing zone")
    gen.add_argument("--out", type=Path, required=True, help="landing folder to write")
    gen.add_argument("--loans", type=_positive, default=50_000)
    gen.add_argument("--start", type=_month, required=True, help="first origination month")
    gen.add_argument("--months", type=_positive, default=18)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument(
        "--second-servicer-loans",
        type=int,
        default=0,
        help="also write a second pool of this many loans from another servicer "
        "(a GBK month-end loan tape read through its mapping file)",
    )
    gen.add_argument(
        "--servicer-tape",
        action="store_true",
        help="the main pool's servicer also delivers a month-end loan tape (reconciled)",
    )
    gen.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the landing folder already holds deliveries",
    )

    run = commands.add_parser("run", help="process one business date (the nightly job)")
    run.add_argument("--date", type=_date, default=None, help="default: yesterday in Asia/Shanghai")
    run_options(run)

    back = commands.add_parser("backfill", help="process a range of business dates")
    back.add_argument("--start", type=_date, required=True)
    back.add_argument("--end", type=_date, required=True)
    back.add_argument(
        "--chunk",
        choices=("month", "day"),
        default="month",
        help="business dates ingested together and skipped together (default: month)",
    )
    run_options(back)

    status = commands.add_parser(
        "status", help="processed business dates, their run ids and outcomes"
    )
    status.add_argument("--by-date", action="store_true", help="one line per business date")
    data_root(status)

    serve = commands.add_parser(
        "serve", help="serve the nightly and backfill deployments to a Prefect server"
    )
    data_root(serve)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "data_root", None) is not None:
        settings = settings.model_copy(update={"data_root": args.data_root})
    return settings


def main(argv: list[str] | None = None, *, now: Callable[[], datetime] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        now: The clock that defines "yesterday" for ``run`` without ``--date``
            (default: the wall clock).

    Returns:
        The exit status: 0 done, 1 the run failed, 2 bad usage, 3 the data root is busy.
    """
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    settings = _settings(args)
    if args.command == "status":
        from flows.catalog import Catalog  # noqa: PLC0415 - status needs no Prefect
        from flows.status import status_lines  # noqa: PLC0415

        print("\n".join(status_lines(Catalog(settings.data_root), by_date=args.by_date)))
        return 0
    if args.command == "backfill" and args.end < args.start:
        print("abs-pipeline: --end is before --start", file=sys.stderr)
        return EXIT_USAGE
    configure_prefect(settings)
    # Imported only now: Prefect reads its settings from the environment at import.
    if args.command == "serve":
        return _serve(settings)
    from flows.pipeline import backfill_flow, run_flow  # noqa: PLC0415 - see above

    data_root = str(settings.data_root)
    if args.command == "run":
        day = args.date or yesterday(settings.timezone, now() if now else None)
        chosen: Any = run_flow
        parameters: dict[str, Any] = {"business_date": day}
    else:
        chosen = backfill_flow
        parameters = {"start": args.start, "end": args.end, "chunk": args.chunk}
    parameters |= {"data_root": data_root, "pool": args.pool, "force": args.force}
    progress = args.command == "backfill"
    if args.task_runner == "dask":
        chosen = chosen.with_options(task_runner=_dask_runner(args.dask_address, settings))
        with _shared_prefect_api():
            return _run(chosen, parameters, progress=progress)
    return _run(chosen, parameters, progress=progress)


def _run(chosen: Any, parameters: dict[str, Any], *, progress: bool) -> int:
    from flows.catalog import Catalog  # noqa: PLC0415 - imported with Prefect
    from flows.locking import DataRootBusyError  # noqa: PLC0415
    from flows.pipeline import RunFailedError, RunSummary, reporting_progress  # noqa: PLC0415

    if progress:
        bar = _ProgressBar()
        with bar, reporting_progress(bar):
            state = chosen(**parameters, return_state=True)
    else:
        state = chosen(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunSummary):
        print(result.describe())
        return 0
    if isinstance(result, RunFailedError):
        print(result.summary.describe())
        return EXIT_FAILED
    if isinstance(result, DataRootBusyError):
        print(f"abs-pipeline: {result}", file=sys.stderr)
        return EXIT_BUSY
    failure = Catalog(Path(parameters["data_root"])).failure_summary(
        f"flow-run-{state.state_details.flow_run_id}"
    )
    print(f"abs-pipeline: the run failed: {result}", file=sys.stderr)
    print(f"  failure summary: {failure}", file=sys.stderr)
    return EXIT_FAILED


@contextmanager
def _shared_prefect_api() -> Iterator[None]:
    """One Prefect API for this process and the Dask workers it starts.

    Without a configured server each process would start a temporary one of its
    own, so the flow's server is started here and handed to the workers through
    the environment they inherit.
    """
    from prefect.server.api.server import SubprocessASGIServer  # noqa: PLC0415 - see main
    from prefect.settings import (  # noqa: PLC0415
        PREFECT_API_URL,
        get_current_settings,
        temporary_settings,
    )

    url = get_current_settings().api.url
    if url:
        os.environ.setdefault("PREFECT_API_URL", url)
        yield
        return
    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        del os.environ["PREFECT_API_URL"]
        server.stop()


def _dask_runner(address: str | None, settings: Settings) -> TaskRunner[Any]:
    # Dask's own INFO chatter (scheduler, nanny, worker) would drown the run's output.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    from prefect_dask import DaskTaskRunner  # noqa: PLC0415 - only for --task-runner dask

    runner: TaskRunner[Any]
    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.dask_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": ":0",
            }
        )
    return runner


class _ProgressBar:
    """A progress bar over the chunks of a backfill, then the downstream stages."""

    def __init__(self) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich comes with Prefect
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("planning", total=None)

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.update(self._task, description="done")
        self._progress.stop()

    def planned(self, chunks: int) -> None:
        self._progress.update(self._task, description="chunks", total=chunks, completed=0)

    def chunk_done(self, report: Any) -> None:
        self._progress.update(
            self._task, advance=1, description=f"chunk {report.start:%Y-%m}: {report.outcome}"
        )

    def stage(self, name: str) -> None:
        self._progress.update(self._task, description=name)


def _serve(settings: Settings) -> int:
    from prefect import serve  # noqa: PLC0415 - see main
    from prefect.settings import get_current_settings  # noqa: PLC0415

    from flows.deployments import backfill_deployment, nightly_deployment  # noqa: PLC0415

    if get_current_settings().api.url is None:
        print(
            "abs-pipeline serve needs a Prefect server. Start one on loopback:\n"
            "  PREFECT_HOME=<data-root>/.prefect \\\n"
            "    prefect server start --host 127.0.0.1 --port 4200\n"
            "then, in another shell:\n"
            "  PREFECT_API_URL=http://127.0.0.1:4200/api abs-pipeline serve",
            file=sys.stderr,
        )
        return EXIT_USAGE
    serve(nightly_deployment(settings), backfill_deployment(settings))
    return 0


def _generate(args: argparse.Namespace) -> int:
    # Imported on use: the other commands need not load the generator.
    from flows.generator import generate_landing  # noqa: PLC0415

    out: Path = args.out
    if args.if_empty and out.is_dir() and any(p.is_dir() for p in out.iterdir()):
        print(f"landing zone {out} already holds deliveries; not generating")
        return 0
    summary = generate_landing(
        out,
        loans=args.loans,
        start=args.start,
        months=args.months,
        seed=args.seed,
        second_servicer_loans=args.second_servicer_loans,
        servicer_tape=args.servicer_tape,
    )
    print(
        f"wrote {summary.loans} loans, {summary.repayments} repayments and "
        f"{summary.pool_assets} pool events over {summary.business_dates} business dates "
        f"to {out} (pools: {', '.join(summary.pool_ids)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
