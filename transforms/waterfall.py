"""The trust's sequential waterfall over actual collections, as a fold over periods.

Each collection period of a pool (oldest first) is one step of a pure fold:
``step(state, period) -> (state', outcome)``. The state carries what links one
period to the next: the note balances, unpaid interest and fees, the cash
retained in the principal account, the principal deficiency (defaults not yet
covered by income) and whether an early-amortisation trigger has breached.

Order of payments (DOMAIN.md "Tranches, waterfall, triggers"):

Income (interest, borrower fees and penalties, recoveries) pays, in order:

1. taxes (the deal's tax rate x the period's interest collections: VAT and
   surcharges on the plan's interest income), then senior fees: trustee,
   management (管理人报酬), custody (托管费), servicer (annual rate x opening
   pool balance x the day-count fraction of the interest period; purchases are
   not in the base), earlier shortfalls of any of them paid with the trustee's;
   a line whose rate is zero is left out of the order of payments;
2. interest of each rated class in order (A, then B, ...: balance at the start
   of the period x coupon x the day-count fraction, half-up to the fen), with
   earlier shortfalls carried forward and paid first next time;
3. the default top-up: income up to the period's defaulted principal (plus
   any earlier uncovered defaults) moves to the principal account;
4. the subordinated class: interest at its coupon when it has one (paid only
   from what is left, no shortfall carried), then the rest as its residual
   (``residual_paid``, never called interest); without a subordinated class
   the rest is released to the seller.

Principal funds (scheduled and unscheduled principal collections, the
repurchase proceeds of loans the seller bought back at their outstanding
principal, the default top-up and cash retained from earlier periods):

- during the revolving period: pay the seller at par for the new drawings on
  revolving accounts already in the pool (新增用款: the trust owns those
  accounts' receivables, so it buys what they draw first), then for the
  period's actual revolving purchases (持续购买, at their purchase price); funds
  left over are retained in the principal account; purchases beyond the funds
  are reported as unfunded (paid outside the trust), drawings beyond them as
  funded by the seller;
- otherwise: amortise the classes in order (A, then B, ..., then the
  subordinated class); anything left after every class is repaid is released.
  Purchases made after the revolving period are reported as unfunded. New
  drawings after the revolving period (after its end date or an early
  amortisation) are funded by the seller (the seller's interest): they enter
  the pool balance and never reduce the principal available to the notes.

The interest period runs from the previous payment date (period 1: the
closing date) to the period's payment date (:mod:`transforms.dates`); terms
without date rules accrue a regular 30/360 month (1/12 of a year).

The revolving period lasts while the period ends on or before the deal's
``revolving_period_end`` and no ``early_amortisation`` trigger has breached
(DOMAIN.md "Early amortisation"): triggers are tested on the period's
metrics and its excess spread before principal is distributed, and a breach
in period ``n`` switches the principal waterfall to sequential amortisation
from period ``n`` on, for good. In the breach period the purchases already
made in it (dated before the breach was known, at the period end) are paid
and the rest of the principal funds amortise the notes; from the next period
on no purchase is paid (the flows quarantine later purchase events, so any
that reach the waterfall are reported as unfunded).

Excess spread (annualised) = (interest + borrower fees - senior fees due -
rated-class interest due) / opening pool balance x 12 (no purchases in the base).

Credit enhancement at the period end: collateral = closing pool balance +
principal account; a class's subordination = balance of the classes below it
/ collateral; its credit enhancement = (collateral - balance of itself and
the classes above it) / collateral; overcollateralisation = collateral - all
notes (also as a ratio of collateral).

Accounts (DOMAIN.md section 4): every period reconciles opening + inflow -
outflow = closing to the fen for the collection account (collections and
repurchase proceeds in, swept to the other two out; empty at each period
end), the principal account (principal collections, repurchase proceeds and
the default top-up in; drawings, purchases, class principal and releases out; its
closing balance is the cash awaiting purchase in the collateral) and the
income account (income in, every income line out). The deals have no reserve
account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from fractions import Fraction
from typing import Any, Final, Literal

import polars as pl

from transforms.dates import DateRules, accrue, interest_period
from transforms.triggers import TRIGGER_METRICS, TriggerResult, TriggerTerms, evaluate_trigger

MONTHS_PER_YEAR: Final = 12
PPM: Final = 1_000_000
TrancheKind = Literal["senior", "mezzanine", "subordinated"]


@dataclass(frozen=True)
class TrancheTerms:
    """One class of notes, in payment priority order within :class:`WaterfallTerms`."""

    class_name: str
    kind: TrancheKind
    original_balance: int
    coupon_ppm: int


@dataclass(frozen=True)
class WaterfallTerms:
    """What the waterfall needs from the deal.

    Attributes:
        pool_id: The pool.
        cutoff_date: Cut-off date; period 1 is the month after the cut-off month.
        tranches: Classes in priority order (senior first, subordinated last).
        trustee_fee_ppm: Trustee fee, annual, parts per million of the pool balance.
        servicer_fee_ppm: Servicer fee, likewise.
        revolving_period_end: Last day of the revolving period (None: static pool).
        triggers: Performance triggers.
        date_rules: Payment dates and day count (None: a regular 30/360 month).
    """

    pool_id: str
    cutoff_date: date
    tranches: tuple[TrancheTerms, ...]
    trustee_fee_ppm: int = 0
    servicer_fee_ppm: int = 0
    revolving_period_end: date | None = None
    triggers: tuple[TriggerTerms, ...] = ()
    date_rules: DateRules | None = None
    management_fee_ppm: int = 0
    """管理人报酬 beyond the trustee fee, annual, parts per million of the pool balance."""
    custody_fee_ppm: int = 0
    """托管费, likewise."""
    tax_on_interest_ppm: int = 0
    """Taxes, parts per million of the period's interest collections (not annualised)."""

    def year_fraction(self, period_end: date) -> Fraction:
        """The day-count fraction of the interest period paid for ``period_end``."""
        if self.date_rules is None:
            return Fraction(1, MONTHS_PER_YEAR)
        previous = None
        if self.period_number(period_end) > 1:
            previous = date(period_end.year, period_end.month, 1) - timedelta(days=1)
        return interest_period(period_end, previous, self.date_rules).year_fraction

    def __post_init__(self) -> None:
        if not self.tranches:
            raise ValueError("a waterfall needs at least one class of notes")
        kinds = [t.kind for t in self.tranches]
        if "subordinated" in kinds and kinds.index("subordinated") != len(kinds) - 1:
            raise ValueError("the subordinated class must come last and only once")

    def period_number(self, period_end: date) -> int:
        """1-based collection period number of the month ending ``period_end``.

        Args:
            period_end: A period end.

        Returns:
            Months from the cut-off month to the period's month.
        """
        return (period_end.year - self.cutoff_date.year) * MONTHS_PER_YEAR + (
            period_end.month - self.cutoff_date.month
        )


