"""A long-lived Great Expectations process for the served flow runs.

Prefect's runner starts every served flow run in a new process, and importing
``great_expectations`` costs that process 3 to 5 s on the project's machine: more
than the rest of a night's work. ``abs-pipeline serve`` therefore starts one
*validation host* beside its deployments: a child process that imports Great
Expectations once and validates landing rows for the served runs. The runs find it
through their environment (:data:`ADDRESS_VARIABLE`, a Unix socket in a folder only
the user can open, and :data:`KEY_VARIABLE`, a key drawn per ``serve`` that
authenticates both ends).

The host runs the same :func:`data_contracts.validate.validate_frame` on the same
contract and rows, so its outcome is the one the run would compute. A run validates
in its own process instead (the same function and result, only slower) when no host
is named, when the host cannot be reached, runs other code, fails or takes longer
than :data:`HOST_TIMEOUT_SECONDS`, and for frames over :data:`HOST_MAX_ROWS` rows (a
backfill's large chunks, for which the import is a small part of the cost and
shipping the rows would double their memory). The host serves one validation at a
time and ends with the process that started it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Final

import polars as pl

from data_contracts.contract import Contract
from data_contracts.validate import ValidationOutcome, validate_frame
from flows.version import code_version

logger = logging.getLogger(__name__)

ADDRESS_VARIABLE: Final = "ABS_PIPELINE_VALIDATION_HOST"
"""The host's socket, set by ``serve`` for the flow runs it starts."""
KEY_VARIABLE: Final = "ABS_PIPELINE_VALIDATION_HOST_KEY"
"""The key (hex) that authenticates a run to the host and the host to the run."""
HOST_MAX_ROWS: Final = 200_000
"""Larger frames are validated in the run's own process."""
HOST_TIMEOUT_SECONDS: Final = 300.0
"""How long a run waits for the host's answer before validating itself."""
HOST_START_SECONDS: Final = 180.0
"""How long ``serve`` waits for the host to import Great Expectations."""
_PARENT_CHECK_SECONDS: Final = 5.0


@dataclass(frozen=True)
class _Request:
    code_version: str
    contract: Contract
    frame: pl.DataFrame


def validate(contract: Contract, frame: pl.DataFrame) -> ValidationOutcome:
    """:func:`~data_contracts.validate.validate_frame`, through the validation host when
    the environment names one and the frame is small enough, else in this process."""
    address, key = os.environ.get(ADDRESS_VARIABLE), os.environ.get(KEY_VARIABLE)
    if address and key and frame.height <= HOST_MAX_ROWS:
        answer = _ask(address, key, _Request(code_version(), contract, frame))
        if answer is not None:
            return answer
    return validate_frame(contract, frame)


def _ask(address: str, key: str, request: _Request) -> ValidationOutcome | None:
    """The host's outcome, or None (logged) when the run must validate by itself."""
    try:
        with Client(address, family="AF_UNIX", authkey=bytes.fromhex(key)) as connection:
            connection.send(request)
            if not connection.poll(HOST_TIMEOUT_SECONDS):
                logger.warning(
                    "validation host %s: no answer in %.0f s; validating in this process",
                    address,
                    HOST_TIMEOUT_SECONDS,
                )
                return None
            status, answer = connection.recv()
    except (
        OSError,
        EOFError,
        ValueError,
        pickle.PickleError,
        multiprocessing.AuthenticationError,
    ) as exc:
        logger.warning(
            "validation host %s unreachable (%s: %s); validating in this process",
            address,
            type(exc).__name__,
            exc,
        )
        return None
    if status == "ok" and isinstance(answer, ValidationOutcome):
        return answer
    logger.warning("validation host %s: %s; validating in this process", address, answer)
    return None


@contextmanager
def validation_host() -> Iterator[str | None]:
    """Start the host, name it in this process's environment (the flow runs it starts
    inherit it) and stop it on exit.

    Yields:
        The host's socket, or None when it did not start in time (the runs then
        validate in their own processes).
    """
    folder = Path(tempfile.mkdtemp(prefix="abs-pipeline-validation-"))  # mode 0700
    address = str(folder / "host.sock")
    key = secrets.token_bytes(32)
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(
        target=_serve,
        args=(address, key, os.getpid(), writer),
        name="abs-pipeline-validation-host",
        daemon=True,
    )
    try:
        process.start()
    except (OSError, RuntimeError) as exc:
        logger.warning("validation host not started (%s); flow runs validate themselves", exc)
        reader.close()
        writer.close()
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    writer.close()  # the host holds the other end: a host that dies ends the wait
    started = _ready(reader)
    if started:
        os.environ[ADDRESS_VARIABLE] = address
        os.environ[KEY_VARIABLE] = key.hex()
    else:
        logger.warning("validation host did not start; flow runs validate in their processes")
    try:
        yield address if started else None
    finally:
        for variable in (ADDRESS_VARIABLE, KEY_VARIABLE):
            os.environ.pop(variable, None)
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
        shutil.rmtree(folder, ignore_errors=True)


def _ready(reader: Connection) -> bool:
    """Whether the host said it listens within ``HOST_START_SECONDS``."""
    with reader:
        try:
            return reader.poll(HOST_START_SECONDS) and reader.recv() == "ready"
        except (OSError, EOFError):
            return False


def _serve(address: str, key: bytes, parent: int, ready: Connection) -> None:
    """The host: import Great Expectations, then answer one request at a time."""
    import great_expectations  # noqa: F401, PLC0415 - imported once here: the host's purpose

    version = code_version()
    # Stopped by ``serve``: leave through SystemExit, so that what the libraries hold
    # (semaphores, temporary files) is released as at any normal exit.
    signal.signal(signal.SIGTERM, _leave)
    threading.Thread(target=_end_with, args=(parent, address), daemon=True).start()
    with Listener(address, family="AF_UNIX", authkey=key) as listener:
        with ready:
            ready.send("ready")
        while True:
            try:
                connection = listener.accept()
            except (OSError, EOFError, multiprocessing.AuthenticationError):
                continue  # a caller without the key, or one that hung up
            with connection:
                try:
                    request = connection.recv()
                except (OSError, EOFError):
                    continue
                except Exception as exc:  # a request this code cannot read: another version's
                    answer: tuple[str, object] = ("refused", f"unreadable request: {exc!r}")
                else:
                    answer = _answer(request, version)
                try:
                    connection.send(answer)
                except (OSError, EOFError):
                    continue


def _answer(request: object, version: str) -> tuple[str, object]:
    if not isinstance(request, _Request):
        return "refused", f"not a validation request: {type(request).__name__}"
    if request.code_version != version:
        return "refused", f"the host runs code {version}, the run {request.code_version}"
    try:
        return "ok", validate_frame(request.contract, request.frame)
    except Exception as exc:  # the run validates by itself and raises it there
        return "failed", f"{type(exc).__name__}: {exc}"


def _leave(_signal: int, _frame: object) -> None:
    raise SystemExit(0)


def _end_with(parent: int, address: str) -> None:
    """End the host when the process that started it is gone (even killed), removing
    the socket's folder that process would have removed."""
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    shutil.rmtree(Path(address).parent, ignore_errors=True)
    os._exit(0)
