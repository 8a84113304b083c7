"""The deal terms as a table of one row per deal, the shape ``deal.odcs.yaml`` describes.

The typed model (:mod:`data_contracts.deal`) reads the YAML; this flattening
lets the same contract machinery (compiled GX suite, severities, batch
threshold) judge the terms a deal states.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import polars as pl

from data_contracts.deal import DealTerms
from transforms import schema

DEAL_COLUMNS: Final[schema.Columns] = {
    "pool_id": pl.String,
    "name": pl.String,
    "currency": pl.String,
    "cutoff_date": pl.Date,
    "closing_date": pl.Date,
    "payment_day": pl.Int32,
    "revolving_period_end": pl.Date,
    "legal_final_date": pl.Date,
    "tranche_count": pl.Int32,
    "notes_balance": schema.MONEY,
    "max_coupon": schema.RATE,
    "max_annual_rate": schema.RATE,
    "default_dpd": pl.Int32,
    "charge_off_dpd": pl.Int32,
    "dpd_tolerance": schema.MONEY,
    "cumulative_default_denominator": pl.String,
}
"""Columns of the deal table, in contract order."""


def deal_frame(deals: Iterable[DealTerms]) -> pl.DataFrame:
    """One row per deal with the columns of ``deal.odcs.yaml``, sorted by pool_id.

    Args:
        deals: the deals read by the typed model.

    Returns:
        The deal table (:data:`DEAL_COLUMNS`).
    """
    rows = [
        {
            "pool_id": deal.pool_id,
            "name": deal.name,
            "currency": deal.currency,
            "cutoff_date": deal.cutoff_date,
            "closing_date": deal.closing_date,
            "payment_day": deal.payment_rule.day_of_month,
            "revolving_period_end": deal.revolving_period_end,
            "legal_final_date": deal.legal_final_date,
            "tranche_count": len(deal.tranches),
            "notes_balance": deal.notes_balance,
            "max_coupon": max(t.coupon for t in deal.tranches),
            "max_annual_rate": deal.eligibility.max_annual_rate,
            "default_dpd": deal.definitions.default_dpd,
            "charge_off_dpd": deal.definitions.charge_off_dpd,
            "dpd_tolerance": deal.definitions.dpd_tolerance,
            "cumulative_default_denominator": deal.definitions.cumulative_default_denominator,
        }
        for deal in sorted(deals, key=lambda d: d.pool_id)
    ]
    return pl.DataFrame(rows, schema=DEAL_COLUMNS, orient="row")
