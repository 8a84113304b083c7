"""Sample inputs shared by the report tests: a deal, a complete metrics.json and its history."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

from data_contracts.deal import DealTerms
from reports.sources import (
    DataQuality,
    DatasetQuality,
    Provenance,
    RelativeLink,
    RuleCount,
    StratificationRow,
    VintageCurves,
    VintagePoint,
)

GENERATED_AT = datetime(2025, 7, 1, 2, 0, tzinfo=timezone(timedelta(hours=8)))
PROVENANCE = Provenance(
    run_id="20250630-abc123def456",
    code_version="0.1.0+g0123456789ab",
    inputs=(("metrics.json", "a" * 64), ("deals/HB-2025-1.yaml", "b" * 64)),
)


def make_deal(**overrides: Any) -> DealTerms:
    terms: dict[str, Any] = {
        "pool_id": "HB-2025-1",
        "name": "Demo Huabei 2025-1",
        "name_zh": "示例花呗2025-1",
        "cutoff_date": "2025-03-31",
        "closing_date": "2025-04-15",
        "payment_day": 26,
        "revolving_period_end": "2025-12-31",
        "tranches": [
            {
                "class": "A",
                "kind": "senior",
                "original_balance": "890000.00",
                "coupon": "0.039",
                "rating": "AAA",
                "code": "HB251A",
                "short_name": "花呗251A",
                "ratings": {
                    "agency": "中诚信国际",
                    "initial": "AAA",
                    "current": "AAA",
                },
                "expected_maturity_date": "2026-09-26",
                "legal_maturity_date": "2028-09-26",
            },
            {
                "class": "B",
                "kind": "mezzanine",
                "original_balance": "35000.00",
                "coupon": "0.0419",
                "rating": "AA+",
                "code": "HB251B",
                "short_name": "花呗251B",
                "ratings": {
                    "agency": "中诚信国际",
                    "initial": "AA+",
                    "actions": [
                        {
                            "date": "2025-06-20",
                            "agency": "中诚信国际",
                            "from_rating": "AA+",
                            "to_rating": "AAA",
                        }
                    ],
                },
                "expected_maturity_date": "2026-12-26",
                "legal_maturity_date": "2028-12-26",
            },
            {
                "class": "C",
                "kind": "subordinated",
                "original_balance": "75000.00",
                "coupon": "0",
                "code": "HB251C",
                "short_name": "花呗251C",
                "expected_maturity_date": "2027-03-26",
            },
        ],
        "triggers": [
            {
                "name": "Cumulative default",
                "metric": "cumulative_default_rate",
                "threshold": "0.025",
                "name_zh": "累计违约率触发事件",
            },
            {
                "name": "Payment rate floor",
                "metric": "payment_rate",
                "comparison": "below",
                "threshold": "0.05",
                "consequence": "report_only",
            },
        ],
        "definitions": {"default_dpd": 90, "charge_off_dpd": 180, "dpd_tolerance": "1.00"},
        "participants": {
            "manager": {"name": "Demo Securities Co., Ltd.", "name_zh": "示例证券股份有限公司"},
            "custodian": {"name": "Demo Bank Co., Ltd.", "name_zh": "示例银行股份有限公司"},
            "servicer": {"name": "Demo Microcredit Co., Ltd.", "name_zh": "示例小额贷款有限公司"},
            "originator": {"name": "Demo Microcredit Co., Ltd.", "name_zh": "示例小额贷款有限公司"},
            "rating_agency": {"name": "Demo Ratings", "name_zh": "中诚信国际"},
        },
        "events": [
            {"kind": "event_of_default", "name": "Event of default", "name_zh": "专项计划违约事件"},
            {
                "kind": "perfection_event",
                "name": "Perfection event",
                "name_zh": "权利完善事件",
            },
            {
                "kind": "servicer_termination",
                "name": "Servicer termination",
                "name_zh": "资产服务机构解任事件",
            },
        ],
        "forecast_collections": [{"period": "2025-06", "amount": "85000.00"}],
    }
    terms.update(overrides)
    return DealTerms.model_validate(terms)


_METRICS: dict[str, Any] = {
    "pool_id": "HB-2025-1",
    "period": "2025-06",
    "period_number": 3,
    "period_start": "2025-06-01",
    "period_end": "2025-06-30",
    "currency": "CNY",
    "payment_date": "2025-07-28",
    "report_date": "2025-07-21",
    "interest_period_start": "2025-06-26",
    "interest_period_end": "2025-07-28",
    "pool": {
        "opening_balance": "1300000.00",
        "scheduled_principal": "50000.00",
        "unscheduled_principal": "20000.00",
        "defaulted_principal": "5432.11",
        "removed_principal": "1000.00",
        "purchased_principal": "11000.00",
        "new_drawings": "0.00",
        "closing_balance": "1234567.89",
        "cutoff_balance": "1500000.00",
        "pool_factor": 0.823045,
        "opening_count": 1300,
        "closing_count": 1234,
    },
    "collections": {
        "principal": "70000.00",
        "interest": "12000.50",
        "fees": "300.00",
        "recoveries": "150.25",
        "total": "82450.75",
    },
    "characteristics": {
        "wac": 0.1523,
        "wam_months": 8.44,
        "wala_months": 3.25,
        "average_balance": "1000.47",
        "loan_count": 1234,
        "obligor_count": 1201,
    },
    "delinquency": [
        {"bucket": "current", "count": 1200, "balance": "1200567.89", "balance_share": 0.972459},
        {"bucket": "1-30", "count": 20, "balance": "20000.00", "balance_share": 0.0162},
        {"bucket": "31-60", "count": 8, "balance": "8000.00", "balance_share": 0.00648},
        {"bucket": "61-90", "count": 4, "balance": "4000.00", "balance_share": 0.00324},
        {"bucket": "91-120", "count": 2, "balance": "2000.00", "balance_share": 0.00162},
        {"bucket": "121-150", "count": 0, "balance": "0.00", "balance_share": 0.0},
        {"bucket": "151-180", "count": 0, "balance": "0.00", "balance_share": 0.0},
        {"bucket": "180+", "count": 0, "balance": "0.00", "balance_share": 0.0},
    ],
    "delinquency_m": [
        {"bucket": "M1", "count": 20, "balance": "20000.00", "balance_share": 0.0162},
        {"bucket": "M2", "count": 8, "balance": "8000.00", "balance_share": 0.00648},
        {"bucket": "M3", "count": 4, "balance": "4000.00", "balance_share": 0.00324},
        {"bucket": "M3+", "count": 2, "balance": "2000.00", "balance_share": 0.00162},
    ],
    "performance": {
        "smm": 0.015,
        "cpr": 0.1659,
        "mdr": 0.004178,
        "cdr": 0.049,
        "cumulative_default_rate": 0.012345,
        "cumulative_net_loss_rate": 0.011111,
        "recovery_rate": 0.0456,
        "payment_rate": 0.0538,
        "excess_spread": 0.0712,
    },
    "tranches": [
        {
            "class": "B",
            "kind": "mezzanine",
            "opening_balance": "35000.00",
            "interest_due": "122.21",
            "interest_paid": "122.21",
            "interest_shortfall": "0.00",
            "principal_paid": "0.00",
            "closing_balance": "35000.00",
            "coupon": 0.0419,
            "bond_factor": 1.0,
            "interest_per_100": 0.3492,
            "principal_per_100": 0.0,
            "payment_per_100": 0.3492,
            "subordination": 0.0797,
            "credit_enhancement": 0.2911,
        },
        {
            "class": "A",
            "kind": "senior",
            "opening_balance": "890000.00",
            "interest_due": "2892.50",
            "interest_paid": "2892.50",
            "interest_shortfall": "0.00",
            "principal_paid": "44500.00",
            "closing_balance": "845500.00",
            "coupon": 0.039,
            "bond_factor": 0.95,
            "interest_per_100": 0.325,
            "principal_per_100": 5.0,
            "payment_per_100": 5.325,
            "subordination": 0.1159,
            "credit_enhancement": 0.3151,
        },
    ],
    "triggers": [
        {
            "name": "Payment rate floor",
            "threshold": 0.05,
            "actual": 0.0538,
            "breached": False,
            "in_effect": False,
        },
        {
            "name": "Cumulative default",
            "threshold": 0.025,
            "actual": 0.02612,
            "breached": True,
            "in_effect": True,
        },
    ],
    "revolving": {
        "purchased_count": 11,
        "purchased_principal": "11000.00",
        "purchase_price": "11000.00",
        "purchases_paid": "10500.00",
        "purchases_unfunded": "500.00",
        "revolving_period": True,
    },
    "concentration": {
        "top1_obligor_share": 0.001234,
        "top10_obligor_share": 0.0098,
        "hhi_obligor": 0.000912,
        "province_shares": {"CN-GD": 0.2, "CN-BJ": 0.3, "CN-ZJ": 0.5},
        "top_obligors": [
            {"rank": 1, "balance": "15234.00", "balance_share": 0.01234},
            {"rank": 2, "balance": "13000.00", "balance_share": 0.01053},
            {"rank": 3, "balance": "12600.00", "balance_share": 0.0102},
        ],
    },
    "expenses": {
        "taxes": "35.10",
        "management_fee": "50.00",
        "custody_fee": "10.83",
        "servicer_fee": "541.67",
    },
    "accounts": [
        {
            "account": "collection",
            "opening": "0.00",
            "inflow": "82450.75",
            "outflow": "82450.75",
            "closing": "0.00",
        },
        {
            "account": "principal",
            "opening": "4932.11",
            "inflow": "70000.00",
            "outflow": "69500.00",
            "closing": "5432.11",
        },
    ],
    "credit_enhancement": {
        "collateral_balance": "1240000.00",
        "notes_balance": "880500.00",
        "overcollateralisation": "359500.00",
        "principal_account": "5432.11",
        "principal_deficiency": "0.00",
        "overcollateralisation_ratio": 0.2899,
        "excess_spread": 0.0712,
    },
    "waterfall": [
        {
            "order": 1,
            "account": "income",
            "item": "trustee_fee",
            "available": "12450.75",
            "due": "50.00",
            "paid": "50.00",
        },
        {
            "order": 2,
            "account": "income",
            "item": "class_A_interest",
            "available": "12400.75",
            "due": "2892.50",
            "paid": "2892.50",
        },
        {
            "order": 3,
            "account": "principal",
            "item": "revolving_purchases",
            "available": "70000.00",
            "due": "11000.00",
            "paid": "10500.00",
        },
    ],
    "definitions": {
        "cumulative_default_denominator": "initial_plus_purchases",
        "day_count": "ACT/365",
        "business_day_convention": "following",
        "default_dpd": 90,
        "dpd_tolerance_fen": 100,
        "metrics_contract_version": "1.2.0",
    },
}


def make_metrics() -> dict[str, Any]:
    """A complete metrics.json of the sample deal for 2025-06 (a fresh copy)."""
    return copy.deepcopy(_METRICS)


def make_history() -> list[dict[str, Any]]:
    """The sample pool's documents for 2025-04 .. 2025-06 (this period last)."""
    documents = []
    # Each period's lines move the balance by -65,432.11, as in 2025-06.
    for number, month, opening, closing, cpr in (
        (1, "04", "1465432.11", "1400000.00", 0.12),
        (2, "05", "1365432.11", "1300000.00", 0.14),
    ):
        document = make_metrics()
        document.update(
            period_number=number,
            period=f"2025-{month}",
            period_start=f"2025-{month}-01",
            period_end=f"2025-{month}-{30 if month == '04' else 31}",
        )
        document["pool"]["opening_balance"] = opening
        document["pool"]["closing_balance"] = closing
        document["performance"]["cpr"] = cpr
        documents.append(document)
    documents.append(make_metrics())
    return documents


