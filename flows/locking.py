"""One writer per data root: an exclusive operating-system lock held for a whole run.

Two runs over the same data root would replace the same partitions at once, so a run
locks the data root before it writes anything and keeps the lock until it is done. The
lock is ``flock`` on the data root *directory* itself: a stable path that no cleanup
deletes, so removing ``state/data-root.lock`` (where the holder describes itself, for
the message a waiting run prints) never lets a second writer in, and a killed process
releases the lock with its file descriptors, so a crash never leaves a stale lock. A
run that times out waiting has written nothing.

The lock is re-entrant within a process: the CLI takes it before the flow starts, and
the flow's own ``exclusive_lock`` then finds it held by its own process.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from flows.errors import SettingsError

POLL_SECONDS = 0.2
logger = logging.getLogger(__name__)
_held: dict[tuple[int, int], int] = {}
"""(device, inode) of each data root this process has locked, and how deeply."""
_held_guard = threading.Lock()


class DataRootBusyError(SettingsError):
    """Another run holds the data root's lock and did not release it in time."""


@contextmanager
def exclusive_lock(
    root: Path, *, holder_file: Path, timeout: float, holder: Mapping[str, object]
) -> Iterator[None]:
    """Hold the data root's lock for the duration of the ``with`` block.

    Args:
        root: The data root directory (it must exist).
        holder_file: Where the holder describes itself once it holds the lock.
        timeout: Seconds to wait for another holder to release it; 0 fails at once.
        holder: Who is taking the lock (flow run, range, ...), written to
            ``holder_file`` so that a waiting run can say whom it waited for.

    Raises:
        DataRootBusyError: The lock was still held after ``timeout`` seconds
            (nothing was written).
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        identity = (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
        with _held_guard:
            depth = _held.get(identity, 0)
            if depth:
                _held[identity] = depth + 1
        if depth:
            try:
                yield
            finally:
                with _held_guard:
                    _held[identity] -= 1
            return
        _acquire(fd, root, holder_file, timeout)
        with _held_guard:
            _held[identity] = 1
        try:
            _describe(holder_file, holder)
            yield
        finally:
            with _held_guard:
                del _held[identity]
            if holder_file.is_file():
                holder_file.write_text("", encoding="utf-8")
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _describe(holder_file: Path, holder: Mapping[str, object]) -> None:
    holder_file.parent.mkdir(parents=True, exist_ok=True)
    holder_file.write_text(
        json.dumps({**holder, "pid": os.getpid()}, sort_keys=True, default=str),
        encoding="utf-8",
    )


def _acquire(fd: int, root: Path, holder_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not announced and timeout > 0:
                logger.warning(
                    "waiting up to %g s for the data root (%s)",
                    timeout,
                    describe_holder(holder_file),
                )
                announced = True
            if time.monotonic() >= deadline:
                raise DataRootBusyError(
                    f"data root is in use by another run ({describe_holder(holder_file)}); "
                    f"waited {timeout:g} s. Try again when it has finished, "
                    "or wait longer with ABS_PIPELINE_LOCK_TIMEOUT_SECONDS",
                    where=str(root),
                ) from None
            time.sleep(POLL_SECONDS)
        else:
            return


def describe_holder(path: Path) -> str:
    """Who holds the lock, as written by the holder (best effort)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or not holder:
        return "holder unknown"
    return ", ".join(f"{key} {holder[key]}" for key in sorted(holder))
