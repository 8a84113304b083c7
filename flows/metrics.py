"""Metrics stage: the marts and one contract-checked metrics.json per pool and period.

    loan snapshots ─▶ portfolio_metrics (book and pools, every as-of date)
                  ─▶ pool_* marts, pool_period_metrics, stratifications,
                     vintage_curves, roll_rates, concentration, top_obligors,
                     purchased_characteristics
                  ─▶ waterfall (fold per pool) ─▶ tranche_payments, trigger_tests,
                     waterfall_steps, pool_waterfall, waterfall_accounts
                  ─▶ reports/<pool_id>/<YYYY-MM>/metrics.json

The computing is in ``transforms``; this module scans, converts the deal terms,
collects, writes and validates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from data_contracts.deal import DealTerms, Trigger
from data_contracts.metrics_contract import contract_conventions, contract_version, validate_metrics
from flows.amortisation import quarantine_late_purchases
from flows.catalog import Catalog
from flows.curate import curate
from flows.errors import SettingsError
from flows.periods import month_end, period_label
from flows.snapshots import build_loan_snapshots, snapshot_dates
from flows.tape import tape_sections
from transforms import pool_metrics, schema
from transforms.concentration import concentration, top_obligors
from transforms.dates import CalendarHorizonError, DateRules, interest_period
from transforms.metrics_document import build_metrics_document, dumps_metrics
from transforms.portfolio import portfolio_metrics
from transforms.purchases import purchased_characteristics
from transforms.roll_rates import roll_rates
from transforms.stratification import stratifications
from transforms.triggers import ThresholdStep, TriggerTerms
from transforms.vintage import vintage_curves
from transforms.waterfall import (
    TrancheTerms,
    WaterfallTerms,
    early_amortisation_starts,
    outcome_frames,
    revolving_purchases,
    waterfall,
    waterfall_inputs,
)

POOL_KEYS = ["pool_id", "period_end"]


@dataclass(frozen=True)
class PoolPeriod:
    pool_id: str
    period: str
    metrics_path: Path


def reportable_periods(deal: DealTerms, period_ends: Iterable[date]) -> list[date]:
    """Collection periods of a deal: month-ends after its cut-off."""
    cutoff_month = (deal.cutoff_date.year, deal.cutoff_date.month)
    return [d for d in period_ends if d == month_end(d) and (d.year, d.month) > cutoff_month]


def _ppm(rate: Decimal) -> int:
    return int((rate * schema.RATE_SCALE).to_integral_value(rounding=ROUND_HALF_UP))


def date_rules(deal: DealTerms) -> DateRules:
    """The deal's payment-date, report-date and day-count conventions."""
    rule = deal.payment_rule
    return DateRules(
        closing_date=deal.closing_date,
        payment_day=rule.day_of_month,
        months_after=rule.months_after,
        business_day_convention=deal.business_day_convention,
        report_business_days=deal.report_date_rule.business_days_before,
        day_count=deal.day_count,
    )


def period_dates(deal: DealTerms, period_end: date) -> dict[str, Any]:
    """Payment date, report date and interest period of one collection period.

    Raises:
        CalendarHorizonError: If a date is beyond the exchange calendar.
    """
    first = waterfall_terms(deal).period_number(period_end) <= 1
    previous = None if first else period_end.replace(day=1) - timedelta(days=1)
    period = interest_period(period_end, previous, date_rules(deal))
    return {
        "payment_date": period.payment_date,
        "report_date": period.report_date,
        "interest_period_start": period.start,
        "interest_period_end": period.end,
        "interest_days": period.days,
        "day_count": period.day_count,
    }


