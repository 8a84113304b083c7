"""Portfolio metrics, roll rates, stratifications and vintage curves on small hand-built books."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from tests.transforms.test_pool_metrics import ROWS, frame, snap
from tests.transforms.test_tiny_pool import APR, FEB, JAN, LOANS, MAR, MAY, SNAPSHOTS
from transforms import schema
from transforms.pool_metrics import pool_rollforward
from transforms.portfolio import portfolio_breaks, portfolio_metrics
from transforms.roll_rates import TO_STATES, roll_rates
from transforms.stratification import BandEdges, band_labels, stratifications
from transforms.vintage import vintage_curves


class TestPortfolio:
    def test_the_pool_scope_equals_the_pool_roll_forward(self) -> None:
        got = (
            portfolio_metrics(SNAPSHOTS, LOANS)
            .filter((pl.col("scope") == "pool") & (pl.col("as_of_date") > JAN))
            .collect()
        )
        expected = pool_rollforward(SNAPSHOTS, [FEB, MAR, APR, MAY]).collect()
        assert got["opening_balance"].to_list() == expected["opening_balance"].to_list()
        assert got["new_principal"].to_list() == expected["purchased_principal"].to_list()
        assert got["closing_balance"].to_list() == expected["closing_balance"].to_list()
        assert portfolio_breaks(got.lazy()).collect().is_empty()

    def test_the_book_counts_originations_and_ignores_pool_moves(self) -> None:
        rows = [
            snap(JAN, "X", None, 100_000, 90_000, sched=10_000, mob=0),
            snap(FEB, "X", "P", 90_000, 80_000, sched=10_000, purchased=90_000),
            snap(FEB, "Y", None, 50_000, 50_000, mob=0),
            snap(date(2024, 2, 15), "Y", None, 50_000, 45_000, unsched=5_000, mob=0),
        ]
        book = (
            portfolio_metrics(frame(rows), LOANS.filter(pl.col("loan_id") == "none"))
            .filter(pl.col("scope") == "book")
            .collect()
        )
        assert book.select(
            "as_of_date", "opening_balance", "new_principal", "closing_balance", "loan_count"
        ).rows() == [
            (JAN, 0, 100_000, 90_000, 1),
            (date(2024, 2, 15), 90_000, 50_000, 45_000, 1),
            (FEB, 90_000, 50_000, 130_000, 2),
        ]
        # The mid-month date carries flows since the January month-end, like the engine.
        assert book["smm"][1] == pytest.approx(5_000 / 140_000)


class TestRollRates:
    def test_loan_level_transitions_by_balance(self) -> None:
        got = (
            roll_rates(SNAPSHOTS, [MAY])
            .filter((pl.col("scope") == "pool") & (pl.col("count") > 0))
            .collect()
        )
        assert got.select(
            "from_bucket", "to_state", "count", "from_balance", "to_balance"
        ).rows() == [
            ("current", "current", 7, 2_680_000, 2_310_000),
            ("61-90", "default", 1, 600_000, 550_000),
        ]
        assert got["balance_rate"].to_list() == pytest.approx(
            [2_310_000 / 2_680_000, 550_000 / 600_000]
        )

    def test_a_repurchase_is_a_removal_in_the_pool_and_not_in_the_book(self) -> None:
        got = roll_rates(SNAPSHOTS, [APR]).filter(pl.col("count") > 0).collect()
        pool = got.filter(pl.col("scope") == "pool")
        assert pool.filter(pl.col("to_state") == "removed")["to_balance"].to_list() == [210_000]
        assert "removed" not in got.filter(pl.col("scope") == "book")["to_state"].to_list()

    def test_a_default_after_leaving_the_pool_is_a_removal_in_the_pool(self) -> None:
        # X left P performing on 10 March and defaulted on 25 March.
        rows = [
            snap(FEB, "X", "P", 100_000, 100_000),
            {
                **snap(MAR, "X", "P", 100_000, 100_000, status="repurchased", removed=100_000,
                       default_date=date(2024, 3, 25), defaulted=100_000),
                "outside_defaulted_principal": 100_000,
            },
        ]  # fmt: skip
        got = roll_rates(frame(rows), [MAR]).filter(pl.col("count") > 0).collect()
        assert got.select("scope", "to_state", "count").rows() == [
            ("book", "default", 1),
            ("pool", "removed", 1),
        ]

    def test_the_matrix_is_complete(self) -> None:
        got = roll_rates(frame(ROWS), [date(2024, 3, 31)]).collect()
        per_key = got.group_by("scope", "pool_id").len()
        assert (
            per_key["len"].to_list() == [len(schema.DPD_BUCKETS) * len(TO_STATES)] * per_key.height
        )


FULL_LOANS = LOANS.with_columns(
    borrower_age=pl.lit(30, pl.Int32),
    credit_score=pl.lit(None, pl.Int32),
    product=pl.lit("cash_loan"),
)


class TestStratification:
    def test_labels_and_edges(self) -> None:
        assert band_labels("balance", (100_000, 500_000)) == ["< 1000", "[1000, 5000)", ">= 5000"]
        assert band_labels("rate", (60_000, 125_000)) == ["< 6%", "[6%, 12.5%)", ">= 12.5%"]
        with pytest.raises(ValueError, match="ascending"):
            BandEdges(credit_score=(700, 600))

    def test_bands_with_count_balance_share_and_wac(self) -> None:
        edges = BandEdges(balance=(300_000,), rate=(150_000,))
        got = (
            stratifications(SNAPSHOTS, FULL_LOANS, [MAY], edges)
            .filter(
                (pl.col("scope") == "pool")
                & pl.col("dimension").is_in(["balance", "rate", "province"])
            )
            .collect()
        )
        assert got.select("dimension", "band", "count", "balance").rows() == [
            ("balance", "< 3000", 4, 680_000),
            ("balance", ">= 3000", 3, 1_630_000),
            ("rate", "< 15%", 5, 1_440_000),
            ("rate", ">= 15%", 2, 870_000),
            ("province", "CN-BJ", 4, 1_270_000),
            ("province", "CN-GD", 3, 1_040_000),
        ]
        low_rates = got.filter(pl.col("band") == "< 15%").row(0, named=True)
        # L01 6,000 and L04 2,000 and L10 4,000 at 12%, L07 and L08 1,200 each at 10%.
        assert low_rates["wac"] == pytest.approx((720 + 240 + 480 + 120 + 120) / 14_400)
        assert low_rates["balance_share"] == pytest.approx(1_440_000 / 2_310_000)

    def test_unknown_values_fall_in_their_own_band(self) -> None:
        got = (
            stratifications(SNAPSHOTS, FULL_LOANS, [MAY])
            .filter((pl.col("scope") == "book") & (pl.col("dimension") == "credit_score"))
            .collect()
        )
        assert got.select("band", "count").rows() == [("unknown", 8)]


class TestVintage:
    def test_cumulative_defaults_by_month_on_book_right_censored(self) -> None:
        loans = pl.LazyFrame(
            {
                "loan_id": ["A", "B", "C"],
                "origination_date": [date(2024, 1, 10), date(2024, 1, 20), date(2024, 2, 5)],
                "principal": [100_000, 300_000, 50_000],
            }
        )
        rows = [
            snap(JAN, "A", None, 100_000, 100_000, mob=0),
            snap(JAN, "B", None, 300_000, 300_000, mob=0),
            snap(FEB, "A", None, 100_000, 100_000, mob=1),
            snap(FEB, "B", None, 300_000, 300_000, mob=1),
            snap(FEB, "C", None, 50_000, 50_000, mob=0),
            snap(MAR, "A", None, 100_000, 100_000, mob=2, status="defaulted",
                 default_date=date(2024, 3, 20), defaulted=100_000),
            snap(MAR, "B", None, 300_000, 300_000, mob=2),
            snap(MAR, "C", None, 50_000, 40_000, mob=1, status="defaulted",
                 default_date=date(2024, 3, 2), defaulted=50_000, recoveries=10_000),
        ]  # fmt: skip
        got = vintage_curves(frame(rows), loans, [JAN, FEB, MAR]).collect()
        assert got.select(
            "vintage", "months_on_book", "cumulative_default_rate", "cumulative_net_loss_rate"
        ).rows() == [
            (date(2024, 1, 1), 0, 0.0, 0.0),
            (date(2024, 1, 1), 1, 0.0, 0.0),
            (date(2024, 1, 1), 2, 0.25, 0.25),
            (date(2024, 2, 1), 0, 0.0, 0.0),
            (date(2024, 2, 1), 1, 1.0, 0.8),
        ]

    def test_the_pool_curve_leaves_out_a_default_after_the_loan_left_the_pool(self) -> None:
        loans = pl.LazyFrame(
            {
                "loan_id": ["A", "B"],
                "origination_date": [date(2024, 1, 10), date(2024, 1, 20)],
                "principal": [100_000, 300_000],
            }
        )
        pool_assets = pl.LazyFrame(
            {"pool_id": ["P", "P"], "loan_id": ["A", "B"], "event": ["added", "added"]}
        )
        # A left P on 5 March and defaulted on 20 March; B defaulted in P.
        rows = [
            snap(JAN, "A", "P", 100_000, 100_000, mob=0),
            snap(JAN, "B", "P", 300_000, 300_000, mob=0),
            snap(FEB, "A", "P", 100_000, 100_000),
            snap(FEB, "B", "P", 300_000, 300_000),
            {
                **snap(MAR, "A", "P", 100_000, 100_000, mob=2, status="repurchased",
                       removed=100_000, default_date=date(2024, 3, 20), defaulted=100_000),
                "outside_defaulted_principal": 100_000,
            },
            snap(MAR, "B", "P", 300_000, 300_000, mob=2, status="defaulted",
                 default_date=date(2024, 3, 2), defaulted=300_000),
        ]  # fmt: skip
        got = (
            vintage_curves(frame(rows), loans, [JAN, FEB, MAR], pool_assets)
            .filter(pl.col("as_of_date") == MAR)
            .collect()
        )
        assert got.select("scope", "cumulative_defaulted_principal").rows() == [
            ("book", 400_000),
            ("pool", 300_000),
        ]
