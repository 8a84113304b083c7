"""The metrics.json document: structure, money formatting and determinism."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.transforms.test_pool_metrics import APR, CUTOFFS, LOANS, PERIODS, ROWS, frame
from transforms.metrics_document import build_metrics_document, dumps_metrics, fen_to_yuan_str
from transforms.pool_metrics import (
    delinquency_buckets,
    pool_characteristics,
    pool_collections,
    pool_performance,
    pool_rollforward,
)

ROLLFORWARD = {
    "pool_id": "P1",
    "period_end": APR,
    "opening_balance": 1_811_514,
    "scheduled_principal": 140_934,
    "unscheduled_principal": 0,
    "defaulted_principal": 290_000,
    "removed_principal": 0,
    "purchased_principal": 0,
    "new_drawings": 0,
    "closing_balance": 1_380_580,
    "opening_count": 4,
    "closing_count": 3,
    "purchased_count": 0,
}
DELINQUENCY = [
    {"bucket": "current", "count": 2, "balance": 1_260_580, "balance_share": 1_260_580 / 1_380_580},
    {"bucket": "1-30", "count": 1, "balance": 120_000, "balance_share": 120_000 / 1_380_580},
    *(
        {"bucket": b, "count": 0, "balance": 0, "balance_share": 0.0}
        for b in ("31-60", "61-90", "91-120", "121-150", "151-180", "180+")
    ),
]
CHARACTERISTICS = {
    "wac": 0.15213866635761783,
    "wam_months": 8.37,
    "wala_months": 3.45,
    "average_balance": 460_193,
    "loan_count": 3,
    "obligor_count": 2,
}
COLLECTIONS = {
    "principal": 140_934,
    "interest": 16_915,
    "fees": 300,
    "recoveries": 5_000,
    "total": 163_149,
}
PERFORMANCE = {
    "smm": 0.0,
    "cpr": 0.0,
    "mdr": 0.16008708,
    "cdr": 0.8772,
    "cumulative_default_rate": 290_000 / 3_000_000,
    "cumulative_net_loss_rate": 0.095,
    "recovery_rate": 1 / 58,
    "payment_rate": 0.0778,
}


def build(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "pool_id": "P1",
        "period_end": APR,
        "currency": "CNY",
        "rollforward_row": ROLLFORWARD,
        "delinquency_rows": DELINQUENCY,
        "characteristics_row": CHARACTERISTICS,
        "collections_row": COLLECTIONS,
        "performance_row": PERFORMANCE,
        "cutoff_balance": 2_400_000,
    }
    arguments.update(overrides)
    return build_metrics_document(**arguments)


class TestFenToYuan:
    @pytest.mark.parametrize(
        ("fen", "text"),
        [
            (123_450, "1234.50"),
            (-1_205, "-12.05"),
            (0, "0.00"),
            (5, "0.05"),
            (-5, "-0.05"),
            (100, "1.00"),
            (-100, "-1.00"),
            (123_456_789_012_345, "1234567890123.45"),
        ],
    )
    def test_two_decimals_from_integer_fen(self, fen: int, text: str) -> None:
        assert fen_to_yuan_str(fen) == text

    def test_numpy_integers_are_amounts(self) -> None:
        assert fen_to_yuan_str(np.int64(-99)) == "-0.99"  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [12.5, True, "100", None])
    def test_anything_but_an_integer_is_refused(self, value: Any) -> None:
        with pytest.raises(TypeError):
            fen_to_yuan_str(value)


class TestDocument:
    def test_it_builds_the_contract_structure_with_money_as_strings(self) -> None:
        doc = build()
        assert doc == {
            "pool_id": "P1",
            "period": "2024-04",
            "period_start": "2024-04-01",
            "period_end": "2024-04-30",
            "currency": "CNY",
            "pool": {
                "opening_balance": "18115.14",
                "scheduled_principal": "1409.34",
                "unscheduled_principal": "0.00",
                "defaulted_principal": "2900.00",
                "removed_principal": "0.00",
                "purchased_principal": "0.00",
                "new_drawings": "0.00",
                "closing_balance": "13805.80",
                "cutoff_balance": "24000.00",
                "pool_factor": 0.5752416667,
                "opening_count": 4,
                "closing_count": 3,
            },
            "collections": {
                "principal": "1409.34",
                "interest": "169.15",
                "fees": "3.00",
                "recoveries": "50.00",
                "total": "1631.49",
            },
            "characteristics": {
                "wac": 0.1521386664,
                "wam_months": 8.37,
                "wala_months": 3.45,
                "average_balance": "4601.93",
                "loan_count": 3,
                "obligor_count": 2,
            },
            "delinquency": [
                {
                    "bucket": "current",
                    "count": 2,
                    "balance": "12605.80",
                    "balance_share": 0.9130800099,
                },
                {"bucket": "1-30", "count": 1, "balance": "1200.00", "balance_share": 0.0869199901},
                *(
                    {"bucket": b, "count": 0, "balance": "0.00", "balance_share": 0.0}
                    for b in ("31-60", "61-90", "91-120", "121-150", "151-180", "180+")
                ),
            ],
            "performance": {
                "smm": 0.0,
                "cpr": 0.0,
                "mdr": 0.16008708,
                "cdr": 0.8772,
                "cumulative_default_rate": 0.0966666667,
                "cumulative_net_loss_rate": 0.095,
                "recovery_rate": 0.0172413793,
                "payment_rate": 0.0778,
                "excess_spread": None,
            },
            "tranches": [],
            "triggers": [],
            "revolving": {"purchased_count": 0, "purchased_principal": "0.00"},
            "concentration": {
                "top1_obligor_share": None,
                "top10_obligor_share": None,
                "hhi_obligor": None,
                "province_shares": None,
            },
        }

    def test_rates_are_rounded_to_ten_decimals(self) -> None:
        # 12,605.80 / 13,805.80 = 0.913080009851...; 1,200.00 / 13,805.80 = 0.086919990149...
        shares = [row["balance_share"] for row in build()["delinquency"][:2]]
        assert shares == [0.9130800099, 0.0869199901]

    def test_without_performance_every_rate_is_null(self) -> None:
        assert set(build(performance_row=None)["performance"].values()) == {None}

    def test_zero_cutoff_balance_gives_a_null_pool_factor(self) -> None:
        doc = build(cutoff_balance=0)
        assert doc["pool"]["cutoff_balance"] == "0.00"
        assert doc["pool"]["pool_factor"] is None

    def test_tranches_triggers_and_concentration_are_passed_through_formatted(self) -> None:
        doc = build(
            tranches=[
                {
                    "class": "A",
                    "opening_balance": 1_000_000_00,
                    "interest_paid": 325_000,
                    "principal_paid": 0,
                    "closing_balance": 1_000_000_00,
                    "coupon": 0.039,
                    "bond_factor": 1.0,
                }
            ],
            triggers=[
                {
                    "name": "累计违约率",
                    "threshold": 0.05,
                    "actual": 290_000 / 3_000_000,
                    "breached": True,
                }
            ],
            concentration={
                "top1_obligor_share": 0.62,
                "top10_obligor_share": 1.0,
                "hhi_obligor": 0.5,
                "province_shares": {"CN-GD": 0.7, "CN-BJ": 0.3},
            },
        )
        assert doc["tranches"] == [
            {
                "class": "A",
                "opening_balance": "1000000.00",
                "interest_paid": "3250.00",
                "principal_paid": "0.00",
                "closing_balance": "1000000.00",
                "coupon": 0.039,
                "bond_factor": 1.0,
            }
        ]
        assert doc["triggers"] == [
            {"name": "累计违约率", "threshold": 0.05, "actual": 0.0966666667, "breached": True}
        ]
        assert doc["concentration"]["province_shares"] == {"CN-BJ": 0.3, "CN-GD": 0.7}

    def test_a_row_of_another_pool_or_period_is_refused(self) -> None:
        with pytest.raises(ValueError, match="pool"):
            build(rollforward_row={**ROLLFORWARD, "pool_id": "P2"})
        with pytest.raises(ValueError, match="period end"):
            build(performance_row={**PERFORMANCE, "period_end": date(2024, 3, 31)})

    def test_delinquency_must_cover_each_bucket_once(self) -> None:
        with pytest.raises(ValueError, match="buckets"):
            build(delinquency_rows=DELINQUENCY[:-1])
        with pytest.raises(ValueError, match="twice"):
            build(delinquency_rows=[*DELINQUENCY, DELINQUENCY[0]])

    def test_delinquency_is_listed_in_bucket_order_whatever_the_input_order(self) -> None:
        doc = build(delinquency_rows=list(reversed(DELINQUENCY)))
        assert doc == build()

    def test_collections_that_do_not_add_up_are_refused(self) -> None:
        with pytest.raises(ValueError, match="sum of its parts"):
            build(collections_row={**COLLECTIONS, "total": 163_148})
        with pytest.raises(ValueError, match="roll-forward"):
            build(collections_row={**COLLECTIONS, "principal": 140_000, "total": 162_215})

    def test_a_float_amount_is_refused(self) -> None:
        with pytest.raises(TypeError):
            build(rollforward_row={**ROLLFORWARD, "removed_principal": 0.0})

    def test_a_non_finite_rate_is_refused(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            build(characteristics_row={**CHARACTERISTICS, "wac": float("nan")})

    def test_period_end_must_be_a_month_end(self) -> None:
        with pytest.raises(ValueError, match="month-end"):
            build(period_end=date(2024, 4, 29))


class TestDumps:
    def test_deterministic_sorted_indented_with_trailing_newline(self) -> None:
        text = dumps_metrics(build())
        assert text == dumps_metrics(build(delinquency_rows=list(reversed(DELINQUENCY))))
        assert text.endswith("}\n")
        assert text.startswith('{\n  "characteristics": {\n    "average_balance": "4601.93",')
        assert json.loads(text) == build()

    def test_non_ascii_is_kept_and_negative_zero_is_not_printed(self) -> None:
        text = dumps_metrics(
            build(
                performance_row={**PERFORMANCE, "smm": -0.0},
                triggers=[{"name": "违约", "threshold": 0.1, "actual": 0.0, "breached": False}],
            )
        )
        assert '"name": "违约"' in text
        assert "-0.0" not in text

    def test_nan_is_refused(self) -> None:
        with pytest.raises(ValueError, match="JSON compliant"):
            dumps_metrics({"x": float("nan")})


def test_it_assembles_a_document_from_the_pool_metrics_outputs() -> None:
    snapshots = frame(ROWS)

    def row(lf: pl.LazyFrame) -> dict[str, Any]:
        at_april = lf.filter((pl.col("pool_id") == "P1") & (pl.col("period_end") == APR))
        [only] = at_april.collect().rows(named=True)
        return only

    doc = build_metrics_document(
        pool_id="P1",
        period_end=APR,
        currency="CNY",
        rollforward_row=row(pool_rollforward(snapshots, PERIODS)),
        delinquency_rows=delinquency_buckets(snapshots, [APR])
        .filter(pl.col("pool_id") == "P1")
        .collect()
        .rows(named=True),
        characteristics_row=row(pool_characteristics(snapshots, LOANS, [APR])),
        collections_row=row(pool_collections(snapshots, [APR])),
        performance_row=row(pool_performance(snapshots, PERIODS, CUTOFFS)),
        cutoff_balance=2_400_000,
    )
    assert doc["pool"]["closing_balance"] == "13805.80"
    assert doc["pool"]["defaulted_principal"] == "2900.00"
    assert doc["collections"]["total"] == "1631.49"
    assert doc["characteristics"]["wac"] == 0.1521386664
    assert doc["performance"]["cumulative_default_rate"] == 0.0966666667
    assert doc["performance"]["smm"] == 0.0
    assert doc["performance"]["excess_spread"] is None
    assert [d["balance"] for d in doc["delinquency"][:2]] == ["12605.80", "1200.00"]


class TestContract:
    """The document against data_contracts/metrics.odcs.yaml compiled to JSON Schema."""

    def test_a_built_document_conforms(self) -> None:
        from data_contracts.metrics_contract import metrics_errors

        assert metrics_errors(build()) == []
        assert metrics_errors(json.loads(dumps_metrics(build(period_number=4)))) == []

    def test_a_missing_key_a_float_amount_and_an_unknown_key_are_breaches(self) -> None:
        from data_contracts.metrics_contract import metrics_errors

        doc = build()
        del doc["performance"]["cpr"]
        doc["pool"]["closing_balance"] = 13805.8
        doc["pool"]["surprise"] = 1
        assert metrics_errors(doc) == [
            "performance: 'cpr' is a required property",
            "pool/closing_balance: 13805.8 is not of type 'string'",
            "pool: Additional properties are not allowed ('surprise' was unexpected)",
        ]

    def test_validate_raises_with_every_breach(self) -> None:
        from data_contracts.metrics_contract import MetricsContractError, validate_metrics

        doc = build()
        doc["delinquency"] = doc["delinquency"][:7]
        doc["currency"] = "yuan"
        with pytest.raises(MetricsContractError, match=r"currency(.|\n)*delinquency"):
            validate_metrics(doc)

    def test_the_contract_states_the_smm_convention(self) -> None:
        from data_contracts.metrics_contract import contract_conventions

        assert contract_conventions()["smm"] == (
            "opening cohort's unscheduled principal / (opening cohort's opening balance - "
            "its scheduled principal); loans bought in the period are in neither part"
        )

    def test_optional_sections_are_formatted(self) -> None:
        from data_contracts.metrics_contract import metrics_errors

        doc = build(
            revolving={
                "purchase_price": 600_000,
                "purchases_paid": 550_000,
                "purchases_unfunded": 50_000,
                "revolving_period": True,
            },
            credit_enhancement={
                "collateral_balance": 1_380_580,
                "notes_balance": 1_300_000,
                "overcollateralisation": 80_580,
                "principal_account": 0,
                "principal_deficiency": 0,
                "overcollateralisation_ratio": 80_580 / 1_380_580,
                "excess_spread": 0.05,
            },
            waterfall=[
                {
                    "order": 1,
                    "account": "income",
                    "item": "trustee_fee",
                    "available": 16_915,
                    "due": 100,
                    "paid": 100,
                }
            ],
            definitions={"default_dpd": 90, "smm": "unscheduled / start"},
        )
        assert doc["revolving"] == {
            "purchased_count": 0,
            "purchased_principal": "0.00",
            "purchase_price": "6000.00",
            "purchases_paid": "5500.00",
            "purchases_unfunded": "500.00",
            "revolving_period": True,
        }
        assert doc["credit_enhancement"]["overcollateralisation"] == "805.80"
        assert doc["waterfall"][0]["available"] == "169.15"
        assert doc["definitions"] == {"default_dpd": 90, "smm": "unscheduled / start"}
        assert metrics_errors(doc) == []
