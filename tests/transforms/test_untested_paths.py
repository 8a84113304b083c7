"""Paths the figures take rarely, each on a small hand-computed case (issue 12, point 5).

Loans are the 3-month ``equal_principal`` loan of ``test_performance``
(3,000.00 yuan, instalments of 1,000.00 due 02-15, 03-15, 04-15) and copies of
it under other ids.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import polars as pl

from tests.transforms.test_performance import (
    DUE_1,
    DUE_2,
    ON_TIME,
    THREE_MONTH,
    Cash,
    Loan,
    _cash,
    _column,
    _loans,
    _pool,
    _snapshots,
)
from tests.transforms.test_waterfall import JAN, TERMS, period
from transforms import schema
from transforms.curation import current_loans
from transforms.performance import loan_snapshots, overpayments
from transforms.pool_metrics import pool_collections, pool_rollforward, rollforward_breaks
from transforms.schedules import build_schedules
from transforms.waterfall import fold_waterfall

JAN_END, FEB_END, MAR_END, APR_END = (
    date(2024, 1, 31),
    date(2024, 2, 29),
    date(2024, 3, 31),
    date(2024, 4, 30),
)
MONTHS = [JAN_END, FEB_END, MAR_END, APR_END]


def _on_time(loan_id: str) -> list[Cash]:
    return [(f"{loan_id}{r[0]}", loan_id, r[2], r[3], r[4], r[5], r[6]) for r in ON_TIME]


def _loan(loan_id: str, principal: int = 300_000) -> Loan:
    _, originated, _, rate, term, method = THREE_MONTH
    return (loan_id, originated, principal, rate, term, method)


def _delivered(loan: Loan, business_date: date, source_file: str) -> pl.LazyFrame:
    """A staged loans row: the test loan with the other columns empty, and its lineage."""
    row = _loans([loan])
    given = row.collect_schema().names()
    return row.with_columns(
        *(pl.lit(None, dtype=t).alias(c) for c, t in schema.LOANS.items() if c not in given),
        pl.lit(business_date).alias("business_date"),
        pl.lit(source_file).alias("source_file"),
        pl.lit(2, dtype=pl.Int64).alias("source_line"),
    ).select(*schema.LOANS, *schema.LINEAGE)


def test_class_b_interest_short_is_carried_and_paid_before_anything_below_it() -> None:
    # January income 9,200 covers A's 9,000 and 200 of B's 500; B is owed 300 more.
    jan, feb = fold_waterfall([period(JAN, interest=9_200), period(date(2024, 2, 29))], TERMS)
    b_jan, b_feb = jan.tranches[1], feb.tranches[1]
    assert (b_jan.interest_due, b_jan.interest_paid, b_jan.interest_shortfall) == (500, 200, 300)
    assert jan.tranches[2].interest_paid == 0
    assert (b_feb.interest_paid, b_feb.interest_shortfall) == (800, 0)


def test_purchases_beyond_the_principal_funds_are_underfunded_not_overdrawn() -> None:
    # 100,000 of principal collected; the seller sells 250,000 of receivables.
    [outcome] = fold_waterfall([replace(period(JAN), purchase_price=250_000)], TERMS)
    assert outcome.revolving
    assert (outcome.purchases_paid, outcome.purchases_unfunded) == (100_000, 150_000)
    assert outcome.principal_account == 0
    assert [t.principal_paid for t in outcome.tranches] == [0, 0, 0]


def test_an_overpayment_beyond_the_balance_is_capped_and_its_excess_recorded() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", DUE_2, 250_000, 2_000, 0, "scheduled"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[FEB_END, MAR_END])
    assert _column(got, "closing_principal") == [200_000, 0]
    # March: 100,000 scheduled (instalment 2), 100,000 prepaid (instalment 3 early).
    assert _column(got, "scheduled_principal_paid") == [100_000, 100_000]
    assert _column(got, "unscheduled_principal_paid") == [0, 100_000]
    excess = overpayments(_loans([THREE_MONTH]), _cash(cash)).collect()
    assert excess.rows() == [("A", "r2", DUE_2, 50_000)]


def test_a_loan_correction_changes_an_earlier_period() -> None:
    # Delivered on 02-01 as 3,000.00, corrected on 03-05 to 3,600.00: the January
    # and February snapshots are recomputed from the corrected terms.
    first = _delivered(THREE_MONTH, date(2024, 2, 1), "a.csv")
    corrected = _delivered(_loan("A", 360_000), date(2024, 3, 5), "b.csv")
    loans = current_loans(pl.concat([first, corrected]))
    assert loans.collect()["principal"].to_list() == [360_000]
    cash = [("r1", "A", DUE_1, 120_000, 3_600, 0, "scheduled")]
    got = loan_snapshots(
        loans, build_schedules(loans), _cash(cash), _pool([]), [JAN_END, FEB_END]
    ).collect()
    assert _column(got, "closing_principal") == [360_000, 240_000]
    assert _column(got, "scheduled_principal_paid") == [0, 120_000]


def test_two_pools_sharing_nothing_roll_forward_separately() -> None:
    loans = [_loan("A"), _loan("B", 600_000)]
    cash = [*_on_time("A"), ("Br1", "B", DUE_1, 200_000, 6_000, 0, "scheduled")]
    pool = [("P1", "A", JAN_END, "added"), ("P2", "B", JAN_END, "added")]
    snapshots = _snapshots(loans, cash, pool, dates=MONTHS).lazy()
    roll = pool_rollforward(snapshots, [FEB_END]).collect()
    columns = ("pool_id", "opening_balance", "scheduled_principal", "closing_balance")
    assert roll.select(columns).rows() == [
        ("P1", 300_000, 100_000, 200_000),
        ("P2", 600_000, 200_000, 400_000),
    ]
    interest = pool_collections(snapshots, [FEB_END]).collect()["interest"].to_list()
    assert interest == [3_000, 6_000]
    assert rollforward_breaks(pool_rollforward(snapshots, MONTHS[1:])).collect().is_empty()


def test_a_clean_up_call_at_ten_percent_of_cut_off_empties_the_pool() -> None:
    # Cut-off 01-31: A and B, 3,000.00 each (6,000.00). B prepays in full in
    # February; A pays on time and prepays 500.00 with instalment 2, so the pool
    # is 500.00 at the end of March: at most 10% of the cut-off balance. The
    # seller calls on 04-30 and buys A back at its 500.00 outstanding.
    loans = [_loan("A"), _loan("B")]
    cash = [
        ("Ar1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("Ar2", "A", DUE_2, 150_000, 2_000, 0, "partial_prepayment"),
        ("Br1", "B", date(2024, 2, 10), 300_000, 1_000, 0, "full_prepayment"),
    ]
    pool = [
        ("P", "A", JAN_END, "added"),
        ("P", "B", JAN_END, "added"),
        ("P", "A", APR_END, "removed"),
    ]
    snapshots = _snapshots(loans, cash, pool, dates=MONTHS).lazy()
    roll = pool_rollforward(snapshots, MONTHS[1:]).collect()
    columns = ("opening_balance", "removed_principal", "closing_balance", "closing_count")
    assert roll.select(columns).rows() == [
        (600_000, 0, 200_000, 1),
        (200_000, 0, 50_000, 1),
        (50_000, 50_000, 0, 0),
    ]
    cutoff_balance = 600_000
    assert roll["closing_balance"][1] * 10 <= cutoff_balance
    assert rollforward_breaks(roll.lazy()).collect().is_empty()
    # The repurchase proceeds amortise the notes once the pool is static.
    static = replace(TERMS, revolving_period_end=None)
    call = replace(
        period(JAN),
        opening_balance=50_000,
        purchased_principal=0,
        closing_balance=0,
        scheduled_principal=0,
        removed_principal=50_000,
        purchased_count=0,
        purchase_price=0,
    )
    [outcome] = fold_waterfall([call], static)
    assert outcome.principal_funds == 50_000
    assert [t.principal_paid for t in outcome.tranches] == [50_000, 0, 0]
