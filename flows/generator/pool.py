"""The revolving trust: deal dates, cut-off selection, purchases, repurchases.

The pool follows the membership conventions: a loan is added at the cut-off
(``cutoff``) or bought during the revolving period (``revolving_purchase``) at
its outstanding principal, and the originator buys a few back
(``removed``/``repurchase``). Revolving purchases are loans originated in the
purchase month, before any cash: their outstanding principal is their
principal, which is also their opening principal for the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np

from flows.generator import calibration as cal
from flows.generator.behaviour import RECOVERY, Events
from flows.generator.book import PERFORMING, Book
from flows.generator.calendar import I64, Months, next_business_day, to_date
from flows.generator.columns import Columns

ADDED = 0
REMOVED = 1
"""Event codes, indexes into ``transforms.schema.POOL_EVENTS``."""
CUTOFF = 0
REVOLVING_PURCHASE = 1
REPURCHASE = 2
"""Reason codes, indexes into ``transforms.schema.POOL_EVENT_REASONS``."""
NO_PRICE = -1

ELIGIBLE_MIN_TERM = 3
ELIGIBLE_MAX_TERM = 24
ELIGIBLE_MAX_RATE_PPM = 240_000
ELIGIBLE_MAX_PRINCIPAL = 20_000_000
ELIGIBLE_MIN_SCORE = 500


@dataclass(frozen=True)
class PoolEvents(Columns):
    """Pool membership events as parallel arrays."""

    event_date: I64
    event: I64
    reason: I64
    price: I64
    """Purchase price in fen, ``NO_PRICE`` for removals."""

    @classmethod
    def of(cls, loan: I64, day: int, event: int, reason: int, price: I64 | None) -> PoolEvents:
        """Events of one kind on one day."""
        n = loan.size
        return cls(
            loan=loan,
            event_date=np.full(n, day, dtype=np.int64),
            event=np.full(n, event, dtype=np.int64),
            reason=np.full(n, reason, dtype=np.int64),
            price=np.full(n, NO_PRICE, dtype=np.int64) if price is None else price,
        )


@dataclass(frozen=True)
class Deal:
    """Identity and dates of the generated trust."""

    pool_id: str
    year: int
    cutoff_month: int
    cutoff_date: int
    closing_date: int
    revolving_end_month: int
    revolving_end_date: int
    legal_final_date: int


def plan_deal(start: str, months: int, table: Months) -> Deal:
    """Cut-off at the end of month 6 of the window (earlier for short windows)."""
    cutoff_month = 5 if months >= 8 else max(0, (months - 2) // 2)
    cutoff_date = table.last_business_day(cutoff_month)
    closing = int(next_business_day(np.array([cutoff_date + cal.CLOSING_LAG_DAYS]))[0])
    revolving_end_month = cutoff_month + cal.REVOLVING_MONTHS
    year = int(start[:4])
    return Deal(
        pool_id=f"HB{year}-1",
        year=year,
        cutoff_month=cutoff_month,
        cutoff_date=cutoff_date,
        closing_date=closing,
        revolving_end_month=revolving_end_month,
        revolving_end_date=table.last_day(revolving_end_month),
        legal_final_date=table.last_day(cutoff_month + 36),
    )


def _eligible(book: Book, loan: I64) -> I64:
    ok = (
        (book.rate_ppm[loan] <= ELIGIBLE_MAX_RATE_PPM)
        & (book.term[loan] >= ELIGIBLE_MIN_TERM)
        & (book.term[loan] <= ELIGIBLE_MAX_TERM)
        & (book.principal[loan] <= ELIGIBLE_MAX_PRINCIPAL)
        & (book.score[loan] >= ELIGIBLE_MIN_SCORE)
        & (book.state[loan] == PERFORMING)
        & ~book.in_pool[loan]
    )
    result: I64 = loan[ok]
    return result


def select_cutoff(book: Book, rng: np.random.Generator, deal: Deal) -> PoolEvents:
    """Sell a share of the eligible, fully current book to the trust at cut-off.

    Uses the cash written out so far (value dates up to the cut-off month's
    end, hence up to the cut-off, the month's last business day).
    """
    loan = np.flatnonzero(book.origination[: book.count] <= deal.cutoff_date)
    loan = _eligible(book, loan)
    outstanding = book.principal[loan] - book.written_principal[loan]
    # Instalments due by the cut-off must be covered: DPD 0 at cut-off.
    k = np.minimum(deal.cutoff_month - book.month[loan], book.term[loan])
    has_due = k >= 1
    pos = book.schedule_position(loan, np.maximum(k, 1))
    due_by_cutoff = np.where(
        has_due & (book.due_date.data[pos] > deal.cutoff_date), k - 1, np.where(has_due, k, 0)
    )
    pos = book.schedule_position(loan, np.maximum(due_by_cutoff, 1))
    owed = np.where(
        due_by_cutoff >= 1,
        book.cum_principal_due.data[pos] + book.cum_interest_due.data[pos],
        0,
    )
    paid = book.written_principal[loan] + book.written_interest[loan]
    current = (paid >= owed) & (outstanding > 0)
    chosen = loan[current & (rng.random(loan.size) < cal.POOL_SHARE_AT_CUTOFF)]
    book.in_pool[chosen] = True
    price = book.principal[chosen] - book.written_principal[chosen]
    return PoolEvents.of(chosen, deal.cutoff_date, ADDED, CUTOFF, price)


def pool_principal_collections(book: Book, written: Events) -> int:
    """Principal collected this month from performing pool loans (net of reversals)."""
    cash = written.kind != RECOVERY
    in_pool = book.in_pool[written.loan] & cash
    return int((written.principal * written.cash_sign())[in_pool].sum())


def revolve(
    book: Book,
    rng: np.random.Generator,
    months: Months,
    *,
    i: int,
    first_of_month: int,
    target: int,
) -> PoolEvents:
    """Buy loans originated in month ``i`` for about ``target`` fen of principal."""
    loan = _eligible(book, np.arange(first_of_month, book.count, dtype=np.int64))
    loan = loan[book.written_principal[loan] == 0]
    order = rng.permutation(loan.size)
    candidates = loan[order]
    before = np.cumsum(book.principal[candidates]) - book.principal[candidates]
    chosen = np.sort(candidates[before < target])
    book.in_pool[chosen] = True
    return PoolEvents.of(
        chosen, months.last_business_day(i), ADDED, REVOLVING_PURCHASE, book.principal[chosen]
    )


def repurchase(
    book: Book, rng: np.random.Generator, months: Months, i: int, first: bool
) -> PoolEvents:
    """The originator buys back a few performing pool loans (at least one the first time)."""
    loan = np.flatnonzero(book.in_pool[: book.count] & (book.state[: book.count] == PERFORMING))
    count = int(rng.binomial(loan.size, cal.REPURCHASE_RATE))
    if first and loan.size:
        count = max(count, 1)
    chosen = np.sort(rng.choice(loan, size=count, replace=False)) if count else loan[:0]
    book.in_pool[chosen] = False
    days = months.business_days(i)
    day = int(days[days.size // 2])
    return PoolEvents.of(chosen, day, REMOVED, REPURCHASE, None)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


RATING_AGENCY: Final = {"name": "Demo Credit Ratings Co., Ltd.", "name_zh": "模拟信用评级有限公司"}
"""The demo deals' rating agency, in each language."""


def demo_participants() -> dict[str, dict[str, str]]:
    """The parties every demo plan names: manager, custodian, servicer, originator, agency."""
    originator = {"name": "Demo Microcredit Co., Ltd.", "name_zh": "模拟小额贷款有限公司"}
    return {
        "manager": {"name": "Demo Securities Co., Ltd.", "name_zh": "模拟证券股份有限公司"},
        "custodian": {"name": "Demo Bank Co., Ltd.", "name_zh": "模拟银行股份有限公司"},
        "servicer": dict(originator),
        "originator": dict(originator),
        "rating_agency": dict(RATING_AGENCY),
    }


def demo_events() -> list[dict[str, str]]:
    """The non-numeric events every demo plan's documents list (none has occurred)."""
    return [
        {"kind": "event_of_default", "name": "Event of default", "name_zh": "专项计划违约事件"},
        {"kind": "perfection_event", "name": "Perfection event", "name_zh": "权利完善事件"},
        {
            "kind": "servicer_termination",
            "name": "Servicer termination event",
            "name_zh": "资产服务机构解任事件",
        },
    ]


def deal_document(deal: Deal, cutoff_balance: int) -> dict[str, Any]:
    """The deal terms as YAML-ready data (money as yuan strings, rates as strings).

    Notes are sized on the cut-off pool balance: class A 89%, class B 3.5%,
    the subordinated class C the rest (DOMAIN.md capital structure).
    """
    class_a = cutoff_balance * 89 // 100 // 100 * 100
    class_b = cutoff_balance * 35 // 1000 // 100 * 100
    class_c = cutoff_balance - class_a - class_b
    tranches: list[dict[str, Any]] = [
        {"class": "A", "kind": "senior", "original_balance": _yuan(class_a),
         "coupon": "0.0390", "rating": "AAA", "code": f"{deal.pool_id}A"},
        {"class": "B", "kind": "mezzanine", "original_balance": _yuan(class_b),
         "coupon": "0.0420", "rating": "AA+", "code": f"{deal.pool_id}B"},
        {"class": "C", "kind": "subordinated", "original_balance": _yuan(class_c),
         "coupon": "0", "code": f"{deal.pool_id}C"},
    ]  # fmt: skip
    day = to_date
    # Exchange disclosure terms: short names, ratings and the expected maturity of each class.
    for tranche in tranches:
        tranche["short_name"] = f"花呗{deal.year % 100:02d}1{tranche['class']}"
        tranche["expected_maturity_date"] = day(deal.legal_final_date)
        if "rating" in tranche:
            # The agency is the deal's rating agency (named in each language below).
            tranche["ratings"] = {"initial": tranche["rating"]}
    document: dict[str, Any] = {
        "pool_id": deal.pool_id,
        "name": f"Synthetic Huabei-style Consumer Credit ABS {deal.year}-1",
        "name_zh": f"模拟花呗型消费信贷资产支持专项计划{deal.year}年第1期",
        "currency": "CNY",
        "cutoff_date": day(deal.cutoff_date),
        "closing_date": day(deal.closing_date),
        # Dates: the 26th of the month after each collection period, moved to the
        # next exchange business day; the report five business days before.
        "payment_date_rule": {"day_of_month": 26, "months_after": 1},
        "business_day_convention": "following",
        "report_date_rule": {"business_days_before": 5},
        "day_count": "ACT/365",
        "revolving_period_end": day(deal.revolving_end_date),
        "legal_final_date": day(deal.legal_final_date),
        "eligibility": {
            "products": ["cash_loan", "consumer_instalment"],
            "max_annual_rate": _rate(ELIGIBLE_MAX_RATE_PPM),
            "min_term_months": ELIGIBLE_MIN_TERM,
            "max_term_months": ELIGIBLE_MAX_TERM,
            "max_principal": _yuan(ELIGIBLE_MAX_PRINCIPAL),
            "min_credit_score": ELIGIBLE_MIN_SCORE,
            "max_dpd_at_purchase": 0,
        },
        "tranches": [t for t in tranches if t["original_balance"] != "0.00"],
        "cutoff_pool_balance": _yuan(cutoff_balance),
        "fees": {"trustee": "0.0005", "servicer": "0.0050"},
        "triggers": [
            {
                "name": "Cumulative default rate",
                "metric": "cumulative_default_rate",
                "comparison": "above",
                "schedule": [
                    {"from_period": period, "threshold": threshold}
                    for period, threshold in (
                        (1, "0.0050"),
                        (4, "0.0075"),
                        (7, "0.0100"),
                        (10, "0.0150"),
                        (13, "0.0200"),
                    )
                ],
                "consequence": "early_amortisation",
            },
            {
                # Loans over default_dpd have defaulted, so the test is 31 DPD to default.
                "name": "Delinquency ratio (31 DPD to default)",
                "metric": "delinquency_ratio",
                "comparison": "above",
                "threshold": "0.0300",
                "consequence": "early_amortisation",
            },
        ],
        "definitions": {
            "default_dpd": cal.DEFAULT_DPD,
            "charge_off_dpd": cal.CHARGE_OFF_DPD,
            "dpd_tolerance": "1.00",
            "cumulative_default_denominator": "initial_plus_purchases",
            "advance_payment_days": 7,
        },
    }
    document["participants"] = demo_participants()
    document["events"] = demo_events()
    names_zh = {
        "Cumulative default rate": "累计违约率超标",
        "Delinquency ratio (31 DPD to default)": "逾期率（逾期31天至违约）超标",
    }
    for trigger in document["triggers"]:
        trigger["name_zh"] = names_zh[trigger["name"]]
    return document


def _rate(ppm: int) -> str:
    return str(Decimal(ppm) / Decimal(1_000_000))
