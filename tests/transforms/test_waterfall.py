"""The waterfall fold and the triggers: order of payments, carried state, breaches."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from fractions import Fraction

import pytest

from transforms.dates import DateRules, accrue
from transforms.triggers import ThresholdStep, TriggerTerms, evaluate_trigger
from transforms.waterfall import (
    PeriodInputs,
    TrancheTerms,
    WaterfallTerms,
    fold_waterfall,
)

JAN, FEB, MAR = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)

TERMS = WaterfallTerms(
    pool_id="P",
    cutoff_date=date(2023, 12, 31),
    tranches=(
        TrancheTerms("A", "senior", 900_000, 120_000),
        TrancheTerms("B", "mezzanine", 50_000, 120_000),
        TrancheTerms("C", "subordinated", 50_000, 0),
    ),
    revolving_period_end=date(2024, 12, 31),
)
BREACH = TriggerTerms(
    "Cumulative default rate", "cumulative_default_rate", "above", (ThresholdStep(1, 0.01),)
)


def period(
    end: date, *, cdr: float = 0.0, interest: int = 20_000, defaulted: int = 0
) -> PeriodInputs:
    """A period of a 1,000,000-fen pool collecting 100,000 of principal."""
    return PeriodInputs(
        period_end=end,
        opening_balance=1_000_000,
        purchased_principal=100_000,
        closing_balance=1_000_000 - defaulted,
        scheduled_principal=100_000,
        unscheduled_principal=0,
        defaulted_principal=defaulted,
        interest=interest,
        fees=0,
        recoveries=0,
        purchased_count=1,
        purchase_price=100_000,
        metrics={"cumulative_default_rate": cdr},
    )


class TestAccrual:
    @pytest.mark.parametrize(
        ("balance", "ppm", "fen"),
        [(900_000, 120_000, 9_000), (100, 60_000, 1), (50, 120_000, 1), (49, 120_000, 0)],
    )
    def test_a_month_of_interest_rounds_half_up(self, balance: int, ppm: int, fen: int) -> None:
        # 50 fen at 1% a month is 0.5 fen: half-up gives 1; 49 gives 0.49 -> 0.
        assert accrue(balance, ppm, Fraction(1, 12)) == fen

    def test_negative_inputs_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            accrue(-1, 10, Fraction(1, 12))

    def test_terms_with_date_rules_accrue_the_actual_days_of_the_interest_period(self) -> None:
        # Period 2 (February 2024) pays on Tue 2024-03-26 for 2024-02-26 .. 2024-03-26:
        # 29 days ACT/365 on class A's 900,000 fen at 12%: 900,000 x 0.12 x 29 / 365.
        terms = replace(TERMS, date_rules=DateRules(closing_date=date(2024, 1, 5)))
        assert terms.year_fraction(FEB) == Fraction(29, 365)
        [_, feb] = fold_waterfall([period(JAN), period(FEB)], terms)
        assert feb.tranches[0].interest_due == 8_581  # 8,580.82 rounded half-up
        # Period 1 accrues from the closing date 2024-01-05 to Mon 2024-02-26: 52 days.
        assert terms.year_fraction(JAN) == Fraction(52, 365)


class TestTriggers:
    def test_a_schedule_steps_up_by_period_number(self) -> None:
        trigger = TriggerTerms(
            "x",
            "cumulative_default_rate",
            "above",
            (ThresholdStep(4, 0.0075), ThresholdStep(1, 0.005), ThresholdStep(7, 0.01)),
        )
        assert [trigger.threshold_for(n) for n in (1, 3, 4, 6, 7, 30)] == [
            0.005,
            0.005,
            0.0075,
            0.0075,
            0.01,
            0.01,
        ]

    def test_above_and_below_and_an_unknown_actual(self) -> None:
        above = TriggerTerms("a", "payment_rate", "above", (ThresholdStep(1, 0.1),))
        below = TriggerTerms("b", "payment_rate", "below", (ThresholdStep(1, 0.1),))
        assert evaluate_trigger(above, 1, {"payment_rate": 0.11}).breached
        assert not evaluate_trigger(above, 1, {"payment_rate": 0.1}).breached
        assert evaluate_trigger(below, 1, {"payment_rate": 0.09}).breached
        unknown = evaluate_trigger(below, 1, {"payment_rate": None})
        assert (unknown.actual, unknown.breached) == (None, False)

    def test_an_unknown_metric_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown metric"):
            TriggerTerms("x", "pool_factor", "below", (ThresholdStep(1, 0.1),))


class TestFold:
    def test_a_breach_switches_to_sequential_pay_from_the_breach_period_on(self) -> None:
        periods = [period(JAN, cdr=0.02), period(FEB), period(MAR)]
        calm = fold_waterfall(periods, TERMS)
        breached = fold_waterfall(periods, replace(TERMS, triggers=(BREACH,)))
        assert [o.revolving for o in calm] == [True, True, True]
        assert [o.revolving for o in breached] == [False, False, False]
        assert [o.early_amortisation_breach for o in breached] == [True, False, False]
        # Without the trigger every period buys receivables and no note is repaid.
        assert [o.purchases_paid for o in calm] == [100_000] * 3
        assert [o.tranches[0].principal_paid for o in calm] == [0, 0, 0]
        # January's purchase was made before the breach was known and is paid; what is
        # left amortises class A. From February no purchase is paid with trust cash.
        assert [o.purchases_paid for o in breached] == [100_000, 0, 0]
        assert [o.purchases_unfunded for o in breached] == [0, 100_000, 100_000]
        assert [o.tranches[0].principal_paid for o in breached] == [0, 100_000, 100_000]
        assert [o.principal_account for o in breached] == [0, 0, 0]
        assert breached[-1].tranches[0].closing_balance == 700_000
        # Class A interest follows the lower balance: 800,000 x 1% in March.
        assert breached[2].tranches[0].interest_due == 8_000

    def test_the_breach_is_permanent_even_when_the_metric_recovers(self) -> None:
        periods = [period(JAN, cdr=0.02), period(FEB, cdr=0.0), period(MAR, cdr=0.0)]
        outcomes = fold_waterfall(periods, replace(TERMS, triggers=(BREACH,)))
        assert [o.revolving for o in outcomes] == [False, False, False]
        assert [r.breached for o in outcomes for r in o.triggers] == [True, False, False]

    def test_the_revolving_period_ends_on_its_date(self) -> None:
        terms = replace(TERMS, revolving_period_end=JAN)
        assert [o.revolving for o in fold_waterfall([period(JAN), period(FEB)], terms)] == [
            True,
            False,
        ]

    def test_interest_shortfalls_are_carried_and_paid_first_next_time(self) -> None:
        # January income 5,000 covers fees (0) and part of A's 9,000.
        outcomes = fold_waterfall([period(JAN, interest=5_000), period(FEB)], TERMS)
        jan, feb = outcomes
        assert (jan.tranches[0].interest_paid, jan.tranches[0].interest_shortfall) == (5_000, 4_000)
        assert jan.tranches[1].interest_shortfall == 500
        assert (feb.tranches[0].interest_paid, feb.tranches[0].interest_shortfall) == (13_000, 0)
        assert (feb.tranches[1].interest_paid, feb.tranches[1].interest_shortfall) == (1_000, 0)
        # 20,000 - 13,000 - 1,000 = 6,000 to the subordinated class.
        assert (feb.tranches[2].interest_paid, feb.tranches[2].residual_paid) == (0, 6_000)

    def test_defaults_are_topped_up_from_income_and_the_rest_carried(self) -> None:
        outcomes = fold_waterfall(
            [period(JAN, defaulted=15_000), period(FEB, interest=30_000)], TERMS
        )
        jan, feb = outcomes
        # Income 20,000 - interest 9,500 = 10,500 tops up; 4,500 stays uncovered.
        assert (jan.default_top_up, jan.principal_deficiency) == (10_500, 4_500)
        assert jan.principal_funds == 110_500
        assert (feb.default_top_up, feb.principal_deficiency) == (4_500, 0)

    def test_every_line_of_the_order_of_payments_is_recorded(self) -> None:
        [outcome] = fold_waterfall([period(JAN)], TERMS)
        assert [(s.account, s.item, s.due, s.paid) for s in outcome.steps] == [
            ("income", "trustee_fee", 0, 0),
            ("income", "servicer_fee", 0, 0),
            ("income", "class_A_interest", 9_000, 9_000),
            ("income", "class_B_interest", 500, 500),
            ("income", "default_top_up", 0, 0),
            ("income", "class_C_residual", 10_500, 10_500),
            ("principal", "revolving_purchases", 100_000, 100_000),
        ]

    def test_a_period_appears_once(self) -> None:
        with pytest.raises(ValueError, match="once"):
            fold_waterfall([period(JAN), period(JAN)], TERMS)

    def test_the_subordinated_class_must_come_last(self) -> None:
        with pytest.raises(ValueError, match="subordinated"):
            WaterfallTerms("P", JAN, (TERMS.tranches[2], TERMS.tranches[0]))


def drawing_period(end: date, *, drawings: int, cdr: float = 0.0) -> PeriodInputs:
    """A card pool's period: 100,000 of repayments, ``drawings`` drawn, nothing purchased."""
    return PeriodInputs(
        period_end=end,
        opening_balance=1_000_000,
        purchased_principal=0,
        closing_balance=1_000_000 - 100_000 + drawings,
        scheduled_principal=100_000,
        unscheduled_principal=0,
        defaulted_principal=0,
        interest=20_000,
        fees=0,
        recoveries=0,
        metrics={"cumulative_default_rate": cdr},
        new_drawings=drawings,
    )


