"""The realism knobs of the synthetic book, in one place.

Figures follow DOMAIN.md "Calibration from public deal facts": Huabei-like
consumer instalments (median about 1,500 yuan, 15-16% APR fee-equivalent
pricing, mostly 3-12 instalments) and Jiebei-like cash loans (median about
8,000 yuan, 7-18% APR quoted as a daily rate), a lifetime default of about
2.5% of loans, 30+ DPD of 1-2% of balances and prepayments giving a CPR of
15-40%.
"""

from __future__ import annotations

from typing import Final

CASH_LOAN: Final = 0
CONSUMER_INSTALMENT: Final = 1
"""Product codes, indexes into ``transforms.schema.PRODUCTS``."""

EQUAL_INSTALMENT: Final = 0
EQUAL_PRINCIPAL: Final = 1
INTEREST_ONLY: Final = 2
BULLET: Final = 3
"""Repayment-method codes, indexes into ``transforms.schema.REPAYMENT_METHODS``."""

PROVINCES: Final = (
    ("CN-BJ", 21.89), ("CN-TJ", 13.87), ("CN-HE", 74.61), ("CN-SX", 34.92),
    ("CN-NM", 24.05), ("CN-LN", 42.59), ("CN-JL", 24.07), ("CN-HL", 31.85),
    ("CN-SH", 24.87), ("CN-JS", 84.75), ("CN-ZJ", 64.57), ("CN-AH", 61.03),
    ("CN-FJ", 41.54), ("CN-JX", 45.19), ("CN-SD", 101.53), ("CN-HA", 99.37),
    ("CN-HB", 57.75), ("CN-HN", 66.45), ("CN-GD", 126.01), ("CN-GX", 50.13),
    ("CN-HI", 10.08), ("CN-CQ", 32.05), ("CN-SC", 83.67), ("CN-GZ", 38.56),
    ("CN-YN", 47.21), ("CN-XZ", 3.65), ("CN-SN", 39.53), ("CN-GS", 25.02),
    ("CN-QH", 5.92), ("CN-NX", 7.20), ("CN-XJ", 25.85),
)  # fmt: skip
"""The 31 mainland provincial divisions (ISO 3166-2:CN) with their 2020 census
population in millions, the weight of each in the borrower base."""

CHANNELS: Final = ("app", "mini_program", "partner_merchant", "web")
CHANNEL_WEIGHTS: Final = {
    CASH_LOAN: (0.70, 0.17, 0.00, 0.13),
    CONSUMER_INSTALMENT: (0.40, 0.25, 0.30, 0.05),
}

# Borrowers: about 0.6 borrowers per loan, each with a gamma-distributed
# appetite so that some hold many loans (obligor concentration is reported).
BORROWERS_PER_LOAN: Final = 0.6
BORROWER_APPETITE_SHAPE: Final = 0.8
AGE_GAMMA_SHAPE: Final = 2.0
AGE_GAMMA_SCALE: Final = 6.5
SCORE_MEAN_AT_30: Final = 670.0
SCORE_PER_YEAR_OF_AGE: Final = 1.2
SCORE_SD: Final = 75.0
SCORE_APPLICATION_SD: Final = 12.0
SCORE_MIN: Final = 350
SCORE_MAX: Final = 950

# Originations: monthly growth with the shopping festivals (618 in June,
# Double 11 in November) and the Spring Festival dip in February.
MONTHLY_GROWTH: Final = 1.035
SEASONALITY: Final = {2: 0.85, 6: 1.15, 11: 1.35, 12: 1.10}

METHOD_WEIGHTS: Final = {
    CASH_LOAN: (0.55, 0.30, 0.08, 0.07),
    CONSUMER_INSTALMENT: (0.93, 0.04, 0.01, 0.02),
}
TERMS: Final = (3, 6, 9, 12, 18, 24)
AMORTISING_TERM_WEIGHTS: Final = {
    CASH_LOAN: (0.08, 0.22, 0.05, 0.45, 0.08, 0.12),
    CONSUMER_INSTALMENT: (0.30, 0.25, 0.10, 0.25, 0.05, 0.05),
}
SHORT_TERM_WEIGHTS: Final = (0.45, 0.40, 0.0, 0.15, 0.0, 0.0)
"""Interest-only and bullet loans are short: 3, 6 or 12 months."""