@dataclass(frozen=True)
class PeriodInputs:
    """A pool's figures for one collection period (amounts in fen)."""

    period_end: date
    opening_balance: int
    purchased_principal: int
    closing_balance: int
    scheduled_principal: int
    unscheduled_principal: int
    defaulted_principal: int
    interest: int
    fees: int
    recoveries: int
    removed_principal: int = 0
    """Principal of loans bought back by the seller: paid in as repurchase proceeds."""
    purchased_count: int = 0
    purchase_price: int = 0
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    """Trigger metrics other than excess spread (cumulative default rate, ...)."""
    new_drawings: int = 0
    """New drawings on revolving accounts already in the pool (新增用款), at par."""


@dataclass(frozen=True)
class WaterfallState:
    """What one period passes to the next."""

    balances: tuple[int, ...]
    interest_arrears: tuple[int, ...]
    fee_arrears: int = 0
    principal_account: int = 0
    principal_deficiency: int = 0
    early_amortisation: bool = False
    early_amortisation_period: int | None = None

    @classmethod
    def at_closing(cls, terms: WaterfallTerms) -> WaterfallState:
        """Every class at its original balance, no arrears, no cash.

        Args:
            terms: The deal's waterfall terms.

        Returns:
            The state before the first period.
        """
        return cls(
            balances=tuple(t.original_balance for t in terms.tranches),
            interest_arrears=tuple(0 for _ in terms.tranches),
        )


@dataclass(frozen=True)
class TranchePayment(TrancheTerms):
    """One class's payments in one period (fen), after its terms."""

    opening_balance: int
    interest_due: int
    interest_paid: int
    interest_shortfall: int
    principal_paid: int
    closing_balance: int
    residual_paid: int = 0
    """What the subordinated class receives beyond its coupon (0 for rated classes)."""


AccountName = Literal["collection", "principal", "income"]


