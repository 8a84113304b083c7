"""Test-wide settings: Prefect and Great Expectations stay offline and out of $HOME."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports prefect: it reads these at import time.
# Each pytest-xdist worker gets a Prefect home of its own (the workers inherit the
# controller's environment, which this file has already changed).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
_HOME = tempfile.mkdtemp(prefix=f"abs-pipeline-prefect-{_WORKER or 'main'}-")
if _WORKER:
    os.environ["PREFECT_HOME"] = _HOME
else:
    os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# The test server keeps flow runs, task runs (the Dask tests read them back; `make test`,
# which runs none of them, leaves task runs out too), deployments and artifacts; it leaves
# out the event bookkeeping no test reads (stored events, automations), which costs it
# CPU on every flow run.
for _service in ("EVENT_PERSISTER", "TRIGGERS"):
    os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{_service}_ENABLED", "false")
# Archive PDFs take seconds each: flow tests leave them out; the PDF tests and the
# end-to-end pipeline test (tests/flows/test_pipeline.py) turn them on.
os.environ["ABS_PIPELINE_ARCHIVE_PDF"] = "false"

# -- property tests' example counts ------------------------------------------------------
# A property test whose examples each cost a pipeline stage leaves its count to the
# profile: `make test` (and CI) load "ci", a quick feedback loop; a plain `pytest` run
# loads "thorough". Its @example cases run under both.

from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("thorough", max_examples=60)
_hypothesis_settings.register_profile("ci", max_examples=15)
_hypothesis_settings.load_profile("thorough")

# -- shared fixtures --------------------------------------------------------------------
# One Prefect test server and one tiny tape for the whole session (per xdist worker):
# starting a server takes seconds, and several modules run flows against the same small
# book. Flow tests' data roots are in tests/flows/conftest.py.

import importlib.util  # noqa: E402 - after the environment above
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def harness() -> Iterator[str]:
    """A temporary Prefect API for flow tests; yields its URL.

    Under xdist the workers share the one server the controlling process started
    (:func:`pytest_configure`); run in one process, the test harness starts its own.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    shared = os.environ.get(_SHARED_API)
    if shared:
        _wait_until_healthy(shared, _SERVER_STARTUP_SECONDS)
        with temporary_settings(updates={PREFECT_API_URL: shared}):
            yield shared
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=_SERVER_STARTUP_SECONDS):
        yield str(PREFECT_API_URL.value())


# -- one Prefect server for all xdist workers --------------------------------------------
# Starting a test server costs each process seconds of CPU (importing the server, then the
# server process's own start). Under xdist the controlling process, which runs no tests,
# starts one in the background before the workers start, and they inherit its URL. Flow
# runs, artifacts and task runs of both workers meet on it, so a test reads them by its
# own flow run (or data root), never all of them.

_SHARED_API = "ABS_PIPELINE_TEST_PREFECT_API"
_SERVER_STARTUP_SECONDS = 120
_server: subprocess.Popen[bytes] | None = None
_server_folder: Path | None = None


def _wait_until_healthy(api: str, seconds: float) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the shared Prefect test server at {api} did not start")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process of an xdist run, start the workers' shared Prefect server."""
    global _server, _server_folder  # noqa: PLW0603 - one server per test run
    workers = getattr(config.option, "numprocesses", None)
    if not _is_controller(config) or not workers or os.environ.get(_SHARED_API):
        return
    spec = importlib.util.find_spec("prefect")
    origin = spec.origin if spec is not None else None
    if origin is None:
        raise pytest.UsageError("the flow tests need prefect installed")
    _server_folder = Path(tempfile.mkdtemp(prefix="abs-pipeline-prefect-db-"))
    database = _server_folder / "prefect-test.db"
    port = _free_port()
    # The command and settings of Prefect's own temporary test server (prefect_test_harness).
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
    }
    _server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(origin).parent.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env,
    )  # fmt: skip
    os.environ[_SHARED_API] = f"http://127.0.0.1:{port}/api"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the shared Prefect server this process started."""
    global _server, _server_folder  # noqa: PLW0603
    if _server is not None:
        _server.terminate()
        try:
            _server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _server.kill()
            _server.wait()
        _server = None
        os.environ.pop(_SHARED_API, None)
    if _server_folder is not None:
        shutil.rmtree(_server_folder, ignore_errors=True)
        _server_folder = None


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated landing zone of 200 loans, January to March 2024 (seed 7); copy before use."""
    from flows.generator import generate_landing

    out = tmp_path_factory.mktemp("tiny-tape") / "landing"
    generate_landing(out, loans=200, start="2024-01", months=3, seed=7)
    return out


