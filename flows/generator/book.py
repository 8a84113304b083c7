"""The loan book: borrowers, originations and the per-loan state arrays.

Loans are numbered in origination order (month by month, then by day); the
number ``j`` is the loan ``LN{j+1:010d}``, so string order is loan order. All
per-loan state lives in numpy arrays allocated once for the whole run, and
each loan's contractual schedule (from ``transforms.schedules``) is kept as
cumulative amounts in flat arrays indexed by ``offset[j] + instalment - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from flows.generator import calibration as cal
from flows.generator.calendar import I64, Months
from transforms import schema
from transforms.schedules import build_schedules

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
BOOL = npt.NDArray[np.bool_]

PERFORMING = 0
CLOSED = 1
DEFAULTED = 2
"""Loan states in the generator (the engine derives its own statuses)."""

_ID_MULTIPLIER = 982_451_653
"""Odd and not a multiple of 5: ``index * m mod 10^w`` permutes borrower numbers."""


def loan_ids(index: I64) -> pl.Series:
    """Loan identifiers for loan numbers."""
    digits = pl.Series(index + 1).cast(pl.String).str.zfill(10)
    return ("LN" + digits).rename("loan_id")


@dataclass(frozen=True)
class Borrowers:
    """Borrower attributes shared by all loans of a borrower."""

    province: npt.NDArray[np.int16]
    age: npt.NDArray[np.int16]
    """Age in the first month of the window."""
    birthday_month: npt.NDArray[np.int16]
    score: npt.NDArray[np.int16]
    cumulative_appetite: F64
    id_width: int

    @classmethod
    def draw(cls, rng: np.random.Generator, loans: int) -> Borrowers:
        """Draw about ``BORROWERS_PER_LOAN`` borrowers per loan."""
        count = max(1, round(loans * cal.BORROWERS_PER_LOAN))
        weights = np.array([w for _, w in cal.PROVINCES])
        province = rng.choice(len(weights), size=count, p=weights / weights.sum())
        age = 18 + rng.gamma(cal.AGE_GAMMA_SHAPE, cal.AGE_GAMMA_SCALE, size=count)
        age = np.clip(np.floor(age), 18, 70)
        birthday = rng.integers(0, 12, size=count)
        mean = cal.SCORE_MEAN_AT_30 + cal.SCORE_PER_YEAR_OF_AGE * (age - 30)
        score = np.clip(np.rint(rng.normal(mean, cal.SCORE_SD)), cal.SCORE_MIN, cal.SCORE_MAX)
        appetite = rng.gamma(cal.BORROWER_APPETITE_SHAPE, 1.0, size=count)
        return cls(
            province=province.astype(np.int16),
            age=age.astype(np.int16),
            birthday_month=birthday.astype(np.int16),
            score=score.astype(np.int16),
            cumulative_appetite=np.cumsum(appetite),
            id_width=max(8, len(str(count)) + 1),
        )

    def pick(self, rng: np.random.Generator, n: int) -> I64:
        """Borrower numbers for ``n`` new loans, in proportion to appetite."""
        total = self.cumulative_appetite[-1]
        picked = np.searchsorted(self.cumulative_appetite, rng.random(n) * total, side="right")
        result: I64 = np.minimum(picked, self.cumulative_appetite.size - 1).astype(np.int64)
        return result

    def ids(self, index: I64) -> pl.Series:
        """Pseudonymous borrower identifiers (a fixed permutation of the numbers)."""
        modulus = 10**self.id_width
        # int64 is exact here: index < 10**9 and the product stays below 2**63.
        scrambled = (index * _ID_MULTIPLIER + 7) % modulus
        digits = pl.Series(scrambled).cast(pl.String).str.zfill(self.id_width)
        return ("BR" + digits).rename("borrower_id")


class _Growable:
    """A flat int64 array that grows geometrically as schedules are appended."""

    def __init__(self, capacity: int) -> None:
        self.data: I64 = np.zeros(max(capacity, 16), dtype=np.int64)
        self.size = 0

    def extend(self, values: I64) -> None:
        end = self.size + values.size
        if end > self.data.size:
            grown = np.zeros(max(end, self.data.size * 3 // 2), dtype=np.int64)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end


class Book:
    """Per-loan terms, schedule and repayment state for the whole run."""

    def __init__(self, loans: int) -> None:
        self.count = 0
        """Loans originated so far (they are numbers ``0 .. count - 1``)."""
        self.origination = np.zeros(loans, dtype=np.int64)
        self.month = np.zeros(loans, dtype=np.int64)
        """Window month index of origination."""
        self.term = np.zeros(loans, dtype=np.int64)
        self.offset = np.zeros(loans, dtype=np.int64)
        self.principal = np.zeros(loans, dtype=np.int64)
        self.rate_ppm = np.zeros(loans, dtype=np.int64)
        self.product = np.zeros(loans, dtype=np.int8)
        self.score = np.zeros(loans, dtype=np.int64)
        self.miss = np.zeros(loans, dtype=np.float64)
        """Monthly probability of missing an instalment."""
        self.prepay = np.zeros(loans, dtype=np.float64)
        """Prepayment propensity (multiplies the product's base rate)."""
        # Cash committed by generated events (whatever their value date) and
        # cash whose value date has been written out, net of reversals.
        self.paid_principal = np.zeros(loans, dtype=np.int64)
        self.paid_interest = np.zeros(loans, dtype=np.int64)
        self.written_principal = np.zeros(loans, dtype=np.int64)
        self.written_interest = np.zeros(loans, dtype=np.int64)
        self.paid_through = np.zeros(loans, dtype=np.int64)
        """Instalments fully covered by committed cash."""
        self.state = np.zeros(loans, dtype=np.int8)
        self.ahead = np.zeros(loans, dtype=np.bool_)
        """Has paid principal ahead of schedule (a partial prepayment)."""
        self.last_value_date = np.zeros(loans, dtype=np.int64)
        self.default_date = np.zeros(loans, dtype=np.int64)
        self.recovery_left = np.zeros(loans, dtype=np.int64)
        self.recovery_payments = np.zeros(loans, dtype=np.int64)
        self.recovery_start = np.zeros(loans, dtype=np.int64)
        self.in_pool = np.zeros(loans, dtype=np.bool_)
        self.cum_principal_due = _Growable(loans * 10)
        self.cum_interest_due = _Growable(loans * 10)
        self.due_date = _Growable(loans * 10)

    def schedule_position(self, loan: I64, instalment: I64) -> I64:
        """Flat-array position of instalment ``instalment`` (1-based) of ``loan``."""
        result: I64 = self.offset[loan] + instalment - 1
        return result

    def add_schedules(self, first: int, schedules: pl.DataFrame) -> None:
        """Store the schedules of loans ``first ..`` (sorted by loan and instalment)."""
        count = self.count - first
        terms = self.term[first : self.count]
        if schedules.height != int(terms.sum()):
            raise RuntimeError("schedule rows do not match the loans' terms")
        starts = np.zeros(count, dtype=np.int64)
        np.cumsum(terms[:-1], out=starts[1:])
        self.offset[first : self.count] = self.due_date.size + starts
        loan_of_row = np.repeat(np.arange(count), terms)
        for column, target in (
            ("principal_due", self.cum_principal_due),
            ("interest_due", self.cum_interest_due),
        ):
            running = np.cumsum(schedules[column].to_numpy().astype(np.int64))
            before = np.concatenate(([0], running))[starts]
            target.extend(running - before[loan_of_row])
        due = schedules["due_date"].cast(pl.Int32).to_numpy().astype(np.int64)
        self.due_date.extend(due)


def _choose(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> I64:
    p = np.array(weights, dtype=np.float64)
    result: I64 = np.asarray(rng.choice(p.size, size=n, p=p / p.sum()), dtype=np.int64)
    return result


def monthly_counts(loans: int, start: str, months: int) -> I64:
    """Loans originated in each month: steady growth with seasonal peaks."""
    calendar_month = (np.datetime64(start, "M") + np.arange(months)).astype(int) % 12 + 1
    season = np.array([cal.SEASONALITY.get(int(m), 1.0) for m in calendar_month])
    weights = cal.MONTHLY_GROWTH ** np.arange(months) * season
    exact = loans * weights / weights.sum()
    counts: I64 = np.floor(exact).astype(np.int64)
    remainder = loans - int(counts.sum())
    # Largest remainders first, earlier months on ties: deterministic.
    order = np.lexsort((np.arange(months), -(exact - counts)))
    counts[order[:remainder]] += 1
    return counts


def originate(
    book: Book,
    borrowers: Borrowers,
    rng: np.random.Generator,
    months: Months,
    *,
    i: int,
    n: int,
) -> pl.DataFrame:
    """Originate ``n`` loans in month ``i``: fill the book and return the loan rows.

    Returns:
        The canonical loan columns (typed: dates, fen, decimal rates), sorted
        by ``loan_id``.
    """
    days = months.business_days(i)
    origination = np.sort(days[rng.integers(0, days.size, size=n)])
    borrower = borrowers.pick(rng, n)
    age = borrowers.age[borrower].astype(np.int64) + (
        (i + borrowers.birthday_month[borrower]) // 12
    )
    age = np.minimum(age, 70)
    score = borrowers.score[borrower].astype(np.float64) + rng.normal(
        0.0, cal.SCORE_APPLICATION_SD, n
    )
    score = np.clip(np.rint(score), cal.SCORE_MIN, cal.SCORE_MAX).astype(np.int64)

    cash_share = np.clip(0.30 + (score - 600) / 1000, 0.2, 0.65)
    product = np.where(rng.random(n) < cash_share, cal.CASH_LOAN, cal.CONSUMER_INSTALMENT)
    method = np.zeros(n, dtype=np.int64)
    term = np.zeros(n, dtype=np.int64)
    principal = np.zeros(n, dtype=np.int64)
    rate_ppm = np.zeros(n, dtype=np.int64)
    channel = np.zeros(n, dtype=np.int64)
    terms = np.array(cal.TERMS)
    for code in (cal.CASH_LOAN, cal.CONSUMER_INSTALMENT):
        mine = np.flatnonzero(product == code)
        m = mine.size
        method[mine] = _choose(rng, cal.METHOD_WEIGHTS[code], m)
        short = (method[mine] == cal.INTEREST_ONLY) | (method[mine] == cal.BULLET)
        term[mine] = np.where(
            short,
            terms[_choose(rng, cal.SHORT_TERM_WEIGHTS, m)],
            terms[_choose(rng, cal.AMORTISING_TERM_WEIGHTS[code], m)],
        )
        tilt = np.exp((score[mine] - cal.MISS_REFERENCE_SCORE) / 400.0)
        yuan = (
            cal.PRINCIPAL_MEDIAN_YUAN[code]
            * tilt
            * rng.lognormal(0.0, cal.PRINCIPAL_SIGMA[code], m)
        )
        yuan = np.clip(yuan, cal.PRINCIPAL_FLOOR_YUAN[code], cal.PRINCIPAL_CAP_YUAN[code])
        if code == cal.CASH_LOAN:
            principal[mine] = np.maximum(np.rint(yuan / 100), 1).astype(np.int64) * 10_000
            low, high = cal.CASH_DAILY_RATE_PPM
            better = (score[mine] - cal.SCORE_MIN) / (cal.SCORE_MAX - cal.SCORE_MIN)
            daily = high - better * (high - low) + rng.normal(0, cal.CASH_DAILY_RATE_NOISE_PPM, m)
            daily = np.clip(np.rint(daily), low, high).astype(np.int64)
            rate_ppm[mine] = daily * 365
        else:
            whole = rng.random(m) < cal.INSTALMENT_WHOLE_YUAN_SHARE
            principal[mine] = np.where(
                whole, np.rint(yuan).astype(np.int64) * 100, np.rint(yuan * 100).astype(np.int64)
            )
            apr_by_term = np.zeros(max(cal.TERMS) + 1)
            for months_, value in cal.INSTALMENT_APR.items():
                apr_by_term[months_] = value
            apr = apr_by_term[term[mine]]
            low_d, high_d = cal.INSTALMENT_DISCOUNT_RANGE
            discount = np.where(
                rng.random(m) < cal.INSTALMENT_DISCOUNT_SHARE, rng.uniform(low_d, high_d, m), 1.0
            )
            apr = apr * discount + rng.normal(0, cal.INSTALMENT_APR_NOISE, m)
            apr = np.clip(apr, cal.RATE_FLOOR, cal.RATE_CAP)
            rate_ppm[mine] = np.rint(apr * 10_000).astype(np.int64) * 100
        channel[mine] = _choose(rng, cal.CHANNEL_WEIGHTS[code], m)

    miss = (
        cal.MISS_BASE
        * np.exp(-(score - cal.MISS_REFERENCE_SCORE) / cal.MISS_SCORE_SCALE)
        * np.where(product == cal.CASH_LOAN, 1.0, cal.MISS_PRODUCT_FACTOR[cal.CONSUMER_INSTALMENT])
        * np.where(age < 23, cal.MISS_YOUNG_FACTOR, 1.0)
    )
    sigma = cal.PREPAY_PROPENSITY_SIGMA
    prepay = rng.lognormal(-sigma * sigma / 2, sigma, n)

    first, end = book.count, book.count + n
    book.count = end
    book.origination[first:end] = origination
    book.month[first:end] = i
    book.term[first:end] = term
    book.principal[first:end] = principal
    book.rate_ppm[first:end] = rate_ppm
    book.product[first:end] = product
    book.score[first:end] = score
    book.miss[first:end] = np.clip(miss, *cal.MISS_BOUNDS)
    book.prepay[first:end] = prepay
    book.last_value_date[first:end] = origination

    first_due = months.add_one_month(origination, np.full(n, i, dtype=np.int64))
    index = np.arange(first, end, dtype=np.int64)
    rate_text = ("0." + pl.Series(rate_ppm).cast(pl.String).str.zfill(6)).str.strip_chars_end("0")
    loans = pl.DataFrame(
        {
            "loan_id": loan_ids(index),
            "borrower_id": borrowers.ids(borrower),
            "product": pl.Series(np.array(schema.PRODUCTS)[product]),
            "origination_date": pl.Series(origination.astype(np.int32)).cast(pl.Date),
            "first_due_date": pl.Series(first_due.astype(np.int32)).cast(pl.Date),
            "principal": pl.Series(principal, dtype=pl.Int64),
            "annual_rate": rate_text.cast(schema.RATE),
            "term_months": pl.Series(term, dtype=pl.Int32),
            "repayment_method": pl.Series(np.array(schema.REPAYMENT_METHODS)[method]),
            "province": pl.Series(
                np.array([c for c, _ in cal.PROVINCES])[borrowers.province[borrower]]
            ),
            "borrower_age": pl.Series(age, dtype=pl.Int32),
            "credit_score": pl.Series(score, dtype=pl.Int32),
            "channel": pl.Series(np.array(cal.CHANNELS)[channel]),
        },
        schema=schema.LOANS,
    )
    schedules = build_schedules(loans.lazy()).collect().sort("loan_id", "instalment_no")
    book.add_schedules(first, schedules)
    return loans