@dataclass(frozen=True)
class AccountFlow:
    """One account's movement in one period (fen); it reconciles or cannot be built."""

    account: AccountName
    opening: int
    inflow: int
    outflow: int
    closing: int

    def __post_init__(self) -> None:
        if self.opening + self.inflow - self.outflow != self.closing:
            raise ValueError(
                f"account {self.account} does not reconcile: {self.opening} + {self.inflow}"
                f" - {self.outflow} != {self.closing}"
            )


@dataclass(frozen=True)
class Expenses:
    """Taxes and fees paid from income in one period (fen)."""

    taxes: int = 0
    trustee_fee: int = 0
    management_fee: int = 0
    custody_fee: int = 0
    servicer_fee: int = 0


@dataclass(frozen=True)
class WaterfallStep:
    """One line of the order of payments."""

    order: int
    account: Literal["income", "principal"]
    item: str
    available: int
    due: int
    paid: int


@dataclass(frozen=True)
class PeriodOutcome:
    """Everything the waterfall decided for one period."""

    period_end: date
    period_number: int
    revolving: bool
    tranches: tuple[TranchePayment, ...]
    steps: tuple[WaterfallStep, ...]
    triggers: tuple[TriggerResult, ...]
    available_income: int
    senior_fees_due: int
    senior_fees_paid: int
    note_interest_due: int
    default_top_up: int
    principal_funds: int
    purchase_price: int
    purchases_paid: int
    purchases_unfunded: int
    released: int
    principal_account: int
    principal_deficiency: int
    closing_pool_balance: int
    excess_spread: float | None
    early_amortisation_breach: bool
    expenses: Expenses = Expenses()
    accounts: tuple[AccountFlow, ...] = ()
    new_drawings: int = 0
    """The period's new drawings on revolving accounts in the pool."""
    drawings_paid: int = 0
    """Of them, paid to the seller from principal funds (revolving period only)."""
    drawings_seller_funded: int = 0
    """Of them, funded by the seller: after the revolving period, or beyond the funds."""

    @property
    def collateral_balance(self) -> int:
        """Closing pool balance plus cash in the principal account."""
        return self.closing_pool_balance + self.principal_account

    @property
    def notes_balance(self) -> int:
        """Sum of the classes' closing balances."""
        return sum(t.closing_balance for t in self.tranches)


class _Ledger:
    """Pays from one account, recording each step."""

    def __init__(
        self, account: Literal["income", "principal"], cash: int, steps: list[WaterfallStep]
    ) -> None:
        self.account = account
        self.cash = cash
        self.steps = steps

    def pay(self, item: str, due: int) -> int:
        paid = min(self.cash, max(due, 0))
        self.steps.append(
            WaterfallStep(len(self.steps) + 1, self.account, item, self.cash, due, paid)
        )
        self.cash -= paid
        return paid


def _pay_drawings(principal: _Ledger, drawings: int) -> int:
    """Pay the seller at par for the period's new drawings (a line only when there are any)."""
    return principal.pay("new_drawings", drawings) if drawings else 0


