"""One month of borrower behaviour: the cash events of every live loan.

The cash follows the team's loan-mechanics conventions so that the engine
reads exactly the behaviour intended here:

- an instalment is paid by bringing cumulative principal and interest paid up
  to the schedule's cumulative amounts through it, so an on-time payer pays
  exactly ``principal_due + interest_due`` and shows DPD 0;
- a partial prepayment is principal only and covers future instalments: the
  borrower then pays only what the schedule has not been covered for (the
  interest, and principal once the schedule catches up). The engine's
  unscheduled principal ``U`` (the running maximum of principal paid ahead of
  the schedule) reaches the prepaid amount on the prepayment's value date and
  later instalments add nothing, so the prepayment is counted once;
- a full prepayment is the remaining principal plus the current instalment's
  interest;
- a loan that leaves its oldest instalment unpaid three months running passes
  90 DPD and defaults (default date = that due date + 91 days); every
  curing payment is dated before then, and recoveries come after it;
- fees and penalties are separate charges on late payments; a reversal
  repeats the reversed amounts of an instalment and is followed by the
  re-payment (the reversal takes the principal back below the schedule, so
  the engine takes it from scheduled principal and the re-payment restores it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flows.generator import calibration as cal
from flows.generator.book import CLOSED, DEFAULTED, PERFORMING, Book
from flows.generator.calendar import (
    BOOL,
    I64,
    Months,
    next_business_day,
    previous_business_day,
    weekday,
)
from flows.generator.columns import Columns

SCHEDULED = 0
PARTIAL_PREPAYMENT = 1
FULL_PREPAYMENT = 2
RECOVERY = 3
REVERSAL = 4
"""Kind codes, indexes into ``transforms.schema.REPAYMENT_KINDS``."""

_PAYMENT, _EXTRA, _REVERSAL, _REPAYMENT = 0, 1, 2, 3
"""Order of a loan's events on one day (repayment ids follow it)."""


@dataclass(frozen=True)
class Events(Columns):
    """Cash events as parallel arrays (amounts in fen, dates as day numbers)."""

    value_date: I64
    order: I64
    kind: I64
    principal: I64
    interest: I64
    fee: I64
    penalty: I64

    def cash_sign(self) -> I64:
        """+1 for cash received, -1 for a reversal."""
        result: I64 = np.where(self.kind == REVERSAL, -1, 1)
        return result


class _Collector:
    def __init__(self, book: Book) -> None:
        self.book = book
        self.parts: list[Events] = []

    def add(
        self,
        loan: I64,
        value_date: I64,
        kind: int,
        principal: I64,
        interest: I64,
        *,
        order: int = _PAYMENT,
        fee: I64 | None = None,
        penalty: I64 | None = None,
        commit: bool = True,
    ) -> None:
        """Collect the events that move cash; with ``commit``, book every row's principal,
        interest and value date as paid (``_commit``)."""
        keep = (principal + interest + (0 if fee is None else fee)) > 0
        zeros = np.zeros(loan.size, dtype=np.int64)
        self.parts.append(
            Events(
                loan=loan,
                value_date=value_date,
                order=np.full(loan.size, order, dtype=np.int64),
                kind=np.full(loan.size, kind, dtype=np.int64),
                principal=principal,
                interest=interest,
                fee=zeros if fee is None else fee,
                penalty=zeros if penalty is None else penalty,
            ).take(keep)
        )
        if commit:
            _commit(self.book, loan, principal, interest, value_date)

    def events(self) -> Events:
        return Events.concat(self.parts)


@dataclass(frozen=True)
class _Month:
    """Month ``i`` of the simulation: the book, its calendar, the random stream and the
    events collected so far."""

    book: Book
    months: Months
    rng: np.random.Generator
    i: int
    out: _Collector

    @property
    def first_day(self) -> int:
        return int(self.months.first_day[self.i])


def _by_product(book: Book, loan: I64, table: dict[int, float]) -> I64:
    product = book.product[loan]
    result: I64 = np.where(
        product == cal.CASH_LOAN, table[cal.CASH_LOAN], table[cal.CONSUMER_INSTALMENT]
    )
    return result


