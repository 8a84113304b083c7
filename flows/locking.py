"""One writer per data root: an exclusive, advisory file lock held for a whole run.

Two runs over the same data root would replace the same partitions at once, so a
run takes ``state/data-root.lock`` before it writes anything and keeps it until it
is done. A second run waits up to a timeout, then fails naming the run that holds
the lock. The lock is the operating system's (``flock``): a killed process
releases it, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

POLL_SECONDS = 0.2
logger = logging.getLogger(__name__)


class DataRootBusyError(RuntimeError):
    """Another run holds the data root's lock and did not release it in time."""


@contextmanager
def exclusive_lock(path: Path, *, timeout: float, holder: Mapping[str, object]) -> Iterator[None]:
    """Hold the lock at ``path`` for the duration of the ``with`` block.

    Args:
        path: The lock file (created if missing).
        timeout: Seconds to wait for another holder to release it; 0 fails at once.
        holder: Who is taking the lock (run id, pid, ...), written into the lock
            file so that a waiting run can say whom it waited for.

    Raises:
        DataRootBusyError: The lock was still held after ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        _acquire(handle, path, timeout)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({**holder, "pid": os.getpid()}, sort_keys=True, default=str))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle: IO[str], path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not announced and timeout > 0:
                logger.warning(
                    "waiting up to %g s for the data root (%s)", timeout, describe_holder(path)
                )
                announced = True
            if time.monotonic() >= deadline:
                raise DataRootBusyError(
                    f"data root is in use by another run ({describe_holder(path)}); "
                    f"waited {timeout:g} s for {path}. Try again when it has finished, "
                    "or wait longer with ABS_PIPELINE_LOCK_TIMEOUT_SECONDS."
                ) from None
            time.sleep(POLL_SECONDS)
        else:
            return


def describe_holder(path: Path) -> str:
    """Who holds the lock at ``path``, as written by the holder (best effort)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or not holder:
        return "holder unknown"
    return ", ".join(f"{key} {holder[key]}" for key in sorted(holder))
