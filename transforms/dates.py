"""Deal dates: day-count fractions, payment and report dates on the exchange calendar.

Conventions (DOMAIN.md "Conventions the figures rest on", "Dates"):

- Interest on the notes and the senior fees accrue over the interest period,
  from the previous payment date (period 1: the closing date, 起息日) to the
  period's payment date, with the deal's day count: ``ACT/365`` (the default,
  actual days / 365), ``ACT/360`` (actual days / 360) or ``30/360`` (the bond
  basis: a day 31 counts as 30, and a second date on the 31st counts as 30 when
  the first is on the 30th or 31st).
- A payment date is the deal's day of the month, ``months_after`` months after
  the collection period's month, moved by its business-day convention to a day
  the exchange is open: ``following`` (the next open day) or
  ``modified_following`` (the next one unless that falls in the next month,
  then the previous one).
- The report date is a fixed number of exchange business days before the
  payment date: it comes from the deal, never from the day the pipeline ran.

The calendar is the Shanghai Stock Exchange's (``XSHG``) from the maintained
``exchange_calendars`` library. The exchange, not the general State Council
working-day calendar, decides when an exchange-listed plan pays: it stays closed
on the weekend make-up working days (调休) that a general working-day calendar
such as ``chinese-calendar`` counts as working days, so a payment on such a
Saturday would be wrong. The library records holidays only up to a horizon
year; a date beyond it is refused with :class:`CalendarHorizonError` instead of
silently treating unknown holidays as working days.
"""

from __future__ import annotations

import calendar
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Final, Literal

DayCount = Literal["ACT/365", "ACT/360", "30/360"]
"""Day-count conventions a deal may choose."""

BusinessDayConvention = Literal["following", "modified_following"]
"""How a payment date that is not an exchange business day moves."""

DAY_COUNTS: Final[tuple[DayCount, ...]] = ("ACT/365", "ACT/360", "30/360")
EXCHANGE: Final = "XSHG"
"""Shanghai Stock Exchange: the calendar of exchange-listed 资产支持专项计划."""

_PPM: Final = 1_000_000


class CalendarHorizonError(ValueError):
    """A date lies beyond the years whose exchange holidays the calendar knows."""


def day_count_fraction(start: date, end: date, convention: DayCount) -> Fraction:
    """The year fraction from ``start`` to ``end`` under a day count, exactly.

    Args:
        start: First day of the accrual period (included).
        end: Last day of the accrual period (excluded).
        convention: ``ACT/365``, ``ACT/360`` or ``30/360``.

    Returns:
        The fraction of a year, as an exact rational.

    Raises:
        ValueError: If ``end`` is before ``start`` or the convention is unknown.
    """
    if end < start:
        raise ValueError(f"accrual end {end} is before its start {start}")
    if convention == "ACT/365":
        return Fraction((end - start).days, 365)
    if convention == "ACT/360":
        return Fraction((end - start).days, 360)
    if convention == "30/360":
        d1 = min(start.day, 30)
        d2 = min(end.day, 30) if d1 == 30 else end.day
        days = 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)
        return Fraction(days, 360)
    raise ValueError(f"unknown day count {convention!r}")