def step(
    state: WaterfallState, period: PeriodInputs, terms: WaterfallTerms
) -> tuple[WaterfallState, PeriodOutcome]:
    """Run one period of the waterfall.

    Args:
        state: The state after the previous period (:meth:`WaterfallState.at_closing` first).
        period: The period's collections and metrics.
        terms: The deal's waterfall terms.

    Returns:
        The state for the next period and what happened in this one.
    """
    number = terms.period_number(period.period_end)
    in_revolving_period = (
        terms.revolving_period_end is not None
        and period.period_end <= terms.revolving_period_end
        and not state.early_amortisation
    )
    steps: list[WaterfallStep] = []
    base = period.opening_balance
    fraction = terms.year_fraction(period.period_end)
    balances = list(state.balances)
    arrears = list(state.interest_arrears)
    classes = terms.tranches

    income = _Ledger("income", period.interest + period.fees + period.recoveries, steps)
    available_income = income.cash
    taxes_due = accrue(period.interest, terms.tax_on_interest_ppm, Fraction(1))
    trustee_due = accrue(base, terms.trustee_fee_ppm, fraction)
    management_due = accrue(base, terms.management_fee_ppm, fraction)
    custody_due = accrue(base, terms.custody_fee_ppm, fraction)
    servicer_due = accrue(base, terms.servicer_fee_ppm, fraction)
    fees_due = taxes_due + trustee_due + management_due + custody_due + servicer_due
    taxes_paid = income.pay("taxes", taxes_due) if terms.tax_on_interest_ppm else 0
    # Earlier fee shortfalls are owed to the trustee first.
    trustee_paid = income.pay("trustee_fee", trustee_due + state.fee_arrears)
    management_paid = (
        income.pay("management_fee", management_due) if terms.management_fee_ppm else 0
    )
    custody_paid = income.pay("custody_fee", custody_due) if terms.custody_fee_ppm else 0
    servicer_paid = income.pay("servicer_fee", servicer_due)
    expenses = Expenses(taxes_paid, trustee_paid, management_paid, custody_paid, servicer_paid)
    fees_paid = taxes_paid + trustee_paid + management_paid + custody_paid + servicer_paid
    fee_arrears = fees_due + state.fee_arrears - fees_paid

    interest_due = [
        accrue(b, t.coupon_ppm, fraction) for b, t in zip(balances, classes, strict=True)
    ]
    interest_paid = [0] * len(classes)
    note_interest_due = 0
    for i, tranche in enumerate(classes):
        if tranche.kind == "subordinated":
            continue
        note_interest_due += interest_due[i]
        interest_paid[i] = income.pay(
            f"class_{tranche.class_name}_interest", interest_due[i] + arrears[i]
        )

    # Triggers test the period's figures before principal is distributed, so a
    # breach changes this period's principal waterfall (DOMAIN.md).
    excess = (
        (period.interest + period.fees - fees_due - note_interest_due) / base * MONTHS_PER_YEAR
        if base
        else None
    )
    metrics = {**period.metrics, "excess_spread": excess}
    results = tuple(evaluate_trigger(t, number, metrics) for t in terms.triggers)
    accelerating = any(r.breached and r.consequence == "early_amortisation" for r in results)
    revolving = in_revolving_period and not accelerating

    deficiency = state.principal_deficiency + period.defaulted_principal
    top_up = income.pay("default_top_up", deficiency)
    deficiency -= top_up

    released = 0
    residual_paid = [0] * len(classes)
    if classes[-1].kind == "subordinated":
        last = classes[-1]
        if last.coupon_ppm:
            interest_paid[-1] = income.pay(f"class_{last.class_name}_interest", interest_due[-1])
        residual_paid[-1] = income.pay(f"class_{last.class_name}_residual", income.cash)
    else:
        released += income.pay("residual_released", income.cash)
    for i, tranche in enumerate(classes):
        if tranche.kind != "subordinated":
            arrears[i] = arrears[i] + interest_due[i] - interest_paid[i]

    principal = _Ledger(
        "principal",
        period.scheduled_principal
        + period.unscheduled_principal
        + period.removed_principal
        + top_up
        + state.principal_account,
        steps,
    )
    principal_funds = principal.cash
    principal_in = principal_funds - state.principal_account
    principal_paid = [0] * len(classes)
    purchases_paid = 0
    drawings_paid = 0
    if revolving:
        drawings_paid = _pay_drawings(principal, period.new_drawings)
        purchases_paid = principal.pay("revolving_purchases", period.purchase_price)
        retained = principal.cash
    else:
        if in_revolving_period:
            # The breach period: drawings and purchases made before the breach was known
            # are paid.
            drawings_paid = _pay_drawings(principal, period.new_drawings)
            purchases_paid = principal.pay("revolving_purchases", period.purchase_price)
        for i, tranche in enumerate(classes):
            principal_paid[i] = principal.pay(f"class_{tranche.class_name}_principal", balances[i])
        released += principal.pay("principal_released", principal.cash)
        retained = principal.cash
    purchases_unfunded = period.purchase_price - purchases_paid
    collected = principal_in - top_up + available_income
    accounts = (
        AccountFlow("collection", 0, collected, collected, 0),
        AccountFlow(
            "principal",
            state.principal_account,
            principal_in,
            principal_funds - retained,
            retained,
        ),
        AccountFlow("income", 0, available_income, available_income - income.cash, income.cash),
    )

    tranches = tuple(
        TranchePayment(
            **asdict(t),
            opening_balance=balances[i],
            interest_due=interest_due[i],
            interest_paid=interest_paid[i],
            interest_shortfall=arrears[i] if t.kind != "subordinated" else 0,
            principal_paid=principal_paid[i],
            closing_balance=balances[i] - principal_paid[i],
            residual_paid=residual_paid[i],
        )
        for i, t in enumerate(classes)
    )
    outcome = PeriodOutcome(
        period_end=period.period_end,
        period_number=number,
        revolving=revolving,
        tranches=tranches,
        steps=tuple(steps),
        triggers=results,
        available_income=available_income,
        senior_fees_due=fees_due,
        senior_fees_paid=fees_paid,
        note_interest_due=note_interest_due,
        default_top_up=top_up,
        principal_funds=principal_funds,
        purchase_price=period.purchase_price,
        purchases_paid=purchases_paid,
        purchases_unfunded=purchases_unfunded,
        released=released,
        principal_account=retained,
        principal_deficiency=deficiency,
        closing_pool_balance=period.closing_balance,
        excess_spread=excess,
        early_amortisation_breach=accelerating,
        expenses=expenses,
        accounts=accounts,
        new_drawings=period.new_drawings,
        drawings_paid=drawings_paid,
        drawings_seller_funded=period.new_drawings - drawings_paid,
    )
    early = state.early_amortisation or accelerating
    next_state = replace(
        state,
        balances=tuple(t.closing_balance for t in tranches),
        interest_arrears=tuple(t.interest_shortfall for t in tranches),
        fee_arrears=fee_arrears,
        principal_account=retained,
        principal_deficiency=deficiency,
        early_amortisation=early,
        early_amortisation_period=(
            state.early_amortisation_period
            if state.early_amortisation_period is not None or not accelerating
            else number
        ),
    )
    return next_state, outcome


