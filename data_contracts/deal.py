"""Typed model of a deal's terms (``landing/deals/<pool_id>.yaml``).

The YAML states money in yuan (strings or numbers with at most two decimals);
the model holds integer fen so that no float ever touches an amount.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""Identifiers become parts of output paths: nothing else is let through."""


def _yuan_to_fen(value: object) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError("an amount in yuan is required")
    if isinstance(value, int):
        return value * 100
    amount = Decimal(str(value).replace(",", "").strip())
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"amount {value} has more than two decimals")
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


Fen = Annotated[int, BeforeValidator(_yuan_to_fen)]
"""An amount given in yuan in the YAML, held as integer fen."""

Rate = Annotated[Decimal, Field(ge=Decimal(0), le=Decimal(1))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tranche(_Strict):
    """One class of notes."""

    class_name: str = Field(alias="class", min_length=1, max_length=16)
    kind: Literal["senior", "mezzanine", "subordinated"]
    original_balance: Fen = Field(gt=0)
    coupon: Rate
    rating: str | None = None
    code: str | None = None


class Fees(_Strict):
    """Senior fees, as annual rates on the opening pool balance."""

    trustee: Rate = Decimal("0.0005")
    servicer: Rate = Decimal("0.0050")


class ThresholdStep(_Strict):
    """From ``from_period`` (1-based period number) on, the threshold is ``threshold``."""

    from_period: int = Field(ge=1)
    threshold: Decimal


DELINQUENCY_SHARE_FLOORS: dict[str, int] = {
    "delinquency_30_plus_share": 30,
    "delinquency_90_plus_share": 90,
}
"""Trigger metrics that measure performing loans more than this many days past due."""


def structurally_zero(metric: str, default_dpd: int) -> str | None:
    """Why a trigger metric is always 0 under the deal's definitions, or None.

    A loan leaves the performing pool when its DPD exceeds ``default_dpd``, so a
    share of performing loans more than ``X`` days past due is always 0 when
    ``X >= default_dpd``.
    """
    floor = DELINQUENCY_SHARE_FLOORS.get(metric)
    if floor is not None and floor >= default_dpd:
        return (
            f"{metric} measures performing loans over {floor} days past due, but loans "
            f"over default_dpd ({default_dpd}) have defaulted and left the performing "
            "pool; use delinquency_ratio (31 DPD to default_dpd over the closing pool balance)"
        )
    return None


class Trigger(_Strict):
    """A performance test; breaching it has ``consequence``."""

    name: str = Field(min_length=1, max_length=80)
    metric: Literal[
        "cumulative_default_rate",
        "cumulative_net_loss_rate",
        "delinquency_90_plus_share",
        "delinquency_30_plus_share",
        "delinquency_ratio",
        "payment_rate",
        "excess_spread",
    ]
    comparison: Literal["above", "below"] = "above"
    threshold: Decimal | None = None
    schedule: tuple[ThresholdStep, ...] = ()
    consequence: Literal["early_amortisation", "sequential_pay", "report_only"] = (
        "early_amortisation"
    )

    @model_validator(mode="after")
    def _one_threshold_form(self) -> Trigger:
        if (self.threshold is None) == (not self.schedule):
            raise ValueError(f"trigger {self.name!r}: give exactly one of threshold or schedule")
        return self

    def threshold_for(self, period_number: int) -> Decimal:
        """The threshold in force for a 1-based collection period number."""
        if self.threshold is not None:
            return self.threshold
        steps = sorted(self.schedule, key=lambda s: s.from_period)
        current = steps[0].threshold
        for step in steps:
            if step.from_period <= period_number:
                current = step.threshold
        return current


class Definitions(_Strict):
    """Definitions the deal documents fix; the reports print the ones used."""

    default_dpd: int = Field(default=90, ge=1, le=720)
    charge_off_dpd: int = Field(default=180, ge=1, le=1080)
    dpd_tolerance: Fen = 100
    """A shortfall below this amount counts as paid (DOMAIN.md: 1 yuan)."""
    cumulative_default_denominator: Literal["initial", "initial_plus_purchases"] = (
        "initial_plus_purchases"
    )
    advance_payment_days: int = Field(default=7, ge=0, le=31)
    """Principal paid up to this many days before its due date is still scheduled."""

    @model_validator(mode="after")
    def _charge_off_after_default(self) -> Definitions:
        # DOMAIN.md: a loan defaults first, then is charged off; equal thresholds
        # would make the two events the same day and the gap between them vanish.
        if self.charge_off_dpd <= self.default_dpd:
            raise ValueError(
                f"charge_off_dpd ({self.charge_off_dpd}) must be greater than "
                f"default_dpd ({self.default_dpd})"
            )
        return self


class PaymentDateRule(_Strict):
    """Notes pay on ``day_of_month``, ``months_after`` months after the period's month."""

    day_of_month: int = Field(default=26, ge=1, le=28)
    months_after: int = Field(default=1, ge=0, le=12)


class ReportDateRule(_Strict):
    """The report is dated this many exchange business days before the payment date."""

    business_days_before: int = Field(default=5, ge=0, le=60)


class Eligibility(_Strict):
    """Criteria a loan must meet to be purchased into the pool."""

    products: tuple[str, ...] = ("cash_loan", "consumer_instalment")
    max_annual_rate: Rate = Decimal("0.24")
    min_term_months: int = Field(default=1, ge=1)
    max_term_months: int = Field(default=24, le=60)
    max_principal: Fen = 20_000_000
    min_credit_score: int = 0
    max_dpd_at_purchase: int = 0


class DealTerms(_Strict):
    """The terms of one securitisation trust and its pool."""

    pool_id: str
    name: str = Field(min_length=1, max_length=200)
    name_zh: str | None = Field(default=None, max_length=200)
    currency: str = "CNY"
    cutoff_date: date
    closing_date: date
    payment_day: int = Field(default=26, ge=1, le=28)
    """Notes pay on this day of the month after each collection period."""
    revolving_period_end: date | None = None
    legal_final_date: date | None = None
    eligibility: Eligibility = Eligibility()
    tranches: tuple[Tranche, ...] = Field(min_length=1)
    fees: Fees = Fees()
    triggers: tuple[Trigger, ...] = ()
    definitions: Definitions = Definitions()

    # Dates and interest conventions (DOMAIN.md "Dates").
    day_count: Literal["ACT/365", "ACT/360", "30/360"] = "ACT/365"
    payment_date_rule: PaymentDateRule | None = None
    """When given, wins over ``payment_day`` (which then must agree or be left out)."""
    business_day_convention: Literal["following", "modified_following"] = "following"
    report_date_rule: ReportDateRule = ReportDateRule()

    @field_validator("pool_id")
    @classmethod
    def _safe_pool_id(cls, value: str) -> str:
        if not IDENTIFIER.fullmatch(value):
            raise ValueError(
                "pool_id must be 1-64 letters, digits, '.', '_' or '-' (it becomes a path)"
            )
        if value in {".", ".."}:
            raise ValueError("pool_id must not be '.' or '..'")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> DealTerms:
        if self.closing_date < self.cutoff_date:
            raise ValueError("closing_date is before cutoff_date")
        if self.revolving_period_end is not None and self.revolving_period_end < self.cutoff_date:
            raise ValueError("revolving_period_end is before cutoff_date")
        return self

    @model_validator(mode="after")
    def _payment_rule_agrees(self) -> DealTerms:
        rule = self.payment_date_rule
        if (
            rule is not None
            and "payment_day" in self.model_fields_set
            and rule.day_of_month != self.payment_day
        ):
            raise ValueError(
                f"payment_day ({self.payment_day}) disagrees with "
                f"payment_date_rule.day_of_month ({rule.day_of_month}); give one of them"
            )
        return self

    @model_validator(mode="after")
    def _interest_starts_before_the_first_payment(self) -> DealTerms:
        # Period 1 is the month after the cut-off month; its interest accrues from
        # the closing date to its payment date (before any business-day move).
        rule = self.payment_rule
        month = self.cutoff_date.year * 12 + self.cutoff_date.month + rule.months_after
        first_payment = date(month // 12, month % 12 + 1, rule.day_of_month)
        if self.closing_date >= first_payment:
            raise ValueError(
                f"closing_date {self.closing_date} is not before the first payment date "
                f"{first_payment}: period 1's interest would accrue over no time"
            )
        return self

    @model_validator(mode="after")
    def _triggers_can_fire(self) -> DealTerms:
        for trigger in self.triggers:
            reason = structurally_zero(trigger.metric, self.definitions.default_dpd)
            if reason is not None:
                raise ValueError(f"trigger {trigger.name!r} can never fire: {reason}")
        return self

    @property
    def payment_rule(self) -> PaymentDateRule:
        """The payment-date rule in force (``payment_day`` of the next month by default)."""
        if self.payment_date_rule is not None:
            return self.payment_date_rule
        return PaymentDateRule(day_of_month=self.payment_day, months_after=1)

    @property
    def is_revolving(self) -> bool:
        return self.revolving_period_end is not None

    @property
    def notes_balance(self) -> int:
        return sum(t.original_balance for t in self.tranches)
