"""A ten-loan revolving pool over four periods, every figure computed by hand below.

Pool ``T`` (cut-off 2024-01-31, revolving period to 2024-03-31). Amounts in
yuan in the comments, fen in the code. Each performing loan repays 10% of its
cut-off (or purchase) balance a month and pays 1% of its opening balance as
interest.

============ ======== ====== ====================================================
loan         cut-off  rate   story
============ ======== ====== ====================================================
L01          10,000   12%    pays its schedule
L02           8,000   18%    prepays 6,400 in full in March (prepayment)
L03           6,000   24%    never pays: 1-30, 31-60, 61-90 DPD, defaults
                             2024-05-10 at 6,000, recovers 500 in May
L04           5,000   12%    partial prepayment of 1,000 in April
L05           4,000   15%    pays its schedule
L06           3,000   20%    repurchased at the end of April at 2,100
L07, L08      2,000   10%    same borrower; pay their schedules
L09           (9,000) 18%    bought in March at 9,000 (revolving purchase)
L10           (5,000) 12%    bought in April at 5,000, after the revolving period
============ ======== ====== ====================================================

Roll-forward (yuan):

====== ======= ========= ======= ======= ========= ======= =======
period opening purchased sched   unsched defaulted removed closing
====== ======= ========= ======= ======= ========= ======= =======
Feb    40,000  0         3,400   0       0         0       36,600
Mar    36,600  9,000     4,300   6,400   0         0       34,900
Apr    34,900  5,000     4,000   1,000   0         2,100   32,800
May    32,800  0         3,700   0       6,000     0       23,100
====== ======= ========= ======= ======= ========= ======= =======

Notes: A 32,000 at 6%, B 4,000 at 12%, C 4,000 subordinated; trustee fee
1.2% and servicer fee 2.4% a year on the opening pool balance (purchases are
not in the base), a regular 30/360 month (1/12 of a year) each period.

Rates over the opening cohort (loans performing in the pool at the period
start; L09 in March and L10 in April are in neither part):

- SMM: Feb 0; Mar 6,400 / (36,600 - 3,400) (L09's 900 left out); Apr 1,000 /
  (34,900 - 3,500) (L10's 500 left out); May 0. MDR May 6,000 / 32,800.
- Payment rate = (principal + interest + fees) / opening: Feb 3,740 / 40,000,
  Mar 11,096 / 36,600, Apr 5,339 / 34,900, May 3,968 / 32,800.

- Feb (revolving): income 340; fees 40 + 80; A 160, B 40, C 20. Principal
  funds 3,400, no purchase: retained.
- Mar (revolving): opening 36,600; income 396; fees 36.60 + 73.20; A 160,
  B 40, C 86.20. Funds 4,300 + 6,400 + 3,400 retained = 14,100; L09 costs
  9,000; 5,100 retained.
- Apr (amortising): opening 34,900; income 339; fees 34.90 + 69.80; A 160,
  B 40, C 34.30. Funds 4,000 + 1,000 + 2,100 repurchase + 5,100 = 12,200,
  all to A (19,800 left); L10's 5,000 is unfunded.
- May: opening 32,800; income 268 + 500 recoveries = 768; fees 32.80 + 65.60;
  A 19,800 x 0.5% = 99, B 40; the 530.60 left tops up the 6,000 default
  (5,469.40 uncovered); C 0. Funds 3,700 + 530.60 = 4,230.60 to A
  (15,569.40 left).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from tests.transforms.test_pool_metrics import snap
from transforms import schema
from transforms.concentration import concentration
from transforms.pool_metrics import (
    cutoff_balances,
    delinquency_buckets,
    delinquency_shares,
    pool_characteristics,
    pool_collections,
    pool_performance,
    pool_rollforward,
    rollforward_breaks,
    with_pool_factor,
)
from transforms.triggers import ThresholdStep, TriggerTerms
from transforms.waterfall import (
    TrancheTerms,
    WaterfallTerms,
    revolving_purchases,
    waterfall,
    waterfall_inputs,
)

JAN, FEB, MAR, APR, MAY = (
    date(2024, 1, 31),
    date(2024, 2, 29),
    date(2024, 3, 31),
    date(2024, 4, 30),
    date(2024, 5, 31),
)
PERIODS = [FEB, MAR, APR, MAY]
Y = 100  # fen per yuan


def _pay(
    as_of: date, loan: str, opening: int, sched: int, unsched: int = 0, **kw: Any
) -> dict[str, Any]:
    closing = opening - sched - unsched
    return snap(
        as_of,
        loan,
        "T",
        opening * Y,
        closing * Y,
        sched=sched * Y,
        unsched=unsched * Y,
        interest=opening * Y // 100,
        **kw,
    )


def _late(as_of: date, dpd: int, bucket: str) -> dict[str, Any]:
    return snap(
        as_of, "L03", "T", 6_000 * Y, 6_000 * Y, dpd=dpd, bucket=bucket, status="delinquent"
    )


ROWS = [
    *(
        snap(JAN, loan, "T", amount * Y, amount * Y)
        for loan, amount in [
            ("L01", 10_000),
            ("L02", 8_000),
            ("L03", 6_000),
            ("L04", 5_000),
            ("L05", 4_000),
            ("L06", 3_000),
            ("L07", 2_000),
            ("L08", 2_000),
        ]
    ),
    snap(JAN, "L09", None, 9_000 * Y, 9_000 * Y),
    # February
    _pay(FEB, "L01", 10_000, 1_000),
    _pay(FEB, "L02", 8_000, 800),
    _late(FEB, 20, "1-30"),
    _pay(FEB, "L04", 5_000, 500),
    _pay(FEB, "L05", 4_000, 400),
    _pay(FEB, "L06", 3_000, 300),
    _pay(FEB, "L07", 2_000, 200),
    _pay(FEB, "L08", 2_000, 200),
    snap(FEB, "L09", None, 9_000 * Y, 9_000 * Y),
    # March: L02 prepays, L09 is bought
    _pay(MAR, "L01", 9_000, 1_000),
    _pay(MAR, "L02", 7_200, 800, 6_400, status="prepaid", remaining=0),
    _late(MAR, 49, "31-60"),
    _pay(MAR, "L04", 4_500, 500),
    _pay(MAR, "L05", 3_600, 400),
    _pay(MAR, "L06", 2_700, 300),
    _pay(MAR, "L07", 1_800, 200),
    _pay(MAR, "L08", 1_800, 200),
    _pay(MAR, "L09", 9_000, 900, purchased=9_000 * Y),
    # April: L04 prepays in part, L06 is bought back, L10 is bought
    _pay(APR, "L01", 8_000, 1_000),
    _late(APR, 79, "61-90"),
    _pay(APR, "L04", 4_000, 500, 1_000),
    _pay(APR, "L05", 3_200, 400),
    _pay(APR, "L06", 2_400, 300, status="repurchased", removed=2_100 * Y),
    _pay(APR, "L07", 1_600, 200),
    _pay(APR, "L08", 1_600, 200),
    _pay(APR, "L09", 8_100, 900),
    _pay(APR, "L10", 5_000, 500, purchased=5_000 * Y),
    # May: L03 defaults and recovers 500
    _pay(MAY, "L01", 7_000, 1_000),
    snap(
        MAY,
        "L03",
        "T",
        6_000 * Y,
        5_500 * Y,
        dpd=110,
        bucket="91-120",
        status="defaulted",
        default_date=date(2024, 5, 10),
        defaulted=6_000 * Y,
        recoveries=500 * Y,
    ),
    _pay(MAY, "L04", 2_500, 500),
    _pay(MAY, "L05", 2_800, 400),
    snap(MAY, "L06", None, 2_100 * Y, 1_800 * Y, sched=300 * Y),
    _pay(MAY, "L07", 1_400, 200),
    _pay(MAY, "L08", 1_400, 200),
    _pay(MAY, "L09", 7_200, 900),
    _pay(MAY, "L10", 4_500, 500),
]
SNAPSHOTS = pl.LazyFrame(ROWS, schema=schema.LOAN_SNAPSHOTS)

RATES = {
    "L01": "0.12",
    "L02": "0.18",
    "L03": "0.24",
    "L04": "0.12",
    "L05": "0.15",
    "L06": "0.20",
    "L07": "0.10",
    "L08": "0.10",
    "L09": "0.18",
    "L10": "0.12",
}
LOANS = pl.LazyFrame(
    {
        "loan_id": list(RATES),
        "borrower_id": [f"B{loan[1:]}" if loan != "L08" else "B07" for loan in RATES],
        "annual_rate": [Decimal(r) for r in RATES.values()],
        "province": ["CN-GD"] * 5 + ["CN-BJ"] * 5,
    },
    schema={
        "loan_id": pl.String,
        "borrower_id": pl.String,
        "annual_rate": schema.RATE,
        "province": pl.String,
    },
)
POOL_ASSETS = pl.LazyFrame(
    [
        *(
            ("T", loan, JAN, "added", "cutoff", None)
            for loan in ("L01", "L02", "L03", "L04", "L05", "L06", "L07", "L08")
        ),
        ("T", "L09", date(2024, 3, 29), "added", "revolving_purchase", 900_000),
        ("T", "L06", date(2024, 4, 15), "removed", "repurchase", None),
        ("T", "L10", date(2024, 4, 26), "added", "revolving_purchase", 500_000),
    ],
    schema=schema.POOL_ASSETS,
    orient="row",
)
TERMS = WaterfallTerms(
    pool_id="T",
    cutoff_date=JAN,
    tranches=(
        TrancheTerms("A", "senior", 32_000 * Y, 60_000),
        TrancheTerms("B", "mezzanine", 4_000 * Y, 120_000),
        TrancheTerms("C", "subordinated", 4_000 * Y, 0),
    ),
    trustee_fee_ppm=12_000,
    servicer_fee_ppm=24_000,
    revolving_period_end=MAR,
    triggers=(
        TriggerTerms(
            "Cumulative default rate",
            "cumulative_default_rate",
            "above",
            (ThresholdStep(1, 0.02), ThresholdStep(3, 0.05)),
        ),
        TriggerTerms("Delinquency ratio", "delinquency_ratio", "above", (ThresholdStep(1, 0.20),)),
    ),
)


def _collect(frame: pl.LazyFrame) -> list[dict[str, Any]]:
    return frame.filter(pl.col("pool_id") == "T").collect().rows(named=True)


def test_the_roll_forward_matches_the_hand_computed_table() -> None:
    got = _collect(pool_rollforward(SNAPSHOTS, PERIODS))
    columns = (
        "opening_balance",
        "purchased_principal",
        "scheduled_principal",
        "unscheduled_principal",
        "defaulted_principal",
        "removed_principal",
        "closing_balance",
        "opening_count",
        "closing_count",
        "purchased_count",
    )
    assert [tuple(row[c] for c in columns) for row in got] == [
        (4_000_000, 0, 340_000, 0, 0, 0, 3_660_000, 8, 8, 0),
        (3_660_000, 900_000, 430_000, 640_000, 0, 0, 3_490_000, 8, 8, 1),
        (3_490_000, 500_000, 400_000, 100_000, 0, 210_000, 3_280_000, 8, 8, 1),
        (3_280_000, 0, 370_000, 0, 600_000, 0, 2_310_000, 8, 7, 0),
    ]
    assert rollforward_breaks(pool_rollforward(SNAPSHOTS, PERIODS)).collect().height == 0


def test_pool_factor_collections_and_rates() -> None:
    cutoff = cutoff_balances(SNAPSHOTS, {"T": JAN})
    factors = _collect(with_pool_factor(pool_rollforward(SNAPSHOTS, PERIODS), cutoff))
    assert [r["pool_factor"] for r in factors] == pytest.approx([0.915, 0.8725, 0.82, 0.5775])
    collections = _collect(pool_collections(SNAPSHOTS, PERIODS))
    assert [(r["principal"], r["interest"], r["recoveries"]) for r in collections] == [
        (340_000, 34_000, 0),
        (1_070_000, 39_600, 0),
        (500_000, 33_900, 0),
        (370_000, 26_800, 50_000),
    ]
    perf = _collect(pool_performance(SNAPSHOTS, PERIODS, {"T": JAN}))
    smm = [0.0, 6_400 / 33_200, 1_000 / 31_400, 0.0]
    assert [r["smm"] for r in perf] == pytest.approx(smm, abs=1e-15)
    assert [r["cpr"] for r in perf] == pytest.approx([1 - (1 - x) ** 12 for x in smm], abs=1e-14)
    assert [r["mdr"] for r in perf] == pytest.approx([0.0, 0.0, 0.0, 6_000 / 32_800], abs=1e-15)
    assert [r["cdr"] for r in perf] == pytest.approx([0.0, 0.0, 0.0, 0.91146165], abs=1e-8)
    assert [r["payment_rate"] for r in perf] == pytest.approx(
        [3_740 / 40_000, 11_096 / 36_600, 5_339 / 34_900, 3_968 / 32_800], abs=1e-15
    )
    may = perf[-1]
    # Denominator: cut-off 40,000 + purchases 9,000 + 5,000 = 54,000.
    assert may["denominator_balance"] == 5_400_000
    assert may["cumulative_default_rate"] == pytest.approx(0.11111111, abs=1e-8)
    assert may["cumulative_net_loss_rate"] == pytest.approx(0.10185185, abs=1e-8)
    assert may["recovery_rate"] == pytest.approx(0.08333333, abs=1e-8)


def test_delinquency_characteristics_and_concentration() -> None:
    april = [
        (r["bucket"], r["count"], r["balance"], r["balance_share"])
        for r in _collect(delinquency_buckets(SNAPSHOTS, [APR]))
        if r["count"]
    ]
    assert april == [
        ("current", 7, 2_680_000, pytest.approx(0.81707317, abs=1e-8)),
        ("61-90", 1, 600_000, pytest.approx(0.18292683, abs=1e-8)),
    ]
    shares = _collect(delinquency_shares(delinquency_buckets(SNAPSHOTS, PERIODS)))
    assert [r["delinquency_30_plus_share"] for r in shares] == pytest.approx(
        [0.0, 6_000 / 34_900, 0.18292683, 0.0], abs=1e-8
    )
    [may] = _collect(pool_characteristics(SNAPSHOTS, LOANS, [MAY]))
    # (720 + 240 + 360 + 120 + 120 + 1,134 + 480) / 23,100
    assert may["wac"] == pytest.approx(0.13740260, abs=1e-8)
    assert (may["loan_count"], may["obligor_count"], may["average_balance"]) == (7, 6, 330_000)
    [conc] = _collect(concentration(SNAPSHOTS, LOANS, [MAY]))
    assert conc["top1_obligor_share"] == pytest.approx(0.27272727, abs=1e-8)  # L09 6,300
    assert conc["top10_obligor_share"] == 1.0
    assert conc["hhi_obligor"] == pytest.approx(0.20091453, abs=1e-8)
    assert (conc["top_province"], conc["top_province_share"]) == (
        "CN-BJ",
        pytest.approx(12_700 / 23_100, abs=1e-12),
    )


def _run_waterfall() -> Any:
    rollforward = pool_rollforward(SNAPSHOTS, PERIODS)
    inputs = waterfall_inputs(
        rollforward,
        pool_collections(SNAPSHOTS, PERIODS),
        pool_performance(SNAPSHOTS, PERIODS, {"T": JAN}),
        delinquency_shares(delinquency_buckets(SNAPSHOTS, PERIODS)),
        revolving_purchases(POOL_ASSETS, PERIODS),
    ).collect()
    return waterfall(inputs, TERMS)


PAYMENT_KEYS = ("class", "interest_paid", "residual_paid", "principal_paid", "closing_balance")


def test_the_waterfall_pays_as_computed_by_hand() -> None:
    frames = _run_waterfall()
    tranches = frames.tranche_payments.collect()
    got = [tuple(r[k] for k in PAYMENT_KEYS) for r in tranches.iter_rows(named=True)]
    # Class C has no coupon: what it receives is its residual, never interest.
    assert got == [
        ("A", 16_000, 0, 0, 3_200_000),
        ("B", 4_000, 0, 0, 400_000),
        ("C", 0, 2_000, 0, 400_000),
        ("A", 16_000, 0, 0, 3_200_000),
        ("B", 4_000, 0, 0, 400_000),
        ("C", 0, 8_620, 0, 400_000),
        ("A", 16_000, 0, 1_220_000, 1_980_000),
        ("B", 4_000, 0, 0, 400_000),
        ("C", 0, 3_430, 0, 400_000),
        ("A", 9_900, 0, 423_060, 1_556_940),
        ("B", 4_000, 0, 0, 400_000),
        ("C", 0, 0, 0, 400_000),
    ]
    april_a = tranches.row(6, named=True)
    assert april_a["bond_factor"] == 0.61875
    assert april_a["principal_per_100"] == 38.125
    assert april_a["interest_per_100"] == 0.5
    summary = frames.summary.collect()
    assert summary["revolving"].to_list() == [True, True, False, False]
    assert summary["senior_fees_due"].to_list() == [12_000, 10_980, 10_470, 9_840]
    assert summary["purchases_paid"].to_list() == [0, 900_000, 0, 0]
    assert summary["purchases_unfunded"].to_list() == [0, 0, 500_000, 0]
    assert summary["principal_account"].to_list() == [340_000, 510_000, 0, 0]
    assert summary["default_top_up"].to_list() == [0, 0, 0, 53_060]
    assert summary["principal_deficiency"].to_list() == [0, 0, 0, 546_940]
    assert summary["overcollateralisation"].to_list() == [0, 0, 500_000, 2_310_000 - 2_356_940]
    assert summary["excess_spread"].to_list() == pytest.approx(
        [0.006, 86.20 / 36_600 * 12, 34.30 / 34_900 * 12, 30.60 / 32_800 * 12], abs=1e-12
    )
    # Subordination of A at the end of February: (4,000 + 4,000) / 40,000.
    assert tranches.row(0, named=True)["subordination"] == 0.2
    assert tranches.row(1, named=True)["credit_enhancement"] == 0.1


def test_the_may_default_breaches_the_stepped_up_trigger() -> None:
    tests = _run_waterfall().trigger_tests.collect()
    cdr = tests.filter(pl.col("metric") == "cumulative_default_rate")
    assert cdr["threshold"].to_list() == [0.02, 0.02, 0.05, 0.05]
    assert cdr["breached"].to_list() == [False, False, False, True]
    assert cdr["actual"][-1] == pytest.approx(0.11111111, abs=1e-8)
    assert (
        tests.filter(pl.col("metric") == "delinquency_ratio")["breached"].to_list() == [False] * 4
    )