def fold_waterfall(periods: Sequence[PeriodInputs], terms: WaterfallTerms) -> list[PeriodOutcome]:
    """Run the waterfall over a pool's periods, oldest first.

    Args:
        periods: One entry per collection period (sorted here by period end).
        terms: The deal's waterfall terms.

    Returns:
        One outcome per period, in period order.

    Raises:
        ValueError: If two entries share a period end.
    """
    ordered = sorted(periods, key=lambda p: p.period_end)
    ends = [p.period_end for p in ordered]
    if len(set(ends)) != len(ends):
        raise ValueError("each period may appear only once")
    state = WaterfallState.at_closing(terms)
    outcomes = []
    for period in ordered:
        state, outcome = step(state, period, terms)
        outcomes.append(outcome)
    return outcomes


# --------------------------------------------------------------------------- frames

ROLLFORWARD_INPUTS: Final = (
    "opening_balance",
    "purchased_principal",
    "closing_balance",
    "scheduled_principal",
    "unscheduled_principal",
    "defaulted_principal",
    "removed_principal",
    "purchased_count",
    "new_drawings",
)
"""Inputs read from the roll-forward rows."""
COLLECTION_INPUTS: Final = ("interest", "fees", "recoveries")
"""Inputs read from the collections rows."""
INPUT_COLUMNS: Final = (*ROLLFORWARD_INPUTS, *COLLECTION_INPUTS, "purchase_price")
"""Every amount and count of :class:`PeriodInputs` (the price from :func:`revolving_purchases`)."""
METRIC_COLUMNS: Final = tuple(m for m in TRIGGER_METRICS if m != "excess_spread")
"""Trigger metrics read from the metric rows (excess spread is the waterfall's own)."""


def revolving_purchases(pool_assets: pl.LazyFrame, period_ends: Sequence[date]) -> pl.LazyFrame:
    """Purchase events and prices per pool and collection period.

    Args:
        pool_assets: ``schema.POOL_ASSETS`` rows.
        period_ends: Month-ends; a period runs from the day after the previous
            month-end to its end.

    Returns:
        Columns ``pool_id``, ``period_end``, Int64 ``purchase_events`` and
        ``purchase_price`` (fen; events without a price add nothing),
        ``unpriced_events``; only periods with ``added`` events.
    """
    ends = pl.LazyFrame(
        {"period_end": sorted(set(period_ends))}, schema={"period_end": pl.Date}
    ).with_columns(period_start=pl.col("period_end").dt.month_start())
    return (
        pool_assets.filter(pl.col("event") == "added")
        .with_columns(period_end=pl.col("event_date").dt.month_end())
        .join(ends, on="period_end", how="inner")
        .group_by("pool_id", "period_end")
        .agg(
            purchase_events=pl.len().cast(pl.Int64),
            purchase_price=pl.col("purchase_price").sum().cast(pl.Int64),
            unpriced_events=pl.col("purchase_price").is_null().sum().cast(pl.Int64),
        )
        .sort("pool_id", "period_end")
    )


