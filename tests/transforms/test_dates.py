"""Deal dates: day counts, payment dates on the exchange calendar, report dates."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from transforms.dates import (
    CalendarHorizonError,
    DateRules,
    accrue,
    adjust,
    business_days_before,
    day_count_fraction,
    interest_period,
    is_business_day,
    payment_date,
    report_date,
)

ONE_MILLION_YUAN = 100_000_000  # fen
COUPON_3_9 = 39_000  # ppm


class TestDayCount:
    def test_act_365_interest_for_a_31_day_period(self) -> None:
        # 1,000,000.00 x 3.9% x 31 / 365 = 3,312.3287... -> 3,312.33 yuan.
        fraction = day_count_fraction(date(2024, 1, 26), date(2024, 2, 26), "ACT/365")
        assert fraction == Fraction(31, 365)
        assert accrue(ONE_MILLION_YUAN, COUPON_3_9, fraction) == 331_233

    def test_act_360_counts_the_same_days_over_360(self) -> None:
        # 1,000,000.00 x 3.9% x 31 / 360 = 3,358.3333... -> 3,358.33 yuan.
        fraction = day_count_fraction(date(2024, 1, 26), date(2024, 2, 26), "ACT/360")
        assert accrue(ONE_MILLION_YUAN, COUPON_3_9, fraction) == 335_833

    def test_30_360_treats_the_31st_as_the_30th(self) -> None:
        assert day_count_fraction(date(2024, 1, 31), date(2024, 2, 29), "30/360") == Fraction(
            29, 360
        )
        # Start on the 30th: an end on the 31st counts as the 30th, two full months.
        assert day_count_fraction(date(2024, 1, 30), date(2024, 3, 31), "30/360") == Fraction(
            60, 360
        )
        # A regular month is exactly 1/12 of a year.
        assert day_count_fraction(date(2024, 2, 26), date(2024, 3, 26), "30/360") == Fraction(1, 12)

    def test_half_a_fen_rounds_up(self) -> None:
        assert accrue(50, 120_000, Fraction(1, 12)) == 1
        assert accrue(49, 120_000, Fraction(1, 12)) == 0

    def test_an_end_before_the_start_is_refused(self) -> None:
        with pytest.raises(ValueError, match="before its start"):
            day_count_fraction(date(2024, 2, 1), date(2024, 1, 1), "ACT/365")


class TestExchangeCalendar:
    def test_a_payment_date_on_a_holiday_moves_to_the_next_open_day(self) -> None:
        # 2024-10-01 to 10-07 is the National Day closure of the exchange.
        rules = DateRules(closing_date=date(2024, 9, 3), payment_day=1)
        assert payment_date(date(2024, 9, 30), rules) == date(2024, 10, 8)

    def test_a_weekend_make_up_working_day_is_not_an_exchange_day(self) -> None:
        # Saturday 2024-10-12 is a State Council make-up working day; the exchange is shut.
        assert not is_business_day(date(2024, 10, 12))
        assert adjust(date(2024, 10, 12), "following") == date(2024, 10, 14)

    def test_modified_following_stays_in_the_month(self) -> None:
        # 2025-01-28 .. 02-04 is the Spring Festival closure; 01-31 falls inside it.
        assert adjust(date(2025, 1, 31), "following") == date(2025, 2, 5)
        assert adjust(date(2025, 1, 31), "modified_following") == date(2025, 1, 27)

    def test_the_report_date_counts_exchange_business_days_back(self) -> None:
        # Five open days before Tue 2024-10-08: 09-30, 09-27, 09-26, 09-25, 09-24.
        assert business_days_before(date(2024, 10, 8), 5) == date(2024, 9, 24)
        rules = DateRules(closing_date=date(2024, 9, 3), payment_day=1)
        assert report_date(date(2024, 9, 30), rules) == date(2024, 9, 24)

    def test_a_date_beyond_the_calendar_is_refused_with_its_horizon(self) -> None:
        rules = DateRules(closing_date=date(2026, 1, 5))
        with pytest.raises(CalendarHorizonError, match=r"2027-01-26 is beyond the XSHG"):
            payment_date(date(2026, 12, 31), rules)


class TestInterestPeriod:
    def test_period_one_accrues_from_the_closing_date(self) -> None:
        rules = DateRules(closing_date=date(2024, 7, 3))
        first = interest_period(date(2024, 7, 31), None, rules)
        assert (first.start, first.end, first.days) == (date(2024, 7, 3), date(2024, 8, 26), 54)
        assert first.year_fraction == Fraction(54, 365)

    def test_later_periods_run_from_payment_date_to_payment_date(self) -> None:
        # 2024-09-26 (Thu) to 2024-10-26 (Sat) -> Mon 2024-10-28: 32 days.
        rules = DateRules(closing_date=date(2024, 7, 3))
        period = interest_period(date(2024, 9, 30), date(2024, 8, 31), rules)
        assert (period.start, period.end, period.days) == (
            date(2024, 9, 26),
            date(2024, 10, 28),
            32,
        )
        assert period.report_date == date(2024, 10, 21)
