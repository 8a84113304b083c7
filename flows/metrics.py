"""Metrics stage: the marts and one contract-checked metrics.json per pool and period.

The computing is in ``transforms`` (:mod:`transforms.pool_marts` has the picture of
the marts); this module turns the deal terms into the transforms' terms, scans the
snapshots, writes the marts and ``reports/<pool_id>/<YYYY-MM>/metrics.json``, checks
each document against its contract, and hands the written documents on
(:class:`PoolPeriod`, :class:`MetricsBook`) so that later stages never read them again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.deal import DealTerms, Trigger
from data_contracts.metrics_contract import contract_conventions, contract_version, validate_metrics
from flows.amortisation import quarantine_late_purchases
from flows.catalog import Catalog
from flows.curate import curate
from flows.errors import SettingsError
from flows.snapshots import build_loan_snapshots, snapshot_dates
from flows.tape import tape_sections
from transforms import schema
from transforms.dates import CalendarHorizonError, DateRules
from transforms.metrics_document import dumps_metrics
from transforms.periods import month_end, period_label
from transforms.pool_marts import PoolTerms, metric_marts, metrics_document, reportable_periods
from transforms.triggers import ThresholdStep, TriggerTerms
from transforms.waterfall import TrancheTerms, WaterfallTerms, early_amortisation_starts


@dataclass(frozen=True)
class PoolPeriod:
    """A pool period whose metrics.json was written, with the document it holds.

    Later stages (the gate's version check, rendering, the manifest) use these
    values instead of reading the file again.
    """

    pool_id: str
    period: str
    metrics_path: Path
    metrics_text: str
    """The file's exact text (compared with the published version, hashed)."""
    metrics: dict[str, Any]
    """The contract-checked document."""

    @property
    def metrics_sha256(self) -> str:
        return hashlib.sha256(self.metrics_text.encode("utf-8")).hexdigest()

    @classmethod
    def read(cls, pool_id: str, period: str, path: Path) -> PoolPeriod:
        """A period written by an earlier run, read from its metrics.json."""
        text = path.read_text(encoding="utf-8")
        return cls(pool_id, period, path, text, _document(json.loads(text), path))


@dataclass(frozen=True)
class MetricsBook:
    """Every pool period's metrics document under reports/, each read once per run."""

    documents: dict[tuple[str, str], dict[str, Any]]
    """(pool_id, period) to the contract-checked document, in (pool, period) order."""

    def document(self, pool_id: str, period: str) -> dict[str, Any] | None:
        return self.documents.get((pool_id, period))

    def history(self, pool_id: str) -> list[dict[str, Any]]:
        """Every document of a pool, oldest period first."""
        return [doc for (pool, _), doc in self.documents.items() if pool == pool_id]


def load_metrics_book(catalog: Catalog, fresh: Sequence[PoolPeriod] = ()) -> MetricsBook:
    """Read every metrics.json once; the ``fresh`` periods (just written) are not read again."""
    known = {(p.pool_id, p.period): p.metrics for p in fresh}
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    for pool_id, period, path in sorted(catalog.metrics_documents()):
        key = (pool_id, period)
        documents[key] = known[key] if key in known else read_metrics(path)
    return MetricsBook(documents)


def read_metrics(path: Path) -> dict[str, Any]:
    """One metrics.json as a document.

    Raises:
        ValueError: The file does not hold a JSON object.
    """
    return _document(json.loads(path.read_text(encoding="utf-8")), path)


def _document(value: object, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


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


def pool_terms(deal: DealTerms) -> PoolTerms:
    """The deal as the marts and the metrics document take it."""
    return PoolTerms(
        waterfall=waterfall_terms(deal),
        currency=deal.currency,
        cumulative_default_denominator=deal.definitions.cumulative_default_denominator,
        definitions=_definitions(deal),
    )


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
        terms = pool_terms(deal)
        for period_end in reportable_periods(deal.cutoff_date, sorted(wanted)):
            if period_end not in computed:
                continue
            document = metrics_document(marts, terms, period_end)
            document.update(tape_sections(catalog, deal, period_end))
            validate_metrics(document)
            path = catalog.metrics_json(pool_id, period_label(period_end))
            text = dumps_metrics(document)
            catalog.write_text(text, path)
            written.append(
                PoolPeriod(pool_id, period_label(period_end), path, text, json.loads(text))
            )
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
        pools={pool_id: pool_terms(deal) for pool_id, deal in deals.items()},
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