def waterfall_inputs(
    rollforward: pl.LazyFrame,
    collections: pl.LazyFrame,
    performance: pl.LazyFrame,
    delinquency_shares: pl.LazyFrame,
    purchases: pl.LazyFrame,
) -> pl.LazyFrame:
    """One row per pool and period with every input of :class:`PeriodInputs`.

    Args:
        rollforward: :func:`~transforms.pool_metrics.pool_rollforward` rows.
        collections: :func:`~transforms.pool_metrics.pool_collections` rows.
        performance: :func:`~transforms.pool_metrics.pool_performance` rows.
        delinquency_shares: :func:`~transforms.pool_metrics.delinquency_shares` rows.
        purchases: :func:`revolving_purchases` rows.

    Returns:
        Columns ``pool_id``, ``period_end``, :data:`INPUT_COLUMNS` (Int64) and
        :data:`METRIC_COLUMNS` (Float64), sorted by ``pool_id``, ``period_end``.
    """
    keys = ["pool_id", "period_end"]
    return (
        rollforward.select(*keys, *ROLLFORWARD_INPUTS)
        .join(collections.select(*keys, *COLLECTION_INPUTS), on=keys, how="left")
        .join(
            performance.select(
                *keys, "cumulative_default_rate", "cumulative_net_loss_rate", "payment_rate"
            ),
            on=keys,
            how="left",
        )
        .join(
            delinquency_shares.select(
                *keys,
                "delinquency_90_plus_share",
                "delinquency_30_plus_share",
                "delinquency_ratio",
            ),
            on=keys,
            how="left",
        )
        .join(purchases.select(*keys, "purchase_price"), on=keys, how="left")
        .with_columns(pl.col(*INPUT_COLUMNS).fill_null(0).cast(pl.Int64))
        .select(*keys, *INPUT_COLUMNS, *METRIC_COLUMNS)
        .sort(keys)
    )


@dataclass(frozen=True)
class WaterfallFrames:
    """The waterfall's marts for one pool.

    Attributes:
        tranche_payments: One row per period and class.
        trigger_tests: One row per period and trigger.
        steps: One row per period and line of the order of payments.
        summary: One row per period: revolving flag, accounts, credit enhancement,
            taxes and fees paid.
        accounts: One row per period and account: opening, inflow, outflow, closing.
    """

    tranche_payments: pl.LazyFrame
    trigger_tests: pl.LazyFrame
    steps: pl.LazyFrame
    summary: pl.LazyFrame
    accounts: pl.LazyFrame


def _share(numer: int, denom: int) -> float | None:
    return numer / denom if denom else None


def _tranche_rows(pool_id: str, outcome: PeriodOutcome) -> list[dict[str, Any]]:
    collateral = outcome.collateral_balance
    rows = []
    closing = [t.closing_balance for t in outcome.tranches]
    for i, t in enumerate(outcome.tranches):
        senior_and_own = sum(closing[: i + 1])
        face = t.original_balance
        rows.append(
            {
                "pool_id": pool_id,
                "period_end": outcome.period_end,
                "period_number": outcome.period_number,
                "class": t.class_name,
                "kind": t.kind,
                "priority": i + 1,
                "original_balance": face,
                "coupon": t.coupon_ppm / PPM,
                "opening_balance": t.opening_balance,
                "interest_due": t.interest_due,
                "interest_paid": t.interest_paid,
                "interest_shortfall": t.interest_shortfall,
                "principal_paid": t.principal_paid,
                "residual_paid": t.residual_paid,
                "closing_balance": t.closing_balance,
                "bond_factor": t.closing_balance / face,
                "interest_per_100": t.interest_paid * 100 / face,
                "principal_per_100": t.principal_paid * 100 / face,
                "payment_per_100": (t.interest_paid + t.principal_paid + t.residual_paid)
                * 100
                / face,
                "subordination": _share(sum(closing[i + 1 :]), collateral),
                "credit_enhancement": _share(collateral - senior_and_own, collateral),
            }
        )
    return rows


