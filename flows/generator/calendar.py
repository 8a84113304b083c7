"""Business days and calendar months on integer day numbers.

Every date in the generator is an ``int64`` count of days since 1970-01-01, so
that whole months of events are shifted and compared as numpy vectors.
Business days are Monday to Friday (the landing zone has one folder per
business date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

_EPOCH = date(1970, 1, 1)
_SATURDAY = 5
_SUNDAY = 6


def weekday(days: I64) -> I64:
    """Day of the week, Monday = 0 (1970-01-01 was a Thursday)."""
    result: I64 = (days + 3) % 7
    return result


def next_business_day(days: I64) -> I64:
    """The day itself if it is a weekday, else the following Monday."""
    wd = weekday(days)
    shift = np.where(wd == _SATURDAY, 2, np.where(wd == _SUNDAY, 1, 0))
    result: I64 = days + shift
    return result


def previous_business_day(days: I64) -> I64:
    """The day itself if it is a weekday, else the Friday before."""
    wd = weekday(days)
    shift = np.where(wd == _SATURDAY, 1, np.where(wd == _SUNDAY, 2, 0))
    result: I64 = days - shift
    return result


def to_date(day: int) -> date:
    """A day number as a ``datetime.date``."""
    return _EPOCH + timedelta(days=day)


def to_day(value: date) -> int:
    """A ``datetime.date`` as a day number."""
    return (value - _EPOCH).days


@dataclass(frozen=True)
class Months:
    """Calendar months of the generation window, indexed from 0.

    ``first_day[i]`` is the first day of month ``i``; the table reaches some
    months past the window so that due dates and deal dates can be looked up.
    """

    first_day: I64

    @classmethod
    def starting(cls, start: str, count: int) -> Months:
        """Months ``start`` (``YYYY-MM``) onwards, ``count`` + 1 first days."""
        first = np.datetime64(start, "M") + np.arange(count + 1)
        return cls(first.astype("datetime64[D]").astype(np.int64))

    def last_day(self, i: int) -> int:
        """Last calendar day of month ``i``."""
        return int(self.first_day[i + 1]) - 1

    def business_days(self, i: int) -> I64:
        """The weekdays of month ``i``, in order."""
        days = np.arange(self.first_day[i], self.first_day[i + 1], dtype=np.int64)
        result: I64 = days[weekday(days) < _SATURDAY]
        return result

    def last_business_day(self, i: int) -> int:
        """Last weekday of month ``i``."""
        return int(previous_business_day(np.array([self.last_day(i)], dtype=np.int64))[0])

    def add_one_month(self, days: I64, month: I64) -> I64:
        """``days`` (falling in months ``month``) plus one calendar month.

        The day of the month is kept and clamped to the end of the next month
        (2024-01-31 becomes 2024-02-29), the convention for a first due date.
        """
        day_of_month = days - self.first_day[month]
        length = self.first_day[month + 2] - self.first_day[month + 1]
        result: I64 = self.first_day[month + 1] + np.minimum(day_of_month, length - 1)
        return result
