"""Typed model of a deal's terms (``landing/deals/<pool_id>.yaml``).

The YAML states money in yuan (strings or numbers with at most two decimals);
the model holds integer fen so that no float ever touches an amount.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Final, Literal

import pycountry
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

from transforms.triggers import TriggerMetric, threshold_in_force

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


# -- Exchange disclosure terms: participants, ratings, non-numeric events ------------------


class Participant(_Strict):
    """An institution taking part in the plan, named in each language."""

    name: str = Field(min_length=1, max_length=120)
    name_zh: str | None = Field(default=None, max_length=120)


class Participants(_Strict):
    """The plan's participants (管理人, 托管人, 资产服务机构/原始权益人, 评级机构)."""

    manager: Participant | None = None
    custodian: Participant | None = None
    servicer: Participant | None = None
    originator: Participant | None = None
    rating_agency: Participant | None = None


_Date = date
"""``date`` under another name, for models with a field called ``date``."""


class RatingAction(_Strict):
    """A change of a class's rating by an agency."""

    date: _Date
    agency: str = Field(min_length=1, max_length=80)
    from_rating: str = Field(min_length=1, max_length=16)
    to_rating: str = Field(min_length=1, max_length=16)


class ClassRatings(_Strict):
    """A class's ratings: at issue, now, by which agency, and every action since issue."""

    agency: str | None = Field(default=None, max_length=80)
    initial: str | None = Field(default=None, max_length=16)
    current: str | None = Field(default=None, max_length=16)
    actions: tuple[RatingAction, ...] = ()


class DealEvent(_Strict):
    """A non-numeric event the deal documents list, with its status as the manager reports it."""

    kind: Literal["event_of_default", "perfection_event", "servicer_termination"]
    name: str = Field(min_length=1, max_length=120)
    name_zh: str | None = Field(default=None, max_length=120)
    status: Literal["not_occurred", "occurred", "cured"] = "not_occurred"
    date: _Date | None = None
    """When it occurred or was cured (required unless it has not occurred)."""

    @model_validator(mode="after")
    def _dated_when_it_happened(self) -> DealEvent:
        if self.status != "not_occurred" and self.date is None:
            raise ValueError(f"event {self.name!r}: status {self.status} needs a date")
        return self


class ForecastCollection(_Strict):
    """Collections the offering documents forecast for a collection period (YYYY-MM)."""

    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    amount: Fen = Field(ge=0)


class Tranche(_Strict):
    """One class of notes."""

    class_name: str = Field(alias="class", min_length=1, max_length=16)
    kind: Literal["senior", "mezzanine", "subordinated"]
    original_balance: Fen = Field(gt=0)
    coupon: Rate
    rating: str | None = None
    code: str | None = None
    # Exchange disclosure terms of the class (all optional).
    short_name: str | None = Field(default=None, max_length=40)
    ratings: ClassRatings | None = None
    expected_maturity_date: date | None = None
    legal_maturity_date: date | None = None

    @property
    def initial_rating(self) -> str | None:
        """The rating at issue: ``ratings.initial``, else the plain ``rating``."""
        return self.ratings.initial if self.ratings and self.ratings.initial else self.rating

    @property
    def current_rating(self) -> str | None:
        """The rating now: the latest rating action's, else ``ratings.current``, else at issue."""
        if self.ratings is not None:
            if self.ratings.actions:
                return max(self.ratings.actions, key=lambda a: a.date).to_rating
            if self.ratings.current:
                return self.ratings.current
        return self.initial_rating