def make_stratifications() -> list[StratificationRow]:
    return [
        StratificationRow("balance", "< 1000", 700, "400000.00", 0.324, 0.16),
        StratificationRow("balance", ">= 1000", 534, "834567.89", 0.676, 0.148),
        StratificationRow("province", "CN-GD", 600, "617283.94", 0.5, 0.15),
        StratificationRow("province", "CN-BJ", 634, "617283.95", 0.5, 0.154),
        StratificationRow("product", "cash_loan", 1234, "1234567.89", 1.0, None),
    ]


def make_vintages() -> VintageCurves:
    points = [VintagePoint("2025-01", m, 0.001 * m, 0.0008 * m) for m in range(6)] + [
        VintagePoint("2025-02", m, 0.0015 * m, 0.001 * m) for m in range(5)
    ]
    return VintageCurves(tuple(points), book_wide=True)


def make_data_quality() -> DataQuality:
    return DataQuality(
        datasets=(
            DatasetQuality("loans", 120, 3),
            DatasetQuality("repayments", 5400, 0),
            DatasetQuality("pool_assets", 15, 1),
        ),
        rules=(
            RuleCount("loans", "loans.principal.positive", 2),
            RuleCount("loans", "loans.annual_rate.range", 1),
            RuleCount("pool_assets", "pool_assets.loan_id.known", 1),
        ),
        contract_versions=(("loans", "1.0.0"), ("repayments", "1.0.0"), ("pool_assets", "1.0.0")),
        reports=(RelativeLink("20250630-abc123def456", "../../data_quality/x.html"),),
    )
