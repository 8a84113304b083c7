"""The metrics stage's deal dates: conventions from the deal, the calendar's horizon."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from data_contracts.deal import DealTerms
from flows import metrics
from flows.catalog import Catalog
from flows.errors import EXIT_BAD_SETTING, SettingsError
from transforms.dates import CalendarHorizonError
from transforms.pool_marts import period_dates


def _deal(**overrides: object) -> DealTerms:
    raw: dict[str, object] = {
        "pool_id": "P",
        "name": "Deal P",
        "cutoff_date": "2024-06-28",
        "closing_date": "2024-07-08",
        "tranches": [{"class": "A", "kind": "senior", "original_balance": "100.00", "coupon": "0"}],
    }
    raw.update(overrides)
    return DealTerms.model_validate(raw)


def test_period_dates_follow_the_deal_and_period_one_accrues_from_closing() -> None:
    first = period_dates(metrics.waterfall_terms(_deal()), date(2024, 7, 31))
    assert first == {
        "payment_date": date(2024, 8, 26),
        "report_date": date(2024, 8, 19),
        "interest_period_start": date(2024, 7, 8),
        "interest_period_end": date(2024, 8, 26),
        "interest_days": 49,
        "day_count": "ACT/365",
    }
    # 2024-10-26 is a Saturday: modified following keeps it in October (Mon 10-28).
    later = period_dates(
        metrics.waterfall_terms(
            _deal(business_day_convention="modified_following", day_count="ACT/360")
        ),
        date(2024, 9, 30),
    )
    assert (later["interest_period_start"], later["payment_date"]) == (
        date(2024, 9, 26),
        date(2024, 10, 28),
    )
    assert later["day_count"] == "ACT/360"


def test_the_definitions_carry_the_deals_own_conventions() -> None:
    deal = _deal(
        day_count="30/360",
        payment_date_rule={"day_of_month": 15, "months_after": 1},
        definitions={"advance_payment_days": 3},
        triggers=[{"name": "CDR", "metric": "cumulative_default_rate", "threshold": "0.02"}],
    )
    definitions = metrics._definitions(deal)
    assert definitions["day_count"] == "30/360"
    assert definitions["advance_payment_days"] == 3
    assert definitions["payment_day_of_month"] == 15
    assert definitions["business_day_convention"] == "following"
    assert definitions["trigger.CDR"].startswith("cumulative_default_rate above 0.02;")


def test_a_payment_date_beyond_the_calendar_is_a_setting_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def beyond(*_: object) -> list[metrics.PoolPeriod]:
        raise CalendarHorizonError("2027-01-26 is beyond the XSHG exchange calendar")

    monkeypatch.setattr(metrics, "_compute_pool_metrics", beyond)
    with pytest.raises(SettingsError, match="2027-01-26 is beyond") as caught:
        metrics.compute_pool_metrics(Catalog(tmp_path), {}, [date(2026, 12, 31)])
    assert caught.value.exit_code == EXIT_BAD_SETTING
