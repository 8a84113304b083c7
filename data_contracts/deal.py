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


class Trigger(_Strict):
    """A performance test; breaching it has ``consequence``."""

    name: str = Field(min_length=1, max_length=80)
    metric: Literal[
        "cumulative_default_rate",
        "cumulative_net_loss_rate",
        "delinquency_90_plus_share",
        "delinquency_30_plus_share",
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

    @model_validator(mode="after")
    def _charge_off_after_default(self) -> Definitions:
        if self.charge_off_dpd < self.default_dpd:
            raise ValueError("charge_off_dpd must not be below default_dpd")
        return self


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

    # -- deliveries (publication gate) --
    delivery_calendar: Literal["daily", "business_days", "month_end"] = "daily"
    """Which business dates must have a complete delivery: every day (consumer credit repays
    on weekends), Shanghai exchange sessions, or month-ends (a monthly servicer tape)."""

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

    @property
    def is_revolving(self) -> bool:
        return self.revolving_period_end is not None

    @property
    def notes_balance(self) -> int:
        return sum(t.original_balance for t in self.tranches)
