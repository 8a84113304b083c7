"""Servicer tapes: flows from consecutive snapshots, charge-offs, reconciliation, revolving."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from tests.polars_warnings import fail_on_sortedness_warning
from transforms import schema
from transforms.pool_metrics import (
    cutoff_balances,
    pool_characteristics,
    pool_rollforward,
    rollforward_breaks,
    with_pool_factor,
)
from transforms.schedules import build_schedules
from transforms.tape import (
    Tolerances,
    apply_servicer_charge_offs,
    data_source_section,
    reconcile,
    reconciliation_summary,
    revolving_metrics,
    servicer_charge_offs,
    tape_availability,
    tape_snapshots,
)

JAN, FEB, MAR, APR = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)

# Polars' sortedness warning is printed, not raised, under filterwarnings = error.
pytestmark = pytest.mark.usefixtures(fail_on_sortedness_warning.__name__)


def _loans(*rows: tuple[str, str, date, date, int, str, int]) -> pl.LazyFrame:
    """(loan_id, borrower_id, origination, first due, principal fen, rate, term) rows."""
    return pl.LazyFrame(
        [
            {
                "loan_id": loan,
                "borrower_id": borrower,
                "product": "cash_loan",
                "origination_date": start,
                "first_due_date": first_due,
                "principal": principal,
                "annual_rate": Decimal(rate),
                "term_months": term,
                "repayment_method": "equal_principal",
                "province": "CN-BJ",
                "borrower_age": None,
                "credit_score": None,
                "channel": None,
            }
            for loan, borrower, start, first_due, principal, rate, term in rows
        ],
        schema=schema.LOANS,
    )


def _tape(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    return pl.LazyFrame(
        [{c: row.get(c) for c in schema.LOAN_TAPE} for row in rows], schema=schema.LOAN_TAPE
    )


def _row(
    as_of: date, loan: str, balance: int, dpd: int, status: str, **more: Any
) -> dict[str, Any]:
    return {
        "as_of_date": as_of,
        "loan_id": loan,
        "current_principal": balance,
        "dpd": dpd,
        "status": status,
        **more,
    }


def _cutoff_events(pool: str, loans: list[str], day: date) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "pool_id": [pool] * len(loans),
            "loan_id": loans,
            "event_date": [day] * len(loans),
            "event": ["added"] * len(loans),
            "reason": ["cutoff"] * len(loans),
            "purchase_price": [None] * len(loans),
        },
        schema=schema.POOL_ASSETS,
    )


# An instalment pool delivered only as month-end snapshots (amounts in fen):
# L1 pays its schedule; L2 prepays 200.00 in February and the rest in March; L3 falls
# behind; L4 pays 50.00 a month until the servicer charges 700.00 off on 25 March at
# 45 DPD (before default_dpd = 90) and recovers 30.00 in April.
INSTALMENT_LOANS = _loans(
    ("L1", "B1", date(2024, 1, 15), date(2024, 2, 15), 120_000, "0.12", 12),
    ("L2", "B2", date(2024, 1, 10), date(2024, 2, 10), 60_000, "0.24", 6),
    ("L3", "B3", date(2024, 1, 12), date(2024, 2, 12), 100_000, "0.18", 10),
    ("L4", "B4", date(2024, 1, 20), date(2024, 2, 20), 80_000, "0.15", 8),
)
INSTALMENT_TAPE = _tape(
    [
        _row(JAN, "L1", 120_000, 0, "current"),
        _row(JAN, "L2", 60_000, 0, "current"),
        _row(JAN, "L3", 100_000, 0, "current"),
        _row(JAN, "L4", 80_000, 0, "current", recoveries_to_date=0),
        _row(FEB, "L1", 110_000, 0, "current"),
        _row(FEB, "L2", 30_000, 0, "current"),
        _row(FEB, "L3", 100_000, 17, "delinquent"),
        _row(FEB, "L4", 75_000, 0, "current", recoveries_to_date=0),
        _row(MAR, "L1", 100_000, 0, "current"),
        _row(MAR, "L2", 0, 0, "prepaid"),
        _row(MAR, "L3", 100_000, 48, "delinquent"),
        _row(
            MAR,
            "L4",
            0,
            45,
            "charged_off",
            charged_off_principal=70_000,
            charge_off_date=date(2024, 3, 25),
            recoveries_to_date=0,
        ),
        _row(APR, "L1", 90_000, 0, "current"),
        _row(APR, "L3", 100_000, 79, "delinquent"),
        _row(
            APR, "L4", 0, 75, "charged_off", charged_off_principal=70_000, recoveries_to_date=3_000
        ),
    ]
)


def _instalment_snapshots() -> pl.LazyFrame:
    return tape_snapshots(
        INSTALMENT_TAPE,
        INSTALMENT_LOANS,
        build_schedules(INSTALMENT_LOANS),
        _cutoff_events("P", ["L1", "L2", "L3", "L4"], JAN),
    )


def test_a_snapshot_only_pool_rolls_forward_to_the_fen_with_hand_computed_flows() -> None:
    snapshots = _instalment_snapshots()
    roll = pool_rollforward(snapshots, [FEB, MAR, APR]).collect()
    rows = roll.select(
        "period_end",
        "opening_balance",
        "scheduled_principal",
        "unscheduled_principal",
        "defaulted_principal",
        "closing_balance",
    ).rows()
    assert rows == [
        (FEB, 360_000, 25_000, 20_000, 0, 315_000),
        (MAR, 315_000, 25_000, 20_000, 70_000, 200_000),
        (APR, 200_000, 10_000, 0, 0, 190_000),
    ]
    assert rollforward_breaks(roll.lazy()).collect().height == 0
    factor = with_pool_factor(roll.lazy(), cutoff_balances(snapshots, {"P": JAN})).collect()
    assert factor["pool_factor"].to_list() == pytest.approx([315 / 360, 200 / 360, 190 / 360])


def test_snapshot_only_wac_and_status_counts_follow_the_servicer() -> None:
    snapshots = _instalment_snapshots()
    characteristics = pool_characteristics(snapshots, INSTALMENT_LOANS, [MAR]).collect()
    # Performing at March: L1 1,000.00 at 12% and L3 1,000.00 at 18%.
    assert characteristics["wac"].to_list() == pytest.approx([0.15])
    march = snapshots.filter(pl.col("as_of_date") == MAR).collect().sort("loan_id")
    assert march["status"].to_list() == ["current", "prepaid", "delinquent", "charged_off"]
    assert march["bucket"].to_list() == ["current", "current", "31-60", "31-60"]
    tape_march = INSTALMENT_TAPE.filter(pl.col("as_of_date") == MAR).collect()
    assert march.height == tape_march.height


def test_a_servicer_charge_off_before_default_dpd_is_a_default_and_later_cash_a_recovery() -> None:
    l4 = (
        _instalment_snapshots()
        .filter(pl.col("loan_id") == "L4")
        .collect()
        .sort("as_of_date")
        .select(
            "as_of_date",
            "scheduled_principal_paid",
            "status",
            "default_date",
            "defaulted_principal",
            "recoveries",
        )
        .rows()
    )
    assert l4 == [
        (JAN, 0, "current", None, 0, 0),
        (FEB, 5_000, "current", None, 0, 0),
        (MAR, 5_000, "charged_off", date(2024, 3, 25), 70_000, 0),
        (APR, 0, "charged_off", date(2024, 3, 25), 70_000, 3_000),
    ]


def test_a_tape_without_paid_to_date_columns_says_interest_is_not_available() -> None:
    assert tape_availability(["as_of_date", "loan_id", "current_principal", "dpd", "status"]) == {
        "interest_paid": False,
        "fees_paid": False,
        "recoveries": False,
    }


def test_dpd_past_default_dpd_between_snapshots_dates_the_default_on_the_day_it_passed() -> None:
    loans = _loans(("D1", "B", date(2023, 10, 1), date(2023, 11, 1), 50_000, "0.1", 6))
    tape = _tape(
        [_row(JAN, "D1", 40_000, 70, "delinquent"), _row(FEB, "D1", 40_000, 99, "delinquent")]
    )
    out = tape_snapshots(
        tape, loans, build_schedules(loans), _cutoff_events("P", ["D1"], JAN)
    ).collect()
    feb = out.filter(pl.col("as_of_date") == FEB).row(0, named=True)
    # DPD 99 on 29 February: DPD was 91 (the first day above 90) on 21 February.
    assert (feb["status"], feb["default_date"], feb["defaulted_principal"]) == (
        "defaulted",
        date(2024, 2, 21),
        40_000,
    )


# --- the engine's snapshots and the servicer's charge-off --------------------------------------


def _engine(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    base = {c: 0 for c, t in schema.LOAN_SNAPSHOTS.items() if t == schema.MONEY}
    full = [
        {
            **base,
            "pool_id": "P",
            "bucket": "current",
            "default_date": None,
            "months_on_book": 1,
            "remaining_term": 6,
            **row,
        }
        for row in rows
    ]
    return pl.LazyFrame(full, schema=schema.LOAN_SNAPSHOTS)


def test_the_servicer_charge_off_overrides_the_engine_before_its_default() -> None:
    engine = _engine(
        [
            {
                "as_of_date": FEB,
                "loan_id": "E1",
                "opening_principal": 50_000,
                "closing_principal": 45_000,
                "scheduled_principal_paid": 5_000,
                "dpd": 0,
                "status": "current",
            },
            {
                "as_of_date": MAR,
                "loan_id": "E1",
                "opening_principal": 45_000,
                "closing_principal": 45_000,
                "dpd": 40,
                "status": "delinquent",
            },
            {
                "as_of_date": APR,
                "loan_id": "E1",
                "opening_principal": 45_000,
                "closing_principal": 44_000,
                "scheduled_principal_paid": 1_000,
                "interest_paid": 200,
                "dpd": 20,
                "status": "delinquent",
            },
        ]
    )
    tape = _tape([_row(MAR, "E1", 45_000, 40, "charged_off")])
    out = (
        apply_servicer_charge_offs(engine, servicer_charge_offs(tape)).collect().sort("as_of_date")
    )
    assert out.select(
        "status",
        "default_date",
        "defaulted_principal",
        "scheduled_principal_paid",
        "interest_paid",
        "recoveries",
    ).rows() == [
        ("current", None, 0, 5_000, 0, 0),
        ("charged_off", MAR, 45_000, 0, 0, 0),
        ("charged_off", MAR, 45_000, 0, 0, 1_200),
    ]
    assert out.columns == list(schema.LOAN_SNAPSHOTS)


def test_a_loan_whose_sources_disagree_appears_in_reconciliation_with_the_difference() -> None:
    engine = _engine(
        [
            {
                "as_of_date": MAR,
                "loan_id": "R1",
                "closing_principal": 100_000,
                "dpd": 0,
                "status": "current",
            },
            {
                "as_of_date": MAR,
                "loan_id": "R2",
                "closing_principal": 50_000,
                "dpd": 0,
                "status": "current",
            },
            {
                "as_of_date": MAR,
                "loan_id": "R3",
                "closing_principal": 0,
                "dpd": 0,
                "status": "matured",
            },
        ]
    )
    tape = _tape(
        [
            _row(MAR, "R1", 98_765, 0, "current"),
            _row(MAR, "R2", 50_000, 3, "delinquent"),
            _row(MAR, "R3", 0, 0, "prepaid"),
        ]
    )
    differences = reconcile(engine, tape, Tolerances(balance_fen=0, dpd_days=5)).collect()
    assert differences.select("loan_id", "balance_difference", "breaks").rows() == [
        ("R1", 1_235, ["balance"]),
        ("R2", 0, ["status"]),
    ]
    summary = reconciliation_summary(differences, compared=3)
    assert summary["differing"] == 2
    assert summary["by_break"] == {"balance": 1, "status": 1}
    assert summary["balance_difference_abs_total"] == 1_235
    assert summary["largest"] == [
        {
            "as_of_date": "2024-03-31",
            "loan_id": "R1",
            "engine_balance": 100_000,
            "servicer_balance": 98_765,
            "balance_difference": 1_235,
        }
    ]


# --- a revolving pool over three months --------------------------------------------------------


def test_revolving_payment_rate_utilisation_and_thirty_plus_as_computed_by_hand() -> None:
    def account(  # noqa: PLR0917 (the columns of the hand-made table, in order)
        as_of: date, loan: str, balance: int, dpd: int, paid: int, interest: int, limit: int
    ) -> dict[str, Any]:
        status = "current" if dpd == 0 else "delinquent"
        return _row(
            as_of,
            loan,
            balance,
            dpd,
            status,
            principal_paid_to_date=paid,
            interest_paid_to_date=interest,
            fees_paid_to_date=0,
            credit_limit=limit,
        )

    tape = _tape(
        [
            account(JAN, "A1", 200_000, 0, 0, 0, 1_000_000),
            account(JAN, "A2", 100_000, 0, 0, 0, 500_000),
            account(JAN, "A3", 0, 0, 0, 0, 300_000),
            account(FEB, "A1", 250_000, 0, 50_000, 3_000, 1_000_000),
            account(FEB, "A2", 100_000, 35, 0, 0, 500_000),
            account(FEB, "A3", 20_000, 0, 0, 0, 300_000),
            account(MAR, "A1", 150_000, 0, 150_000, 6_000, 1_000_000),
            account(MAR, "A2", 100_000, 65, 0, 0, 500_000),
            account(MAR, "A3", 0, 0, 20_000, 500, 300_000),
        ]
    )
    pool_of = pl.LazyFrame({"loan_id": ["A1", "A2", "A3"], "pool_id": ["R"] * 3})
    out = revolving_metrics(tape, pool_of).collect().filter(pl.col("as_of_date") > JAN)
    feb, mar = out.iter_rows(named=True)
    # February: opening 3,000.00; A1 paid 500.00 and 30.00 interest and drew 1,000.00.
    assert (feb["opening_balance"], feb["principal_collections"], feb["new_drawings"]) == (
        300_000,
        50_000,
        120_000,
    )
    assert feb["payment_rate"] == pytest.approx(53_000 / 300_000)
    assert feb["utilisation"] == pytest.approx(370_000 / 1_800_000)
    assert (feb["thirty_plus_count"], feb["thirty_plus_balance"]) == (1, 100_000)
    # March: opening 3,700.00; A1 paid 1,000.00 + 30.00, A3 200.00 + 5.00.
    assert mar["payment_rate"] == pytest.approx(123_500 / 370_000)
    assert mar["utilisation"] == pytest.approx(250_000 / 1_800_000)
    assert (mar["account_count"], mar["thirty_plus_count"], mar["over_limit_count"]) == (3, 1, 0)
    assert mar["thirty_plus_share"] == pytest.approx(100_000 / 250_000)
    assert mar["yield_annualised"] == pytest.approx(3_500 * 12 / 370_000)
    assert mar["charge_off_rate_annualised"] == 0


def test_revolving_rates_that_need_interest_are_null_when_the_tape_lacks_it() -> None:
    tape = pl.LazyFrame(
        {
            "as_of_date": [JAN, FEB],
            "loan_id": ["A1", "A1"],
            "current_principal": [100_000, 80_000],
            "dpd": [0, 0],
            "status": ["current", "current"],
        },
        schema={
            c: schema.LOAN_TAPE[c]
            for c in ("as_of_date", "loan_id", "current_principal", "dpd", "status")
        },
    )
    out = revolving_metrics(tape, pl.LazyFrame({"loan_id": ["A1"], "pool_id": ["R"]})).collect()
    feb = out.row(1, named=True)
    assert feb["principal_collections"] == 20_000
    assert feb["payment_rate"] is None
    assert feb["utilisation"] is None


def test_without_fees_every_figure_that_includes_fees_is_not_available() -> None:
    section = data_source_section(
        balance_source="servicer",
        servicer_loans=2,
        engine_loans=0,
        available={"interest_paid": True, "fees_paid": False, "recoveries": True},
        revolving=False,
    )
    assert section["not_available"] == [
        "collections.fees",
        "collections.total",
        "credit_enhancement.excess_spread",
        "performance.excess_spread",
        "performance.payment_rate",
        "revolving_accounts.fee_collections",
        "revolving_accounts.payment_rate",
        "revolving_accounts.yield_annualised",
        # The waterfall's income lacks the fees too: its income account is not available.
        "waterfall.income",
    ]


def test_revolving_payment_rate_is_null_when_the_tape_lacks_fees_not_a_partial_sum() -> None:
    columns = ("as_of_date", "loan_id", "current_principal", "dpd", "status")
    tape = pl.LazyFrame(
        {
            "as_of_date": [JAN, FEB],
            "loan_id": ["A1", "A1"],
            "current_principal": [100_000, 80_000],
            "dpd": [0, 0],
            "status": ["current", "current"],
            "interest_paid_to_date": [0, 1_500],
            "credit_limit": [200_000, 200_000],
        },
        schema={
            **{c: schema.LOAN_TAPE[c] for c in columns},
            "interest_paid_to_date": schema.MONEY,
            "credit_limit": schema.MONEY,
        },
    )
    out = revolving_metrics(tape, pl.LazyFrame({"loan_id": ["A1"], "pool_id": ["R"]})).collect()
    feb = out.row(1, named=True)
    assert feb["interest_collections"] == 1_500
    assert (feb["payment_rate"], feb["yield_annualised"]) == (None, None)
    assert feb["utilisation"] == pytest.approx(0.4)


def test_a_revolving_pool_hides_instalment_only_figures_with_a_reason() -> None:
    section = data_source_section(
        balance_source="servicer",
        servicer_loans=3,
        engine_loans=0,
        available={"interest_paid": True, "fees_paid": True, "recoveries": False},
        revolving=True,
    )
    assert section["balance_source"] == "servicer"
    assert section["not_available"] == [
        "collections.recoveries",
        "collections.total",
        "performance.cumulative_net_loss_rate",
        "performance.recovery_rate",
        "revolving_accounts.recoveries",
        "waterfall.income",
    ]
    hidden = {h["section"]: h["reason"] for h in section["hidden_sections"]}  # type: ignore[attr-defined]
    assert set(hidden) == {
        "characteristics.wam_months",
        "performance.smm",
        "performance.cpr",
        "pool.scheduled_principal",
    }
    assert hidden["characteristics.wam_months"] == (
        "revolving accounts have no schedule, so no remaining term"
    )


def test_a_written_off_balance_is_not_a_balance_difference() -> None:
    engine = _engine(
        [
            {
                "as_of_date": MAR,
                "loan_id": "W1",
                "closing_principal": 40_000,
                "dpd": 200,
                "status": "charged_off",
                "default_date": JAN,
            },
        ]
    )
    tape = _tape([_row(MAR, "W1", 0, 200, "charged_off", charged_off_principal=40_000)])
    assert reconcile(engine, tape).collect().height == 0


def test_a_balance_above_the_credit_limit_is_counted_not_rejected() -> None:
    tape = _tape(
        [
            _row(JAN, "A1", 40_000, 0, "current", credit_limit=50_000),
            _row(FEB, "A1", 60_000, 0, "current", credit_limit=50_000),
        ]
    )
    pool_of = pl.LazyFrame({"loan_id": ["A1"], "pool_id": ["R"]})
    feb = revolving_metrics(tape, pool_of).collect().row(1, named=True)
    assert (feb["over_limit_count"], feb["closing_balance"]) == (1, 60_000)
    assert feb["utilisation"] == pytest.approx(1.2)


def test_a_revolving_accounts_drawing_is_a_new_drawing_even_without_a_credit_limit() -> None:
    loans = _loans(("C1", "B1", date(2023, 5, 1), date(2023, 6, 1), 1, "0.1825", 1)).with_columns(
        pl.lit("revolving_credit").alias("product"),
        *(pl.lit(None, dtype=schema.LOANS[c]).alias(c) for c in schema.SCHEDULE_TERMS),
    )
    # Jan 1,000.00; Feb 1,300.00 after repaying 400.00 (so 700.00 drawn); Mar 900.00 with no
    # paid-to-date column value: the net 400.00 decrease is the collection.
    tape = _tape(
        [
            _row(JAN, "C1", 100_000, 0, "current", principal_paid_to_date=0),
            _row(FEB, "C1", 130_000, 0, "current", principal_paid_to_date=40_000),
            _row(MAR, "C1", 90_000, 0, "current"),
        ]
    )
    out = tape_snapshots(
        tape, loans, build_schedules(loans).collect().lazy(), _cutoff_events("R", ["C1"], JAN)
    ).collect()
    assert out["scheduled_principal_paid"].to_list() == [0, 40_000, 40_000]
    assert out["unscheduled_principal_paid"].to_list() == [0, 0, 0]
    assert out["new_drawings"].to_list() == [0, 70_000, 0]
    assert out["purchased_principal"].to_list() == [0, 0, 0]
    assert out["remaining_term"].to_list() == [0, 0, 0]
    roll = pool_rollforward(out.lazy(), [FEB, MAR]).collect()
    assert rollforward_breaks(roll.lazy()).collect().height == 0


def test_a_card_account_paying_after_its_default_pays_recoveries_even_when_it_cures() -> None:
    loans = _loans(("C1", "B1", date(2023, 5, 1), date(2023, 6, 1), 1, "0.1825", 1)).with_columns(
        pl.lit("revolving_credit").alias("product"),
        *(pl.lit(None, dtype=schema.LOANS[c]).alias(c) for c in schema.SCHEDULE_TERMS),
    )
    # Feb: 95 DPD, a default. Mar: the servicer says it cured after paying 200.00 principal,
    # 10.00 interest and 30.00 fees; nothing was charged off or recovered after a charge-off.
    tape = _tape(
        [
            _row(JAN, "C1", 100_000, 64, "delinquent", principal_paid_to_date=0,
                 interest_paid_to_date=0, fees_paid_to_date=0, recoveries_to_date=0),
            _row(FEB, "C1", 100_000, 95, "defaulted", principal_paid_to_date=0,
                 interest_paid_to_date=0, fees_paid_to_date=0, recoveries_to_date=0),
            _row(MAR, "C1", 80_000, 0, "current", principal_paid_to_date=20_000,
                 interest_paid_to_date=1_000, fees_paid_to_date=3_000, recoveries_to_date=0),
        ]
    )  # fmt: skip
    out = tape_snapshots(
        tape, loans, build_schedules(loans).collect().lazy(), _cutoff_events("R", ["C1"], JAN)
    ).collect()
    assert out["status"].to_list() == ["delinquent", "defaulted", "defaulted"]
    assert out["defaulted_principal"].to_list() == [0, 100_000, 100_000]
    assert out["recoveries"].to_list() == [0, 0, 24_000]
    assert out["scheduled_principal_paid"].to_list() == [0, 0, 0]
