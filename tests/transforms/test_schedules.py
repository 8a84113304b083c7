"""Tests for transforms.schedules: exact schedules and clamped due dates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import schema
from transforms.schedules import add_months, build_schedules, rate_ppm, round_half_up_div


def _loans(rows: list[tuple[str, date, int, str, int, str]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "loan_id": [r[0] for r in rows],
            "first_due_date": [r[1] for r in rows],
            "principal": [r[2] for r in rows],
            "annual_rate": [Decimal(r[3]) for r in rows],
            "term_months": [r[4] for r in rows],
            "repayment_method": [r[5] for r in rows],
        },
        schema={
            "loan_id": pl.String,
            "first_due_date": pl.Date,
            "principal": pl.Int64,
            "annual_rate": schema.RATE,
            "term_months": pl.Int32,
            "repayment_method": pl.String,
        },
    )


def test_it_reproduces_the_domain_worked_example() -> None:
    loans = _loans([("L1", date(2024, 2, 15), 1_000_000, "0.12", 12, "equal_instalment")])
    s = build_schedules(loans).collect()
    amounts = s["principal_due"] + s["interest_due"]
    assert amounts[:11].to_list() == [88_849] * 11
    assert s.row(0) == ("L1", 1, date(2024, 2, 15), 78_849, 10_000)
    assert s.row(11) == ("L1", 12, date(2025, 1, 15), 87_967, 880)
    assert amounts[11] == 88_847
    assert s["interest_due"].sum() == 66_186
    assert s["principal_due"].sum() == 1_000_000


def test_it_has_the_schema_columns_sorted_by_loan_and_instalment() -> None:
    loans = _loans(
        [
            ("B", date(2024, 1, 10), 50_000, "0.1", 2, "equal_principal"),
            ("A", date(2024, 1, 10), 50_000, "0.1", 3, "interest_only"),
        ]
    )
    s = build_schedules(loans).collect()
    assert s.schema == pl.Schema(schema.SCHEDULES)
    assert s.select("loan_id", "instalment_no").rows() == [
        ("A", 1),
        ("A", 2),
        ("A", 3),
        ("B", 1),
        ("B", 2),
    ]


def test_equal_principal_interest_only_and_bullet_follow_the_conventions() -> None:
    loans = _loans(
        [
            ("EP", date(2024, 1, 5), 1_000_000, "0.12", 3, "equal_principal"),
            ("IO", date(2024, 1, 5), 1_000_000, "0.12", 3, "interest_only"),
            ("BU", date(2024, 1, 5), 1_000_000, "0.12", 3, "bullet"),
        ]
    )
    s = build_schedules(loans).collect()
    by_loan = {
        lid: list(zip(g["principal_due"], g["interest_due"], strict=True))
        for (lid,), g in s.group_by("loan_id", maintain_order=True)
    }
    # 1% a month on balances 10,000.00 / 6,666.67 / 3,333.33.
    assert by_loan["EP"] == [(333_333, 10_000), (333_333, 6_667), (333_334, 3_333)]
    assert by_loan["IO"] == [(0, 10_000), (0, 10_000), (1_000_000, 10_000)]
    # Bullet: 10,000.00 x 12% / 12 x 3 = 300.00 at maturity.
    assert by_loan["BU"] == [(0, 0), (0, 0), (1_000_000, 30_000)]


def test_zero_rate_loans_repay_principal_only() -> None:
    loans = _loans(
        [
            ("EI", date(2024, 1, 5), 100_000, "0", 3, "equal_instalment"),
            ("EP", date(2024, 1, 5), 100_000, "0", 3, "equal_principal"),
            ("BU", date(2024, 1, 5), 100_000, "0", 3, "bullet"),
        ]
    )
    s = build_schedules(loans).collect().sort("loan_id", "instalment_no")
    assert s["interest_due"].to_list() == [0] * 9
    # 1,000.00 / 3 = 333.33 twice, 333.34 on the last.
    assert s.filter(pl.col("loan_id") == "EI")["principal_due"].to_list() == [
        33_333,
        33_333,
        33_334,
    ]
    assert s.filter(pl.col("loan_id") == "BU")["principal_due"].to_list() == [0, 0, 100_000]


def test_one_month_terms_pay_everything_at_once() -> None:
    loans = _loans(
        [
            (m[:2], date(2024, 3, 1), 123_457, "0.18", 1, m)
            for m in ("equal_instalment", "equal_principal", "interest_only", "bullet")
        ]
    )
    s = build_schedules(loans).collect()
    # 1,234.57 x 1.5% = 18.51855 -> 18.52 for every method.
    assert s.select("principal_due", "interest_due").rows() == [(123_457, 1_852)] * 4


def test_tiny_loans_never_owe_more_principal_than_is_left() -> None:
    # round(100 / 60) = 2 fen a month would repay 118 fen by instalment 59.
    loans = _loans([("T", date(2024, 1, 1), 100, "0", 60, "equal_principal")])
    s = build_schedules(loans).collect()
    assert s["principal_due"].min() == 0
    assert s["principal_due"].to_list() == [2] * 50 + [0] * 10
    assert s["principal_due"].sum() == 100


def test_due_dates_clamp_to_month_end_and_return_to_the_day() -> None:
    loans = _loans(
        [
            ("D31", date(2024, 1, 31), 300_000, "0.1", 4, "equal_instalment"),
            ("D30", date(2023, 12, 30), 300_000, "0.1", 4, "equal_instalment"),
            ("D29", date(2023, 1, 29), 300_000, "0.1", 2, "equal_instalment"),
        ]
    )
    s = build_schedules(loans).collect()
    dates = {
        lid: g["due_date"].to_list() for (lid,), g in s.group_by("loan_id", maintain_order=True)
    }
    assert dates["D31"] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    assert dates["D30"] == [
        date(2023, 12, 30),
        date(2024, 1, 30),
        date(2024, 2, 29),
        date(2024, 3, 30),
    ]
    assert dates["D29"] == [date(2023, 1, 29), date(2023, 2, 28)]


def test_a_leap_day_first_due_date_keeps_the_29th_and_clamps_in_february() -> None:
    loans = _loans([("L", date(2024, 2, 29), 1_200_000, "0.1", 13, "equal_principal")])
    s = build_schedules(loans).collect()
    due = s["due_date"].to_list()
    assert due[:2] == [date(2024, 2, 29), date(2024, 3, 29)]
    assert due[-1] == date(2025, 2, 28)
    assert s["principal_due"].sum() == 1_200_000


def test_a_zero_rate_one_month_loan_owes_its_principal_once() -> None:
    loans = _loans([("Z", date(2024, 1, 31), 1, "0", 1, "equal_instalment")])
    assert build_schedules(loans).collect().rows() == [("Z", 1, date(2024, 1, 31), 1, 0)]


def test_add_months_clamps_like_the_schedule() -> None:
    frame = pl.DataFrame({"d": [date(2024, 1, 31)] * 3, "k": [0, 1, 2]})
    out = frame.select(
        add_months(pl.col("d"), pl.col("k")).alias("by_expr"),
        add_months(pl.col("d"), 13).alias("by_int"),
    )
    assert out["by_expr"].to_list() == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
    assert out["by_int"].to_list() == [date(2025, 2, 28)] * 3


def test_round_half_up_div_and_rate_ppm() -> None:
    frame = pl.DataFrame(
        {"n": [0, 1, 2, 3, 5], "r": [Decimal("0.109500")] * 5},
        schema={"n": pl.Int64, "r": schema.RATE},
    )
    out = frame.select(round_half_up_div(pl.col("n"), 2).alias("q"), rate_ppm(pl.col("r")))
    assert out["q"].to_list() == [0, 1, 1, 2, 3]
    assert out["r"].to_list() == [109_500] * 5


def test_unknown_method_is_rejected() -> None:
    loans = _loans([("X", date(2024, 1, 1), 100, "0.1", 3, "balloon")])
    with pytest.raises(ValueError, match="balloon"):
        build_schedules(loans)


_loan_terms = st.tuples(
    st.integers(min_value=1, max_value=10**11),
    st.integers(min_value=0, max_value=360_000),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(schema.REPAYMENT_METHODS),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_loan_terms, min_size=1, max_size=12))
def test_principal_due_sums_exactly_to_principal(
    terms: list[tuple[int, int, int, str, date]],
) -> None:
    loans = _loans(
        [
            (f"L{i:03d}", first, p, str(Decimal(ppm) / 1_000_000), n, method)
            for i, (p, ppm, n, method, first) in enumerate(terms)
        ]
    )
    s = build_schedules(loans).collect()
    sums = s.group_by("loan_id").agg(
        pl.col("principal_due").sum(), pl.len(), pl.col("principal_due").min().alias("least")
    )
    got = {r["loan_id"]: (r["principal_due"], r["len"]) for r in sums.iter_rows(named=True)}
    assert got == {f"L{i:03d}": (p, n) for i, (p, _, n, _, _) in enumerate(terms)}
    assert sums["least"].min() >= 0  # type: ignore[operator]
    assert s["interest_due"].min() >= 0  # type: ignore[operator]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**10),
    st.integers(min_value=0, max_value=360_000),
    st.integers(min_value=1, max_value=60),
)
def test_equal_instalment_matches_an_exact_reference(principal: int, ppm: int, term: int) -> None:
    # Reference written independently with Python integers and Fractions.
    from fractions import Fraction

    r = Fraction(ppm, 12_000_000)
    raw = Fraction(principal, term) if ppm == 0 else principal * r / (1 - (1 + r) ** -term)

    def half_up(x: Fraction) -> int:
        return int((2 * x.numerator + x.denominator) // (2 * x.denominator))

    payment = half_up(raw)
    balance = principal
    expected = []
    for k in range(1, term + 1):
        interest = half_up(balance * r)
        pay = balance if k == term else min(max(payment - interest, 0), balance)
        expected.append((pay, interest))
        balance -= pay
    loans = _loans(
        [
            (
                "L",
                date(2024, 1, 1),
                principal,
                str(Decimal(ppm) / 1_000_000),
                term,
                "equal_instalment",
            )
        ]
    )
    s = build_schedules(loans).collect()
    assert s.select("principal_due", "interest_due").rows() == expected