_TRANCHE_SCHEMA: Final = {
    "pool_id": pl.String,
    "period_end": pl.Date,
    "period_number": pl.Int32,
    "class": pl.String,
    "kind": pl.String,
    "priority": pl.Int32,
    "original_balance": pl.Int64,
    "coupon": pl.Float64,
    "opening_balance": pl.Int64,
    "interest_due": pl.Int64,
    "interest_paid": pl.Int64,
    "interest_shortfall": pl.Int64,
    "principal_paid": pl.Int64,
    "residual_paid": pl.Int64,
    "closing_balance": pl.Int64,
    "bond_factor": pl.Float64,
    "interest_per_100": pl.Float64,
    "principal_per_100": pl.Float64,
    "payment_per_100": pl.Float64,
    "subordination": pl.Float64,
    "credit_enhancement": pl.Float64,
}
_TRIGGER_SCHEMA: Final = {
    "pool_id": pl.String,
    "period_end": pl.Date,
    "period_number": pl.Int32,
    "name": pl.String,
    "metric": pl.String,
    "comparison": pl.String,
    "consequence": pl.String,
    "threshold": pl.Float64,
    "actual": pl.Float64,
    "breached": pl.Boolean,
    "in_effect": pl.Boolean,
}
_STEP_SCHEMA: Final = {
    "pool_id": pl.String,
    "period_end": pl.Date,
    "order": pl.Int32,
    "account": pl.String,
    "item": pl.String,
    "available": pl.Int64,
    "due": pl.Int64,
    "paid": pl.Int64,
}
_SUMMARY_SCHEMA: Final = {
    "pool_id": pl.String,
    "period_end": pl.Date,
    "period_number": pl.Int32,
    "revolving": pl.Boolean,
    "early_amortisation_breach": pl.Boolean,
    "available_income": pl.Int64,
    "senior_fees_due": pl.Int64,
    "senior_fees_paid": pl.Int64,
    "note_interest_due": pl.Int64,
    "default_top_up": pl.Int64,
    "principal_funds": pl.Int64,
    "purchase_price": pl.Int64,
    "purchases_paid": pl.Int64,
    "purchases_unfunded": pl.Int64,
    "released": pl.Int64,
    "principal_account": pl.Int64,
    "principal_deficiency": pl.Int64,
    "collateral_balance": pl.Int64,
    "notes_balance": pl.Int64,
    "overcollateralisation": pl.Int64,
    "overcollateralisation_ratio": pl.Float64,
    "excess_spread": pl.Float64,
    "taxes_paid": pl.Int64,
    "trustee_fee_paid": pl.Int64,
    "management_fee_paid": pl.Int64,
    "custody_fee_paid": pl.Int64,
    "servicer_fee_paid": pl.Int64,
    "drawings_paid": pl.Int64,
    "drawings_seller_funded": pl.Int64,
}
_ACCOUNT_SCHEMA: Final = {
    "pool_id": pl.String,
    "period_end": pl.Date,
    "order": pl.Int32,
    "account": pl.String,
    "opening": pl.Int64,
    "inflow": pl.Int64,
    "outflow": pl.Int64,
    "closing": pl.Int64,
}


def outcome_frames(pool_id: str, outcomes: Sequence[PeriodOutcome]) -> WaterfallFrames:
    """The marts of a pool's waterfall outcomes.

    Args:
        pool_id: The pool.
        outcomes: Output of :func:`fold_waterfall`.

    Returns:
        The five frames, each sorted by period (then class priority, trigger
        order, payment order or account order).
    """
    tranche_rows: list[dict[str, Any]] = []
    trigger_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    summary_rows: list[dict[str, Any]] = []
    account_rows: list[dict[str, Any]] = []
    in_effect = False
    for outcome in outcomes:
        tranche_rows.extend(_tranche_rows(pool_id, outcome))
        for result in outcome.triggers:
            trigger_rows.append(
                {
                    "pool_id": pool_id,
                    "period_end": outcome.period_end,
                    **asdict(result),
                    # The consequence binds from the breach period; "in effect" says
                    # whether this period's payments followed it.
                    "in_effect": (in_effect or outcome.early_amortisation_breach)
                    and result.consequence == "early_amortisation",
                }
            )
        step_rows.extend(
            {
                "pool_id": pool_id,
                "period_end": outcome.period_end,
                "order": s.order,
                "account": s.account,
                "item": s.item,
                "available": s.available,
                "due": s.due,
                "paid": s.paid,
            }
            for s in outcome.steps
        )
        collateral = outcome.collateral_balance
        oc = collateral - outcome.notes_balance
        summary_rows.append(
            {
                "pool_id": pool_id,
                "period_end": outcome.period_end,
                "period_number": outcome.period_number,
                "revolving": outcome.revolving,
                "early_amortisation_breach": outcome.early_amortisation_breach,
                "available_income": outcome.available_income,
                "senior_fees_due": outcome.senior_fees_due,
                "senior_fees_paid": outcome.senior_fees_paid,
                "note_interest_due": outcome.note_interest_due,
                "default_top_up": outcome.default_top_up,
                "principal_funds": outcome.principal_funds,
                "purchase_price": outcome.purchase_price,
                "purchases_paid": outcome.purchases_paid,
                "purchases_unfunded": outcome.purchases_unfunded,
                "released": outcome.released,
                "principal_account": outcome.principal_account,
                "principal_deficiency": outcome.principal_deficiency,
                "collateral_balance": collateral,
                "notes_balance": outcome.notes_balance,
                "overcollateralisation": oc,
                "overcollateralisation_ratio": _share(oc, collateral),
                "excess_spread": outcome.excess_spread,
                "taxes_paid": outcome.expenses.taxes,
                "trustee_fee_paid": outcome.expenses.trustee_fee,
                "management_fee_paid": outcome.expenses.management_fee,
                "custody_fee_paid": outcome.expenses.custody_fee,
                "servicer_fee_paid": outcome.expenses.servicer_fee,
                "drawings_paid": outcome.drawings_paid,
                "drawings_seller_funded": outcome.drawings_seller_funded,
            }
        )
        account_rows.extend(
            {
                "pool_id": pool_id,
                "period_end": outcome.period_end,
                "order": order,
                "account": a.account,
                "opening": a.opening,
                "inflow": a.inflow,
                "outflow": a.outflow,
                "closing": a.closing,
            }
            for order, a in enumerate(outcome.accounts, start=1)
        )
        in_effect = in_effect or outcome.early_amortisation_breach
    return WaterfallFrames(
        tranche_payments=pl.LazyFrame(tranche_rows, schema=_TRANCHE_SCHEMA),
        trigger_tests=pl.LazyFrame(trigger_rows, schema=_TRIGGER_SCHEMA),
        steps=pl.LazyFrame(step_rows, schema=_STEP_SCHEMA),
        summary=pl.LazyFrame(summary_rows, schema=_SUMMARY_SCHEMA),
        accounts=pl.LazyFrame(account_rows, schema=_ACCOUNT_SCHEMA),
    )


