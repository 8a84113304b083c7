"""Current views: the latest delivery of a loan wins and the change is recorded."""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms import curation, schema


def _loan(loan_id: str, principal: int, day: date, line: int) -> dict[str, object]:
    return {
        "loan_id": loan_id,
        "borrower_id": "B1",
        "product": "cash_loan",
        "origination_date": date(2025, 1, 3),
        "first_due_date": date(2025, 2, 3),
        "principal": principal,
        "annual_rate": None,
        "term_months": 12,
        "repayment_method": "equal_instalment",
        "province": "CN-GD",
        "borrower_age": 30,
        "credit_score": 700,
        "channel": "app",
        "business_date": day,
        "source_file": f"landing/{day}/loans.csv",
        "source_line": line,
    }


def _frame(rows: list[dict[str, object]]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema={**schema.LOANS, **schema.LINEAGE})


def test_a_redelivered_loan_is_a_correction_and_the_latest_wins() -> None:
    staged = _frame(
        [
            _loan("L2", 500_00, date(2025, 1, 3), 3),
            _loan("L1", 1000_00, date(2025, 1, 3), 2),
            _loan("L1", 1200_00, date(2025, 1, 6), 2),
        ]
    )
    current = curation.current_loans(staged).collect()
    assert current["loan_id"].to_list() == ["L1", "L2"]
    assert current["principal"].to_list() == [1200_00, 500_00]
    corrections = curation.loan_corrections(staged).collect()
    assert corrections["loan_id"].to_list() == ["L1"]
    assert corrections["business_date"].to_list() == [date(2025, 1, 6)]


def test_an_unchanged_redelivery_is_not_a_correction() -> None:
    staged = _frame(
        [_loan("L1", 1000_00, date(2025, 1, 3), 2), _loan("L1", 1000_00, date(2025, 1, 6), 9)]
    )
    assert curation.loan_corrections(staged).collect().height == 0
    assert curation.current_loans(staged).collect().height == 1


def test_a_resent_repayment_counts_once() -> None:
    row = {
        "repayment_id": "R1",
        "loan_id": "L1",
        "value_date": date(2025, 2, 3),
        "principal_paid": 100,
        "interest_paid": 10,
        "fee_paid": 0,
        "penalty_paid": 0,
        "kind": "scheduled",
    }
    staged = pl.LazyFrame(
        [
            {**row, "business_date": date(2025, 2, 3), "source_file": "a", "source_line": 2},
            {**row, "business_date": date(2025, 2, 4), "source_file": "b", "source_line": 2},
        ],
        schema={**schema.REPAYMENTS, **schema.LINEAGE},
    )
    assert curation.current_repayments(staged).collect().height == 1
