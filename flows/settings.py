"""Typed settings: ``ABS_PIPELINE_*`` environment variables, bound at the edge."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the data lives and how the embedded Prefect runs.

    Business dates, pools and ranges are flow parameters, never settings.
    """

    model_config = SettingsConfigDict(env_prefix="ABS_PIPELINE_", extra="ignore")

    data_root: Path = Field(default=Path("data"))
    timezone: str = "Asia/Shanghai"
    prefect_home: Path | None = None
    """Defaults to ``<data_root>/.prefect`` so runs never touch the user's profile."""


def configure_prefect(settings: Settings) -> None:
    """Point Prefect at a home inside the data root, offline and without analytics.

    Must run before ``prefect`` is imported: Prefect reads these at import time.
    An explicitly configured ``PREFECT_API_URL`` (a real server) is left alone.
    """
    home = settings.prefect_home or (settings.data_root / ".prefect")
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home.resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
