"""Test-wide settings: Prefect and Great Expectations stay offline and out of $HOME."""

from __future__ import annotations

import os
import tempfile

# Set before anything imports prefect: it reads these at import time.
_HOME = tempfile.mkdtemp(prefix="abs-pipeline-prefect-")
os.environ.setdefault("PREFECT_HOME", _HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