# -- scheduling -------------------------------------------------------------------------
# `make test` hands whole files to the xdist workers in the order collected here
# (--dist loadfile --no-loadscope-reorder): the costliest files first, so the workers end
# together (longest processing time first). xdist's own order, most tests first, leaves
# the few-test end-to-end files for last. A file's cost is its seconds in the last run
# that ran it, kept in the pytest cache by the controlling process; a file not timed yet
# is estimated from its count of flow tests.

_FILE_SECONDS = "abs-pipeline/file-seconds"
_FLOW_TEST_SECONDS = 5.0
_OTHER_TEST_SECONDS = 0.1
_timed: dict[str, float] = {}


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the collected files by their cost, costliest first; tests in a file keep theirs."""
    cache = getattr(config, "cache", None)
    timed: dict[str, float] = cache.get(_FILE_SECONDS, {}) if cache is not None else {}
    estimate: dict[str, float] = {}
    for item in items:
        cost = _FLOW_TEST_SECONDS if item.get_closest_marker("flow") else _OTHER_TEST_SECONDS
        estimate[_test_file(item.nodeid)] = estimate.get(_test_file(item.nodeid), 0.0) + cost
    order = sorted(estimate, key=lambda name: -timed.get(name, estimate[name]))  # stable
    position = {name: n for n, name in enumerate(order)}
    items.sort(key=lambda item: position[_test_file(item.nodeid)])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each test phase's seconds to its file's (every worker's reports reach here)."""
    name = _test_file(report.nodeid)
    _timed[name] = _timed.get(name, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Keep the files' seconds of this run for the next run's order."""
    config = session.config
    cache = getattr(config, "cache", None)
    if _timed and cache is not None and _is_controller(config):
        kept: dict[str, float] = cache.get(_FILE_SECONDS, {})
        kept.update({name: round(seconds, 2) for name, seconds in _timed.items()})
        cache.set(_FILE_SECONDS, dict(sorted(kept.items())))


# -- results kept for the whole test run --------------------------------------------------
# A few pure, costly checks (below) are computed once per test run: the first process to
# need one computes it and leaves it in a folder both xdist workers see; the other reads
# it back. Each process also keeps what it computed or read.


def shared_run_folder(factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test run that every xdist worker sees (the workers' bases' parent)."""
    base = factory.getbasetemp()
    folder = (base.parent if _WORKER else base) / name
    folder.mkdir(exist_ok=True)
    return folder


def kept_for_the_run(
    folder: Path, memory: dict[str, Any], key: str, compute: Callable[[], Any]
) -> Any:
    """``compute()``'s value for ``key`` (a hex digest), computed once per test run."""
    import pickle

    if key in memory:
        return memory[key]
    path = folder / f"{key}.pickle"
    try:
        value = pickle.loads(path.read_bytes())  # this run's own files
    except FileNotFoundError:
        value = compute()
        part = folder / f"{key}.{os.getpid()}.part"
        part.write_bytes(pickle.dumps(value))
        part.replace(path)  # whole or absent for the other worker
    memory[key] = value
    return value


# -- the deal contract's verdict, once per test run ------------------------------------
# Every new data root checks its deal terms against the deal contract once (seconds: a
# Great Expectations run) and keeps the result in the root (flows.deals). Test data roots
# are new by the hundred and hold the same few deal terms, so the test run keeps the
# verdict on the same terms (with the same contract and code) and hands it to the next
# root, which still writes its kept result as a real run does. A test about the checking
# itself takes the `deal_checks_every_time` fixture.

_deal_verdicts: dict[str, Any] = {}
_remember_deal_verdicts = True


@pytest.fixture(scope="session", autouse=True)
def _deal_verdicts_once_per_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import hashlib

    from flows import deals

    real = deals._deal_failures
    folder = shared_run_folder(tmp_path_factory, "deal-verdicts")

    def once(frame: str) -> Any:
        if not _remember_deal_verdicts:
            return real(frame)
        key = hashlib.sha256(frame.encode()).hexdigest()
        return kept_for_the_run(folder, _deal_verdicts, key, lambda: real(frame))

    deals._deal_failures = once
    yield
    deals._deal_failures = real


@pytest.fixture
def deal_checks_every_time() -> Iterator[None]:
    """The deal contract runs on every check of this test, none remembered from others."""
    global _remember_deal_verdicts  # noqa: PLW0603
    _remember_deal_verdicts = False
    try:
        yield
    finally:
        _remember_deal_verdicts = True


# -- a landing batch's contract check, once per test run -------------------------------------
# Ingest checks every batch of landing rows against its contract with Great Expectations
# (through flows.serve_validation, which calls validate_frame when no validation host runs),
# about a second a batch whatever its size. Flow tests ingest copies of the same few tapes
# again and again, so the outcome of a batch checked once is kept, keyed by the contract
# and the batch's content (every column and row), and handed back when the same batch
# comes again: in the process, and in a folder both xdist workers share. A new batch (a
# test's own bad rows, a corrected delivery) is checked for real. validate_frame reads
# nothing but its two arguments; a test about the checking itself, or about running it
# again (the byte-identical re-run in tests/flows/test_ingest.py), takes the
# `ingest_checks_every_time` fixture (the contract tests in tests/data_contracts call the
# checker directly and are never answered from here).

_ingest_outcomes: dict[str, Any] = {}
_remember_ingest_outcomes = True


def _batch_key(contract: Any, frame: Any) -> str:
    import hashlib

    digest = hashlib.sha256(contract.model_dump_json().encode())
    digest.update(repr((frame.schema, frame.height)).encode())
    for seed in (0, 1):  # two 64-bit hashes a row
        digest.update(frame.hash_rows(seed=seed).to_numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="session", autouse=True)
def _ingest_checks_once_per_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import dataclasses

    import polars as pl

    from data_contracts.contract import Contract
    from data_contracts.validate import ValidationOutcome, validate_frame
    from flows import serve_validation

    folder = shared_run_folder(tmp_path_factory, "ingest-outcomes")

    def once(contract: Contract, frame: pl.DataFrame) -> ValidationOutcome:
        if not _remember_ingest_outcomes:
            return validate_frame(contract, frame)
        kept: ValidationOutcome = kept_for_the_run(
            folder,
            _ingest_outcomes,
            _batch_key(contract, frame),
            lambda: validate_frame(contract, frame),
        )
        return dataclasses.replace(kept, rule_results=[r.copy() for r in kept.rule_results])

    setattr(serve_validation, "validate_frame", once)  # noqa: B010 - a name it imported
    yield
    setattr(serve_validation, "validate_frame", validate_frame)  # noqa: B010


@pytest.fixture
def ingest_checks_every_time() -> Iterator[None]:
    """Ingest checks every batch of this test against its contract, none remembered."""
    global _remember_ingest_outcomes  # noqa: PLW0603
    _remember_ingest_outcomes = False
    try:
        yield
    finally:
        _remember_ingest_outcomes = True
