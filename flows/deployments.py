"""The Prefect deployments: the nightly run on a cron schedule and the on-demand backfill.

``abs-pipeline serve`` serves both from this process against a Prefect server;
``prefect.yaml`` declares the same two deployments for a work pool. Both are built
here from the settings, so the schedule and parameters have one definition.
"""

from __future__ import annotations

from typing import cast

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.pipeline import backfill_flow, late_check_flow, run_flow
from flows.settings import Settings

NIGHTLY = "nightly"
BACKFILL = "backfill"
LATE_CHECK = "late-check"
TAGS = ["abs-pipeline"]


def nightly_deployment(settings: Settings) -> RunnerDeployment:
    """Yesterday's deliveries every night (default 02:00 Asia/Shanghai).

    The run's ``business_date`` is left unset so that each run takes the day
    before its own start in the business timezone.
    """
    deployment = run_flow.to_deployment(
        name=NIGHTLY,
        schedules=[Cron(settings.nightly_cron, timezone=settings.timezone)],
        parameters={"data_root": str(settings.data_root.resolve())},
        description="Process yesterday's deliveries; render the disclosures on a month-end.",
        tags=[*TAGS, NIGHTLY],
        concurrency_limit=1,
    )
    # Called outside an event loop, ``to_deployment`` returns the deployment itself.
    return cast(RunnerDeployment, deployment)


def backfill_deployment(settings: Settings) -> RunnerDeployment:
    """A range of business dates, run on demand with ``start`` and ``end``; no schedule."""
    deployment = backfill_flow.to_deployment(
        name=BACKFILL,
        parameters={"data_root": str(settings.data_root.resolve())},
        description="Re-process a range of business dates after late or corrected data.",
        tags=[*TAGS, BACKFILL],
        concurrency_limit=1,
    )
    return cast(RunnerDeployment, deployment)


def late_check_deployment(settings: Settings) -> RunnerDeployment:
    """Every day at the late hour: alert when yesterday has no successful run."""
    deployment = late_check_flow.to_deployment(
        name=LATE_CHECK,
        schedules=[Cron(f"0 {settings.late_hour} * * *", timezone=settings.timezone)],
        parameters={"data_root": str(settings.data_root.resolve())},
        description="Alert when the nightly has not succeeded by the late hour.",
        tags=[*TAGS, LATE_CHECK],
        concurrency_limit=1,
    )
    return cast(RunnerDeployment, deployment)