def waterfall_terms(deal: DealTerms) -> WaterfallTerms:
    """The deal's terms as the waterfall fold takes them (rates in parts per million)."""
    return WaterfallTerms(
        pool_id=deal.pool_id,
        cutoff_date=deal.cutoff_date,
        tranches=tuple(
            TrancheTerms(t.class_name, t.kind, t.original_balance, _ppm(t.coupon))
            for t in deal.tranches
        ),
        trustee_fee_ppm=_ppm(deal.fees.trustee),
        servicer_fee_ppm=_ppm(deal.fees.servicer),
        management_fee_ppm=_ppm(deal.fees.management),
        custody_fee_ppm=_ppm(deal.fees.custody),
        tax_on_interest_ppm=_ppm(deal.fees.tax_on_interest),
        revolving_period_end=deal.revolving_period_end,
        triggers=tuple(
            TriggerTerms(
                name=t.name,
                metric=t.metric,
                comparison=t.comparison,
                steps=(
                    (ThresholdStep(1, float(t.threshold)),)
                    if t.threshold is not None
                    else tuple(ThresholdStep(s.from_period, float(s.threshold)) for s in t.schedule)
                ),
                consequence=t.consequence,
            )
            for t in deal.triggers
        ),
        date_rules=date_rules(deal),
    )