# Principal: lognormal around the product median, whole hundreds of yuan for
# cash loans, shopping-basket amounts in fen for most instalment purchases.
PRINCIPAL_MEDIAN_YUAN: Final = {CASH_LOAN: 8_000.0, CONSUMER_INSTALMENT: 1_500.0}
PRINCIPAL_SIGMA: Final = {CASH_LOAN: 0.85, CONSUMER_INSTALMENT: 0.95}
PRINCIPAL_FLOOR_YUAN: Final = {CASH_LOAN: 500, CONSUMER_INSTALMENT: 100}
PRINCIPAL_CAP_YUAN: Final = {CASH_LOAN: 200_000, CONSUMER_INSTALMENT: 50_000}
INSTALMENT_WHOLE_YUAN_SHARE: Final = 0.3

# Pricing. Cash loans are quoted per day: 0.020%-0.049% a day (7.3%-17.9% APR),
# cheaper for better scores. Instalment fees of 2.5/4.5/6.5/8.8% for 3/6/9/12
# months are about 15-16% APR; some merchants subsidise the fee.
CASH_DAILY_RATE_PPM: Final = (200, 490)
"""Daily rate range in millionths (0.000200 = 0.02% a day)."""
CASH_DAILY_RATE_NOISE_PPM: Final = 30.0
INSTALMENT_APR: Final = {3: 0.148, 6: 0.156, 9: 0.159, 12: 0.160, 18: 0.161, 24: 0.162}
INSTALMENT_APR_NOISE: Final = 0.006
INSTALMENT_DISCOUNT_SHARE: Final = 0.15
INSTALMENT_DISCOUNT_RANGE: Final = (0.5, 0.9)
RATE_FLOOR: Final = 0.07
RATE_CAP: Final = 0.24

# Monthly behaviour. The chance of missing an instalment falls with the credit
# score; a missed instalment is cured, held at one instalment in arrears, or
# left to roll 30 -> 60 -> 90 days into default.
MISS_BASE: Final = 0.0045
"""Monthly miss probability at the reference score."""
MISS_REFERENCE_SCORE: Final = 680.0
MISS_SCORE_SCALE: Final = 80.0
MISS_PRODUCT_FACTOR: Final = {CASH_LOAN: 1.0, CONSUMER_INSTALMENT: 1.15}
MISS_YOUNG_FACTOR: Final = 1.25
"""Borrowers under 23 miss more often."""
MISS_BOUNDS: Final = (0.0003, 0.25)
LATE_BASE: Final = 0.03
"""Monthly probability of paying days to weeks late and curing."""
LATE_MAX_DAYS: Final = 20
CURE_ALL: Final = {1: 0.40, 2: 0.25}
"""By instalments in arrears: probability of paying all arrears at once."""
PAY_ONE: Final = {1: 0.30, 2: 0.25}
"""By instalments in arrears: probability of paying only the oldest instalment."""
PENALTY_SHARE: Final = 0.6
PENALTY_PER_DAY_BP: Final = 5
"""Late penalty: 0.05% of the overdue amount a day."""
FEE_SHARE: Final = 0.12
FEE_YUAN: Final = (5, 30)
WEEKEND_EARLY_SHARE: Final = 0.05
"""Borrowers who pay a weekend due date on the Friday before (the engine reads
that as principal paid ahead of schedule, so the share is kept small)."""
REVERSAL_SHARE: Final = 0.003

FULL_PREPAY: Final = {CASH_LOAN: 0.024, CONSUMER_INSTALMENT: 0.011}
PARTIAL_PREPAY: Final = {CASH_LOAN: 0.010, CONSUMER_INSTALMENT: 0.004}
PARTIAL_FRACTION: Final = (0.15, 0.6)
PREPAY_PROPENSITY_SIGMA: Final = 0.6

DEFAULT_DPD: Final = 90
CHARGE_OFF_DPD: Final = 180
RECOVERY_NONE_SHARE: Final = 0.35
RECOVERY_BETA: Final = (2.0, 5.0)
RECOVERY_START_MONTHS: Final = (1, 5)
RECOVERY_MAX_PAYMENTS: Final = 4

# The revolving pool.
POOL_SHARE_AT_CUTOFF: Final = 0.4
"""Share of the eligible book sold to the trust at cut-off."""
REVOLVING_MONTHS: Final = 12
CLOSING_LAG_DAYS: Final = 10
REPURCHASE_RATE: Final = 0.0008
"""Monthly share of performing pool loans the originator buys back."""
CLASS_A_SHARE: Final = 0.89
CLASS_B_SHARE: Final = 0.035
