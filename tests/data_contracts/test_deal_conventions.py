"""Deal terms: date conventions, advance_payment_days and triggers that can fire."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from data_contracts.deal import DealTerms, PaymentDateRule


def _deal(**overrides: Any) -> dict[str, Any]:
    deal: dict[str, Any] = {
        "pool_id": "P",
        "name": "Deal P",
        "cutoff_date": "2024-06-28",
        "closing_date": "2024-07-08",
        "tranches": [
            {"class": "A", "kind": "senior", "original_balance": "890000.00", "coupon": "0.039"},
            {"class": "C", "kind": "subordinated", "original_balance": "110000.00", "coupon": "0"},
        ],
    }
    deal.update(overrides)
    return deal


def _trigger(metric: str) -> dict[str, Any]:
    return {"name": "Delinquency", "metric": metric, "threshold": "0.03"}


def test_the_conventions_default_to_act_365_following_and_five_business_days() -> None:
    deal = DealTerms.model_validate(_deal())
    assert deal.day_count == "ACT/365"
    assert deal.business_day_convention == "following"
    assert deal.report_date_rule.business_days_before == 5
    assert deal.payment_rule == PaymentDateRule(day_of_month=26, months_after=1)
    assert deal.definitions.advance_payment_days == 7


def test_a_deal_overrides_every_convention() -> None:
    deal = DealTerms.model_validate(
        _deal(
            day_count="30/360",
            business_day_convention="modified_following",
            payment_date_rule={"day_of_month": 15, "months_after": 2},
            report_date_rule={"business_days_before": 3},
            definitions={"advance_payment_days": 3},
        )
    )
    assert (deal.day_count, deal.business_day_convention) == ("30/360", "modified_following")
    assert deal.payment_rule == PaymentDateRule(day_of_month=15, months_after=2)
    assert deal.report_date_rule.business_days_before == 3
    assert deal.definitions.advance_payment_days == 3


def test_a_payment_day_that_contradicts_the_rule_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"payment_day \(20\) disagrees"):
        DealTerms.model_validate(_deal(payment_day=20, payment_date_rule={"day_of_month": 26}))


def test_an_unknown_day_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="day_count"):
        DealTerms.model_validate(_deal(day_count="ACT/ACT"))


@pytest.mark.parametrize(("default_dpd", "charge_off_dpd"), [(90, 90), (90, 60)])
def test_charge_off_must_come_after_default(default_dpd: int, charge_off_dpd: int) -> None:
    with pytest.raises(ValidationError, match=r"charge_off_dpd \(\d+\) must be greater than"):
        DealTerms.model_validate(
            _deal(definitions={"default_dpd": default_dpd, "charge_off_dpd": charge_off_dpd})
        )


def test_a_90_plus_trigger_is_refused_when_loans_default_at_90_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="can never fire") as caught:
        DealTerms.model_validate(_deal(triggers=[_trigger("delinquency_90_plus_share")]))
    assert "over default_dpd (90) have defaulted" in str(caught.value)


def test_a_90_plus_trigger_is_accepted_when_loans_default_later() -> None:
    deal = DealTerms.model_validate(
        _deal(
            triggers=[_trigger("delinquency_90_plus_share")],
            definitions={"default_dpd": 120, "charge_off_dpd": 180},
        )
    )
    assert deal.triggers[0].metric == "delinquency_90_plus_share"


def test_the_delinquency_ratio_trigger_is_accepted() -> None:
    deal = DealTerms.model_validate(_deal(triggers=[_trigger("delinquency_ratio")]))
    assert deal.triggers[0].metric == "delinquency_ratio"


def test_a_closing_date_on_or_after_the_first_payment_date_is_refused() -> None:
    # Cut-off in June: period 1 is July, paid on 08-26.
    with pytest.raises(ValidationError, match="not before the first payment date 2024-08-26"):
        DealTerms.model_validate(_deal(closing_date="2024-08-26"))
