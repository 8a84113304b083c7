"""Tests for transforms.performance: hand-checked loan histories and the pool roll-forward.

Most cases use one 3-month ``equal_principal`` loan of 3,000.00 yuan at 12% a
year, originated 2024-01-15 with instalments due 2024-02-15, 03-15 and 04-15
of 1,000.00 principal plus 30.00, 20.00 and 10.00 interest (fen below).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transforms import schema
from transforms.performance import (
    EngineRun,
    EngineState,
    PerformanceRules,
    _oldest_unpaid,
    _unscheduled_ahead,
    loan_snapshots,
    overpayments,
    run_engine,
)
from transforms.schedules import build_schedules

MONTH_ENDS = [
    date(2024, 1, 31),
    date(2024, 2, 29),
    date(2024, 3, 31),
    date(2024, 4, 30),
    date(2024, 5, 31),
    date(2024, 6, 30),
    date(2024, 7, 31),
    date(2024, 8, 31),
    date(2024, 9, 30),
]
DUE_1, DUE_2, DUE_3 = date(2024, 2, 15), date(2024, 3, 15), date(2024, 4, 15)

Loan = tuple[str, date, int, str, int, str]
"""loan_id, origination_date, principal, annual_rate, term_months, repayment_method."""
Cash = tuple[str, str, date, int, int, int, str]
"""repayment_id, loan_id, value_date, principal, interest, fee + penalty, kind."""
PoolEvent = tuple[str, str, date, str]
"""pool_id, loan_id, event_date, event."""


def _loans(rows: list[Loan]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "loan_id": [r[0] for r in rows],
            "origination_date": [r[1] for r in rows],
            "first_due_date": [r[1] + timedelta(days=31) for r in rows],
            "principal": [r[2] for r in rows],
            "annual_rate": [Decimal(r[3]) for r in rows],
            "term_months": [r[4] for r in rows],
            "repayment_method": [r[5] for r in rows],
        },
        schema={
            k: schema.LOANS[k]
            for k in schema.LOANS
            if k
            in {
                "loan_id",
                "origination_date",
                "first_due_date",
                "principal",
                "annual_rate",
                "term_months",
                "repayment_method",
            }
        },
    )


def _cash(rows: list[Cash]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "repayment_id": [r[0] for r in rows],
            "loan_id": [r[1] for r in rows],
            "value_date": [r[2] for r in rows],
            "principal_paid": [r[3] for r in rows],
            "interest_paid": [r[4] for r in rows],
            "fee_paid": [r[5] for r in rows],
            "penalty_paid": [0 for _ in rows],
            "kind": [r[6] for r in rows],
        },
        schema=schema.REPAYMENTS,
    )


def _pool(rows: list[PoolEvent]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "pool_id": [r[0] for r in rows],
            "loan_id": [r[1] for r in rows],
            "event_date": [r[2] for r in rows],
            "event": [r[3] for r in rows],
            "reason": ["revolving_purchase" if r[3] == "added" else "repurchase" for r in rows],
            "purchase_price": [None for _ in rows],
        },
        schema=schema.POOL_ASSETS,
    )


THREE_MONTH: Loan = ("A", date(2024, 1, 15), 300_000, "0.12", 3, "equal_principal")
ON_TIME: list[Cash] = [
    ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
    ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
    ("r3", "A", DUE_3, 100_000, 1_000, 0, "scheduled"),
]


def _snapshots(
    loans: list[Loan],
    cash: list[Cash],
    pool: list[PoolEvent] | None = None,
    dates: list[date] = MONTH_ENDS,
    **kwargs: Any,
) -> pl.DataFrame:
    book = _loans(loans)
    return loan_snapshots(
        book, build_schedules(book), _cash(cash), _pool(pool or []), dates, **kwargs
    ).collect()


def _column(frame: pl.DataFrame, name: str) -> list[Any]:
    return frame[name].to_list()


def test_the_schedule_used_here() -> None:
    s = build_schedules(_loans([THREE_MONTH])).collect()
    assert s.select("due_date", "principal_due", "interest_due").rows() == [
        (DUE_1, 100_000, 3_000),
        (DUE_2, 100_000, 2_000),
        (DUE_3, 100_000, 1_000),
    ]


def test_a_loan_paying_on_time_is_current_then_matured_and_then_gone() -> None:
    got = _snapshots([THREE_MONTH], ON_TIME)
    assert got.schema == pl.Schema(schema.LOAN_SNAPSHOTS)
    assert _column(got, "as_of_date") == MONTH_ENDS[:4]
    assert _column(got, "opening_principal") == [300_000, 300_000, 200_000, 100_000]
    assert _column(got, "closing_principal") == [300_000, 200_000, 100_000, 0]
    assert _column(got, "scheduled_principal_paid") == [0, 100_000, 100_000, 100_000]
    assert _column(got, "unscheduled_principal_paid") == [0, 0, 0, 0]
    assert _column(got, "interest_paid") == [0, 3_000, 2_000, 1_000]
    assert _column(got, "dpd") == [0, 0, 0, 0]
    assert _column(got, "bucket") == ["current"] * 4
    assert _column(got, "status") == ["current", "current", "current", "matured"]
    assert _column(got, "months_on_book") == [0, 1, 2, 3]
    assert _column(got, "remaining_term") == [3, 2, 1, 0]
    assert _column(got, "pool_id") == [None] * 4


def test_a_late_payment_is_delinquent_at_month_end_then_cured() -> None:
    cash = [
        ("r1", "A", date(2024, 3, 5), 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=MONTH_ENDS[:3])
    # 2024-02-29 - 2024-02-15 = 14 days past due.
    assert _column(got, "dpd") == [0, 14, 0]
    assert _column(got, "bucket") == ["current", "1-30", "current"]
    assert _column(got, "status") == ["current", "delinquent", "current"]
    assert _column(got, "scheduled_principal_paid") == [0, 0, 200_000]


def test_a_shortfall_within_the_tolerance_counts_as_paid() -> None:
    cash = [("r1", "A", DUE_1, 100_000, 2_900, 0, "scheduled")]
    got = _snapshots([THREE_MONTH], cash, dates=[date(2024, 3, 10)])
    assert _column(got, "dpd") == [0]
    strict = _snapshots(
        [THREE_MONTH], cash, dates=[date(2024, 3, 10)], rules=PerformanceRules(tolerance_fen=99)
    )
    # 100.00 short of 1,030.00 is more than 0.99: instalment 1 is 24 days late.
    assert _column(strict, "dpd") == [24]


def test_a_loan_rolls_30_60_90_defaults_recovers_and_is_charged_off() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 7, 10), 50_000, 0, 0, "recovery"),
        ("r3", "A", date(2024, 8, 20), 10_000, 500, 200, "recovery"),
    ]
    got = _snapshots([THREE_MONTH], cash)
    # Instalment 2 (due 03-15) is never paid: DPD at month-ends 16, 46, 77, 107, ...
    assert _column(got, "dpd") == [0, 0, 16, 46, 77, 107, 138, 169, 199]
    assert _column(got, "bucket") == [
        "current",
        "current",
        "1-30",
        "31-60",
        "61-90",
        "91-120",
        "121-150",
        "151-180",
        "180+",
    ]
    assert _column(got, "status") == [
        "current",
        "current",
        "delinquent",
        "delinquent",
        "delinquent",
        "defaulted",
        "defaulted",
        "defaulted",
        "charged_off",
    ]
    # DPD first exceeds 90 on 03-15 + 91 days = 06-14; charge-off at + 181 = 09-12.
    assert _column(got, "default_date") == [None] * 5 + [date(2024, 6, 14)] * 4
    assert _column(got, "defaulted_principal") == [0] * 5 + [200_000] * 4
    assert _column(got, "recoveries") == [0, 0, 0, 0, 0, 0, 50_000, 10_700, 0]
    assert _column(got, "closing_principal") == [
        300_000,
        200_000,
        200_000,
        200_000,
        200_000,
        200_000,
        150_000,
        140_000,
        140_000,
    ]
    # Cash after the default date is recovery, never scheduled principal.
    assert sum(_column(got, "scheduled_principal_paid")) == 100_000
    assert sum(_column(got, "interest_paid")) == 3_000
    assert sum(_column(got, "fees_paid")) == 0


def test_a_full_prepayment_in_month_two_is_unscheduled_and_prepaid() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 3, 5), 200_000, 1_300, 0, "full_prepayment"),
    ]
    got = _snapshots([THREE_MONTH], cash)
    assert _column(got, "as_of_date") == MONTH_ENDS[:3]
    # Only instalment 1's 1,000.00 was due by 03-05, so all 2,000.00 is unscheduled.
    assert _column(got, "scheduled_principal_paid") == [0, 100_000, 0]
    assert _column(got, "unscheduled_principal_paid") == [0, 0, 200_000]
    assert _column(got, "interest_paid") == [0, 3_000, 1_300]
    assert _column(got, "status") == ["current", "current", "prepaid"]
    assert _column(got, "remaining_term") == [3, 2, 0]


def test_a_partial_prepayment_splits_by_cumulative_principal_due() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 2, 20), 50_000, 0, 0, "partial_prepayment"),
        ("r3", "A", DUE_2, 100_000, 1_500, 0, "scheduled"),
        ("r4", "A", DUE_3, 50_000, 500, 0, "scheduled"),
    ]
    got = _snapshots([THREE_MONTH], cash)
    assert _column(got, "as_of_date") == MONTH_ENDS[:4]
    # February: 1,500.00 paid against 1,000.00 due -> U = 500.00 unscheduled.
    # March 15: 1,500.00 -> 2,500.00 against 2,000.00 due: still 500.00 ahead,
    #   U stays 500.00, so the full instalment is scheduled (not counted twice).
    # April 15: 2,500.00 -> 3,000.00 against 3,000.00 due: all scheduled.
    assert _column(got, "scheduled_principal_paid") == [0, 100_000, 100_000, 50_000]
    assert _column(got, "unscheduled_principal_paid") == [0, 50_000, 0, 0]
    assert _column(got, "closing_principal") == [300_000, 150_000, 50_000, 0]
    assert _column(got, "dpd") == [0, 0, 0, 0]
    assert _column(got, "status") == ["current", "current", "current", "matured"]


def test_a_reversal_makes_the_loan_delinquent_from_its_value_date() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 3, 10), 100_000, 3_000, 0, "reversal"),
    ]
    got = _snapshots(
        [THREE_MONTH],
        cash,
        dates=[date(2024, 2, 29), date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 31)],
    )
    # Before the reversal nothing is overdue (instalment 2 falls due 03-15);
    # from 03-10 instalment 1 is unpaid again: 24 days, then 45 at 03-31.
    assert _column(got, "dpd") == [0, 0, 24, 45]
    assert _column(got, "status") == ["current", "current", "delinquent", "delinquent"]
    assert _column(got, "scheduled_principal_paid") == [100_000, 0, -100_000, 0]
    assert _column(got, "interest_paid") == [3_000, 0, -3_000, 0]
    assert _column(got, "closing_principal") == [200_000, 200_000, 300_000, 300_000]


def test_a_reversal_defaults_a_loan_on_the_reversal_date() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 6, 1), 100_000, 3_000, 0, "reversal"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[date(2024, 5, 31), date(2024, 6, 30)])
    # Without the reversal the default date would be 06-14 (instalment 2).
    # On 06-01 instalment 1 (due 02-15) is unpaid again at 107 days past due.
    assert _column(got, "default_date") == [None, date(2024, 6, 1)]
    assert _column(got, "defaulted_principal") == [0, 300_000]
    assert _column(got, "status") == ["delinquent", "defaulted"]
    # The reversal is on the default date itself, so it is performing cash.
    assert _column(got, "scheduled_principal_paid") == [100_000, -100_000]
    assert _column(got, "recoveries") == [0, 0]


def test_pool_rules_override_the_default_thresholds() -> None:
    cash = [("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled")]
    pool = [("P", "A", date(2024, 1, 31), "added")]
    got = _snapshots(
        [THREE_MONTH],
        cash,
        pool,
        dates=[date(2024, 5, 31)],
        rules_by_pool={"P": PerformanceRules(default_dpd=60, charge_off_dpd=70)},
    )
    # 03-15 + 61 = 05-15 default; + 71 = 05-25 charge-off.
    assert _column(got, "default_date") == [date(2024, 5, 15)]
    assert _column(got, "status") == ["charged_off"]


def test_a_pool_purchase_counts_from_the_period_start_and_a_repurchase_at_its_end() -> None:
    pool = [
        ("P", "A", date(2024, 2, 10), "added"),
        ("P", "A", date(2024, 3, 20), "removed"),
    ]
    got = _snapshots([THREE_MONTH], ON_TIME, pool)
    assert _column(got, "pool_id") == [None, "P", "P", None]
    assert _column(got, "purchased_principal") == [0, 300_000, 0, 0]
    assert _column(got, "removed_principal") == [0, 0, 100_000, 0]
    assert _column(got, "status") == ["current", "current", "repurchased", "matured"]


def test_overpaid_principal_is_capped_and_listed() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 2, 20), 200_500, 0, 0, "full_prepayment"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[date(2024, 2, 29)])
    assert _column(got, "closing_principal") == [0]
    assert _column(got, "unscheduled_principal_paid") == [200_000]
    assert _column(got, "status") == ["prepaid"]
    flagged = overpayments(_loans([THREE_MONTH]), _cash(cash)).collect()
    assert flagged.rows() == [("A", "r2", date(2024, 2, 20), 500)]


# --- pool roll-forward on random books -------------------------------------------------


def _random_book(seed: int) -> tuple[list[Loan], list[Cash], list[PoolEvent]]:
    rng = random.Random(seed)
    loans: list[Loan] = []
    cash: list[Cash] = []
    pool: list[PoolEvent] = []
    for i in range(rng.randint(3, 12)):
        loan_id = f"L{i:02d}"
        origination = date(2023, 11, 1) + timedelta(days=rng.randint(0, 150))
        term = rng.randint(1, 8)
        principal = rng.randint(1, 2_000_000)
        rate = f"0.{rng.randint(0, 36):02d}"
        method = rng.choice(schema.REPAYMENT_METHODS)
        loans.append((loan_id, origination, principal, rate, term, method))
        schedule = build_schedules(_loans([loans[-1]])).collect()
        behaviour = rng.choice(["on_time", "late", "stops", "prepays", "overpays"])
        stop = rng.randint(1, term)
        for k, (due, p, interest) in enumerate(
            schedule.select("due_date", "principal_due", "interest_due").rows(), start=1
        ):
            if behaviour == "stops" and k >= stop:
                break
            lag = rng.randint(0, 70) if behaviour == "late" else 0
            cash.append(
                (
                    f"{loan_id}-{k}",
                    loan_id,
                    due + timedelta(days=lag),
                    p,
                    interest,
                    rng.choice([0, 0, 500]),
                    "scheduled",
                )
            )
            if behaviour in {"prepays", "overpays"} and k == stop:
                extra = rng.randint(1, principal)
                if behaviour == "overpays":
                    extra += principal
                cash.append(
                    (
                        f"{loan_id}-x",
                        loan_id,
                        due + timedelta(days=3),
                        extra,
                        0,
                        0,
                        "partial_prepayment",
                    )
                )
        if cash and cash[-1][1] == loan_id and rng.random() < 0.3:
            victim = cash[-1 - rng.randint(0, 0)]
            cash.append(
                (
                    f"{loan_id}-rev",
                    loan_id,
                    victim[2] + timedelta(days=rng.randint(0, 40)),
                    victim[3],
                    victim[4],
                    victim[5],
                    "reversal",
                )
            )
        if behaviour == "stops":
            recovery_day = origination + timedelta(days=rng.randint(120, 300))
            cash.append(
                (
                    f"{loan_id}-rec",
                    loan_id,
                    recovery_day,
                    rng.randint(0, principal // 2),
                    rng.randint(0, 1_000),
                    0,
                    "recovery",
                )
            )
        if rng.random() < 0.8:
            pool_id = rng.choice(["P1", "P2"])
            added = origination + timedelta(days=rng.randint(-20, 120))
            pool.append((pool_id, loan_id, added, "added"))
            if rng.random() < 0.3:
                pool.append(
                    (pool_id, loan_id, added + timedelta(days=rng.randint(0, 120)), "removed")
                )
    return loans, cash, pool


def _rollforward_differences(snapshots: pl.DataFrame) -> list[tuple[Any, ...]]:
    dates = sorted(snapshots["as_of_date"].unique().to_list())
    previous = dict(zip(dates[1:], dates[:-1], strict=True))
    performing = pl.col("status").is_in(list(schema.PERFORMING_STATUSES))
    differences = []
    for pool_id in ("P1", "P2"):
        rows = snapshots.filter(pl.col("pool_id") == pool_id)
        for as_of in dates:
            now = rows.filter(pl.col("as_of_date") == as_of)
            before = previous.get(as_of)
            opening = (
                rows.filter((pl.col("as_of_date") == before) & performing)[
                    "closing_principal"
                ].sum()
                if before
                else 0
            )
            # A loan removed before it defaulted left the pool performing: its
            # default, after the removal day, is outside the pool.
            defaulted_now = (
                now.filter(
                    pl.col("default_date").is_not_null()
                    & (pl.col("default_date") <= as_of)
                    & ((pl.col("default_date") > before) if before else pl.lit(True))
                )
                .select(pl.col("defaulted_principal") - pl.col("outside_defaulted_principal"))
                .to_series()
                .sum()
            )
            closing = now.filter(performing)["closing_principal"].sum()
            # Pool principal: the loan's, less what was paid outside the pool.
            rolled = (
                opening
                - now["scheduled_principal_paid"].sum()
                + now["outside_scheduled_principal_paid"].sum()
                - now["unscheduled_principal_paid"].sum()
                + now["outside_unscheduled_principal_paid"].sum()
                - defaulted_now
                - now["removed_principal"].sum()
                + now["purchased_principal"].sum()
            )
            if rolled != closing:
                differences.append((pool_id, as_of, opening, rolled, closing))
    return differences


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
# L01 is repaid, removed with nothing owed, reversed and defaults outside its pool.
@example(seed=116)
# A loan defaults and is then removed in the same period: a pool default.
@example(seed=2115697)
def test_the_pool_roll_forward_closes_to_the_fen(seed: int) -> None:
    loans, cash, pool = _random_book(seed)
    dates = [date(2023, 12, 31), *MONTH_ENDS, date(2024, 12, 31)]
    got = _snapshots(loans, cash, pool, dates=dates)
    assert _rollforward_differences(got) == []
    # Every loan's principal is accounted for: paid, still owed, or capped overpayment.
    assert (got["closing_principal"] >= 0).all()
    assert (got["closing_principal"] <= got["opening_principal"] + 2_000_000).all()
    assert got.select("as_of_date", "loan_id").is_duplicated().sum() == 0


# --- invariants on random books --------------------------------------------------------


def _reference_dpd(
    schedule: list[tuple[date, int]], events: list[tuple[date, int, int]], principal: int, t: date
) -> int:
    """DPD at ``t`` straight from the team rule, one loan at a time."""
    cash = sum(p + i for d, p, i in events if d <= t)
    paid = min(max(sum(p for d, p, _ in events if d <= t), 0), principal)
    if paid >= principal:
        return 0
    due = 0
    for due_date, amount in schedule:
        due += amount
        if due_date <= t and amount > 0 and due - cash > 100:
            return (t - due_date).days
    return 0


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_principal_paid_plus_outstanding_is_the_principal_and_dpd_follows_the_rule(
    seed: int,
) -> None:
    loans, cash, pool = _random_book(seed)
    dates = [date(2023, 12, 31), *MONTH_ENDS, date(2024, 12, 31)]
    got = _snapshots(loans, cash, pool, dates=dates)
    schedules = build_schedules(_loans(loans)).collect()
    for loan_id, _, principal, *_ in loans:
        rows = got.filter(pl.col("loan_id") == loan_id)
        sign = {"reversal": -1}
        events = [
            (d, sign.get(kind, 1) * p, sign.get(kind, 1) * i)
            for _, lid, d, p, i, _, kind in cash
            if lid == loan_id
        ]
        plan = schedules.filter(pl.col("loan_id") == loan_id)
        schedule = [
            (d, p + i)
            for d, p, i in plan.select("due_date", "principal_due", "interest_due").rows()
        ]
        paid_so_far = 0
        for row in rows.iter_rows(named=True):
            t = row["as_of_date"]
            paid_so_far += row["scheduled_principal_paid"] + row["unscheduled_principal_paid"]
            raw = sum(p for d, p, _ in events if d <= t)
            assert row["closing_principal"] == principal - min(max(raw, 0), principal)
            if row["default_date"] is None:
                assert paid_so_far + row["closing_principal"] == principal
            else:
                # Performing principal paid plus the balance at default is the principal.
                assert paid_so_far + row["defaulted_principal"] == principal
            assert row["dpd"] == _reference_dpd(schedule, events, principal, t), (loan_id, t)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_statuses_only_move_along_legal_transitions(seed: int) -> None:
    loans, cash, pool = _random_book(seed)
    dates = [date(2023, 12, 31), *MONTH_ENDS, date(2024, 12, 31)]
    got = _snapshots(loans, cash, pool, dates=dates)
    assert set(got["status"].unique()) <= set(schema.LOAN_STATUSES)
    for (_,), rows in got.group_by("loan_id"):
        history = rows.sort("as_of_date").iter_rows(named=True)
        previous: dict[str, Any] | None = None
        for row in history:
            if row["status"] in {"defaulted", "charged_off"}:
                assert row["default_date"] is not None
            if previous is not None:
                if previous["default_date"] is not None:
                    # A defaulted loan never returns to the performing pool.
                    assert row["status"] in {"defaulted", "charged_off", "repurchased"}
                if previous["status"] == "charged_off":
                    assert row["status"] in {"charged_off", "repurchased"}
                if previous["status"] in {"prepaid", "matured"} and row["status"] in {
                    "current",
                    "delinquent",
                }:
                    # Only a reversal brings a repaid loan's balance back.
                    moved = row["scheduled_principal_paid"] + row["unscheduled_principal_paid"]
                    assert moved < 0
            previous = row


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=100, max_value=5_000_000),
            st.sampled_from(["0", "0.0795", "0.18", "0.36"]),
            st.integers(min_value=1, max_value=12),
            st.sampled_from(schema.REPAYMENT_METHODS),
            st.integers(min_value=0, max_value=20),
            st.integers(min_value=0, max_value=300_000),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_dpd_is_zero_while_everything_due_is_paid(
    terms: list[tuple[int, str, int, str, int, int]],
) -> None:
    loans: list[Loan] = []
    cash: list[Cash] = []
    for n, (principal, rate, term, method, early, extra) in enumerate(terms):
        loan_id = f"L{n}"
        loans.append(
            (loan_id, date(2024, 1, 10) + timedelta(days=n), principal, rate, term, method)
        )
        plan = build_schedules(_loans([loans[-1]])).collect()
        for k, (due, p, i) in enumerate(
            plan.select("due_date", "principal_due", "interest_due").rows(), start=1
        ):
            paid_on = max(due - timedelta(days=early), loans[-1][1])
            cash.append((f"{loan_id}-{k}", loan_id, paid_on, p, i, 0, "scheduled"))
        if extra:
            cash.append((f"{loan_id}-x", loan_id, date(2024, 2, 1), 0, extra, 0, "scheduled"))
    dates = sorted({*MONTH_ENDS, *(date(2024, 1, 31) + timedelta(days=7 * w) for w in range(40))})
    got = _snapshots(loans, cash, dates=dates)
    assert got["dpd"].max() == 0
    assert set(got["status"].unique()) <= {"current", "matured", "prepaid"}


# --- allocation, reversals and rules in force ------------------------------------------


def test_a_reversed_prepayment_takes_back_the_unscheduled_principal() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 2, 20), 50_000, 0, 0, "partial_prepayment"),
        ("r3", "A", date(2024, 2, 26), 50_000, 0, 0, "reversal"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[date(2024, 2, 21), date(2024, 2, 29)])
    # The reversal leaves the principal at the schedule (1,000.00 paid, 1,000.00
    # due): it undoes the prepayment, not the instalment.
    assert _column(got, "unscheduled_principal_paid") == [50_000, -50_000]
    assert _column(got, "scheduled_principal_paid") == [100_000, 0]
    assert _column(got, "closing_principal") == [150_000, 200_000]


def test_a_reversed_instalment_of_a_borrower_ahead_reduces_scheduled_principal() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 2, 20), 50_000, 0, 0, "partial_prepayment"),
        ("r3", "A", DUE_2, 100_000, 2_000, 0, "scheduled"),
        ("r4", "A", date(2024, 3, 20), 100_000, 2_000, 0, "reversal"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=[date(2024, 2, 29), DUE_2, date(2024, 3, 31)])
    # After the reversal 1,500.00 is paid against 2,000.00 due: the principal is
    # back below the schedule, so the reversal undoes the instalment and the
    # February prepayment stays counted once, exactly as if March was never paid.
    assert _column(got, "unscheduled_principal_paid") == [50_000, 0, 0]
    assert _column(got, "scheduled_principal_paid") == [100_000, 100_000, -100_000]
    never_paid = _snapshots([THREE_MONTH], cash[:2], dates=[date(2024, 2, 29), date(2024, 3, 31)])
    assert (
        got.filter(pl.col("as_of_date") == date(2024, 3, 31))
        .select("closing_principal", "dpd", "status")
        .rows()
        == never_paid.filter(pl.col("as_of_date") == date(2024, 3, 31))
        .select("closing_principal", "dpd", "status")
        .rows()
    )
    # 3,000.00 + 1,500.00 ahead of 2,050.00 due: instalment 2 is short, 16 days late.
    assert _column(got, "dpd") == [0, 0, 16]


def test_interest_paid_beyond_the_interest_due_covers_instalments_but_not_the_balance() -> None:
    # 1,000.00 principal and 50.00 interest against 1,000.00 + 30.00 due.
    over = [("r1", "A", DUE_1, 100_000, 5_000, 0, "scheduled")]
    got = _snapshots([THREE_MONTH], over, dates=[date(2024, 2, 29), date(2024, 3, 20)])
    assert _column(got, "interest_paid") == [5_000, 0]
    assert _column(got, "closing_principal") == [200_000, 200_000]
    # The extra 20.00 is cash toward instalment 2 (1,020.00), still short: 5 days late.
    assert _column(got, "dpd") == [0, 5]
    # An instalment booked wholly as interest keeps the loan current but owes the principal.
    as_interest = [("r1", "A", DUE_1, 0, 103_000, 0, "scheduled")]
    got = _snapshots([THREE_MONTH], as_interest, dates=[date(2024, 2, 29)])
    assert _column(got, "dpd") == [0]
    assert _column(got, "closing_principal") == [300_000]
    assert _column(got, "scheduled_principal_paid") == [0]


def test_pool_rules_apply_from_the_day_the_loan_joins_the_pool() -> None:
    cash = [("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled")]
    # Instalment 2 (due 03-15) is never paid; on 05-20 the loan, 66 days past
    # due, joins a pool whose loans default beyond 60 days.
    pool = [("P", "A", date(2024, 5, 20), "added")]
    got = _snapshots(
        [THREE_MONTH],
        cash,
        pool,
        dates=[date(2024, 4, 30), date(2024, 5, 31)],
        rules_by_pool={"P": PerformanceRules(default_dpd=60, charge_off_dpd=120)},
    )
    # The purchase does not restate April, and the loan defaults the day it joins.
    assert _column(got, "status") == ["delinquent", "defaulted"]
    assert _column(got, "default_date") == [None, date(2024, 5, 20)]


def test_default_then_partial_recovery_keeps_the_loan_out_of_the_performing_pool() -> None:
    cash = [
        ("r1", "A", DUE_1, 100_000, 3_000, 0, "scheduled"),
        ("r2", "A", date(2024, 7, 1), 80_000, 2_000, 500, "recovery"),
    ]
    got = _snapshots([THREE_MONTH], cash, dates=MONTH_ENDS[:7]).filter(
        pl.col("as_of_date") >= date(2024, 5, 31)
    )
    # Instalment 2 (due 03-15) is never paid: default on 06-14 at 2,000.00.
    assert _column(got, "status") == ["delinquent", "defaulted", "defaulted"]
    assert _column(got, "defaulted_principal") == [0, 200_000, 200_000]
    assert _column(got, "recoveries") == [0, 0, 82_500]
    assert _column(got, "closing_principal") == [200_000, 200_000, 120_000]
    assert _column(got, "scheduled_principal_paid") == [0, 0, 0]


# --- incremental runs -----------------------------------------------------------------


def _run(
    book: tuple[list[Loan], list[Cash], list[PoolEvent]],
    dates: list[date],
    *,
    state: EngineState | None,
    base: date | None,
) -> EngineRun:
    loans, cash, pool = book
    frame = _loans(loans)
    return run_engine(
        frame,
        build_schedules(frame),
        _cash(cash),
        _pool(pool),
        dates,
        state=state,
        base=base,
        rules_by_pool={"P2": PerformanceRules(default_dpd=60, charge_off_dpd=90, tolerance_fen=0)},
    )


PERIOD_ENDS = [date(2023, 9, 30), date(2023, 10, 31), date(2023, 11, 30), date(2023, 12, 31)]
PERIOD_ENDS += [*MONTH_ENDS, date(2024, 10, 31), date(2024, 11, 30), date(2024, 12, 31)]


@settings(max_examples=10, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32),
    st.lists(st.integers(min_value=1, max_value=45), min_size=3, max_size=10),
)
def test_continuing_from_the_state_equals_starting_from_nothing(
    seed: int, steps: list[int]
) -> None:
    book = _random_book(seed)
    day = date(2023, 9, 1)
    state: EngineState | None = None
    for step in steps:
        new_day = day + timedelta(days=step)
        # Nightly: the period ends since the last run, and the new business date.
        chain = sorted({*(d for d in PERIOD_ENDS if day < d <= new_day), new_day})
        ends = [d for d in PERIOD_ENDS if d <= new_day]
        base = ends[-1] if ends else None
        run = _run(book, chain, state=state, base=base)
        # From nothing: every period end, then the business date.
        fresh = _run(book, sorted({*ends, new_day}), state=None, base=base)
        expected = fresh.snapshots.collect().filter(pl.col("as_of_date").is_in(chain))
        assert run.snapshots.collect().equals(expected), new_day
        assert run.state.loans.collect().equals(fresh.state.loans.collect()), new_day
        assert run.state.as_of == new_day
        state, day = run.state, new_day


def test_the_oldest_unpaid_instalment_is_found_whatever_the_size_of_the_amounts() -> None:
    def found(scale: int) -> list[int | None]:
        # Loan 0: instalments of 100 and 200 (cumulative 100, 300); loan 2: one of 50;
        # loan 1 has no schedule. Amounts times ``scale``.
        schedule = pl.DataFrame(
            {
                "k": [0, 0, 2],
                "amount": [100 * scale, 200 * scale, 50 * scale],
                "cum_due": [100 * scale, 300 * scale, 50 * scale],
                "due": [10, 40, 20],
            },
            schema={"k": pl.UInt32, "amount": pl.Int64, "cum_due": pl.Int64, "due": pl.Int32},
        )
        cash = [-5, 0, 99, 100, 299, 300, 0, 0, 49, 50]
        days = pl.DataFrame(
            {
                "k": [0, 0, 0, 0, 0, 0, 1, 2, 2, 2],
                "cum_cash": [c * scale for c in cash],
                "tolerance": [0] * len(cash),
            },
            schema={"k": pl.UInt32, "cum_cash": pl.Int64, "tolerance": pl.Int64},
        )
        return _oldest_unpaid(days, schedule).to_list()

    expected = [10, 10, 10, 40, 40, None, None, 20, 20, None]
    assert found(1) == expected
    # Amounts too wide for a 64-bit (loan, amount) key take the ranked path.
    assert found(1 << 54) == expected


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_the_order_of_the_inputs_changes_no_snapshot(seed: int) -> None:
    loans, cash, pool = _random_book(seed)
    book = _loans(loans)
    schedules = build_schedules(book).collect()
    dates = [date(2023, 12, 31), *MONTH_ENDS]
    in_order = loan_snapshots(
        book,
        schedules.lazy(),
        _cash(sorted(cash, key=lambda c: (c[1], c[2], c[0]))),
        _pool(pool),
        dates,
    ).collect()
    shuffled = random.Random(seed).sample(cash, len(cash))
    reversed_schedule = schedules.reverse().lazy()
    mixed = loan_snapshots(book, reversed_schedule, _cash(shuffled), _pool(pool), dates).collect()
    assert mixed.equals(in_order)


def test_unscheduled_principal_is_the_same_whatever_the_size_of_the_amounts() -> None:
    def ahead(scale: int) -> list[int]:
        # Loan 0: a prepayment, an instalment, then the prepayment reversed;
        # loan 1 starts 5 ahead and pays 20 against 10 due. Amounts times ``scale``.
        events = pl.DataFrame(
            {
                "k": [0, 0, 0, 1],
                "reversal": [False, False, True, False],
                "c_after": [60, 100, 60, 20],
                "c_before": [0, 60, 100, 0],
                "due": [0, 50, 50, 10],
                "o_u": [0, 0, 0, 5],
            }
        ).with_columns(pl.col("c_after", "c_before", "due", "o_u") * scale)
        return [int(u) for u in _unscheduled_ahead(events)]

    expected = [60, 60, 20, 10]
    assert ahead(1) == expected
    # Keys too wide for 64 bits take the 128-bit path.
    assert ahead(1 << 55) == [u << 55 for u in expected]
