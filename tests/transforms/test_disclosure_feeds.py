"""The disclosure's figures from the metrics stage: taxes and plan fees, the subordinated
class's residual, account reconciliation, the largest obligors and purchased loans."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import polars as pl
import pytest
from pydantic import ValidationError

from data_contracts.deal import DealTerms
from data_contracts.metrics_contract import validate_metrics
from flows.metrics import waterfall_terms
from tests.data_contracts.test_deal_conventions import _deal
from tests.transforms.test_metrics_document import build
from tests.transforms.test_waterfall import FEB, JAN, TERMS, period
from transforms.concentration import top_obligors
from transforms.purchases import purchased_characteristics
from transforms.waterfall import AccountFlow, TrancheTerms, fold_waterfall, outcome_frames

FEES = replace(
    TERMS,
    tax_on_interest_ppm=32_600,  # 3.26% of the interest collected
    trustee_fee_ppm=12_000,  # 1.2% a year
    management_fee_ppm=6_000,
    custody_fee_ppm=1_200,
    servicer_fee_ppm=24_000,
)
WITH_C_COUPON = replace(
    TERMS,
    tranches=(*TERMS.tranches[:2], TrancheTerms("C", "subordinated", 50_000, 60_000)),
)


class TestExpenses:
    def test_taxes_then_the_fees_are_paid_first_in_that_order(self) -> None:
        [jan] = fold_waterfall([period(JAN)], FEES)
        # Taxes 20,000 x 3.26% = 652; on 1,000,000 for a month: trustee 1,000, management
        # 500, custody 100, servicer 2,000.
        paid = [(s.item, s.paid) for s in jan.steps if s.account == "income"]
        assert paid[:5] == [
            ("taxes", 652),
            ("trustee_fee", 1_000),
            ("management_fee", 500),
            ("custody_fee", 100),
            ("servicer_fee", 2_000),
        ]
        assert (jan.expenses.taxes, jan.expenses.custody_fee) == (652, 100)
        assert jan.senior_fees_paid == 652 + 1_000 + 500 + 100 + 2_000
        # 20,000 - 4,252 - A 9,000 - B 500 = 6,248 left for class C.
        assert jan.tranches[2].residual_paid == 6_248

    def test_a_deal_without_taxes_or_plan_fees_has_no_such_lines(self) -> None:
        [jan] = fold_waterfall([period(JAN)], TERMS)
        items = {s.item for s in jan.steps}
        assert not items & {"taxes", "management_fee", "custody_fee"}
        assert jan.expenses.taxes == jan.expenses.management_fee == 0

    def test_the_summary_mart_carries_each_expense_paid(self) -> None:
        summary = outcome_frames("P", fold_waterfall([period(JAN)], FEES)).summary.collect()
        row = summary.row(0, named=True)
        assert (row["taxes_paid"], row["trustee_fee_paid"], row["management_fee_paid"]) == (
            652,
            1_000,
            500,
        )
        assert (row["custody_fee_paid"], row["servicer_fee_paid"]) == (100, 2_000)


class TestSubordinatedClass:
    def test_without_a_coupon_everything_class_c_gets_is_residual(self) -> None:
        [jan] = fold_waterfall([period(JAN)], TERMS)
        c = jan.tranches[2]
        # 20,000 - A 9,000 - B 500.
        assert (c.interest_due, c.interest_paid, c.residual_paid) == (0, 0, 10_500)

    def test_a_coupon_is_paid_as_interest_and_only_the_rest_is_residual(self) -> None:
        [jan] = fold_waterfall([period(JAN)], WITH_C_COUPON)
        c = jan.tranches[2]
        # 50,000 x 6% / 12 = 250 interest; 20,000 - 9,000 - 500 - 250 = 10,250 residual.
        assert (c.interest_due, c.interest_paid, c.residual_paid) == (250, 250, 10_250)
        items = [s.item for s in jan.steps if s.account == "income"]
        assert items[-2:] == ["class_C_interest", "class_C_residual"]

    def test_a_short_coupon_leaves_no_residual_and_no_shortfall(self) -> None:
        [jan] = fold_waterfall([period(JAN, interest=9_600)], WITH_C_COUPON)
        c = jan.tranches[2]
        assert (c.interest_paid, c.residual_paid, c.interest_shortfall) == (100, 0, 0)

    def test_payments_per_100_count_the_residual(self) -> None:
        tranches = outcome_frames("P", fold_waterfall([period(JAN)], TERMS)).tranche_payments
        c = tranches.collect().row(2, named=True)
        assert (c["interest_per_100"], c["residual_paid"]) == (0.0, 10_500)
        assert c["payment_per_100"] == 10_500 * 100 / 50_000


class TestAccounts:
    def test_each_account_reconciles_and_cash_awaiting_purchase_stays_in_principal(
        self,
    ) -> None:
        jan_in = replace(period(JAN), purchase_price=60_000)
        jan, feb = fold_waterfall([jan_in, period(FEB)], TERMS)
        assert jan.accounts == (
            AccountFlow("collection", 0, 120_000, 120_000, 0),
            AccountFlow("principal", 0, 100_000, 60_000, 40_000),
            AccountFlow("income", 0, 20_000, 20_000, 0),
        )
        # February opens with January's 40,000 and buys for 100,000.
        assert feb.accounts[1] == AccountFlow("principal", 40_000, 100_000, 100_000, 40_000)
        assert feb.principal_account == feb.accounts[1].closing == 40_000

    def test_the_default_top_up_moves_income_to_principal_and_is_not_collected(self) -> None:
        [jan] = fold_waterfall([period(JAN, defaulted=15_000)], TERMS)
        collection, principal, income = jan.accounts
        # Income 20,000 pays A 9,000 and B 500; 10,500 tops up the 15,000 default.
        assert collection.inflow == 100_000 + 20_000
        assert principal.inflow == 100_000 + 10_500
        assert (income.inflow, income.outflow, income.closing) == (20_000, 20_000, 0)

    def test_an_account_that_does_not_reconcile_cannot_be_built(self) -> None:
        with pytest.raises(ValueError, match="does not reconcile"):
            AccountFlow("principal", 100, 50, 20, 131)

    def test_the_accounts_mart_lists_them_in_order(self) -> None:
        frames = outcome_frames("P", fold_waterfall([period(JAN)], TERMS))
        accounts = frames.accounts.collect()
        assert accounts["account"].to_list() == ["collection", "principal", "income"]
        assert accounts["order"].to_list() == [1, 2, 3]


SNAPSHOT_SCHEMA = {
    "as_of_date": pl.Date,
    "loan_id": pl.String,
    "pool_id": pl.String,
    "status": pl.String,
    "closing_principal": pl.Int64,
    "purchased_principal": pl.Int64,
    "remaining_term": pl.Int32,
}


def snapshots(rows: list[tuple[date, str, str | None, str, int, int, int]]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row")


def loans(rows: list[tuple[str, str, str]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        [(loan, borrower, Decimal(rate)) for loan, borrower, rate in rows],
        schema={"loan_id": pl.String, "borrower_id": pl.String, "annual_rate": pl.Decimal(10, 6)},
        orient="row",
    )


class TestTopObligors:
    BOOK = snapshots(
        [
            (JAN, "L1", "P", "current", 600, 0, 6),
            (JAN, "L2", "P", "delinquent", 400, 0, 6),
            (JAN, "L3", "P", "current", 500, 0, 6),
            (JAN, "L4", "P", "current", 500, 0, 6),
            (JAN, "L5", "P", "current", 20, 0, 6),
            (JAN, "L6", "P", "defaulted", 5_000, 0, 6),
            (JAN, "L7", None, "current", 9_000, 0, 6),
        ]
    )
    TERMS = loans(
        [
            ("L1", "b1", "0.1"),
            ("L2", "b1", "0.1"),
            ("L3", "b3", "0.1"),
            ("L4", "b2", "0.1"),
            ("L5", "b5", "0.1"),
            ("L6", "b6", "0.1"),
            ("L7", "b7", "0.1"),
        ]
    )

    def test_obligors_above_one_percent_by_balance_then_a_stable_order_without_ids(
        self,
    ) -> None:
        top = top_obligors(self.BOOK, self.TERMS, [JAN]).collect()
        # Performing pool balance 2,020 (the default and the unpooled loan are out):
        # b1 1,000; b2 and b3 500 each (b2 first); b5's 20 is 0.99%, not above 1%.
        assert top.columns == ["pool_id", "period_end", "rank", "balance", "balance_share"]
        assert top.select("rank", "balance").rows() == [(1, 1_000), (2, 500), (3, 500)]
        assert top["balance_share"].to_list() == [1_000 / 2_020, 500 / 2_020, 500 / 2_020]

    def test_at_most_the_limit_is_listed(self) -> None:
        top = top_obligors(self.BOOK, self.TERMS, [JAN], limit=2).collect()
        assert top["rank"].to_list() == [1, 2]

    def test_the_document_keeps_ranks_balances_and_shares_only(self) -> None:
        rows = top_obligors(self.BOOK, self.TERMS, [JAN]).collect().to_dicts()
        concentration = {
            "top1_obligor_share": 0.5,
            "top10_obligor_share": 1.0,
            "hhi_obligor": 0.3,
            "province_shares": {},
            "top_obligors": rows,
        }
        document = build(concentration=concentration)
        assert document["concentration"]["top_obligors"][0] == {
            "rank": 1,
            "balance": "10.00",
            "balance_share": round(1_000 / 2_020, 10),
        }
        validate_metrics(document)


class TestPurchasedLoans:
    def test_rate_term_and_average_balance_are_weighted_by_principal_bought(self) -> None:
        book = snapshots(
            [
                # Bought at the pool's cut-off: the initial pool, not a purchase.
                (date(2023, 12, 31), "L0", "P", "current", 1_000, 1_000, 12),
                (JAN, "L1", "P", "current", 3_000, 3_000, 10),
                (JAN, "L2", "P", "current", 1_001, 1_001, 6),
                (FEB, "L1", "P", "current", 2_800, 0, 9),
            ]
        )
        terms = loans([("L0", "b0", "0.3"), ("L1", "b1", "0.12"), ("L2", "b2", "0.24")])
        got = purchased_characteristics(
            book, terms, [date(2023, 12, 31), JAN, FEB], {"P": date(2023, 12, 31)}
        ).collect()
        assert got["period_end"].to_list() == [JAN]
        row = got.row(0, named=True)
        # (0.12 x 3,000 + 0.24 x 1,001) / 4,001; (10 x 3,000 + 6 x 1,001) / 4,001;
        # 4,001 / 2 = 2,000.5 rounds half-up to 2,001.
        assert row["purchased_wac"] == pytest.approx((360 + 240.24) / 4_001, abs=1e-12)
        assert row["purchased_wam_months"] == pytest.approx(36_006 / 4_001, abs=1e-12)
        assert (row["purchased_loans"], row["purchased_average_balance"]) == (2, 2_001)

    def test_a_bought_loan_without_terms_leaves_the_rate_unknown(self) -> None:
        book = snapshots([(JAN, "L9", "P", "current", 500, 500, 3)])
        got = purchased_characteristics(book, loans([]), [JAN], {}).collect()
        assert got["purchased_wac"].to_list() == [None]
        assert got["purchased_wam_months"].to_list() == [3.0]


class TestDocument:
    def test_accounts_expenses_and_purchases_are_written_and_validated(self) -> None:
        document = build(
            accounts=[
                {"account": "income", "opening": 0, "inflow": 500, "outflow": 500, "closing": 0},
                {
                    "account": "principal",
                    "opening": 100,
                    "inflow": 50,
                    "outflow": 20,
                    "closing": 130,
                },
            ],
            expenses={"taxes": 652, "management_fee": 1_500, "custody_fee": 100, "servicer_fee": 0},
            revolving={
                "purchase_price": 0,
                "purchases_paid": 0,
                "purchases_unfunded": 0,
                "revolving_period": True,
                "purchased_wac": None,
                "purchased_wam_months": None,
                "purchased_average_balance": None,
            },
        )
        assert [a["account"] for a in document["accounts"]] == ["principal", "income"]
        assert document["accounts"][0]["closing"] == "1.30"
        assert document["expenses"] == {
            "taxes": "6.52",
            "management_fee": "15.00",
            "custody_fee": "1.00",
            "servicer_fee": "0.00",
        }
        assert document["revolving"]["purchased_average_balance"] is None
        validate_metrics(document)

    def test_an_account_that_does_not_reconcile_is_refused(self) -> None:
        bad = [{"account": "principal", "opening": 100, "inflow": 50, "outflow": 20, "closing": 1}]
        with pytest.raises(ValueError, match="does not reconcile"):
            build(accounts=bad)


class TestDealFees:
    def test_the_plan_fees_and_tax_rate_reach_the_waterfall_and_default_to_zero(self) -> None:

        plain = waterfall_terms(DealTerms.model_validate(_deal()))
        assert (plain.management_fee_ppm, plain.custody_fee_ppm, plain.tax_on_interest_ppm) == (
            0,
            0,
            0,
        )
        fees = {"management": "0.0004", "custody": "0.0001", "tax_on_interest": "0.0326"}
        terms = waterfall_terms(DealTerms.model_validate(_deal(fees=fees)))
        assert (terms.management_fee_ppm, terms.custody_fee_ppm, terms.tax_on_interest_ppm) == (
            400,
            100,
            32_600,
        )

    def test_a_tax_rate_above_one_is_refused(self) -> None:

        with pytest.raises(ValidationError, match="tax_on_interest"):
            DealTerms.model_validate(_deal(fees={"tax_on_interest": "1.5"}))