def accrue(balance: int, annual_ppm: int, fraction: Fraction) -> int:
    """Interest on a balance for a year fraction, rounded half-up to the fen.

    Args:
        balance: Balance in fen (not negative).
        annual_ppm: Annual rate in parts per million (not negative).
        fraction: Year fraction (:func:`day_count_fraction`).

    Returns:
        ``round_half_up(balance * rate * fraction)`` in fen, exact.

    Raises:
        ValueError: If the balance, the rate or the fraction is negative.
    """
    if balance < 0 or annual_ppm < 0 or fraction < 0:
        raise ValueError("balance, rate and year fraction must not be negative")
    exact = Fraction(balance * annual_ppm, _PPM) * fraction
    return int((2 * exact.numerator + exact.denominator) // (2 * exact.denominator))


@dataclass(frozen=True)
class _Sessions:
    days: frozenset[date]
    first: date
    last_known: date


@lru_cache(maxsize=1)
def _sessions() -> _Sessions:
    """The exchange's open days, read once from the library."""
    # Imported here: the library (with pandas) takes most of a second to import, and
    # only a run that dates payments needs it. It ships no type information.
    import exchange_calendars  # type: ignore[import-untyped]  # noqa: PLC0415

    with warnings.catch_warnings():
        # exchange-calendars builds its tables with a pandas call that newer pandas
        # deprecates; the warning concerns the library's internals, not these dates.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        exchange = exchange_calendars.get_calendar(EXCHANGE, start="1999-01-04")
        days = frozenset(d.date() for d in exchange.sessions)
    # Holidays are recorded for whole years: the horizon is the last session's year-end.
    last = max(days)
    return _Sessions(days=days, first=min(days), last_known=date(last.year, 12, 31))


def _check_known(day: date) -> None:
    sessions = _sessions()
    if day > sessions.last_known:
        raise CalendarHorizonError(
            f"{day} is beyond the {EXCHANGE} exchange calendar, whose holidays are known "
            f"through {sessions.last_known}; update exchange-calendars before dating later "
            "payments"
        )
    if day < sessions.first:
        raise CalendarHorizonError(f"{day} is before the {EXCHANGE} exchange calendar's start")


def is_business_day(day: date) -> bool:
    """Whether the exchange is open on ``day``.

    Raises:
        CalendarHorizonError: If ``day`` is outside the calendar's known years.
    """
    _check_known(day)
    return day in _sessions().days


def adjust(day: date, convention: BusinessDayConvention) -> date:
    """Move ``day`` to an exchange business day by the convention.

    Args:
        day: The unadjusted date.
        convention: ``following`` or ``modified_following``.

    Returns:
        ``day`` when the exchange is open, else the adjusted day.

    Raises:
        CalendarHorizonError: If the result would lie beyond the calendar.
        ValueError: If the convention is unknown.
    """
    if convention not in ("following", "modified_following"):
        raise ValueError(f"unknown business-day convention {convention!r}")
    following = day
    while not is_business_day(following):
        following += timedelta(days=1)
    if convention == "modified_following" and following.month != day.month:
        preceding = day
        while not is_business_day(preceding):
            preceding -= timedelta(days=1)
        return preceding
    return following


def business_days_before(day: date, count: int) -> date:
    """The exchange business day ``count`` business days before ``day``.

    Args:
        day: A date (usually a payment date).
        count: Business days to go back; 0 returns ``day`` itself.

    Raises:
        CalendarHorizonError: If a date is outside the calendar.
        ValueError: If ``count`` is negative.
    """
    if count < 0:
        raise ValueError("count of business days must not be negative")
    current = day
    remaining = count
    while remaining:
        current -= timedelta(days=1)
        if is_business_day(current):
            remaining -= 1
    return current


@dataclass(frozen=True)
class DateRules:
    """A deal's date conventions.

    Attributes:
        closing_date: 起息日: interest of period 1 accrues from it.
        payment_day: Day of the month of an unadjusted payment date.
        months_after: Months from the collection period's month to its payment month.
        business_day_convention: ``following`` or ``modified_following``.
        report_business_days: Exchange business days from the report date to
            the payment date.
        day_count: Day count of note interest and fees.
    """

    closing_date: date
    payment_day: int = 26
    months_after: int = 1
    business_day_convention: BusinessDayConvention = "following"
    report_business_days: int = 5
    day_count: DayCount = "ACT/365"


def unadjusted_payment_date(period_end: date, rules: DateRules) -> date:
    """The payment date of a collection period before the business-day adjustment."""
    months = period_end.year * 12 + period_end.month - 1 + rules.months_after
    year, month = divmod(months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(rules.payment_day, last))


def payment_date(period_end: date, rules: DateRules) -> date:
    """The adjusted payment date of the collection period ending ``period_end``.

    Raises:
        CalendarHorizonError: If the date is beyond the exchange calendar.
    """
    return adjust(unadjusted_payment_date(period_end, rules), rules.business_day_convention)


def report_date(period_end: date, rules: DateRules) -> date:
    """The report date of the collection period ending ``period_end``.

    Raises:
        CalendarHorizonError: If the date is beyond the exchange calendar.
    """
    return business_days_before(payment_date(period_end, rules), rules.report_business_days)


@dataclass(frozen=True)
class InterestPeriod:
    """The accrual period paid on one payment date."""

    start: date
    end: date
    payment_date: date
    report_date: date
    day_count: DayCount
    year_fraction: Fraction

    @property
    def days(self) -> int:
        """Actual days in the accrual period."""
        return (self.end - self.start).days


def interest_period(
    period_end: date, previous_period_end: date | None, rules: DateRules
) -> InterestPeriod:
    """The interest period paid for a collection period.

    Args:
        period_end: Last day of the collection period.
        previous_period_end: Last day of the previous collection period, or
            None for period 1 (which accrues from the closing date).
        rules: The deal's date rules.

    Returns:
        Accrual start (previous payment date, or the closing date), end (this
        payment date), the report date and the year fraction.

    Raises:
        CalendarHorizonError: If a date is beyond the exchange calendar.
        ValueError: If the accrual period would end before it starts.
    """
    paid_on = payment_date(period_end, rules)
    start = (
        rules.closing_date
        if previous_period_end is None
        else payment_date(previous_period_end, rules)
    )
    return InterestPeriod(
        start=start,
        end=paid_on,
        payment_date=paid_on,
        report_date=business_days_before(paid_on, rules.report_business_days),
        day_count=rules.day_count,
        year_fraction=day_count_fraction(start, paid_on, rules.day_count),
    )
