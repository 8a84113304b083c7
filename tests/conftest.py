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
# Archive PDFs take seconds each: flow tests leave them out; the PDF tests and the
# end-to-end pipeline test (tests/flows/test_pipeline.py) turn them on.
os.environ["ABS_PIPELINE_ARCHIVE_PDF"] = "false"

# -- shared fixtures --------------------------------------------------------------------
# One Prefect test server and one tiny tape for the whole session (per xdist worker):
# starting a server takes seconds, and several modules run flows against the same small
# book. Flow tests' data roots are in tests/flows/conftest.py.

from collections.abc import Iterator  # noqa: E402 - after the environment above
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def harness() -> Iterator[str]:
    """A temporary Prefect API for flow tests; yields its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated landing zone of 200 loans, January to March 2024 (seed 7); copy before use."""
    from flows.generator import generate_landing

    out = tmp_path_factory.mktemp("tiny-tape") / "landing"
    generate_landing(out, loans=200, start="2024-01", months=3, seed=7)
    return out