def metric_marts(
    *,
    month_end_snapshots: pl.LazyFrame,
    all_snapshots: pl.LazyFrame,
    cutoff_snapshots: pl.LazyFrame,
    loans: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    deals: Mapping[str, DealTerms],
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
        deals: Deal terms by pool_id.
        periods: Month-ends to report (each after the first snapshot month-end).
        engine: Polars engine of the marts (streaming keeps the peak memory of a
            big book down; every mart is sorted, so the engine does not change them).

    Returns:
        Mart name to frame.
    """
    cutoff_dates = {pool_id: deal.cutoff_date for pool_id, deal in deals.items()}
    # Period 1 of each pool opens at its cut-off date: the chain needs those snapshots.
    with_cutoffs = pl.concat([month_end_snapshots, cutoff_snapshots])
    cutoffs = pool_metrics.cutoff_balances(with_cutoffs, cutoff_dates)
    rollforward = pool_metrics.with_pool_factor(
        pool_metrics.pool_rollforward(with_cutoffs, periods, cutoff_dates), cutoffs
    )
    delinquency = pool_metrics.delinquency_buckets(month_end_snapshots, periods)
    performance_parts = [
        pool_metrics.pool_performance(
            with_cutoffs.filter(pl.col("pool_id") == pool_id),
            periods,
            {pool_id: deal.cutoff_date},
            denominator=deal.definitions.cumulative_default_denominator,
        )
        for pool_id, deal in sorted(deals.items())
    ]
    lazy = {
        "pool_rollforward": rollforward,
        "pool_delinquency": delinquency,
        "pool_delinquency_m": pool_metrics.delinquency_m_notation(delinquency),
        "pool_delinquency_shares": pool_metrics.delinquency_shares(delinquency),
        "pool_characteristics": pool_metrics.pool_characteristics(
            month_end_snapshots, loans, periods
        ),
        "pool_collections": pool_metrics.pool_collections(with_cutoffs, periods, cutoff_dates),
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
    marts.update(_waterfall_marts(marts, deals))
    marts["pool_period_metrics"] = _pool_period_metrics(marts)
    return marts


def _observed_month_ends(periods: Sequence[date]) -> list[date]:
    # The month-end before the first period opens the book; the curves start there.
    first = min(periods)
    return sorted({*periods, date.fromordinal(first.toordinal() - first.day)})


def _waterfall_marts(
    marts: Mapping[str, pl.DataFrame], deals: Mapping[str, DealTerms]
) -> dict[str, pl.DataFrame]:
    inputs = waterfall_inputs(
        marts["pool_rollforward"].lazy(),
        marts["pool_collections"].lazy(),
        marts["pool_performance"].lazy(),
        marts["pool_delinquency_shares"].lazy(),
        marts["revolving_purchases"].lazy(),
    ).collect()
    parts = []
    for _, deal in sorted(deals.items()):
        first_period = month_end(deal.cutoff_date)
        periods = inputs.filter(pl.col("period_end") > first_period)
        parts.append(waterfall(periods, waterfall_terms(deal)))
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


def _definitions(deal: DealTerms) -> dict[str, Any]:
    """Every convention in use, from the deal (so a deal's own choice shows)."""
    terms = deal.definitions
    rule = deal.payment_rule
    triggers = {f"trigger.{t.name}": _trigger_definition(t) for t in deal.triggers}
    return {
        **contract_conventions(),
        **triggers,
        "default_dpd": terms.default_dpd,
        "charge_off_dpd": terms.charge_off_dpd,
        "dpd_tolerance_fen": terms.dpd_tolerance,
        "cumulative_default_denominator": terms.cumulative_default_denominator,
        "advance_payment_days": terms.advance_payment_days,
        "day_count": deal.day_count,
        "payment_date_rule": (
            f"day {rule.day_of_month} of the month {rule.months_after} month(s) after the "
            "collection period"
        ),
        "payment_day_of_month": rule.day_of_month,
        "payment_months_after": rule.months_after,
        "business_day_convention": deal.business_day_convention,
        "business_day_calendar": "XSHG (Shanghai Stock Exchange, exchange-calendars)",
        "report_date_rule": (
            f"{deal.report_date_rule.business_days_before} exchange business days before the "
            "payment date"
        ),
        "report_business_days_before": deal.report_date_rule.business_days_before,
        "closing_date": deal.closing_date.isoformat(),
        "cutoff_date": deal.cutoff_date.isoformat(),
        "metrics_contract_version": contract_version(),
    }


def _trigger_definition(trigger: Trigger) -> str:
    if trigger.threshold is not None:
        threshold = f"{trigger.threshold}"
    else:
        threshold = ", ".join(
            f"{s.threshold} from period {s.from_period}"
            for s in sorted(trigger.schedule, key=lambda s: s.from_period)
        )
    return (
        f"{trigger.metric} {trigger.comparison} {threshold}; consequence "
        f"{trigger.consequence}; {contract_conventions().get(trigger.metric, trigger.metric)}"
    )


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
    marts: Mapping[str, pl.DataFrame], deal: DealTerms, period_end: date
) -> dict[str, Any]:
    """The metrics.json document of one pool and period, from the collected marts."""
    pool_id = deal.pool_id
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
        currency=deal.currency,
        cutoff_balance=int(rollforward.get("cutoff_balance") or 0),
        rollforward_row=rollforward,
        delinquency_rows=_rows(marts["pool_delinquency"], pool_id, period_end),
        characteristics_row=_one(marts["pool_characteristics"], pool_id, period_end),
        collections_row=_one(marts["pool_collections"], pool_id, period_end),
        performance_row=performance or None,
        tranches=_rows(marts["tranche_payments"], pool_id, period_end),
        triggers=_rows(marts["trigger_tests"], pool_id, period_end),
        concentration=concentration_row or None,
        period_number=waterfall_terms(deal).period_number(period_end),
        revolving=(
            {
                "purchase_price": summary["purchase_price"],
                "purchases_paid": summary["purchases_paid"],
                "purchases_unfunded": summary["purchases_unfunded"],
                "revolving_period": summary["revolving"],
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
        definitions=_definitions(deal),
        dates=period_dates(deal, period_end),
    )


def compute_pool_metrics(
    catalog: Catalog, deals: Mapping[str, DealTerms], period_ends: Sequence[date]
) -> list[PoolPeriod]:
    """Write the metrics marts and one validated metrics.json per pool and reported period.

    A pool that breaches an early-amortisation trigger stops buying: purchase
    events dated after the breach period are quarantined
    (:mod:`flows.amortisation`), the curated views and snapshots are rebuilt
    and the marts recomputed, and every period from the breach period on is
    re-published, so the class balances chain across all published periods.

    Raises:
        SettingsError: If a payment date lies beyond the exchange calendar's
            known years (exit code 2).
    """
    try:
        return _compute_pool_metrics(catalog, deals, period_ends)
    except CalendarHorizonError as exc:
        # The exchange calendar does not know the payment dates yet: a setting to
        # update (the library), not a bug.
        raise SettingsError(str(exc), where="exchange calendar (exchange-calendars XSHG)") from None


def _compute_pool_metrics(
    catalog: Catalog, deals: Mapping[str, DealTerms], period_ends: Sequence[date]
) -> list[PoolPeriod]:
    marts = _marts(catalog, deals)
    if marts is None:
        return []
    republish: set[tuple[str, date]] = set()
    # One pass normally settles it: removing purchases after the breach leaves every
    # figure up to the breach unchanged. The bound guards against a breach that moves.
    for _ in range(3):
        starts = early_amortisation_starts(marts["trigger_tests"])
        if not quarantine_late_purchases(catalog, starts):
            break
        _rebuild_snapshots(catalog, deals)
        rebuilt = _marts(catalog, deals)
        assert rebuilt is not None  # the snapshots were there a moment ago
        marts = rebuilt
        for pool_id, start in starts.items():
            republish.update(
                (pool_id, d) for d in marts["pool_rollforward"]["period_end"] if d >= start
            )
    for name, frame in sorted(marts.items()):
        catalog.write_frame(frame, catalog.mart(name))
    written = []
    computed = set(marts["pool_rollforward"]["period_end"])
    for pool_id, deal in sorted(deals.items()):
        wanted = set(period_ends) | {d for p, d in republish if p == pool_id}
        for period_end in reportable_periods(deal, sorted(wanted)):
            if period_end not in computed:
                continue
            document = metrics_document(marts, deal, period_end)
            document.update(tape_sections(catalog, deal, period_end))
            validate_metrics(document)
            path = catalog.metrics_json(pool_id, period_label(period_end))
            catalog.write_text(dumps_metrics(document), path)
            written.append(PoolPeriod(pool_id, period_label(period_end), path))
    return written


def _marts(catalog: Catalog, deals: Mapping[str, DealTerms]) -> dict[str, pl.DataFrame] | None:
    snapshot_days = catalog.snapshot_dates()
    month_end_days = [d for d in snapshot_days if d == month_end(d)]
    if len(month_end_days) < 2:
        return None
    # Cut-off dates that are not month-ends (those are in the month-end set already).
    cutoff_days = sorted(
        ({deal.cutoff_date for deal in deals.values()} & set(snapshot_days)) - set(month_end_days)
    )
    return metric_marts(
        month_end_snapshots=catalog.scan_many(
            [catalog.snapshot_partition(d) for d in month_end_days], schema.LOAN_SNAPSHOTS
        ),
        all_snapshots=catalog.scan_many(
            [catalog.snapshot_partition(d) for d in snapshot_days], schema.LOAN_SNAPSHOTS
        ),
        # A cut-off snapshot fixes the cut-off balance and opens the pool's period 1.
        cutoff_snapshots=catalog.scan_many(
            [catalog.snapshot_partition(d) for d in cutoff_days], schema.LOAN_SNAPSHOTS
        ),
        loans=catalog.scan(catalog.curated("loans")),
        pool_assets=catalog.scan(catalog.curated("pool_assets")),
        deals=deals,
        periods=month_end_days[1:],
    )


def _rebuild_snapshots(catalog: Catalog, deals: Mapping[str, DealTerms]) -> None:
    """Curate again and recompute every snapshot after pool events were quarantined."""
    horizon = max(catalog.snapshot_dates())
    curated = curate(catalog, horizon)
    if curated.first_origination is None:
        return
    build_loan_snapshots(
        catalog,
        snapshot_dates(curated.first_origination, horizon, deals.values()),
        deals,
        recompute=True,
    )