def _penalty(amount: I64, days_late: I64, charged: BOOL) -> I64:
    """0.05% a day of the overdue amount, rounded half-up to the fen."""
    raw = amount * cal.PENALTY_PER_DAY_BP * np.maximum(days_late, 0)
    result: I64 = np.where(charged, (raw + 5_000) // 10_000, 0)
    return result


def _fee(rng: np.random.Generator, n: int) -> I64:
    low, high = cal.FEE_YUAN
    charged = rng.random(n) < cal.FEE_SHARE
    result: I64 = np.where(charged, rng.integers(low, high + 1, n) * 100, 0)
    return result


def _need(book: Book, loan: I64, through: I64) -> tuple[I64, I64]:
    """Principal and interest still to pay to cover instalments up to ``through``."""
    pos = book.schedule_position(loan, through)
    principal = np.maximum(book.cum_principal_due.data[pos] - book.paid_principal[loan], 0)
    interest = np.maximum(book.cum_interest_due.data[pos] - book.paid_interest[loan], 0)
    return principal, interest


def _commit(book: Book, loan: I64, principal: I64, interest: I64, value_date: I64) -> None:
    book.paid_principal[loan] += principal
    book.paid_interest[loan] += interest
    book.last_value_date[loan] = np.maximum(book.last_value_date[loan], value_date)


def simulate_month(book: Book, months: Months, rng: np.random.Generator, i: int) -> Events:
    """Generate month ``i``'s cash events for the loans originated before it.

    Every event is dated on a business day on or after the first day of month
    ``i`` (some fall in the next month: weekend due dates, late payers).
    Updates the book's committed cash and loan states.
    """
    out = _Collector(book)
    month = _Month(book, months, rng, i, out)
    live = np.flatnonzero(book.month[: book.count] < i)
    loan = live[book.state[live] == PERFORMING]
    k = i - book.month[loan]
    oldest = book.paid_through[loan] + 1
    age = k - oldest
    _default(month, loan[age >= 3], oldest[age >= 3])
    current = age == 0
    _current(month, loan[current], k[current])
    arrears = (age >= 1) & (age <= 2)
    _arrears(month, loan[arrears], k[arrears], oldest[arrears])
    _recoveries(month, live)
    repaid = loan[book.paid_principal[loan] >= book.principal[loan]]
    book.state[repaid] = CLOSED
    return out.events()


def _default(month: _Month, loan: I64, oldest: I64) -> None:
    """Mark loans three instalments behind as defaulted and plan their recoveries."""
    book, rng, i = month.book, month.rng, month.i
    n = loan.size
    due = book.due_date.data[book.schedule_position(loan, oldest)]
    book.state[loan] = DEFAULTED
    book.default_date[loan] = due + cal.DEFAULT_DPD + 1
    outstanding = book.principal[loan] - book.paid_principal[loan]
    share = np.where(
        rng.random(n) < cal.RECOVERY_NONE_SHARE, 0.0, rng.beta(*cal.RECOVERY_BETA, size=n)
    )
    budget = np.floor(outstanding * share / 100).astype(np.int64) * 100
    book.recovery_left[loan] = budget
    payments = rng.integers(1, cal.RECOVERY_MAX_PAYMENTS + 1, n)
    book.recovery_payments[loan] = np.where(budget > 0, payments, 0)
    low, high = cal.RECOVERY_START_MONTHS
    book.recovery_start[loan] = i + rng.integers(low, high + 1, n)


def _current(month: _Month, loan: I64, k: I64) -> None:
    """Loans with nothing overdue and instalment ``k`` due this month."""
    book, rng, out = month.book, month.rng, month.out
    n = loan.size
    need_p, need_i = _need(book, loan, k)
    amount = need_p + need_i
    due = book.due_date.data[book.schedule_position(loan, k)]
    last = k == book.term[loan]
    miss = book.miss[loan]
    prepay = book.prepay[loan]

    u = rng.random(n)
    u_day = rng.random(n)
    u_early = rng.random(n)
    u_partial = rng.random(n)
    fraction = rng.uniform(*cal.PARTIAL_FRACTION, size=n)
    partial_lag = rng.integers(0, 7, n)
    u_reversal = rng.random(n)
    reversal_lag = rng.integers(2, 6, n)
    repay_lag = rng.integers(1, 4, n)
    late_days = np.minimum(rng.geometric(0.15, n), cal.LATE_MAX_DAYS)
    u_penalty = rng.random(n)
    fee = _fee(rng, n)

    p_full = np.where(last, 0.0, _by_product(book, loan, cal.FULL_PREPAY) * prepay)
    p_miss = np.where(book.ahead[loan] | (amount == 0), 0.0, miss)
    p_late = np.where(
        amount == 0, 0.0, np.minimum(cal.LATE_BASE * np.sqrt(miss / cal.MISS_BASE), 0.2)
    )
    full = u < p_full
    missed = ~full & (u < p_full + p_miss)
    late = ~full & ~missed & (u < p_full + p_miss + p_late)
    on_time = ~(full | missed | late)

    first_day = month.first_day
    pay_day = next_business_day(due)
    last_paid = book.last_value_date[loan]

    # Full prepayment on a business day of the month, by the due date.
    low = next_business_day(np.maximum(first_day, last_paid + 1))
    high = np.maximum(pay_day, low)
    day = next_business_day(low + np.floor(u_day * (high - low + 1)).astype(np.int64))
    day = np.minimum(day, high)
    f = np.flatnonzero(full)
    principal_left = book.principal[loan] - book.paid_principal[loan]
    out.add(loan[f], day[f], FULL_PREPAYMENT, principal_left[f], need_i[f])

    # On time: on the due date, the next Monday for a weekend, or the Friday
    # before for a few.
    friday = previous_business_day(due)
    early = (
        (weekday(due) >= 5)
        & (u_early < cal.WEEKEND_EARLY_SHARE)
        & (friday >= first_day)
        & (friday > last_paid)
    )
    day = next_business_day(np.maximum(np.where(early, friday, pay_day), last_paid))
    remaining = principal_left - need_p
    extra = np.floor(fraction * remaining / 100).astype(np.int64) * 100
    partial = (
        on_time
        & ~last
        & (u_partial < _by_product(book, loan, cal.PARTIAL_PREPAY) * prepay)
        & (extra >= 100)
        & (extra < remaining)
    )
    reversal = on_time & ~partial & (amount > 0) & (u_reversal < cal.REVERSAL_SHARE)
    o = np.flatnonzero(on_time)
    out.add(loan[o], day[o], SCHEDULED, need_p[o], need_i[o])

    p = np.flatnonzero(partial)
    extra_day = next_business_day(day[p] + partial_lag[p])
    out.add(
        loan[p], extra_day, PARTIAL_PREPAYMENT, extra[p], np.zeros(p.size, np.int64), order=_EXTRA
    )
    book.ahead[loan[p]] = True

    # A bounced payment: reversed a few days later, then paid again.
    r = np.flatnonzero(reversal)
    reversed_on = next_business_day(day[r] + reversal_lag[r])
    repaid_on = next_business_day(reversed_on + repay_lag[r])
    out.add(loan[r], reversed_on, REVERSAL, need_p[r], need_i[r], order=_REVERSAL, commit=False)
    out.add(loan[r], repaid_on, SCHEDULED, need_p[r], need_i[r], order=_REPAYMENT, commit=False)
    book.last_value_date[loan[r]] = repaid_on

    # Late by days to weeks, then cured, often with a penalty and sometimes a fee.
    late_idx = np.flatnonzero(late)
    day = next_business_day(np.maximum(due + late_days, last_paid))[late_idx]
    penalty = _penalty(
        amount[late_idx], day - due[late_idx], u_penalty[late_idx] < cal.PENALTY_SHARE
    )
    out.add(
        loan[late_idx],
        day,
        SCHEDULED,
        need_p[late_idx],
        need_i[late_idx],
        fee=fee[late_idx],
        penalty=penalty,
    )

    paid = np.flatnonzero(on_time | late)
    book.paid_through[loan[paid]] = k[paid]


def _arrears(month: _Month, loan: I64, k: I64, oldest: I64) -> None:
    """Loans one or two instalments behind: cure, pay the oldest, or roll on."""
    book, rng, out = month.book, month.rng, month.out
    n = loan.size
    term = book.term[loan]
    age = k - oldest
    through = np.minimum(k, term)
    due_oldest = book.due_date.data[book.schedule_position(loan, oldest)]
    due_now = book.due_date.data[book.schedule_position(loan, through)]
    first_day = month.first_day

    u = rng.random(n)
    after_maturity = first_day + rng.integers(0, 15, n)
    delay = rng.integers(0, 13, n)
    u_penalty = rng.random(n)
    fee = _fee(rng, n)

    reference = np.where(k <= term, due_now, after_maturity)
    day = next_business_day(reference + delay)
    # Dated before the oldest instalment passes 90 DPD, so it cures, not recovers.
    day = np.minimum(day, previous_business_day(due_oldest + cal.DEFAULT_DPD - 1))
    day = np.maximum(day, book.last_value_date[loan])

    # Weaker borrowers cure less often.
    strength = np.clip((cal.MISS_BASE / book.miss[loan]) ** 0.25, 0.6, 1.4)
    p_cure = np.where(age == 1, cal.CURE_ALL[1], cal.CURE_ALL[2]) * strength
    p_one = np.where(age == 1, cal.PAY_ONE[1], cal.PAY_ONE[2])
    cure = u < p_cure
    one = ~cure & (u < p_cure + p_one)
    target = np.where(cure, through, oldest)
    pay = np.flatnonzero(cure | one)
    need_p, need_i = _need(book, loan[pay], target[pay])
    charged = u_penalty[pay] < cal.PENALTY_SHARE
    penalty = _penalty(need_p + need_i, day[pay] - due_oldest[pay], charged)
    out.add(loan[pay], day[pay], SCHEDULED, need_p, need_i, fee=fee[pay], penalty=penalty)
    book.paid_through[loan[pay]] = target[pay]


def _recoveries(month: _Month, live: I64) -> None:
    """Post-default collections, in a few instalments of whole yuan."""
    book, rng, i = month.book, month.rng, month.i
    loan = live[
        (book.state[live] == DEFAULTED)
        & (book.recovery_payments[live] > 0)
        & (book.recovery_start[live] <= i)
    ]
    n = loan.size
    days = month.months.business_days(i)
    day = days[rng.integers(0, days.size, n)]
    left = book.recovery_left[loan]
    count = book.recovery_payments[loan]
    amount = np.where(count == 1, left, left // count // 100 * 100)
    day = next_business_day(
        np.maximum(np.maximum(day, book.default_date[loan] + 1), book.last_value_date[loan])
    )
    month.out.add(loan, day, RECOVERY, amount, np.zeros(n, dtype=np.int64))
    book.recovery_left[loan] -= amount
    book.recovery_payments[loan] -= 1