class Fees(_Strict):
    """Senior fees, as annual rates on the opening pool balance."""

    trustee: Rate = Decimal("0.0005")
    servicer: Rate = Decimal("0.0050")
    # Exchange-plan expenses (DOMAIN.md section 4), each 0 unless the deal names it.
    management: Rate = Decimal(0)
    """管理人报酬 beyond the trustee fee (the manager holds the trustee's role), annual."""
    custody: Rate = Decimal(0)
    """托管费, annual, on the opening pool balance."""
    tax_on_interest: Rate = Decimal(0)
    """VAT and surcharges on the period's interest income (e.g. 0.0326, simplified regime)."""


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
    metric: TriggerMetric
    comparison: Literal["above", "below"] = "above"
    threshold: Decimal | None = None
    schedule: tuple[ThresholdStep, ...] = ()
    consequence: Literal["early_amortisation", "sequential_pay", "report_only"] = (
        "early_amortisation"
    )
    name_zh: str | None = Field(default=None, max_length=80)

    @model_validator(mode="after")
    def _one_threshold_form(self) -> Trigger:
        if (self.threshold is None) == (not self.schedule):
            raise ValueError(f"trigger {self.name!r}: give exactly one of threshold or schedule")
        return self

    def threshold_for(self, period_number: int) -> Decimal:
        """The threshold in force for a 1-based collection period number."""
        if self.threshold is not None:
            return self.threshold
        return threshold_in_force(self.schedule, period_number)


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
        # DOMAIN.md: charge-off comes after default; equal values would make them one day.
        if self.charge_off_dpd <= self.default_dpd:
            raise ValueError(
                f"definitions.charge_off_dpd ({self.charge_off_dpd}) must be greater than "
                f"definitions.default_dpd ({self.default_dpd})"
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


# --- servicer tapes: currency, regions, balance source, reconciliation -----------------------


def is_iso_currency(code: str) -> bool:
    """``code`` is an ISO 4217 currency code (CNY, USD, TWD)."""
    return pycountry.currencies.get(alpha_3=code) is not None


def is_iso_region(code: str) -> bool:
    """``code`` is an ISO 3166-1 alpha-2 country (TW) or ISO 3166-2 subdivision (CN-GD)."""
    if "-" in code:
        return pycountry.subdivisions.get(code=code) is not None  # type: ignore[no-untyped-call]  # pycountry leaves this untyped
    return len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None


class ReconciliationTolerances(_Strict):
    """How far engine and servicer may differ before a difference is listed."""

    balance: Fen = 0
    """Balance difference allowed, in yuan in the YAML (0: to the fen)."""
    dpd_days: int = Field(default=0, ge=0, le=90)


class TapeTerms(_Strict):
    """Deal fields for servicer tapes, currencies and regions (mixed into DealTerms)."""

    allowed_regions: tuple[str, ...] = ("CN",)
    """ISO 3166 codes or prefixes a loan's region must start with (CN, US-CA, TW)."""
    balance_source: Literal["engine", "servicer"] = "engine"
    """Which balance the disclosure uses where a loan has both repayments and a tape."""
    reconciliation: ReconciliationTolerances = ReconciliationTolerances()

    @field_validator("allowed_regions")
    @classmethod
    def _iso_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if not is_iso_region(code)]
        if unknown:
            raise ValueError(
                f"allowed_regions: {unknown} are not ISO 3166 country or subdivision codes"
            )
        if not value:
            raise ValueError("allowed_regions: name at least one country or subdivision")
        return value

    def region_allowed(self, region: str) -> bool:
        """``region`` is one of the allowed codes or lies within one (US-CA within US)."""
        return any(region == code or region.startswith(f"{code}-") for code in self.allowed_regions)


class DealTerms(TapeTerms):
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
    # Exchange disclosure terms (all optional).
    participants: Participants = Participants()
    events: tuple[DealEvent, ...] = ()
    forecast_collections: tuple[ForecastCollection, ...] = ()

    # Dates and interest conventions (DOMAIN.md "Dates").
    day_count: Literal["ACT/365", "ACT/360", "30/360"] = "ACT/365"
    payment_date_rule: PaymentDateRule | None = None
    """When given, wins over ``payment_day`` (which then must agree or be left out)."""
    business_day_convention: Literal["following", "modified_following"] = "following"
    report_date_rule: ReportDateRule = ReportDateRule()

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if not is_iso_currency(value):
            raise ValueError(f"currency {value!r} is not an ISO 4217 code (CNY, USD, TWD)")
        return value

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

    # -- plausibility (hostile input): dates in a window, notes sized on the pool; checked
    # first, so a date far out of range is named as such rather than by a rule it breaks --
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

    @model_validator(mode="after")
    def _consistent(self) -> DealTerms:
        # The rules between fields, in this order: the first one broken is the error.
        for rule in (
            self._dates_out_of_order,
            self._payment_rule_disagreement,
            self._first_payment_too_early,
            self._trigger_that_cannot_fire,
        ):
            problem = rule()
            if problem is not None:
                raise ValueError(problem)
        return self

    def _dates_out_of_order(self) -> str | None:
        if self.closing_date < self.cutoff_date:
            return "closing_date is before cutoff_date"
        if self.revolving_period_end is not None and self.revolving_period_end < self.cutoff_date:
            return "revolving_period_end is before cutoff_date"
        return None

    def _payment_rule_disagreement(self) -> str | None:
        rule = self.payment_date_rule
        if (
            rule is not None
            and "payment_day" in self.model_fields_set
            and rule.day_of_month != self.payment_day
        ):
            return (
                f"payment_day ({self.payment_day}) disagrees with "
                f"payment_date_rule.day_of_month ({rule.day_of_month}); give one of them"
            )
        return None

    def _first_payment_too_early(self) -> str | None:
        # Period 1 is the month after the cut-off month; its interest accrues from
        # the closing date to its payment date (before any business-day move).
        rule = self.payment_rule
        month = self.cutoff_date.year * 12 + self.cutoff_date.month + rule.months_after
        first_payment = date(month // 12, month % 12 + 1, rule.day_of_month)
        if self.closing_date >= first_payment:
            return (
                f"closing_date {self.closing_date} is not before the first payment date "
                f"{first_payment}: period 1's interest would accrue over no time"
            )
        return None

    def _trigger_that_cannot_fire(self) -> str | None:
        for trigger in self.triggers:
            reason = structurally_zero(trigger.metric, self.definitions.default_dpd)
            if reason is not None:
                return f"trigger {trigger.name!r} can never fire: {reason}"
        return None

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
