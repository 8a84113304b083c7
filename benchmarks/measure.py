"""Benchmarks time each case in a fresh child process, so one case's memory never counts
against the next."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_child(script: str, arguments: list[str], what: str) -> dict[str, Any]:
    """Run ``script`` with ``arguments`` in a child Python; return the JSON of its last line.

    Raises:
        RuntimeError: The child failed; the message names ``what`` and ends its stderr.
    """
    command = [sys.executable, script, *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate ``processes`` newest first, wait up to 30 s each, then kill what is left."""
    for process in reversed(processes):
        process.terminate()
    for process in reversed(processes):
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