def waterfall(inputs: pl.DataFrame, terms: WaterfallTerms) -> WaterfallFrames:
    """Run a pool's waterfall over its :func:`waterfall_inputs` rows.

    The fold runs period by period in Python: there is one row per collection
    period (tens of rows), so the input is a collected frame.

    Args:
        inputs: :func:`waterfall_inputs` rows (rows of other pools are ignored).
        terms: The pool's waterfall terms.

    Returns:
        The pool's waterfall marts.
    """
    rows = inputs.filter(pl.col("pool_id") == terms.pool_id).sort("period_end")
    periods = [
        PeriodInputs(
            period_end=row["period_end"],
            **{c: int(row[c]) for c in INPUT_COLUMNS},
            metrics={m: row[m] for m in METRIC_COLUMNS},
        )
        for row in rows.iter_rows(named=True)
    ]
    return outcome_frames(terms.pool_id, fold_waterfall(periods, terms))


# --------------------------------------------------------------------------- early amortisation

PURCHASE_AFTER_EARLY_AMORTISATION: Final = "purchase after early amortisation"
"""Why a purchase event dated after an early-amortisation breach is quarantined."""


def early_amortisation_starts(trigger_tests: pl.DataFrame) -> dict[str, date]:
    """The end of the first period in which each pool breached an early-amortisation trigger.

    Args:
        trigger_tests: The ``trigger_tests`` mart (:func:`outcome_frames`).

    Returns:
        Pool to period end, for pools with a breach.
    """
    breaches = (
        trigger_tests.filter(pl.col("breached") & (pl.col("consequence") == "early_amortisation"))
        .group_by("pool_id")
        .agg(pl.col("period_end").min())
        .sort("pool_id")
    )
    return dict(breaches.iter_rows())


def purchases_after_early_amortisation(starts: Mapping[str, date]) -> pl.Expr:
    """Rows of revolving purchases dated after their pool's early-amortisation breach.

    From the breach period on revolving purchases stop (DOMAIN.md "Early
    amortisation"): a purchase event dated after the end of the breach period
    is not the trust's and must be quarantined. Purchases dated within the
    breach period were made before the breach was known and stay.

    Args:
        starts: Breach period end per pool (:func:`early_amortisation_starts`).

    Returns:
        A boolean expression over pool-event rows (``pool_id``, ``event``,
        ``reason``, ``event_date``).
    """
    after = pl.lit(False)
    for pool_id, start in sorted(starts.items()):
        after = after | (
            (pl.col("pool_id") == pool_id)
            & (pl.col("event") == "added")
            & (pl.col("reason") == "revolving_purchase")
            & (pl.col("event_date") > start)
        )
    return after