class TestNewDrawings:
    def test_in_the_revolving_period_principal_collections_pay_for_the_drawings_at_par(
        self,
    ) -> None:
        [jan] = fold_waterfall([drawing_period(JAN, drawings=60_000)], TERMS)
        assert jan.revolving
        assert (jan.new_drawings, jan.drawings_paid, jan.drawings_seller_funded) == (
            60_000,
            60_000,
            0,
        )
        # The notes do not amortise; the rest of the collections wait in the principal account.
        assert [t.principal_paid for t in jan.tranches] == [0, 0, 0]
        assert jan.principal_account == 100_000 - 60_000
        line = next(s for s in jan.steps if s.item == "new_drawings")
        assert (line.account, line.due, line.paid) == ("principal", 60_000, 60_000)

    def test_drawings_are_paid_before_revolving_purchases(self) -> None:
        bought = replace(drawing_period(JAN, drawings=80_000), purchase_price=50_000)
        [jan] = fold_waterfall([bought], TERMS)
        items = [s.item for s in jan.steps if s.account == "principal"]
        assert items.index("new_drawings") < items.index("revolving_purchases")
        assert (jan.drawings_paid, jan.purchases_paid, jan.purchases_unfunded) == (
            80_000,
            20_000,
            30_000,
        )

    def test_drawings_beyond_the_principal_funds_are_funded_by_the_seller(self) -> None:
        [jan] = fold_waterfall([drawing_period(JAN, drawings=130_000)], TERMS)
        assert (jan.drawings_paid, jan.drawings_seller_funded) == (100_000, 30_000)
        assert jan.principal_account == 0

    def test_after_the_revolving_period_the_seller_funds_drawings_and_the_notes_amortise(
        self,
    ) -> None:
        ended = replace(TERMS, revolving_period_end=JAN)
        _, feb = fold_waterfall(
            [drawing_period(JAN, drawings=0), drawing_period(FEB, drawings=60_000)], ended
        )
        assert not feb.revolving
        assert (feb.drawings_paid, feb.drawings_seller_funded) == (0, 60_000)
        assert all(s.item != "new_drawings" for s in feb.steps)
        # Every fen collected (and January's retained 100,000) goes to class A.
        assert feb.tranches[0].principal_paid == 200_000

    def test_after_an_early_amortisation_breach_the_seller_funds_drawings(self) -> None:
        terms = replace(TERMS, triggers=(BREACH,))
        jan, feb = fold_waterfall(
            [
                drawing_period(JAN, drawings=60_000, cdr=0.02),
                drawing_period(FEB, drawings=60_000, cdr=0.02),
            ],
            terms,
        )
        # The breach period pays for the drawings made before the breach was known.
        assert jan.early_amortisation_breach
        assert jan.drawings_paid == 60_000
        assert jan.tranches[0].principal_paid == 100_000 - 60_000
        assert (feb.drawings_paid, feb.drawings_seller_funded) == (0, 60_000)
        assert feb.tranches[0].principal_paid == 100_000
