"""The ``abs-pipeline`` command line (Typer, with Rich progress and error panels).

Expected errors (:class:`~flows.errors.PipelineError`) print one short Rich panel
on stderr and exit with their code (2 bad invocation or setting, 3 input rejected or
a missing delivery); anything else is a bug: exit 1, with the traceback only under
``-v``. Settings are checked, and the data root locked, before anything is written.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from flows.errors import EXIT_FAILURE, EXIT_OK, PipelineError, SettingsError
from flows.settings import Settings, check_data_root, configure_prefect, load_settings, yesterday

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

    from flows.planner import Plan

app = typer.Typer(
    name="abs-pipeline",
    help="Consumer-loan ABS: ingest, validate, compute and disclose.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


class TaskRunnerChoice(StrEnum):
    threads = "threads"
    dask = "dask"


class ChunkChoice(StrEnum):
    month = "month"
    day = "day"


@dataclass
class _Options:
    verbose: bool = False
    now: Callable[[], datetime] | None = None


def _panel(message: str, *, title: str) -> None:
    """One expected error in a red panel on stderr, each line in full (never wrapped)."""
    width = max(*(len(line) for line in message.splitlines() or [""]), len(title)) + 8
    console = Console(stderr=True, highlight=False, width=width)
    console.print(
        Panel(
            Text(message), title=Text(title), title_align="left", border_style="red", expand=False
        )
    )


def _options(ctx: typer.Context) -> _Options:
    found = ctx.find_object(_Options)
    return found if found is not None else _Options()


DataRoot = Annotated[
    Path | None,
    typer.Option(help="data root (default: $ABS_PIPELINE_DATA_ROOT or ./data)"),
]
Day = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="a business date YYYY-MM-DD")]
PublishedPool = Annotated[str | None, typer.Option(help="restrict publication to a pool")]
DryRun = Annotated[bool, typer.Option(help="print the plan; write nothing")]
DaskAddress = Annotated[str | None, typer.Option(help="tcp://host:8786")]


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="run logs on the console; tracebacks of bugs")
    ] = False,
) -> None:
    options = _options(ctx)
    options.verbose = verbose
    ctx.obj = options
    if verbose:
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO"


def _settings(data_root: Path | None) -> Settings:
    return load_settings(data_root=data_root) if data_root is not None else load_settings()


# -- generate -----------------------------------------------------------------------------------
@app.command()
def generate(  # noqa: PLR0917 - Typer options are parameters
    out: Annotated[Path, typer.Option(help="landing folder to write")],
    start: Annotated[str, typer.Option(help="first origination month YYYY-MM")],
    loans: Annotated[int, typer.Option(min=1)] = 50_000,
    months: Annotated[int, typer.Option(min=1)] = 18,
    seed: int = 1,
    if_empty: Annotated[
        bool, typer.Option(help="do nothing when the landing folder already holds deliveries")
    ] = False,
    bad_rows: Annotated[
        bool, typer.Option(help="put a realistic handful of bad rows into the cut-off date's files")
    ] = False,
    second_servicer_loans: Annotated[
        int,
        typer.Option(
            min=0,
            help="also write a second pool of this many loans from another servicer "
            "(a GBK month-end loan tape read through its mapping file)",
        ),
    ] = 0,
    servicer_tape: Annotated[
        bool,
        typer.Option(
            help="the main pool's servicer also delivers a month-end loan tape (reconciled)"
        ),
    ] = False,
    revolving_accounts: Annotated[
        int,
        typer.Option(
            min=0,
            help="also write a revolving pool of this many Huabei-style card accounts "
            "(no schedule; a month-end statement tape read through its mapping file)",
        ),
    ] = 0,
) -> int:
    """Write a synthetic landing zone (with a manifest.json per business date)."""
    from flows.catalog import holds_deliveries  # noqa: PLC0415
    from flows.generator import generate_landing  # noqa: PLC0415 - only this command needs it

    if if_empty and holds_deliveries(out):
        print(f"landing zone {out} already holds deliveries; not generating")
        return EXIT_OK
    try:
        summary = generate_landing(
            out,
            loans=loans,
            start=start,
            months=months,
            seed=seed,
            bad_rows=bad_rows,
            second_servicer_loans=second_servicer_loans,
            servicer_tape=servicer_tape,
            revolving_accounts=revolving_accounts,
        )
    except (ValueError, FileExistsError) as exc:
        raise SettingsError(str(exc), where=str(out)) from None
    print(
        f"wrote {summary.loans} loans, {summary.repayments} repayments and "
        f"{summary.pool_assets} pool events over {summary.business_dates} business dates "
        f"to {out} (pools: {', '.join(summary.pool_ids)})"
    )
    return EXIT_OK


# -- run, backfill, recover ---------------------------------------------------------------------
@app.command()
def run(  # noqa: PLR0917 - Typer options are parameters
    ctx: typer.Context,
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="default: yesterday in Asia/Shanghai"),
    ] = None,
    pool: PublishedPool = None,
    force: Annotated[bool, typer.Option(help="reprocess unchanged dates too")] = False,
    dry_run: DryRun = False,
    task_runner: TaskRunnerChoice = TaskRunnerChoice.threads,
    dask_address: DaskAddress = None,
    data_root: DataRoot = None,
) -> int:
    """Process one business date (the nightly job)."""
    options = _options(ctx)
    settings = _settings(data_root)
    now = options.now() if options.now else None
    business_date = day.date() if day else yesterday(settings.timezone, now)
    parameters: dict[str, Any] = {"business_date": business_date, "pool": pool, "force": force}
    return _execute(
        "run",
        parameters,
        settings,
        start=business_date,
        end=business_date,
        chunk="day",
        dry_run=dry_run,
        task_runner=task_runner,
        dask_address=dask_address,
        verbose=options.verbose,
    )


@app.command()
def backfill(  # noqa: PLR0917 - Typer options are parameters
    ctx: typer.Context,
    start: Day,
    end: Day,
    chunk: Annotated[
        ChunkChoice, typer.Option(help="dates ingested and skipped together")
    ] = ChunkChoice.month,
    pool: PublishedPool = None,
    force: Annotated[bool, typer.Option(help="reprocess unchanged chunks too")] = False,
    dry_run: DryRun = False,
    task_runner: TaskRunnerChoice = TaskRunnerChoice.threads,
    dask_address: DaskAddress = None,
    data_root: DataRoot = None,
) -> int:
    """Process a range of business dates, a chunk at a time, with a progress bar."""
    if end < start:
        raise SettingsError("--end is before --start")
    settings = _settings(data_root)
    parameters: dict[str, Any] = {
        "start": start.date(),
        "end": end.date(),
        "chunk": chunk.value,
        "pool": pool,
        "force": force,
    }
    return _execute(
        "backfill",
        parameters,
        settings,
        start=start.date(),
        end=end.date(),
        chunk=chunk.value,
        dry_run=dry_run,
        task_runner=task_runner,
        dask_address=dask_address,
        verbose=_options(ctx).verbose,
    )


@app.command()
def recover(
    ctx: typer.Context,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="default: the latest delivered date"),
    ] = None,
    dry_run: DryRun = False,
    data_root: DataRoot = None,
) -> int:
    """Re-process from the first incomplete date (failed, interrupted or never processed)."""
    from flows.catalog import Catalog  # noqa: PLC0415 - no Prefect before configure_prefect
    from flows.state import StateBook  # noqa: PLC0415

    settings = _settings(data_root)
    check_data_root(settings)
    catalog = Catalog(settings.data_root)
    book = StateBook.load(catalog)
    delivered = catalog.landing_dates()
    last = end.date() if end else max([*delivered, *book.days], default=None)
    if last is None:
        raise SettingsError("nothing delivered or processed yet", where=str(catalog.landing))
    first = _first_incomplete(book, delivered, last)
    if first is None:
        print(f"nothing to recover: every date up to {last} is complete")
        return EXIT_OK
    print(f"recovering {first} .. {last}")
    parameters: dict[str, Any] = {"start": first, "end": last, "chunk": "month"}
    return _execute(
        "backfill",
        parameters,
        settings,
        start=first,
        end=last,
        chunk="month",
        dry_run=dry_run,
        task_runner=TaskRunnerChoice.threads,
        dask_address=None,
        verbose=_options(ctx).verbose,
    )


def _first_incomplete(book: Any, delivered: list[date], last: date) -> date | None:
    """The first date that failed, was left ingested, or was delivered but never processed."""
    candidates = [d for d, s in book.days.items() if s.status != "complete" and d <= last]
    recorded = set(book.days)
    candidates += [d for d in delivered if d not in recorded and d <= last]
    if book.days and max(book.days) < last:
        candidates.append(min(d for d in [*delivered, last] if d > max(book.days)))
    return min(candidates) if candidates else None


def _execute(
    command: str,
    parameters: dict[str, Any],
    settings: Settings,
    *,
    start: date,
    end: date,
    chunk: str,
    dry_run: bool,
    task_runner: TaskRunnerChoice,
    dask_address: str | None,
    verbose: bool,
) -> int:
    check_data_root(settings)
    if dry_run:
        for line in _dry_run(settings, start, end, chunk, bool(parameters.get("force"))).describe():
            print(line)
        return EXIT_OK
    from flows.catalog import Catalog  # noqa: PLC0415 - no Prefect before configure_prefect
    from flows.locking import exclusive_lock  # noqa: PLC0415

    catalog = Catalog(settings.data_root)
    with exclusive_lock(
        catalog.root,
        holder_file=catalog.data_root_lock,
        timeout=settings.lock_timeout_seconds,
        holder={"command": command, "range": f"{start} .. {end}"},
    ):
        configure_prefect(settings)
        # Imported only now: Prefect reads its settings from the environment at import.
        from flows.pipeline import backfill_flow, run_flow  # noqa: PLC0415

        chosen: Any = run_flow if command == "run" else backfill_flow
        chosen = chosen.with_options(timeout_seconds=settings.flow_timeout_seconds)
        on_dask = task_runner == TaskRunnerChoice.dask or dask_address is not None
        # Dask workers run elsewhere (another directory, another machine): a relative
        # data root would name another place there.
        root = settings.data_root.resolve() if on_dask else settings.data_root
        parameters = {**parameters, "data_root": str(root)}
        progress = command == "backfill"
        if on_dask:
            chosen = chosen.with_options(task_runner=_dask_runner(dask_address, settings))
            with _shared_prefect_api():
                return _run(chosen, parameters, progress=progress, verbose=verbose)
        return _run(chosen, parameters, progress=progress, verbose=verbose)


def _dry_run(settings: Settings, start: date, end: date, chunk: str, force: bool) -> Plan:
    from flows.catalog import Catalog  # noqa: PLC0415 - no Prefect for a plan
    from flows.deals import load_deals  # noqa: PLC0415
    from flows.delivery import required_for, scan_days, strictest  # noqa: PLC0415
    from flows.planner import (  # noqa: PLC0415
        ChunkSize,
        PlanOptions,
        days_between,
        plan,
        plan_end_for,
    )
    from flows.state import StateBook  # noqa: PLC0415
    from flows.version import code_version  # noqa: PLC0415

    catalog = Catalog(settings.data_root)
    state = StateBook.load(catalog)
    calendar = strictest(d.delivery_calendar for d in load_deals(catalog).deals.values())
    plan_end = plan_end_for(state, end)
    scan = scan_days(
        catalog,
        days_between(start, plan_end),
        required=required_for(catalog, calendar, plan_end),
        empty=frozenset(state.empty_days),
    )
    size: ChunkSize = "day" if chunk == "day" else "month"
    return plan(state, scan, PlanOptions(start, end, force, size, code_version()))


def _run(chosen: Any, parameters: dict[str, Any], *, progress: bool, verbose: bool) -> int:
    from flows.pipeline import RunFailedError, RunSummary, reporting_progress  # noqa: PLC0415

    with ExitStack() as stack:
        if progress:
            bar = stack.enter_context(_ProgressBar())
            stack.enter_context(reporting_progress(bar))
        state = chosen(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunSummary):
        print(result.describe())
        return EXIT_OK
    if isinstance(result, RunFailedError):
        print(result.summary.describe())
        _panel(result.message, title=_title(result))
        return result.exit_code
    if isinstance(result, PipelineError):
        _panel(str(result), title=_title(result))
        return result.exit_code
    _panel(f"the run failed: {type(result).__name__}: {result}", title="abs-pipeline: failure")
    if verbose and isinstance(result, BaseException):
        traceback.print_exception(result, file=sys.stderr)
    return EXIT_FAILURE


def _title(error: PipelineError) -> str:
    kinds = {1: "run failed", 2: "bad invocation or setting", 3: "input rejected"}
    return f"abs-pipeline: {kinds.get(error.exit_code, 'error')} (exit {error.exit_code})"


# -- operator commands ----------------------------------------------------------------------------
@app.command("declare-empty")
def declare_empty(
    day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"])],
    reason: Annotated[str, typer.Option(help="why the date genuinely has no delivery")],
    data_root: DataRoot = None,
) -> int:
    """Record that a business date genuinely has no delivery (kept in state and manifests)."""
    from flows.catalog import Catalog  # noqa: PLC0415
    from flows.locking import exclusive_lock  # noqa: PLC0415
    from flows.state import EmptyDay, StateBook  # noqa: PLC0415

    if not reason.strip():
        raise SettingsError("--reason must say why the date is empty")
    settings = _settings(data_root)
    check_data_root(settings)
    catalog = Catalog(settings.data_root)
    business_date = day.date()
    if any(catalog.landing_files(business_date).values()):
        raise SettingsError(
            "the date has delivery files; it cannot be declared empty",
            where=str(catalog.landing_dir(business_date)),
        )
    with exclusive_lock(
        catalog.root,
        holder_file=catalog.data_root_lock,
        timeout=settings.lock_timeout_seconds,
        holder={"command": "declare-empty", "date": business_date},
    ):
        book = StateBook.load(catalog)
        book.empty_days[business_date] = EmptyDay(
            reason=reason.strip(), declared_at=datetime.now(UTC)
        )
        book.save(catalog)
    print(f"{business_date} declared empty: {reason.strip()}")
    return EXIT_OK


@app.command()
def rollback(
    to: Annotated[str, typer.Option("--to", help="the run id to go back to")],
    data_root: DataRoot = None,
) -> int:
    """Restore the data outputs (staged, quarantine, curated, marts, state) as the named
    successful run left them; published report versions stay (they are immutable)."""
    from flows.catalog import Catalog  # noqa: PLC0415
    from flows.locking import exclusive_lock  # noqa: PLC0415
    from flows.rollback import rollback_to  # noqa: PLC0415

    settings = _settings(data_root)
    check_data_root(settings, need_landing=False)
    catalog = Catalog(settings.data_root)
    with exclusive_lock(
        catalog.root,
        holder_file=catalog.data_root_lock,
        timeout=settings.lock_timeout_seconds,
        holder={"command": "rollback", "to": to},
    ):
        restored = rollback_to(catalog, to)
    print(f"rolled back to run {to}: restored {', '.join(restored)}")
    return EXIT_OK


@app.command()
def status(
    by_date: Annotated[bool, typer.Option(help="one line per business date")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
    data_root: DataRoot = None,
) -> int:
    """Per date: delivered, processed, published, last success; gaps; freshness."""
    from flows.catalog import Catalog  # noqa: PLC0415 - status needs no Prefect
    from flows.deals import load_deals  # noqa: PLC0415
    from flows.delivery import strictest  # noqa: PLC0415
    from flows.status import dumps_status, status_document, status_lines  # noqa: PLC0415

    settings = _settings(data_root)
    check_data_root(settings, need_landing=False)
    catalog = Catalog(settings.data_root)
    calendar = strictest(d.delivery_calendar for d in load_deals(catalog).deals.values())
    document = status_document(catalog, calendar=calendar)
    print(dumps_status(document) if as_json else "\n".join(status_lines(document, by_date=by_date)))
    return EXIT_OK


@app.command("check-late")
def check_late_command(ctx: typer.Context, data_root: DataRoot = None) -> int:
    """Alert (and exit 1) when yesterday has no successful run by the late hour."""
    from flows.catalog import Catalog  # noqa: PLC0415

    settings = _settings(data_root)
    check_data_root(settings, need_landing=False)
    configure_prefect(settings)
    from flows.pipeline import check_late  # noqa: PLC0415 - after configure_prefect

    options = _options(ctx)
    late = check_late(
        Catalog(settings.data_root), settings, now=options.now() if options.now else None
    )
    print("nightly is late: alert sent" if late else "nightly on time")
    return EXIT_FAILURE if late else EXIT_OK


@app.command()
def serve(data_root: DataRoot = None) -> int:
    """Serve the nightly, backfill and late-check deployments to a Prefect server."""
    settings = _settings(data_root)
    check_data_root(settings, need_landing=False)
    configure_prefect(settings)
    from prefect import serve as prefect_serve  # noqa: PLC0415 - after configure_prefect
    from prefect.settings import get_current_settings  # noqa: PLC0415

    from flows.deployments import (  # noqa: PLC0415
        backfill_deployment,
        late_check_deployment,
        nightly_deployment,
    )

    if get_current_settings().api.url is None:
        raise SettingsError(
            "abs-pipeline serve needs a Prefect server: start one on loopback with "
            "`PREFECT_HOME=<data-root>/.prefect prefect server start --host 127.0.0.1 "
            "--port 4200`, then run `PREFECT_API_URL=http://127.0.0.1:4200/api "
            "abs-pipeline serve`"
        )
    from flows.serve_validation import validation_host  # noqa: PLC0415

    # One process keeps Great Expectations imported for every served flow run.
    with validation_host():
        prefect_serve(
            nightly_deployment(settings),
            backfill_deployment(settings),
            late_check_deployment(settings),
        )
    return EXIT_OK


# -- Prefect plumbing --------------------------------------------------------------------------
@contextmanager
def _shared_prefect_api() -> Iterator[None]:
    """One Prefect API for this process and the Dask workers it starts.

    Without a configured server each process would start a temporary one of its
    own, so the flow's server is started here and handed to the workers through
    the environment they inherit.
    """
    from prefect.server.api.server import SubprocessASGIServer  # noqa: PLC0415 - see _execute
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
    """A Rich progress bar over a backfill's chunks (rows/s and ETA), then its stages."""

    def __init__(self) -> None:
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("planning", total=None, rate="")
        self._rows = 0

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.update(self._task, description="done")
        self._progress.stop()

    def planned(self, chunks: int, files: int) -> None:
        self._progress.update(
            self._task, description=f"chunks ({files} files)", total=chunks, completed=0
        )

    def chunk_done(self, report: Any) -> None:
        self._rows += report.rows
        elapsed = self._progress.tasks[0].elapsed or 0.0
        rate = f"{self._rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
        self._progress.update(
            self._task,
            advance=1,
            description=f"chunk {report.start:%Y-%m-%d}: {report.outcome}",
            rate=rate,
        )

    def stage(self, name: str) -> None:
        self._progress.update(self._task, description=name)


# -- entry point ------------------------------------------------------------------------------
def main(argv: list[str] | None = None, *, now: Callable[[], datetime] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        now: The clock that defines "yesterday" for ``run`` without ``--date``
            and for ``check-late`` (default: the wall clock).

    Returns:
        The exit status: 0 done, 1 failure, 2 bad invocation or setting, 3 input
        rejected or a delivery missing.
    """
    command = typer.main.get_command(app)
    options = _Options(now=now)
    try:
        result = command.main(
            args=sys.argv[1:] if argv is None else argv,
            prog_name="abs-pipeline",
            standalone_mode=False,
            obj=options,
        )
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.ClickException as exc:
        _panel(exc.format_message(), title="abs-pipeline: bad invocation (exit 2)")
        return exc.exit_code
    except click.exceptions.Abort:
        return EXIT_FAILURE
    except PipelineError as exc:
        _panel(str(exc), title=_title(exc))
        return exc.exit_code
    except Exception as exc:
        _panel(f"{type(exc).__name__}: {exc}", title="abs-pipeline: failure (exit 1)")
        if options.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        return EXIT_FAILURE
    return int(result) if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
