"""The metrics marts of every pool and one pool period's metrics.json document.

    loan snapshots ─▶ portfolio_metrics (book and pools, every as-of date)
                  ─▶ pool_* marts, pool_period_metrics, stratifications,
                     vintage_curves, roll_rates, concentration, top_obligors,
                     purchased_characteristics
                  ─▶ waterfall (fold per pool) ─▶ tranche_payments, trigger_tests,
                     waterfall_steps, pool_waterfall, waterfall_accounts
                  ─▶ one metrics document per pool and period

Pure: frames and plain terms in, frames and documents out. ``flows.metrics``
turns the deal terms into :class:`PoolTerms`, scans and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import polars as pl

from transforms import pool_metrics
from transforms.concentration import concentration, top_obligors
from transforms.dates import interest_period
from transforms.metrics_document import build_metrics_document
from transforms.periods import month_end
from transforms.portfolio import portfolio_metrics
from transforms.purchases import purchased_characteristics
from transforms.roll_rates import roll_rates
from transforms.stratification import stratifications
from transforms.vintage import vintage_curves
from transforms.waterfall import (
    WaterfallTerms,
    outcome_frames,
    revolving_purchases,
    waterfall,
    waterfall_inputs,
)

POOL_KEYS = ["pool_id", "period_end"]


@dataclass(frozen=True)
class PoolTerms:
    """What the marts and the metrics document need from a pool's deal.

    Attributes:
        waterfall: The waterfall terms (pool id, cut-off date, classes, fees,
            triggers, date rules).
        currency: ISO 4217 code of the deal's amounts.
        cumulative_default_denominator: What cumulative default rates divide by.
        definitions: Every convention in use, printed with the figures.
    """

    waterfall: WaterfallTerms
    currency: str
    cumulative_default_denominator: pool_metrics.CumulativeDenominator
    definitions: Mapping[str, Any]

    @property
    def pool_id(self) -> str:
        return self.waterfall.pool_id

    @property
    def cutoff_date(self) -> date:
        return self.waterfall.cutoff_date


def reportable_periods(cutoff_date: date, period_ends: Iterable[date]) -> list[date]:
    """Collection periods of a deal: month-ends after its cut-off month."""
    cutoff_month = (cutoff_date.year, cutoff_date.month)
    return [d for d in period_ends if d == month_end(d) and (d.year, d.month) > cutoff_month]


def period_dates(terms: WaterfallTerms, period_end: date) -> dict[str, Any]:
    """Payment date, report date and interest period of one collection period.

    Raises:
        ValueError: If the terms carry no date rules.
        CalendarHorizonError: If a date is beyond the exchange calendar.
    """
    if terms.date_rules is None:
        raise ValueError(f"pool {terms.pool_id}: no payment-date rules")
    first = terms.period_number(period_end) <= 1
    previous = None if first else period_end.replace(day=1) - timedelta(days=1)
    period = interest_period(period_end, previous, terms.date_rules)
    return {
        "payment_date": period.payment_date,
        "report_date": period.report_date,
        "interest_period_start": period.start,
        "interest_period_end": period.end,
        "interest_days": period.days,
        "day_count": period.day_count,
    }


def metric_marts(
    *,
    month_end_snapshots: pl.LazyFrame,
    all_snapshots: pl.LazyFrame,
    cutoff_snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    pools: Mapping[str, PoolTerms],
    periods: Sequence[date],
    engine: Literal["auto", "in-memory", "streaming"] = "streaming",
) -> dict[str, pl.DataFrame]:
    """Every metrics mart, collected.

    Args:
        month_end_snapshots: Snapshot rows at the month-ends (periods chain
            month-end to month-end).
        all_snapshots: Snapshot rows at every as-of date (portfolio metrics).
        cutoff_snapshots: Snapshot rows at the deals' cut-off dates that are not
            month-ends (period 1 of a pool opens at its cut-off).
        loans: Curated loans.
        pool_assets: Curated pool events.
        pools: Each pool's terms by pool_id.
        periods: Month-ends to report (each after the first snapshot month-end).
        engine: Polars engine of the marts (streaming keeps the peak memory of a
            big book down; every mart is sorted, so the engine does not change them).

    Returns:
        Mart name to frame.
    """
    cutoff_dates = {pool_id: terms.cutoff_date for pool_id, terms in pools.items()}
    # Period 1 of each pool opens at its cut-off date: the chain needs those snapshots.
    with_cutoffs = pl.concat([month_end_snapshots, cutoff_snapshots])

    def collected(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.collect(engine=engine).lazy()

    # The pool flows' query reads the snapshots many times over: each set of flows is
    # collected once (one row per pool and period) and every mart that needs it reads that.
    flows = collected(pool_metrics.pool_flows(with_cutoffs, periods, cutoff_dates))
    month_end_flows = collected(pool_metrics.pool_flows(month_end_snapshots, periods))
    cutoffs = collected(pool_metrics.cutoff_balances(with_cutoffs, cutoff_dates))
    rollforward = pool_metrics.with_pool_factor(
        pool_metrics.pool_rollforward(with_cutoffs, periods, cutoff_dates, flows=flows), cutoffs
    )
    delinquency = collected(
        pool_metrics.delinquency_buckets(month_end_snapshots, periods, flows=month_end_flows)
    )
    performance_parts = []
    for pool_id, terms in sorted(pools.items()):
        pool_snapshots = with_cutoffs.filter(pl.col("pool_id") == pool_id)
        pool_cutoff = {pool_id: terms.cutoff_date}
        performance_parts.append(
            pool_metrics.pool_performance(
                pool_snapshots,
                periods,
                pool_cutoff,
                denominator=terms.cumulative_default_denominator,
                flows=collected(pool_metrics.pool_flows(pool_snapshots, periods, pool_cutoff)),
            )
        )
    lazy = {
        "pool_rollforward": rollforward,
        "pool_delinquency": delinquency,
        "pool_delinquency_m": pool_metrics.delinquency_m_notation(delinquency),
        "pool_delinquency_shares": pool_metrics.delinquency_shares(delinquency),
        "pool_characteristics": pool_metrics.pool_characteristics(
            month_end_snapshots, loans, periods, flows=month_end_flows
        ),
        "pool_collections": pool_metrics.pool_collections(
            with_cutoffs, periods, cutoff_dates, flows=flows
        ),
        "pool_performance": (
            pl.concat(performance_parts)
            if performance_parts
            else pool_metrics.pool_performance(month_end_snapshots, periods, {})
        ),
        "revolving_purchases": revolving_purchases(pool_assets, periods),
        "portfolio_metrics": portfolio_metrics(all_snapshots, loans),
        "stratifications": stratifications(month_end_snapshots, loans, periods),
        "vintage_curves": vintage_curves(
            month_end_snapshots, loans, _observed_month_ends(periods), pool_assets
        ),
        "roll_rates": roll_rates(month_end_snapshots, periods),
        "concentration": concentration(month_end_snapshots, loans, periods),
        "top_obligors": top_obligors(month_end_snapshots, loans, periods),
        "purchased_characteristics": purchased_characteristics(
            with_cutoffs, loans, periods, cutoff_dates
        ),
    }
    # One mart at a time: running them side by side multiplies the peak memory.
    marts = {name: frame.collect(engine=engine) for name, frame in lazy.items()}
    marts.update(_waterfall_marts(marts, pools))
    marts["pool_period_metrics"] = _pool_period_metrics(marts)
    return marts


def _observed_month_ends(periods: Sequence[date]) -> list[date]:
    # The month-end before the first period opens the book; the curves start there.
    first = min(periods)
    return sorted({*periods, date.fromordinal(first.toordinal() - first.day)})


def _waterfall_marts(
    marts: Mapping[str, pl.DataFrame], pools: Mapping[str, PoolTerms]
) -> dict[str, pl.DataFrame]:
    inputs = waterfall_inputs(
        marts["pool_rollforward"].lazy(),
        marts["pool_collections"].lazy(),
        marts["pool_performance"].lazy(),
        marts["pool_delinquency_shares"].lazy(),
        marts["revolving_purchases"].lazy(),
    ).collect()
    parts = []
    for _, terms in sorted(pools.items()):
        first_period = month_end(terms.cutoff_date)
        periods = inputs.filter(pl.col("period_end") > first_period)
        parts.append(waterfall(periods, terms.waterfall))
    if not parts:
        parts.append(outcome_frames("", []))
    return {
        "tranche_payments": pl.concat([p.tranche_payments for p in parts]).collect(),
        "trigger_tests": pl.concat([p.trigger_tests for p in parts]).collect(),
        "waterfall_steps": pl.concat([p.steps for p in parts]).collect(),
        "pool_waterfall": pl.concat([p.summary for p in parts]).collect(),
        "waterfall_accounts": pl.concat([p.accounts for p in parts]).collect(),
    }


def _pool_period_metrics(marts: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """One wide row per pool and period: the figures of the pool marts side by side."""
    pool_concentration = marts["concentration"].filter(pl.col("scope") == "pool").drop("scope")
    frame = marts["pool_rollforward"]
    for name, drop in (
        ("pool_collections", ["scheduled_principal", "unscheduled_principal"]),
        ("pool_characteristics", []),
        ("pool_performance", ["cutoff_balance"]),
        ("pool_delinquency_shares", []),
        ("pool_waterfall", ["purchase_price"]),
    ):
        frame = frame.join(marts[name].drop(drop), on=POOL_KEYS, how="left")
    frame = frame.join(marts["revolving_purchases"], on=POOL_KEYS, how="left").join(
        pool_concentration.drop("balance").rename({"obligor_count": "concentration_obligors"}),
        on=POOL_KEYS,
        how="left",
    )
    return frame.sort(POOL_KEYS)


def _rows(frame: pl.DataFrame, pool_id: str, period_end: date) -> list[dict[str, Any]]:
    return frame.filter(
        (pl.col("pool_id") == pool_id) & (pl.col("period_end") == period_end)
    ).to_dicts()


def _one(frame: pl.DataFrame, pool_id: str, period_end: date) -> dict[str, Any]:
    rows = _rows(frame, pool_id, period_end)
    return rows[0] if rows else {}


def _purchased(bought: Mapping[str, Any]) -> dict[str, Any]:
    """The period's purchased loans' characteristics; none bought is no figure, not zero."""
    if not bought:
        return dict.fromkeys(("purchased_wac", "purchased_wam_months", "purchased_average_balance"))
    return {
        "purchased_wac": bought["purchased_wac"],
        "purchased_wam_months": bought["purchased_wam_months"],
        "purchased_average_balance": bought["purchased_average_balance"],
    }


def _expenses(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Taxes and fees paid in the period. The manager holds the trustee's role in an
    exchange plan, so 管理人报酬 is the trustee fee plus any separate management fee."""
    return {
        "taxes": summary["taxes_paid"],
        "management_fee": summary["trustee_fee_paid"] + summary["management_fee_paid"],
        "custody_fee": summary["custody_fee_paid"],
        "servicer_fee": summary["servicer_fee_paid"],
    }


