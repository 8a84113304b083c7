"""The code version recorded in run manifests and report footers."""

from __future__ import annotations

import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@cache
def code_version() -> str:
    """The package version, plus the git commit when running from a checkout.

    Read once per process: the code a process runs is the code it imported,
    whatever the checkout moves to while it runs.
    """
    try:
        base = version("abs-pipeline")
    except PackageNotFoundError:
        base = "0+unknown"
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / ".git").exists():
        return base
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - git from PATH by design
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return base
    return f"{base}+g{commit}" if commit else base
