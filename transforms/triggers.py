"""Performance triggers (触发事件): terms, thresholds by period, and their tests.

A trigger compares one period metric with its threshold for the period
number (a schedule of thresholds steps up as the deal seasons). ``above``
breaches when the actual value exceeds the threshold, ``below`` when it falls
short of it. A metric that cannot be computed for the period (an empty pool)
does not breach; its actual value is reported as null.

Consequences: ``early_amortisation`` (加速清偿事件) ends the revolving period
and switches the waterfall to sequential amortisation from the breach period
on, for good; ``sequential_pay`` is recorded (principal is always paid
sequentially here, so the order does not change); ``report_only`` is shown
and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeVar, get_args

TriggerMetric = Literal[
    "cumulative_default_rate",
    "cumulative_net_loss_rate",
    "delinquency_90_plus_share",
    "delinquency_30_plus_share",
    "delinquency_ratio",
    "payment_rate",
    "excess_spread",
]
TRIGGER_METRICS: Final = get_args(TriggerMetric)
"""Metrics a trigger may test (the deal model's choices)."""

TRIGGER_PREFIX: Final = "trigger."
"""A trigger's entry among a period's recorded conventions is ``trigger.<its name>``."""

Comparison = Literal["above", "below"]
Consequence = Literal["early_amortisation", "sequential_pay", "report_only"]


_T_co = TypeVar("_T_co", covariant=True)


class Step(Protocol[_T_co]):
    """A threshold schedule step: from ``from_period`` (1-based) on, ``threshold``."""

    @property
    def from_period(self) -> int: ...

    @property
    def threshold(self) -> _T_co: ...


def threshold_in_force(steps: Iterable[Step[_T_co]], period_number: int) -> _T_co:
    """The threshold of a schedule in force in a 1-based period.

    Args:
        steps: The schedule (any order, at least one step).
        period_number: Collection period number, 1 for the first period after cut-off.

    Returns:
        The threshold of the latest step started by the period; the first
        step's before any step starts.
    """
    ordered = sorted(steps, key=lambda s: s.from_period)
    current = ordered[0].threshold
    for step in ordered:
        if step.from_period <= period_number:
            current = step.threshold
    return current


@dataclass(frozen=True)
class ThresholdStep:
    """From period ``from_period`` (1-based) on, the threshold is ``threshold``."""

    from_period: int
    threshold: float


@dataclass(frozen=True)
class TriggerTerms:
    """One trigger of a deal.

    Attributes:
        name: Name shown in the report.
        metric: One of :data:`TRIGGER_METRICS`.
        comparison: ``above`` or ``below``.
        steps: Threshold schedule (a fixed threshold is one step from period 1).
        consequence: What a breach does.
    """

    name: str
    metric: str
    comparison: Comparison
    steps: tuple[ThresholdStep, ...]
    consequence: Consequence = "early_amortisation"

    def __post_init__(self) -> None:
        if self.metric not in TRIGGER_METRICS:
            raise ValueError(f"trigger {self.name!r}: unknown metric {self.metric!r}")
        if not self.steps:
            raise ValueError(f"trigger {self.name!r}: no threshold")

    def threshold_for(self, period_number: int) -> float:
        """The threshold in force in a 1-based period (the first step before any step starts).

        Args:
            period_number: Collection period number, 1 for the first period after cut-off.

        Returns:
            The threshold.
        """
        return threshold_in_force(self.steps, period_number)


@dataclass(frozen=True)
class TriggerResult:
    """A trigger's test in one period."""

    name: str
    metric: str
    comparison: Comparison
    consequence: Consequence
    period_number: int
    threshold: float
    actual: float | None
    breached: bool


def evaluate_trigger(
    trigger: TriggerTerms, period_number: int, metrics: Mapping[str, float | None]
) -> TriggerResult:
    """Test one trigger against the period's metrics.

    Args:
        trigger: The trigger's terms.
        period_number: 1-based collection period number.
        metrics: Metric values of the period by name (a missing or null value
            does not breach).

    Returns:
        The threshold in force, the actual value and whether it breached.
    """
    threshold = trigger.threshold_for(period_number)
    actual = metrics.get(trigger.metric)
    if actual is None:
        breached = False
    elif trigger.comparison == "above":
        breached = actual > threshold
    else:
        breached = actual < threshold
    return TriggerResult(
        name=trigger.name,
        metric=trigger.metric,
        comparison=trigger.comparison,
        consequence=trigger.consequence,
        period_number=period_number,
        threshold=threshold,
        actual=actual,
        breached=breached,
    )
