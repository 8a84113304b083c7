"""Deal fields for servicer tapes: currency, regions, balance source, tolerances, charge-off."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from data_contracts.deal import DealTerms

BASE: dict[str, Any] = {
    "pool_id": "US-1",
    "name": "US pool",
    "cutoff_date": "2024-01-31",
    "closing_date": "2024-02-15",
    "tranches": [{"class": "A", "kind": "senior", "original_balance": "100.00", "coupon": "0.05"}],
}


def test_a_usd_deal_with_us_regions_and_servicer_balances_loads() -> None:
    deal = DealTerms.model_validate(
        {
            **BASE,
            "currency": "USD",
            "allowed_regions": ["US"],
            "balance_source": "servicer",
            "reconciliation": {"balance": "0.50", "dpd_days": 3},
        }
    )
    assert (deal.currency, deal.balance_source) == ("USD", "servicer")
    assert deal.reconciliation.balance == 50
    assert deal.region_allowed("US-CA")
    assert not deal.region_allowed("CN-GD")
    assert not deal.region_allowed("USA")


def test_the_defaults_are_a_renminbi_deal_of_mainland_regions_on_engine_balances() -> None:
    deal = DealTerms.model_validate(BASE)
    assert (deal.currency, deal.allowed_regions, deal.balance_source) == ("CNY", ("CN",), "engine")
    assert deal.region_allowed("CN-BJ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "XYZ"}, "currency 'XYZ' is not an ISO 4217 code"),
        ({"allowed_regions": ["CN", "ZZ"]}, "allowed_regions: ['ZZ'] are not ISO 3166"),
        ({"balance_source": "trustee"}, "balance_source"),
        (
            {"definitions": {"default_dpd": 180, "charge_off_dpd": 180}},
            "definitions.charge_off_dpd (180) must be greater than definitions.default_dpd (180)",
        ),
    ],
)
def test_a_bad_tape_field_is_refused_with_a_message_naming_it(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        DealTerms.model_validate({**BASE, **change})
    assert message in str(raised.value)