def metrics_document(
    marts: Mapping[str, pl.DataFrame], terms: PoolTerms, period_end: date
) -> dict[str, Any]:
    """The metrics.json document of one pool and period, from the collected marts.

    Raises:
        CalendarHorizonError: If a date is beyond the exchange calendar.
    """
    pool_id = terms.pool_id
    summary = _one(marts["pool_waterfall"], pool_id, period_end)
    performance = _one(marts["pool_performance"], pool_id, period_end)
    if performance:
        performance["excess_spread"] = summary.get("excess_spread")
    spread = marts["concentration"].filter(pl.col("scope") == "pool")
    shares = (
        marts["stratifications"]
        .filter(
            (pl.col("scope") == "pool")
            & (pl.col("pool_id") == pool_id)
            & (pl.col("period_end") == period_end)
            & (pl.col("dimension") == "province")
        )
        .select("band", "balance_share")
    )
    concentration_row = _one(spread, pool_id, period_end)
    if concentration_row:
        concentration_row["province_shares"] = dict(shares.iter_rows())
        concentration_row["top_obligors"] = _rows(marts["top_obligors"], pool_id, period_end)
    bought = _one(marts["purchased_characteristics"], pool_id, period_end)
    rollforward = _one(marts["pool_rollforward"], pool_id, period_end)
    return build_metrics_document(
        pool_id=pool_id,
        period_end=period_end,
        currency=terms.currency,
        cutoff_balance=int(rollforward.get("cutoff_balance") or 0),
        rollforward_row=rollforward,
        delinquency_rows=_rows(marts["pool_delinquency"], pool_id, period_end),
        characteristics_row=_one(marts["pool_characteristics"], pool_id, period_end),
        collections_row=_one(marts["pool_collections"], pool_id, period_end),
        performance_row=performance or None,
        tranches=_rows(marts["tranche_payments"], pool_id, period_end),
        triggers=_rows(marts["trigger_tests"], pool_id, period_end),
        concentration=concentration_row or None,
        period_number=terms.waterfall.period_number(period_end),
        revolving=(
            {
                "purchase_price": summary["purchase_price"],
                "purchases_paid": summary["purchases_paid"],
                "purchases_unfunded": summary["purchases_unfunded"],
                "revolving_period": summary["revolving"],
                "drawings_paid": summary["drawings_paid"],
                "drawings_seller_funded": summary["drawings_seller_funded"],
                **_purchased(bought),
            }
            if summary
            else None
        ),
        credit_enhancement=summary or None,
        waterfall=_rows(marts["waterfall_steps"], pool_id, period_end),
        accounts=_rows(marts["waterfall_accounts"], pool_id, period_end) if summary else None,
        expenses=_expenses(summary) if summary else None,
        delinquency_m=_rows(marts["pool_delinquency_m"], pool_id, period_end),
        definitions=terms.definitions,
        dates=period_dates(terms.waterfall, period_end),
    )
