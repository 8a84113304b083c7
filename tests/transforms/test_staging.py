"""Staging casts are exact: a value parses under its type or its row names the rule."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from transforms import schema
from transforms.staging import TYPE_ERRORS, cast_landing


def _repayments(**overrides: list[str | None]) -> pl.LazyFrame:
    base: dict[str, list[str | None]] = {
        "repayment_id": ["R1"],
        "loan_id": ["L1"],
        "value_date": ["2025-03-05"],
        "principal_paid": ["788.49"],
        "interest_paid": ["100.00"],
        "fee_paid": ["0"],
        "penalty_paid": ["0.5"],
        "kind": ["scheduled"],
    }
    base.update(overrides)
    return pl.LazyFrame(base)


def test_yuan_amounts_become_exact_fen() -> None:
    row = cast_landing(_repayments(), "repayments").collect().row(0, named=True)
    assert row["principal_paid"] == 78849
    assert row["interest_paid"] == 10000
    assert row["penalty_paid"] == 50
    assert row["value_date"] == date(2025, 3, 5)
    assert row[TYPE_ERRORS] == []


def test_a_third_decimal_is_a_type_error_not_a_rounding() -> None:
    row = cast_landing(_repayments(principal_paid=["12.345"]), "repayments").collect()
    assert row["principal_paid"][0] is None
    assert row[TYPE_ERRORS][0].to_list() == ["repayments.principal_paid.type"]


def test_impossible_and_malformed_dates_name_their_rule() -> None:
    frame = pl.concat(
        [
            _repayments(value_date=["2025-02-30"]),
            _repayments(value_date=["05/03/2025"]),
            _repayments(value_date=["2025-3-5"]),
        ]
    )
    errors = cast_landing(frame, "repayments").collect()[TYPE_ERRORS].to_list()
    assert errors == [["repayments.value_date.type"]] * 3


def test_blank_text_is_null_for_the_contract_to_judge() -> None:
    row = cast_landing(_repayments(fee_paid=["  "]), "repayments").collect()
    assert row["fee_paid"][0] is None
    assert row[TYPE_ERRORS][0].to_list() == []


def test_rates_are_exact_decimals_and_lineage_passes_through() -> None:
    loans = pl.LazyFrame(
        {
            **{c: [None] for c in schema.LOANS},
            "annual_rate": ["0.1095"],
            "term_months": ["12"],
            "source_line": [7],
        }
    ).with_columns(pl.col(c).cast(pl.String) for c in schema.LOANS)
    out = cast_landing(loans, "loans").collect()
    assert out["annual_rate"].dtype == schema.RATE
    assert out["annual_rate"][0] == Decimal("0.109500")
    assert out["term_months"][0] == 12
    assert out["source_line"][0] == 7
    assert out.columns[: len(schema.LOANS)] == list(schema.LOANS)


def test_several_bad_values_in_one_row_are_all_named() -> None:
    row = cast_landing(
        _repayments(principal_paid=["abc"], interest_paid=["1e3"]), "repayments"
    ).collect()
    assert sorted(row[TYPE_ERRORS][0].to_list()) == [
        "repayments.interest_paid.type",
        "repayments.principal_paid.type",
    ]
