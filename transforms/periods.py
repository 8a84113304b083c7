"""Collection-period dates: a collection period is a calendar month."""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def previous_month_end(day: date) -> date:
    """The last day of the month before ``day``'s."""
    return day.replace(day=1) - timedelta(days=1)


def month_ends_between(first: date, last: date) -> list[date]:
    """Every month-end from the month of ``first`` up to ``last`` inclusive."""
    ends = []
    current = month_end(first)
    while current <= last:
        ends.append(current)
        current = month_end(current + timedelta(days=1))
    return ends


def period_label(period_end: date) -> str:
    """A collection period's label, ``YYYY-MM`` (its folder under reports/<pool_id>/)."""
    return f"{period_end.year:04d}-{period_end.month:02d}"
