"""The engine's market conventions, each on a hand-computed loan history.

The loan is the 3-month ``equal_principal`` loan of 3,000.00 yuan of
``test_performance``: instalments of 1,000.00 principal due 2024-02-15, 03-15
and 04-15 (30.00, 20.00 and 10.00 interest). ``advance_payment_days`` is 7
unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from tests.transforms.test_performance import (
    DUE_1,
    DUE_2,
    DUE_3,
    THREE_MONTH,
    _column,
    _snapshots,
)
from transforms import schema
from transforms.performance import PerformanceRules
from transforms.pool_metrics import (
    cutoff_balances,
    pool_collections,
    pool_rollforward,
    rollforward_breaks,
)
from transforms.portfolio import portfolio_breaks, portfolio_metrics

FEB_END, MAR_END, APR_END = date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)


def test_an_instalment_paid_two_days_early_is_scheduled_not_a_prepayment() -> None:
    # Paid on Tue 02-13 for the instalment due Thu 02-15 (e.g. a due date on a holiday).
    cash = [("r1", "A", date(2024, 2, 13), 100_000, 3_000, 0, "scheduled")]
    got = _snapshots([THREE_MONTH], cash, dates=[FEB_END])
    assert _column(got, "scheduled_principal_paid") == [100_000]
    assert _column(got, "unscheduled_principal_paid") == [0]


def test_next_months_instalment_paid_at_month_end_within_the_window_is_scheduled() -> None:
    # 03-10 pays instalment 2 (due 03-15, five days later) together with instalment 1.
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 3, 10), 100_000, 2_000, 0, "scheduled"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[FEB_END, MAR_END])
    assert _column(got, "scheduled_principal_paid") == [100_000, 100_000]
    assert _column(got, "unscheduled_principal_paid") == [0, 0]


def test_principal_paid_further_ahead_than_the_window_is_unscheduled() -> None:
    # Ten days before its due date is beyond the seven-day window.
    cash = [("r1", "A", date(2024, 2, 5), 100_000, 3_000, 0, "scheduled")]
    got = _snapshots([THREE_MONTH], cash, dates=[FEB_END])
    assert _column(got, "unscheduled_principal_paid") == [100_000]
    # With a ten-day window the same payment is scheduled.
    wide = _snapshots(
        [THREE_MONTH], cash, dates=[FEB_END], rules=PerformanceRules(advance_payment_days=10)
    )
    assert _column(wide, "unscheduled_principal_paid") == [0]


def test_a_loan_paid_off_three_days_before_its_final_due_date_has_matured() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
        ("r3", "A", date(2024, 4, 12), 100_000, 1_000, 0, "scheduled"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[APR_END])
    assert _column(got, "status") == ["matured"]
    assert _column(got, "unscheduled_principal_paid") == [0]


def test_a_loan_paid_off_thirty_days_before_its_final_due_date_is_prepaid() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
        ("r3", "A", date(2024, 3, 16), 100_000, 0, 0, "full_prepayment"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[MAR_END])
    assert (DUE_3 - date(2024, 3, 16)).days == 30
    assert _column(got, "status") == ["prepaid"]
    # One snapshot: its flows run from origination, instalments 1 and 2 on time.
    assert _column(got, "scheduled_principal_paid") == [200_000]
    assert _column(got, "unscheduled_principal_paid") == [100_000]


def test_a_loan_is_charged_off_on_the_day_dpd_reaches_the_threshold() -> None:
    # Nothing is paid: instalment 1 (due 02-15) is 100 days past due on 05-25.
    rules = PerformanceRules(default_dpd=90, charge_off_dpd=100)
    days = [date(2024, 5, 15), date(2024, 5, 16), date(2024, 5, 24), date(2024, 5, 25)]
    got = _snapshots([THREE_MONTH], [], dates=days, rules=rules)
    assert _column(got, "dpd") == [90, 91, 99, 100]
    # Default when DPD exceeds 90; charge-off when it reaches 100.
    assert _column(got, "status") == ["delinquent", "defaulted", "defaulted", "charged_off"]


def test_a_mid_month_cut_off_opens_period_one_and_keeps_the_sellers_cash_out() -> None:
    # Cut-off Sat 02-10. The 500.00 prepaid on 02-05 is the seller's; the pool opens
    # at 2,500.00 and period 1 (to 03-31) carries the instalments of 02-15 and 03-15.
    cutoff = date(2024, 2, 10)
    cash = [
        ("r0", "A", date(2024, 2, 5), 50_000, 0, 0, "partial_prepayment"),
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
    ]
    pool = [("P", "A", cutoff, "added")]
    # As the snapshot store holds them: month-ends chain month-end to month-end,
    # the cut-off row runs from the month-end before it.
    month_ends = _snapshots([THREE_MONTH], cash, pool, dates=[date(2024, 1, 31), FEB_END, MAR_END])
    at_cutoff = _snapshots([THREE_MONTH], cash, pool, dates=[date(2024, 1, 31), cutoff])
    snapshots = pl.concat([month_ends, at_cutoff.filter(pl.col("as_of_date") == cutoff)]).lazy()
    roll = pool_rollforward(snapshots, [MAR_END], {"P": cutoff}).collect().row(0, named=True)
    assert (roll["opening_balance"], roll["purchased_principal"]) == (250_000, 0)
    assert (roll["scheduled_principal"], roll["unscheduled_principal"]) == (200_000, 0)
    assert roll["closing_balance"] == 50_000
    [collected] = pool_collections(snapshots, [MAR_END], {"P": cutoff}).collect().rows(named=True)
    assert (collected["principal"], collected["interest"]) == (200_000, 5_000)
    assert cutoff_balances(snapshots, {"P": cutoff}).collect()["cutoff_balance"][0] == 250_000
    # Without the cut-off, period 1 would open at the month-end, after 02-15's instalment.
    plain = pool_rollforward(month_ends.lazy(), [MAR_END]).collect().row(0, named=True)
    assert plain["opening_balance"] == 150_000


def _pool_figures(frame: pl.LazyFrame, period_end: date, *columns: str) -> tuple[int, ...]:
    row = frame.filter(pl.col("period_end") == period_end).select(columns).collect()
    assert row.height == 1
    return tuple(row.row(0))


def test_a_removal_mid_month_removes_that_days_balance_and_later_cash_is_not_pool_cash() -> None:
    # In pool P from 01-20, repurchased on 03-10; instalment 2 (1,000.00 + 20.00)
    # is paid on 03-15, after the removal: the seller's cash, not the pool's.
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
    ]
    pool = [("P", "A", date(2024, 1, 20), "added"), ("P", "A", date(2024, 3, 10), "removed")]
    got = _snapshots([THREE_MONTH], cash, pool, dates=[FEB_END, MAR_END])
    march = got.filter(pl.col("as_of_date") == MAR_END)
    # The loan's own row keeps its cash; the part after the removal is marked outside.
    assert march.select(
        "status",
        "removed_principal",
        "scheduled_principal_paid",
        "outside_scheduled_principal_paid",
        "interest_paid",
        "outside_interest_paid",
    ).row(0) == ("repurchased", 200_000, 100_000, 100_000, 2_000, 2_000)
    snapshots = got.lazy()
    rollforward = pool_rollforward(snapshots, [FEB_END, MAR_END])
    assert _pool_figures(
        rollforward,
        MAR_END,
        "opening_balance",
        "scheduled_principal",
        "removed_principal",
        "closing_balance",
    ) == (200_000, 0, 200_000, 0)
    collections = pool_collections(snapshots, [FEB_END, MAR_END])
    assert _pool_figures(collections, MAR_END, "principal", "interest", "total") == (0, 0, 0)


def test_a_purchase_mid_month_buys_that_days_balance_and_earlier_cash_is_not_pool_cash() -> None:
    # Bought on 03-10. Instalment 2 was paid on 03-08 (seven days before its due
    # date: scheduled), before the purchase: the seller's. On 03-25 the borrower
    # prepays 500.00 with 5.00 interest: the pool's.
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 3, 8), 100_000, 2_000, 0, "scheduled"),
        ("r3", "A", date(2024, 3, 25), 50_000, 500, 0, "partial_prepayment"),
    ]
    pool = [("P", "A", date(2024, 3, 10), "added")]
    got = _snapshots([THREE_MONTH], cash, pool, dates=[FEB_END, MAR_END])
    march = got.filter(pl.col("as_of_date") == MAR_END)
    assert march.select(
        "purchased_principal",
        "scheduled_principal_paid",
        "outside_scheduled_principal_paid",
        "unscheduled_principal_paid",
        "outside_unscheduled_principal_paid",
        "interest_paid",
        "outside_interest_paid",
    ).row(0) == (100_000, 100_000, 100_000, 50_000, 0, 2_500, 2_000)
    snapshots = got.lazy()
    rollforward = pool_rollforward(snapshots, [MAR_END])
    assert _pool_figures(
        rollforward,
        MAR_END,
        "opening_balance",
        "purchased_principal",
        "scheduled_principal",
        "unscheduled_principal",
        "closing_balance",
    ) == (0, 100_000, 0, 50_000, 50_000)
    collections = pool_collections(snapshots, [MAR_END])
    assert _pool_figures(
        collections, MAR_END, "scheduled_principal", "unscheduled_principal", "interest"
    ) == (0, 50_000, 500)


MAY_END = date(2024, 5, 31)
ALL_ON_TIME = [
    ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
    ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
    ("r3", "A", DUE_3, 100_000, 1_000, 0, "scheduled"),
]


def _book_loans() -> pl.LazyFrame:
    return pl.LazyFrame(
        {"loan_id": ["A"], "borrower_id": ["B"], "annual_rate": [Decimal("0.12")]},
        schema={"loan_id": pl.String, "borrower_id": pl.String, "annual_rate": schema.RATE},
    )


def test_a_default_after_the_loan_left_its_pool_is_the_loans_not_the_pools() -> None:
    # Repaid on 04-15 (matured in the pool), removed on 05-06 with nothing owed; on
    # 05-10 instalments 1 and 2 are reversed, so 2,000.00 is owed again from 02-15, and
    # the loan defaults on 05-16 (DPD 91) -- after it left the pool, in the same period.
    cash = [
        *ALL_ON_TIME,
        ("rev1", "A", date(2024, 5, 10), 100_000, 3_000, 0, "reversal"),
        ("rev2", "A", date(2024, 5, 10), 100_000, 2_000, 0, "reversal"),
    ]
    pool = [("P", "A", date(2024, 1, 20), "added"), ("P", "A", date(2024, 5, 6), "removed")]
    dates = [date(2024, 1, 31), FEB_END, MAR_END, APR_END, MAY_END]
    got = _snapshots([THREE_MONTH], cash, pool, dates=dates)
    may = got.filter(pl.col("as_of_date") == MAY_END)
    assert may.select(
        "pool_id",
        "status",
        "removed_principal",
        "default_date",
        "defaulted_principal",
        "outside_defaulted_principal",
        "scheduled_principal_paid",
        "outside_scheduled_principal_paid",
    ).row(0) == ("P", "repurchased", 0, date(2024, 5, 16), 200_000, 200_000, -200_000, -200_000)
    snapshots = got.lazy()
    rollforward = pool_rollforward(snapshots, dates)
    assert rollforward_breaks(rollforward).collect().height == 0
    assert _pool_figures(
        rollforward,
        MAY_END,
        "opening_balance",
        "scheduled_principal",
        "defaulted_principal",
        "defaulted_count",
        "removed_principal",
        "closing_balance",
    ) == (0, 0, 0, 0, 0, 0)
    # The book still sees the loan's whole default; the pool's roll-forward closes too.
    portfolio = portfolio_metrics(snapshots, _book_loans())
    assert portfolio_breaks(portfolio).collect().height == 0
    defaulted = (
        portfolio.filter(pl.col("as_of_date") == MAY_END)
        .select("scope", "defaulted_principal")
        .sort("scope")
        .collect()
        .rows()
    )
    assert defaulted == [("book", 200_000), ("pool", 0)]


def test_a_default_before_the_removal_day_is_the_pools_default() -> None:
    # Nothing is paid: the loan defaults on 05-16 (DPD 91) and is removed on 05-20.
    # It left the performing pool by defaulting, not by the removal.
    pool = [("P", "A", date(2024, 1, 20), "added"), ("P", "A", date(2024, 5, 20), "removed")]
    dates = [FEB_END, MAR_END, APR_END, MAY_END]
    got = _snapshots([THREE_MONTH], [], pool, dates=dates)
    may = got.filter(pl.col("as_of_date") == MAY_END)
    assert may.select(
        "status",
        "removed_principal",
        "default_date",
        "defaulted_principal",
        "outside_defaulted_principal",
    ).row(0) == ("repurchased", 0, date(2024, 5, 16), 300_000, 0)
    rollforward = pool_rollforward(got.lazy(), dates)
    assert rollforward_breaks(rollforward).collect().height == 0
    assert _pool_figures(
        rollforward,
        MAY_END,
        "opening_balance",
        "defaulted_principal",
        "defaulted_count",
        "cohort_defaulted_principal",
        "removed_principal",
        "closing_balance",
    ) == (300_000, 300_000, 1, 300_000, 0, 0)
