"""The Prefect deployments: the nightly run on a cron schedule and the on-demand backfill.

``abs-pipeline serve`` serves both from this process against a Prefect server;
``prefect.yaml`` declares the same two deployments for a work pool. Both are built
here from the settings, so the schedule and parameters have one definition.
"""

from __future__ import annotations

from typing import Any, cast

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.pipeline import backfill_flow, late_check_flow, run_flow
from flows.settings import Settings

NIGHTLY = "nightly"
BACKFILL = "backfill"
LATE_CHECK = "late-check"
TAGS = ["abs-pipeline"]


def _deployment(
    flow: Flow[..., Any], settings: Settings, name: str, description: str, cron: str | None
) -> RunnerDeployment:
    """One deployment over the settings' data root, one run at a time, on ``cron`` if given."""
    deployment = flow.to_deployment(
        name=name,
        schedules=None if cron is None else [Cron(cron, timezone=settings.timezone)],
        parameters={"data_root": str(settings.data_root.resolve())},
        description=description,
        tags=[*TAGS, name],
        concurrency_limit=1,
    )
    # Called outside an event loop, ``to_deployment`` returns the deployment itself.
    return cast(RunnerDeployment, deployment)


def nightly_deployment(settings: Settings) -> RunnerDeployment:
    """Yesterday's deliveries every night (default 02:00 Asia/Shanghai).

    The run's ``business_date`` is left unset so that each run takes the day
    before its own start in the business timezone.
    """
    description = "Process yesterday's deliveries; render the disclosures on a month-end."
    return _deployment(run_flow, settings, NIGHTLY, description, settings.nightly_cron)


def backfill_deployment(settings: Settings) -> RunnerDeployment:
    """A range of business dates, run on demand with ``start`` and ``end``; no schedule."""
    description = "Re-process a range of business dates after late or corrected data."
    return _deployment(backfill_flow, settings, BACKFILL, description, None)


def late_check_deployment(settings: Settings) -> RunnerDeployment:
    """Every day at the late hour: alert when yesterday has no successful run."""
    description = "Alert when the nightly has not succeeded by the late hour."
    cron = f"0 {settings.late_hour} * * *"
    return _deployment(late_check_flow, settings, LATE_CHECK, description, cron)
