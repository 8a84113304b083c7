"""Pool metrics from hand-built loan snapshots, against hand-computed values.

The pool ``P1`` (cut-off 2024-01-31) over three collection periods:

- L1 pays its schedule every month;
- L2 prepays 500.00 of principal in full in March (status ``prepaid``);
- L3 is delinquent from a missed instalment due 2024-01-20, defaults on
  2024-04-20 with 2,900.00 outstanding after paying 100.00, and recovers 50.00;
- L4 is repurchased at the end of March (3,400.00 removed);
- L5 is purchased in March (6,000.00, effective from the start of March);
- L6 makes a partial prepayment of 500.00 in February and misses April.

L7 sits outside every pool and L8 is the only loan of pool ``P2``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from transforms import schema
from transforms.pool_metrics import (
    M_NOTATION,
    cdr_from_mdr,
    cpr_from_smm,
    cumulative_performance,
    cutoff_balances,
    delinquency_buckets,
    delinquency_m_notation,
    mdr_from_cdr,
    pool_characteristics,
    pool_collections,
    pool_flows,
    pool_performance,
    pool_rollforward,
    rollforward_breaks,
    smm_from_cpr,
    with_period_rates,
    with_pool_factor,
)

JAN, FEB, MAR, APR = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)
PERIODS = [FEB, MAR, APR]
CUTOFFS = {"P1": JAN, "P2": JAN}


def snap(
    as_of: date,
    loan_id: str,
    pool_id: str | None,
    opening: int,
    closing: int,
    *,
    sched: int = 0,
    unsched: int = 0,
    interest: int = 0,
    fees: int = 0,
    dpd: int = 0,
    bucket: str = "current",
    status: str = "current",
    default_date: date | None = None,
    defaulted: int = 0,
    recoveries: int = 0,
    purchased: int = 0,
    removed: int = 0,
    drawings: int = 0,
    mob: int = 1,
    remaining: int = 6,
) -> dict[str, Any]:
    """One ``schema.LOAN_SNAPSHOTS`` row."""
    return {
        "as_of_date": as_of,
        "loan_id": loan_id,
        "pool_id": pool_id,
        "opening_principal": opening,
        "closing_principal": closing,
        "scheduled_principal_paid": sched,
        "unscheduled_principal_paid": unsched,
        "interest_paid": interest,
        "fees_paid": fees,
        "dpd": dpd,
        "bucket": bucket,
        "status": status,
        "default_date": default_date,
        "defaulted_principal": defaulted,
        "recoveries": recoveries,
        "purchased_principal": purchased,
        "removed_principal": removed,
        "months_on_book": mob,
        "remaining_term": remaining,
        **dict.fromkeys(schema.OUTSIDE_POOL_FLOWS.values(), 0),
        **dict.fromkeys(schema.OUTSIDE_POOL_DEFAULT.values(), 0),
        "new_drawings": drawings,
    }


def frame(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=schema.LOAN_SNAPSHOTS)


ROWS = [
    # cut-off: P1 = 10,000.00 + 5,000.00 + 3,000.00 + 4,000.00 + 2,000.00 = 24,000.00
    snap(JAN, "L1", "P1", 1_000_000, 1_000_000, mob=1, remaining=11),
    snap(JAN, "L2", "P1", 500_000, 500_000),
    snap(JAN, "L3", "P1", 300_000, 300_000, dpd=11, bucket="1-30", status="delinquent"),
    snap(JAN, "L4", "P1", 400_000, 400_000),
    snap(JAN, "L6", "P1", 200_000, 200_000, mob=3),
    snap(JAN, "L7", None, 999_999, 999_999),
    snap(JAN, "L8", "P2", 250_000, 250_000),
    # February
    snap(FEB, "L1", "P1", 1_000_000, 921_151, sched=78_849, interest=10_000, mob=2, remaining=10),
    snap(FEB, "L2", "P1", 500_000, 460_000, sched=40_000, interest=5_000),
    snap(FEB, "L3", "P1", 300_000, 300_000, dpd=40, bucket="31-60", status="delinquent"),
    snap(FEB, "L4", "P1", 400_000, 370_000, sched=30_000, interest=4_000),
    snap(FEB, "L5", None, 600_000, 600_000),
    snap(
        FEB,
        "L6",
        "P1",
        200_000,
        135_000,
        sched=15_000,
        unsched=50_000,
        interest=2_000,
        fees=500,
        mob=4,
    ),
    snap(FEB, "L7", None, 999_999, 999_999, sched=1, interest=1),
    snap(FEB, "L8", "P2", 250_000, 230_000, sched=20_000),
    # March
    snap(MAR, "L1", "P1", 921_151, 841_514, sched=79_637, interest=9_212, mob=3, remaining=9),
    snap(
        MAR,
        "L2",
        "P1",
        460_000,
        0,
        sched=40_000,
        unsched=420_000,
        interest=4_600,
        status="prepaid",
        remaining=0,
    ),
    snap(MAR, "L3", "P1", 300_000, 300_000, dpd=71, bucket="61-90", status="delinquent"),
    snap(
        MAR,
        "L4",
        "P1",
        370_000,
        340_000,
        sched=30_000,
        interest=3_700,
        status="repurchased",
        removed=340_000,
    ),
    snap(MAR, "L5", "P1", 600_000, 550_000, sched=50_000, interest=6_000, purchased=600_000),
    snap(MAR, "L6", "P1", 135_000, 120_000, sched=15_000, interest=1_350, mob=5),
    snap(MAR, "L7", None, 999_999, 999_999),
    snap(MAR, "L8", "P2", 230_000, 210_000, sched=20_000),
    # April (L2 no longer appears; L4 has left the pool)
    snap(APR, "L1", "P1", 841_514, 761_080, sched=80_434, interest=8_415, mob=4, remaining=8),
    snap(
        APR,
        "L3",
        "P1",
        300_000,
        285_000,
        sched=10_000,
        interest=3_000,
        dpd=101,
        bucket="91-120",
        status="defaulted",
        default_date=date(2024, 4, 20),
        defaulted=290_000,
        recoveries=5_000,
    ),
    snap(APR, "L4", None, 340_000, 310_000, sched=30_000),
    snap(APR, "L5", "P1", 550_000, 499_500, sched=50_500, interest=5_500, mob=2, remaining=10),
    snap(
        APR,
        "L6",
        "P1",
        120_000,
        120_000,
        fees=300,
        dpd=15,
        bucket="1-30",
        status="delinquent",
        mob=6,
        remaining=4,
    ),
    snap(APR, "L7", None, 999_999, 999_999),
    snap(APR, "L8", "P2", 210_000, 190_000, sched=20_000),
]

LOANS = pl.LazyFrame(
    {
        "loan_id": ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"],
        "borrower_id": ["B1", "B2", "B3", "B4", "B2", "B1", "B7", "B8"],
        "annual_rate": [
            Decimal(r) for r in ("0.12", "0.10", "0.15", "0.20", "0.18", "0.24", "0.30", "0.09")
        ],
    },
    schema={"loan_id": pl.String, "borrower_id": pl.String, "annual_rate": schema.RATE},
)


def rows_of(lf: pl.LazyFrame, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in lf.select(columns).collect().rows()]


class TestRollforward:
    def test_it_rolls_the_tiny_pool_forward_exactly(self) -> None:
        got = pool_rollforward(frame(ROWS), PERIODS).collect()
        expected = pl.DataFrame(
            {
                "pool_id": ["P1", "P1", "P1", "P2", "P2", "P2"],
                "period_end": [FEB, MAR, APR, FEB, MAR, APR],
                "opening_balance": [2_400_000, 2_186_151, 1_811_514, 250_000, 230_000, 210_000],
                "scheduled_principal": [163_849, 214_637, 140_934, 20_000, 20_000, 20_000],
                "unscheduled_principal": [50_000, 420_000, 0, 0, 0, 0],
                "defaulted_principal": [0, 0, 290_000, 0, 0, 0],
                "removed_principal": [0, 340_000, 0, 0, 0, 0],
                "purchased_principal": [0, 600_000, 0, 0, 0, 0],
                "new_drawings": [0, 0, 0, 0, 0, 0],
                "closing_balance": [2_186_151, 1_811_514, 1_380_580, 230_000, 210_000, 190_000],
                "opening_count": [5, 5, 4, 1, 1, 1],
                "closing_count": [5, 4, 3, 1, 1, 1],
                "defaulted_count": [0, 0, 1, 0, 0, 0],
                "removed_count": [0, 1, 0, 0, 0, 0],
                "purchased_count": [0, 1, 0, 0, 0, 0],
                # The opening cohort: loans performing in the pool at the period start.
                "cohort_opening_balance": [
                    2_400_000,
                    2_186_151,
                    1_811_514,
                    250_000,
                    230_000,
                    210_000,
                ],
                "cohort_scheduled_principal": [163_849, 164_637, 140_934, 20_000, 20_000, 20_000],
                "cohort_unscheduled_principal": [50_000, 420_000, 0, 0, 0, 0],
                "cohort_defaulted_principal": [0, 0, 290_000, 0, 0, 0],
            },
            schema_overrides={"period_end": pl.Date},
        ).with_columns(pl.exclude("pool_id", "period_end").cast(pl.Int64))
        assert_frame_equal(got, expected)

    def test_it_closes_every_period_to_the_fen(self) -> None:
        breaks = rollforward_breaks(pool_rollforward(frame(ROWS), PERIODS)).collect()
        assert breaks.height == 0

    def test_breaks_lists_a_row_that_does_not_close_with_its_difference(self) -> None:
        tampered = pool_rollforward(frame(ROWS), PERIODS).with_columns(
            closing_balance=pl.when(pl.col("period_end") == MAR)
            .then(pl.col("closing_balance") + 7)
            .otherwise(pl.col("closing_balance"))
        )
        breaks = rollforward_breaks(tampered).collect()
        assert rows_of(breaks.lazy(), "pool_id", "period_end", "difference") == [
            ("P1", MAR, -7),
            ("P2", MAR, -7),
        ]

    def test_a_missing_period_end_snapshot_shows_as_a_break(self) -> None:
        without_april = frame([r for r in ROWS if r["as_of_date"] != APR])
        breaks = rollforward_breaks(pool_rollforward(without_april, PERIODS)).collect()
        assert rows_of(breaks.lazy(), "pool_id", "period_end", "difference") == [
            ("P1", APR, 1_811_514),
            ("P2", APR, 210_000),
        ]

    def test_a_loan_defaulted_earlier_is_not_defaulted_again(self) -> None:
        rows = [
            snap(JAN, "X", "P", 100_000, 100_000, dpd=80, bucket="61-90", status="delinquent"),
            snap(
                FEB,
                "X",
                "P",
                100_000,
                100_000,
                dpd=109,
                bucket="91-120",
                status="defaulted",
                default_date=date(2024, 2, 10),
                defaulted=100_000,
            ),
            snap(
                MAR,
                "X",
                "P",
                100_000,
                90_000,
                dpd=140,
                bucket="121-150",
                status="defaulted",
                default_date=date(2024, 2, 10),
                defaulted=100_000,
                recoveries=10_000,
            ),
        ]
        got = pool_rollforward(frame(rows), [FEB, MAR])
        assert rows_of(
            got, "period_end", "opening_balance", "defaulted_principal", "closing_balance"
        ) == [(FEB, 100_000, 100_000, 0), (MAR, 0, 0, 0)]

    def test_repurchase_of_a_defaulted_loan_does_not_reduce_the_performing_pool(self) -> None:
        rows = [
            snap(JAN, "X", "P", 100_000, 100_000),
            snap(
                JAN,
                "Y",
                "P",
                80_000,
                80_000,
                dpd=95,
                bucket="91-120",
                status="defaulted",
                default_date=date(2024, 1, 15),
                defaulted=80_000,
            ),
            snap(FEB, "X", "P", 100_000, 90_000, sched=10_000),
            snap(
                FEB,
                "Y",
                "P",
                80_000,
                80_000,
                dpd=124,
                bucket="121-150",
                status="repurchased",
                default_date=date(2024, 1, 15),
                defaulted=80_000,
                removed=80_000,
            ),
        ]
        got = pool_rollforward(frame(rows), [FEB])
        assert rows_of(got, "opening_balance", "removed_principal", "closing_balance") == [
            (100_000, 0, 90_000)
        ]
        assert rollforward_breaks(got).collect().height == 0

    def test_period_ends_must_be_month_ends(self) -> None:
        with pytest.raises(ValueError, match="month-ends"):
            pool_rollforward(frame(ROWS), [date(2024, 2, 15)])


class TestPoolFactor:
    def test_cutoff_balance_sums_performing_principal_at_the_cutoff(self) -> None:
        got = cutoff_balances(frame(ROWS), CUTOFFS)
        assert rows_of(got, "pool_id", "cutoff_balance", "cutoff_count") == [
            ("P1", 2_400_000, 5),
            ("P2", 250_000, 1),
        ]

    def test_pool_factor_is_closing_over_cutoff(self) -> None:
        rollforward = pool_rollforward(frame(ROWS), [APR])
        got = with_pool_factor(rollforward, cutoff_balances(frame(ROWS), CUTOFFS))
        assert rows_of(got, "pool_id", "cutoff_balance", "pool_factor") == [
            ("P1", 2_400_000, pytest.approx(1_380_580 / 2_400_000, rel=1e-15)),
            ("P2", 250_000, pytest.approx(0.76, rel=1e-15)),
        ]

    def test_pool_factor_is_null_without_a_cutoff_balance(self) -> None:
        rollforward = pool_rollforward(frame(ROWS), [APR])
        before_any_snapshot = {"P1": date(2023, 12, 31)}
        got = with_pool_factor(rollforward, cutoff_balances(frame(ROWS), before_any_snapshot))
        assert rows_of(got, "pool_id", "cutoff_balance", "pool_factor") == [
            ("P1", 0, None),
            ("P2", None, None),
        ]


class TestDelinquency:
    def test_all_buckets_in_order_with_counts_balances_and_shares(self) -> None:
        got = delinquency_buckets(frame(ROWS), [APR]).filter(pl.col("pool_id") == "P1")
        total = 1_380_580
        assert rows_of(got, "bucket", "count", "balance", "balance_share") == [
            ("current", 2, 1_260_580, pytest.approx(1_260_580 / total, rel=1e-15)),
            ("1-30", 1, 120_000, pytest.approx(120_000 / total, rel=1e-15)),
            ("31-60", 0, 0, 0.0),
            ("61-90", 0, 0, 0.0),
            ("91-120", 0, 0, 0.0),
            ("121-150", 0, 0, 0.0),
            ("151-180", 0, 0, 0.0),
            ("180+", 0, 0, 0.0),
        ]

    def test_defaulted_and_out_of_pool_loans_are_not_in_any_bucket(self) -> None:
        got = delinquency_buckets(frame(ROWS), [MAR]).filter(pl.col("pool_id") == "P1")
        assert rows_of(got.filter(pl.col("count") > 0), "bucket", "count", "balance") == [
            ("current", 3, 1_511_514),
            ("61-90", 1, 300_000),
        ]

    def test_shares_sum_to_one_for_every_pool_and_period(self) -> None:
        got = (
            delinquency_buckets(frame(ROWS), PERIODS)
            .group_by("pool_id", "period_end")
            .agg(pl.col("balance_share").sum(), pl.len())
            .collect()
        )
        assert got.height == 6
        assert got["len"].to_list() == [len(schema.DPD_BUCKETS)] * 6
        assert got["balance_share"].to_list() == pytest.approx([1.0] * 6, abs=1e-12)

    def test_shares_are_null_for_a_pool_with_no_performing_balance(self) -> None:
        rows = [
            snap(JAN, "X", "P", 100_000, 100_000),
            snap(FEB, "X", "P", 100_000, 0, sched=100_000, status="matured", remaining=0),
        ]
        got = delinquency_buckets(frame(rows), [FEB]).collect()
        assert got["count"].sum() == 0
        assert got["balance_share"].null_count() == len(schema.DPD_BUCKETS)

    def test_m_notation_maps_buckets_to_m1_m2_m3_and_m3_plus(self) -> None:
        assert M_NOTATION == {
            "1-30": "M1",
            "31-60": "M2",
            "61-90": "M3",
            "91-120": "M3+",
            "121-150": "M3+",
            "151-180": "M3+",
            "180+": "M3+",
        }
        got = delinquency_m_notation(delinquency_buckets(frame(ROWS), [MAR])).filter(
            pl.col("pool_id") == "P1"
        )
        assert rows_of(got, "m_bucket", "count", "balance", "balance_share") == [
            ("M1", 0, 0, 0.0),
            ("M2", 0, 0, 0.0),
            ("M3", 1, 300_000, pytest.approx(300_000 / 1_811_514, rel=1e-15)),
            ("M3+", 0, 0, 0.0),
        ]


class TestCharacteristics:
    def test_weighted_by_closing_balance_over_performing_loans(self) -> None:
        got = pool_characteristics(frame(ROWS), LOANS, [APR]).filter(pl.col("pool_id") == "P1")
        [row] = got.collect().rows(named=True)
        # Performing at April: L1 7,610.80 at 12%, L5 4,995.00 at 18%, L6 1,200.00 at 24%.
        assert row["wac"] == pytest.approx(
            (0.12 * 761_080 + 0.18 * 499_500 + 0.24 * 120_000) / 1_380_580, rel=1e-14
        )
        assert row["wac"] == pytest.approx(0.15213867, abs=1e-8)
        # Weighted by original principal it would be 0.15333...; the closing balance decides.
        assert row["wac"] != pytest.approx(0.1533333, abs=1e-5)
        assert row["wam_months"] == pytest.approx(
            (8 * 761_080 + 10 * 499_500 + 4 * 120_000) / 1_380_580, rel=1e-14
        )
        assert row["wala_months"] == pytest.approx(
            (4 * 761_080 + 2 * 499_500 + 6 * 120_000) / 1_380_580, rel=1e-14
        )
        assert row["average_balance"] == 460_193  # 1,380,580 / 3 = 460,193.33
        assert row["loan_count"] == 3
        assert row["obligor_count"] == 2  # L1 and L6 share borrower B1

    def test_average_balance_rounds_half_up(self) -> None:
        got = pool_characteristics(frame(ROWS), LOANS, [MAR]).filter(pl.col("pool_id") == "P1")
        # 1,811,514 / 4 = 452,878.5 fen; L1, L3, L5, L6 belong to B1, B3, B2, B1
        assert rows_of(got, "average_balance", "loan_count", "obligor_count") == [(452_879, 4, 3)]

    def test_wac_is_null_when_a_performing_loan_has_no_terms(self) -> None:
        got = pool_characteristics(frame(ROWS), LOANS.filter(pl.col("loan_id") != "L5"), [APR])
        assert rows_of(got, "pool_id", "wac") == [("P1", None), ("P2", 0.09)]


class TestCollections:
    def test_collections_by_component(self) -> None:
        got = pool_collections(frame(ROWS), [APR])
        assert rows_of(got, "pool_id", "principal", "interest", "fees", "recoveries", "total") == [
            ("P1", 140_934, 16_915, 300, 5_000, 163_149),
            ("P2", 20_000, 0, 0, 0, 20_000),
        ]

    def test_principal_is_scheduled_plus_unscheduled(self) -> None:
        got = pool_collections(frame(ROWS), [FEB, MAR]).filter(pl.col("pool_id") == "P1")
        assert rows_of(
            got, "scheduled_principal", "unscheduled_principal", "principal", "fees", "total"
        ) == [
            (163_849, 50_000, 213_849, 500, 213_849 + 21_000 + 500),
            (214_637, 420_000, 634_637, 0, 634_637 + 24_862),
        ]


class TestScalarRates:
    @pytest.mark.parametrize(
        ("smm", "cpr"), [(0.015, 0.1659), (0.01, 0.1136), (0.0, 0.0), (1.0, 1.0)]
    )
    def test_cpr_from_smm_matches_the_worked_values(self, smm: float, cpr: float) -> None:
        assert cpr_from_smm(smm) == pytest.approx(cpr, abs=5e-5)

    def test_smm_from_cpr_matches_the_worked_value(self) -> None:
        assert smm_from_cpr(0.06) == pytest.approx(0.005143, abs=5e-7)

    def test_mdr_from_cdr_matches_the_worked_value(self) -> None:
        assert mdr_from_cdr(0.10) == pytest.approx(0.008742, abs=5e-7)

    def test_cdr_and_mdr_invert_each_other(self) -> None:
        assert cdr_from_mdr(0.008742) == pytest.approx(0.10, abs=5e-6)
        assert cdr_from_mdr(mdr_from_cdr(0.25)) == pytest.approx(0.25, abs=1e-15)
        assert cpr_from_smm(smm_from_cpr(0.06)) == pytest.approx(0.06, abs=1e-15)

    @pytest.mark.parametrize("fn", [cpr_from_smm, smm_from_cpr, cdr_from_mdr, mdr_from_cdr])
    def test_rates_outside_zero_to_one_are_rejected(self, fn: Any) -> None:
        with pytest.raises(ValueError, match="between 0 and 1"):
            fn(-0.01)
        with pytest.raises(ValueError, match="between 0 and 1"):
            fn(1.5)


def _rates(rows: list[dict[str, Any]], periods: list[date]) -> pl.LazyFrame:
    snapshots = frame(rows)
    return with_period_rates(
        pool_rollforward(snapshots, periods), pool_collections(snapshots, periods)
    )


class TestPeriodRates:
    def test_smm_mdr_and_payment_rate_follow_the_opening_cohort(self) -> None:
        got = _rates(ROWS, PERIODS).filter(pl.col("pool_id") == "P1")
        feb, mar, apr = got.collect().rows(named=True)
        assert feb["smm"] == pytest.approx(50_000 / (2_400_000 - 163_849), rel=1e-15)
        assert feb["cpr"] == pytest.approx(1 - (1 - 50_000 / 2_236_151) ** 12, rel=1e-14)
        assert feb["mdr"] == 0.0
        assert feb["cdr"] == 0.0
        # Principal 213,849 + interest 21,000 + fees 500 over the opening balance.
        assert feb["payment_rate"] == pytest.approx(235_349 / 2_400_000, rel=1e-15)
        # L5, bought in March, is in neither part of SMM: L1 L2 L3 L4 L6 open at
        # 2,186,151 and pay 164,637 scheduled and 420,000 unscheduled.
        assert mar["smm"] == pytest.approx(420_000 / (2_186_151 - 164_637), rel=1e-15)
        # The payment rate counts every obligor collection (L5's too) over the
        # opening balance alone: 634,637 principal + 24,862 interest.
        assert mar["payment_rate"] == pytest.approx(659_499 / 2_186_151, rel=1e-15)
        assert apr["smm"] == 0.0
        assert apr["mdr"] == pytest.approx(290_000 / 1_811_514, rel=1e-15)
        assert apr["cdr"] == pytest.approx(1 - (1 - 290_000 / 1_811_514) ** 12, rel=1e-14)

    def test_zero_denominators_give_null_rates(self) -> None:
        rows = [snap(JAN, "X", "P", 0, 0, status="matured", remaining=0)]
        got = _rates(rows, [FEB])
        assert rows_of(got, "opening_balance", "smm", "cpr", "mdr", "cdr", "payment_rate") == [
            (0, None, None, None, None, None)
        ]

    def test_a_pool_made_only_of_purchases_has_no_opening_cohort_rates(self) -> None:
        rows = [
            snap(JAN, "X", "P", 0, 0, status="matured", remaining=0),
            snap(FEB, "Y", "P", 50_000, 40_000, unsched=10_000, purchased=50_000),
        ]
        got = _rates(rows, [FEB])
        assert rows_of(got, "opening_balance", "cohort_opening_balance", "smm", "payment_rate") == [
            (0, 0, None, None)
        ]

    def test_purchases_prepaying_in_their_first_month_leave_smm_alone(self) -> None:
        # A small opening pool; the purchases prepay heavily within their first period.
        rows = [
            snap(JAN, "X", "P", 10_000, 10_000),
            snap(FEB, "X", "P", 10_000, 9_000, sched=1_000, unsched=450),
            snap(FEB, "Y", "P", 500_000, 0, unsched=500_000, purchased=500_000, status="prepaid"),
            snap(FEB, "Z", "P", 300_000, 100_000, unsched=200_000, purchased=300_000),
        ]
        got = _rates(rows, [FEB]).collect()
        assert got["smm"].to_list() == [pytest.approx(450 / 9_000, rel=1e-15)]

    def test_a_loan_defaulted_before_the_period_is_not_in_the_cohort(self) -> None:
        rows = [
            snap(JAN, "X", "P", 10_000, 10_000),
            snap(
                JAN, "D", "P", 5_000, 5_000, status="defaulted", default_date=JAN, defaulted=5_000
            ),
            snap(FEB, "X", "P", 10_000, 9_000, sched=1_000),
            snap(
                FEB, "D", "P", 5_000, 5_000, status="defaulted", default_date=JAN, defaulted=5_000
            ),
        ]
        got = _rates(rows, [FEB])
        assert rows_of(got, "cohort_opening_balance", "mdr") == [(10_000, 0.0)]


class TestCumulativePerformance:
    def test_cumulative_default_loss_and_recovery_with_purchases_in_the_denominator(
        self,
    ) -> None:
        got = cumulative_performance(frame(ROWS), PERIODS, {"P1": JAN})
        assert rows_of(
            got,
            "period_end",
            "cumulative_defaulted_principal",
            "cumulative_recoveries",
            "cumulative_purchased_principal",
            "denominator_balance",
            "cumulative_default_rate",
            "cumulative_net_loss_rate",
            "recovery_rate",
        ) == [
            (FEB, 0, 0, 0, 2_400_000, 0.0, 0.0, None),
            (MAR, 0, 0, 600_000, 3_000_000, 0.0, 0.0, None),
            (
                APR,
                290_000,
                5_000,
                600_000,
                3_000_000,
                pytest.approx(290_000 / 3_000_000, rel=1e-15),
                pytest.approx(285_000 / 3_000_000, rel=1e-15),
                pytest.approx(5_000 / 290_000, rel=1e-15),
            ),
        ]

    def test_initial_denominator_is_the_cutoff_balance(self) -> None:
        got = cumulative_performance(frame(ROWS), [APR], {"P1": JAN}, denominator="initial")
        assert rows_of(
            got, "cumulative_default_denominator", "denominator_balance", "cumulative_default_rate"
        ) == [("initial", 2_400_000, pytest.approx(290_000 / 2_400_000, rel=1e-15))]

    def test_flows_up_to_the_cutoff_are_not_cumulated(self) -> None:
        got = cumulative_performance(frame(ROWS), [APR], {"P1": MAR})
        assert rows_of(
            got, "cutoff_balance", "cumulative_purchased_principal", "cumulative_recoveries"
        ) == [(1_811_514, 0, 5_000)]

    def test_unknown_denominator_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="denominator"):
            cumulative_performance(frame(ROWS), [APR], CUTOFFS, denominator="original")  # type: ignore[arg-type]

    def test_pool_performance_joins_period_and_cumulative_rates(self) -> None:
        got = pool_performance(frame(ROWS), PERIODS, CUTOFFS).collect()
        assert got.height == 6
        apr = got.filter((pl.col("pool_id") == "P1") & (pl.col("period_end") == APR)).row(
            0, named=True
        )
        assert apr["mdr"] == pytest.approx(290_000 / 1_811_514, rel=1e-15)
        assert apr["cumulative_default_rate"] == pytest.approx(290_000 / 3_000_000, rel=1e-15)
        assert apr["cumulative_default_denominator"] == "initial_plus_purchases"


def test_outputs_are_sorted_and_independent_of_input_row_order() -> None:
    builders: list[Callable[[pl.LazyFrame], pl.LazyFrame]] = [
        lambda s: pool_rollforward(s, PERIODS),
        lambda s: delinquency_buckets(s, PERIODS),
        lambda s: pool_characteristics(s, LOANS, PERIODS),
        lambda s: pool_collections(s, PERIODS),
        lambda s: pool_performance(s, PERIODS, CUTOFFS),
    ]
    shuffled = frame(list(reversed(ROWS)))
    for build in builders:
        assert_frame_equal(build(shuffled).collect(), build(frame(ROWS)).collect())


@st.composite
def loan_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Snapshot rows of a few loans that follow the team's snapshot conventions.

    Each loan enters at the cut-off or by purchase in a later period, then each
    period pays some principal, prepays in full, defaults (with a recovery),
    or is repurchased; defaulted loans keep reporting recoveries.
    """
    as_ofs = [JAN, *PERIODS]
    rows: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 6))):
        loan_id = f"H{n}"
        balance = draw(st.integers(1, 1_000_000))
        entry = draw(st.integers(0, len(as_ofs) - 1))
        state = "performing"
        default_date: date | None = None
        defaulted = 0
        for i, as_of in enumerate(as_ofs):
            if i < entry:
                rows.append(snap(as_of, loan_id, None, balance, balance))
                continue
            if i == entry:
                purchased = balance if entry > 0 else 0
                rows.append(snap(as_of, loan_id, "P", balance, balance, purchased=purchased))
                continue
            if state == "gone":
                break
            if state == "removed":
                rows.append(snap(as_of, loan_id, None, balance, balance))
                continue
            if state == "defaulted":
                recovered = draw(st.integers(0, balance))
                rows.append(
                    snap(
                        as_of,
                        loan_id,
                        "P",
                        balance,
                        balance - recovered,
                        status="defaulted",
                        bucket="121-150",
                        dpd=130,
                        default_date=default_date,
                        defaulted=defaulted,
                        recoveries=recovered,
                    )
                )
                balance -= recovered
                continue
            action = draw(st.sampled_from(["pay", "prepay", "default", "remove", "late"]))
            sched = draw(st.integers(0, balance))
            if action == "prepay":
                rows.append(
                    snap(
                        as_of,
                        loan_id,
                        "P",
                        balance,
                        0,
                        sched=sched,
                        unsched=balance - sched,
                        status="prepaid",
                        remaining=0,
                    )
                )
                state = "gone"
            elif action == "default":
                defaulted = balance - sched
                default_date = as_of.replace(day=10)
                recovered = draw(st.integers(0, defaulted))
                rows.append(
                    snap(
                        as_of,
                        loan_id,
                        "P",
                        balance,
                        defaulted - recovered,
                        sched=sched,
                        status="defaulted",
                        bucket="91-120",
                        dpd=100,
                        default_date=default_date,
                        defaulted=defaulted,
                        recoveries=recovered,
                    )
                )
                balance = defaulted - recovered
                state = "defaulted"
            elif action == "remove":
                closing = balance - sched
                rows.append(
                    snap(
                        as_of,
                        loan_id,
                        "P",
                        balance,
                        closing,
                        sched=sched,
                        status="repurchased",
                        removed=closing,
                    )
                )
                balance = closing
                state = "removed"
            else:
                unsched = draw(st.integers(0, balance - sched)) if action == "pay" else 0
                closing = balance - sched - unsched
                late = action == "late" and closing > 0
                rows.append(
                    snap(
                        as_of,
                        loan_id,
                        "P",
                        balance,
                        closing,
                        sched=sched,
                        unsched=unsched,
                        status="delinquent" if late else ("current" if closing else "prepaid"),
                        bucket="31-60" if late else "current",
                        dpd=45 if late else 0,
                    )
                )
                balance = closing
                if closing == 0:
                    state = "gone"
    return rows


