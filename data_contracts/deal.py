"""Typed model of a deal's terms (``landing/deals/<pool_id>.yaml``).

The YAML states money in yuan (strings or numbers with at most two decimals);
the model holds integer fen so that no float ever touches an amount.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

IDENTIFIER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""Identifiers become parts of output paths: nothing else is let through."""


def _yuan_to_fen(value: object) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError("an amount in yuan is required")
    text = str(value).replace(",", "").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("not an amount in yuan") from None
    if not amount.is_finite() or abs(amount) >= MAX_YUAN:
        raise ValueError(f"amount does not fit the money type (below {MAX_YUAN} yuan)")
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

    # -- plausibility (hostile input): dates in a window, notes sized on the pool --
    cutoff_pool_balance: Fen | None = Field(default=None, gt=0)
    """The pool's principal balance at the cut-off date, in yuan."""
    tranche_tolerance: Rate = Decimal("0.01")
    """How far the tranches' total may be from ``cutoff_pool_balance``, as a share of it."""

    @model_validator(mode="after")
    def _plausible(self, info: ValidationInfo) -> DealTerms:
        # The window may be narrowed by the caller: context {"min_date": ..., "max_date": ...}.
        context = info.context if isinstance(info.context, dict) else {}
        earliest = max(PLAUSIBLE_FROM, context.get("min_date", PLAUSIBLE_FROM))
        latest = min(PLAUSIBLE_TO, context.get("max_date", PLAUSIBLE_TO))
        for name in _DATE_FIELDS:
            value = getattr(self, name)
            if value is not None and not earliest <= value <= latest:
                raise ValueError(
                    f"{name} {value.isoformat()} is outside the plausible window "
                    f"{earliest.isoformat()} .. {latest.isoformat()}"
                )
        pool = self.cutoff_pool_balance
        if pool is not None:
            gap = abs(self.notes_balance - pool)
            if gap > self.tranche_tolerance * pool:
                raise ValueError(
                    f"tranches total {_yuan(self.notes_balance)} yuan, not within "
                    f"{self.tranche_tolerance:.2%} of cutoff_pool_balance {_yuan(pool)} yuan"
                )
        return self


MAX_YUAN: Final = Decimal(10) ** 13
"""Amounts are Int64 fen from staging on; 13 digits of yuan is the money type's range."""

PLAUSIBLE_FROM: Final = date(1990, 1, 1)
PLAUSIBLE_TO: Final = date(2100, 12, 31)
"""The window a deal's dates must fall in (a typo such as 0202 or 2202 is refused)."""

_DATE_FIELDS: Final = ("cutoff_date", "closing_date", "revolving_period_end", "legal_final_date")


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def describe_errors(where: str, exc: ValidationError, *, shown: int = 10) -> list[str]:
    """One line per problem of a deal file: the file, the field and the bad value.

    Args:
        where: The file, as the operator should see it (``landing/deals/HB-1.yaml``).
        exc: What the typed model refused.
        shown: At most this many lines; the last says how many more there are.

    Returns:
        Lines like ``landing/deals/HB-1.yaml: field tranches.0.coupon: Input should be
        less than or equal to 1 (got '3.9')``.
    """
    lines = []
    problems = exc.errors(include_url=False)
    for problem in problems[:shown]:
        message = str(problem["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in problem["loc"])
        if field:
            got = _shown_value(problem.get("input"))
            lines.append(f"{where}: field {field}: {message} (got {got})")
        else:
            lines.append(f"{where}: {message}")
    if len(problems) > shown:
        lines.append(f"{where}: and {len(problems) - shown} more problems")
    return lines


def _shown_value(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
