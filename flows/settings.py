"""Typed settings: ``ABS_PIPELINE_*`` environment variables, bound at the edge."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.catalog import Catalog
from flows.errors import SettingsError
from flows.limits import DEFAULT_LIMITS


class Settings(BaseSettings):
    """Where the data lives, how the embedded Prefect runs, and how runs are scheduled.

    Business dates, pools and ranges are flow parameters, never settings.
    """

    model_config = SettingsConfigDict(env_prefix="ABS_PIPELINE_", extra="ignore")

    data_root: Path = Field(default=Path("data"))
    timezone: str = "Asia/Shanghai"
    """The business calendar's timezone: it defines "yesterday" and the nightly schedule."""
    prefect_home: Path | None = None
    """Defaults to ``<data_root>/.prefect`` so runs never touch the user's profile."""
    nightly_cron: str = "0 2 * * *"
    """When the nightly deployment runs, in ``timezone``."""
    work_pool: str = "abs-pipeline"
    """The Prefect work pool the ``prefect.yaml`` deployments are declared for."""
    lock_timeout_seconds: float = Field(default=600.0, ge=0)
    """How long a run waits for another run to release the data root before failing."""
    dask_workers: int = Field(default=2, ge=1)
    """Workers of the local Dask cluster started by ``--task-runner dask`` without an address."""
    engine_batch_loans: int = Field(default=500_000, ge=1)
    """About how many loans the performance engine computes at a time (its memory follows it)."""

    # -- input limits (flows/limits.py: what each one bounds, and where it is enforced) --
    max_file_bytes: int = Field(default=DEFAULT_LIMITS.max_file_bytes, ge=1)
    max_decompressed_bytes: int = Field(default=DEFAULT_LIMITS.max_decompressed_bytes, ge=1)
    max_columns: int = Field(default=DEFAULT_LIMITS.max_columns, ge=1)
    max_field_bytes: int = Field(default=DEFAULT_LIMITS.max_field_bytes, ge=1)
    max_rows: int = Field(default=DEFAULT_LIMITS.max_rows, ge=1)
    max_json_depth: int = Field(default=DEFAULT_LIMITS.max_json_depth, ge=1)
    max_yaml_bytes: int = Field(default=DEFAULT_LIMITS.max_yaml_bytes, ge=1)
    max_yaml_aliases: int = Field(default=DEFAULT_LIMITS.max_yaml_aliases, ge=0)
    max_yaml_nodes: int = Field(default=DEFAULT_LIMITS.max_yaml_nodes, ge=1)
    max_yaml_depth: int = Field(default=DEFAULT_LIMITS.max_yaml_depth, ge=1)
    min_date: date = DEFAULT_LIMITS.min_date
    max_date: date = DEFAULT_LIMITS.max_date

    # -- operations (publication gate) --
    alert_urls: list[str] = Field(default_factory=list)
    """apprise URLs alerted when a run fails, stops at a missing delivery or is late
    (``json://host/path``, ``mailto://...``, or ``file:///path/alerts.jsonl`` for a file)."""
    late_hour: int = Field(default=9, ge=0, le=23)
    """A nightly with no success for yesterday by this hour (``timezone``) is late."""
    flow_timeout_seconds: float = Field(default=6 * 3600.0, gt=0)
    """A run that takes longer is stopped and marked Failed by Prefect."""
    snapshots_kept: int = Field(default=10, ge=1)
    """Output snapshots of successful runs kept for ``rollback`` (the latest ones)."""
    archive_pdf: bool = True
    """Write the archive PDF beside each Chinese disclosure (seconds per report)."""

    @field_validator("data_root", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("the data root is empty")
        return value


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment, with ``overrides``; a bad value is a SettingsError."""
    try:
        settings = Settings()
        return settings.model_copy(update=overrides) if overrides else settings
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = "ABS_PIPELINE_" + "_".join(str(p) for p in problem["loc"]).upper()
        raise SettingsError(str(problem["msg"]), where=where) from None


def check_data_root(settings: Settings, *, need_landing: bool = True) -> Path:
    """Check the data root before anything is written; return it.

    Raises:
        SettingsError: The data root is empty or not a directory, or its landing zone
            is missing or unreadable.
    """
    root = settings.data_root
    if not str(root).strip():
        raise SettingsError("the data root is empty", where="ABS_PIPELINE_DATA_ROOT")
    if not root.is_dir():
        kind = "relative " if not root.is_absolute() else ""
        raise SettingsError(
            f"the {kind}data root is not a directory (resolved: {root.absolute()})",
            where=str(root),
        )
    landing = Catalog(root).landing
    if need_landing:
        if not landing.is_dir():
            raise SettingsError("no landing zone (landing/) under the data root", where=str(root))
        if not os.access(landing, os.R_OK | os.X_OK):
            raise SettingsError("the landing zone is not readable", where=str(landing))
    return root


def yesterday(timezone: str, now: datetime | None = None) -> date:
    """The business date before today in ``timezone``.

    Args:
        timezone: An IANA timezone name such as ``Asia/Shanghai``.
        now: The current instant (timezone-aware); the wall clock when omitted.

    Returns:
        The calendar date before ``now`` as seen in ``timezone``.
    """
    zone = ZoneInfo(timezone)
    instant = datetime.now(zone) if now is None else now.astimezone(zone)
    return instant.date() - timedelta(days=1)


def configure_prefect(settings: Settings) -> None:
    """Point Prefect at a home inside the data root, offline and without analytics.

    Must run before ``prefect`` is imported: Prefect reads these at import time.
    An explicitly configured ``PREFECT_API_URL`` (a real server) is left alone.
    """
    home = settings.prefect_home or Catalog(settings.data_root).prefect_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home.resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Run logs go to the Prefect API at INFO; the console shows only what -v asks for.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