@settings(deadline=None)  # its example count is the profile's (tests/conftest.py)
@given(loan_histories())
def test_any_history_rolls_forward_exactly_and_buckets_add_up(rows: list[dict[str, Any]]) -> None:
    snapshots = frame(rows)
    rollforward = pool_rollforward(snapshots, PERIODS)
    assert rollforward_breaks(rollforward).collect().height == 0
    totals = (
        delinquency_buckets(snapshots, PERIODS)
        .group_by("pool_id", "period_end")
        .agg(pl.col("balance").sum(), pl.col("count").sum(), pl.col("balance_share").sum())
    )
    joined = rollforward.join(totals, on=["pool_id", "period_end"], how="inner").collect()
    assert joined.height == rollforward.collect().height
    assert joined["balance"].to_list() == joined["closing_balance"].to_list()
    assert joined["count"].to_list() == joined["closing_count"].to_list()
    for closing, share in zip(joined["closing_balance"], joined["balance_share"], strict=True):
        assert share == (pytest.approx(1.0, abs=1e-12) if closing > 0 else 0.0)


def test_marts_read_from_collected_pool_flows_equal_those_computed_from_the_snapshots() -> None:
    snapshots = frame(ROWS)
    flows = pool_flows(snapshots, PERIODS, CUTOFFS).collect().lazy()
    month_end_flows = pool_flows(snapshots, PERIODS).collect().lazy()
    pairs = [
        (
            pool_rollforward(snapshots, PERIODS, CUTOFFS),
            pool_rollforward(snapshots, PERIODS, CUTOFFS, flows=flows),
        ),
        (
            pool_collections(snapshots, PERIODS, CUTOFFS),
            pool_collections(snapshots, PERIODS, CUTOFFS, flows=flows),
        ),
        (
            pool_performance(snapshots, PERIODS, CUTOFFS),
            pool_performance(snapshots, PERIODS, CUTOFFS, flows=flows),
        ),
        (
            delinquency_buckets(snapshots, PERIODS),
            delinquency_buckets(snapshots, PERIODS, flows=month_end_flows),
        ),
        (
            pool_characteristics(snapshots, LOANS, PERIODS),
            pool_characteristics(snapshots, LOANS, PERIODS, flows=month_end_flows),
        ),
    ]
    for computed, shared in pairs:
        assert_frame_equal(shared.collect(), computed.collect())
        assert shared.collect().height > 0


def test_pool_flows_refuse_a_period_end_that_is_not_a_month_end() -> None:
    with pytest.raises(ValueError, match="month-ends"):
        pool_flows(frame(ROWS), [date(2024, 2, 15)])
