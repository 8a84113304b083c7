"""The pipeline's stages: each reads through the catalog, calls pure code, writes back.

Plain functions, so they can be tested without Prefect; ``flows.pipeline``
wraps each in a task and wires them into the DAG of DESIGN.md.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import yaml
from pydantic import ValidationError

from data_contracts.deal import DealTerms
from flows.catalog import Catalog
from reports import disclosure, index
from reports.render import render_disclosure, render_index
from transforms import curation, pool_metrics, schema
from transforms.metrics_document import build_metrics_document, dumps_metrics
from transforms.performance import PerformanceRules, loan_snapshots
from transforms.schedules import build_schedules

REPORT_LANGUAGES = ("en",)


# -- dates --------------------------------------------------------------------------
def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def previous_month_end(day: date) -> date:
    return day.replace(day=1) - timedelta(days=1)


def month_ends_between(first: date, last: date) -> list[date]:
    """Every month-end from the month of ``first`` up to ``last`` inclusive."""
    ends = []
    current = month_end(first)
    while current <= last:
        ends.append(current)
        current = month_end(current + timedelta(days=1))
    return ends


def period_label(period_end: date) -> str:
    return f"{period_end.year:04d}-{period_end.month:02d}"


# -- deals --------------------------------------------------------------------------
@dataclass(frozen=True)
class DealBook:
    """The deals that loaded, and a clear error for each that did not."""

    deals: dict[str, DealTerms] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


def load_deals(catalog: Catalog) -> DealBook:
    """Load and validate every deal YAML; a bad one is reported, the others go on."""
    deals: dict[str, DealTerms] = {}
    errors: list[str] = []
    for path in catalog.deal_files():
        where = path.relative_to(catalog.root).as_posix()
        try:
            deal = DealTerms.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as exc:
            errors.append(f"{where}: invalid deal terms: {exc}")
            continue
        if deal.pool_id != path.stem:
            errors.append(f"{where}: pool_id {deal.pool_id!r} does not match the file name")
            continue
        deals[deal.pool_id] = deal
    return DealBook(deals, tuple(errors))


def performance_rules(deal: DealTerms) -> PerformanceRules:
    d = deal.definitions
    return PerformanceRules(
        default_dpd=d.default_dpd, charge_off_dpd=d.charge_off_dpd, tolerance_fen=d.dpd_tolerance
    )


# -- curate -------------------------------------------------------------------------
@dataclass(frozen=True)
class CurateOutcome:
    loans: int
    repayments: int
    pool_events: int
    schedule_rows: int
    corrections: int
    first_origination: date | None


def curate(catalog: Catalog, until: date) -> CurateOutcome:
    """Current views of everything staged up to ``until``, and the loans' schedules."""
    staged = {
        name: catalog.scan_many(
            catalog.staged_partitions(name, until), {**columns, **schema.LINEAGE}
        )
        for name, columns in schema.INPUT_DATASETS.items()
    }
    loans = curation.current_loans(staged["loans"]).collect()
    repayments = curation.current_repayments(staged["repayments"]).collect()
    pool_assets = curation.current_pool_assets(staged["pool_assets"]).collect()
    corrections = curation.loan_corrections(staged["loans"]).collect()
    schedules = build_schedules(loans.lazy()).collect()
    catalog.write_frame(loans, catalog.curated("loans"))
    catalog.write_frame(repayments, catalog.curated("repayments"))
    catalog.write_frame(pool_assets, catalog.curated("pool_assets"))
    catalog.write_frame(corrections, catalog.curated("loan_corrections"))
    catalog.write_frame(schedules, catalog.curated("schedules"))
    first = loans["origination_date"].min() if loans.height else None
    return CurateOutcome(
        loans=loans.height,
        repayments=repayments.height,
        pool_events=pool_assets.height,
        schedule_rows=schedules.height,
        corrections=corrections.height,
        first_origination=first if isinstance(first, date) else None,
    )


# -- loan snapshots -------------------------------------------------------------------
def snapshot_dates(first_origination: date, until: date, deals: Iterable[DealTerms]) -> list[date]:
    """Month-ends from the first origination to ``until``, cut-off dates, and ``until``."""
    dates = set(month_ends_between(first_origination, until))
    dates.update(d.cutoff_date for d in deals if first_origination <= d.cutoff_date <= until)
    dates.add(until)
    return sorted(dates)


def build_loan_snapshots(
    catalog: Catalog, as_of_dates: Sequence[date], deals: Mapping[str, DealTerms]
) -> list[date]:
    """Compute and write the snapshot partitions of ``as_of_dates``.

    Month-end snapshots carry each collection period's flows; a snapshot on any
    other date (a cut-off, the latest business date) carries the flows since the
    month-end before it, so it never splits a collection period.
    """
    loans = catalog.scan(catalog.curated("loans"))
    schedules = catalog.scan(catalog.curated("schedules"))
    repayments = catalog.scan(catalog.curated("repayments"))
    pool_assets = catalog.scan(catalog.curated("pool_assets"))
    rules_by_pool = {pool_id: performance_rules(deal) for pool_id, deal in deals.items()}

    def compute(dates: Sequence[date]) -> pl.DataFrame:
        return loan_snapshots(
            loans, schedules, repayments, pool_assets, dates, rules_by_pool=rules_by_pool
        ).collect()

    month_ends = [d for d in as_of_dates if d == month_end(d)]
    frames = []
    if month_ends:
        frames.append(compute(month_ends))
    for extra in (d for d in as_of_dates if d != month_end(d)):
        frames.append(compute([previous_month_end(extra), extra]).filter(pl.col("as_of_date") == extra))
    written = []
    for frame in frames:
        for as_of in frame["as_of_date"].unique().sort().to_list():
            catalog.write_frame(
                frame.filter(pl.col("as_of_date") == as_of), catalog.snapshot_partition(as_of)
            )
            written.append(as_of)
    # Only the latest business date keeps a mid-month snapshot; older ones are superseded.
    keep = set(as_of_dates) | {d.cutoff_date for d in deals.values()}
    for stale in catalog.snapshot_dates():
        if stale != month_end(stale) and stale not in keep:
            catalog.snapshot_partition(stale).unlink()
    return sorted(written)


# -- pool metrics ----------------------------------------------------------------------
@dataclass(frozen=True)
class PoolPeriod:
    pool_id: str
    period: str
    metrics_path: Path


def reportable_periods(deal: DealTerms, period_ends: Iterable[date]) -> list[date]:
    """Collection periods of a deal: month-ends after its cut-off."""
    cutoff_month = (deal.cutoff_date.year, deal.cutoff_date.month)
    return [d for d in period_ends if d == month_end(d) and (d.year, d.month) > cutoff_month]


def compute_pool_metrics(
    catalog: Catalog, deals: Mapping[str, DealTerms], period_ends: Sequence[date]
) -> list[PoolPeriod]:
    """Write the pool marts and one metrics.json per pool and reported period."""
    snapshot_days = catalog.snapshot_dates()
    month_end_days = [d for d in snapshot_days if d == month_end(d)]
    if not month_end_days or not deals:
        return []
    # Collection periods chain month-end to month-end; a cut-off snapshot only fixes
    # the cut-off balance and must not become a period's opening.
    snapshots = catalog.scan_many(
        [catalog.snapshot_partition(d) for d in month_end_days], schema.LOAN_SNAPSHOTS
    )
    cutoff_snapshots = catalog.scan_many(
        [
            catalog.snapshot_partition(d)
            for d in sorted({deal.cutoff_date for deal in deals.values()})
            if d in set(snapshot_days)
        ],
        schema.LOAN_SNAPSHOTS,
    )
    loans = catalog.scan(catalog.curated("loans"))
    all_periods = month_end_days[1:]
    rollforward = pool_metrics.pool_rollforward(snapshots, all_periods)
    cutoffs = pool_metrics.cutoff_balances(
        cutoff_snapshots, {pool_id: deal.cutoff_date for pool_id, deal in deals.items()}
    )
    rollforward = pool_metrics.with_pool_factor(rollforward, cutoffs).collect()
    delinquency = pool_metrics.delinquency_buckets(snapshots, all_periods).collect()
    characteristics = pool_metrics.pool_characteristics(snapshots, loans, all_periods).collect()
    collections = pool_metrics.pool_collections(snapshots, all_periods).collect()
    performance = pl.concat(
        [
            pool_metrics.pool_performance(
                pl.concat([snapshots, cutoff_snapshots]).filter(pl.col("pool_id") == pool_id),
                all_periods,
                {pool_id: deal.cutoff_date},
                denominator=deal.definitions.cumulative_default_denominator,
            )
            for pool_id, deal in sorted(deals.items())
        ]
    ).collect()
    catalog.write_frame(rollforward, catalog.mart("pool_rollforward"))
    catalog.write_frame(delinquency, catalog.mart("pool_delinquency"))
    catalog.write_frame(characteristics, catalog.mart("pool_characteristics"))
    catalog.write_frame(collections, catalog.mart("pool_collections"))
    catalog.write_frame(performance, catalog.mart("pool_performance"))
    cutoff_by_pool = dict(cutoffs.select("pool_id", "cutoff_balance").collect().iter_rows())

    def row(frame: pl.DataFrame, pool_id: str, period_end: date) -> dict[str, object]:
        rows = frame.filter(
            (pl.col("pool_id") == pool_id) & (pl.col("period_end") == period_end)
        ).to_dicts()
        return rows[0] if rows else {}

    written = []
    for pool_id, deal in sorted(deals.items()):
        for period_end in reportable_periods(deal, period_ends):
            if period_end not in set(all_periods):
                continue
            document = build_metrics_document(
                pool_id=pool_id,
                period_end=period_end,
                currency=deal.currency,
                cutoff_balance=int(cutoff_by_pool.get(pool_id, 0)),
                rollforward_row=row(rollforward, pool_id, period_end),
                delinquency_rows=delinquency.filter(
                    (pl.col("pool_id") == pool_id) & (pl.col("period_end") == period_end)
                ).to_dicts(),
                characteristics_row=row(characteristics, pool_id, period_end),
                collections_row=row(collections, pool_id, period_end),
                performance_row=row(performance, pool_id, period_end),
            )
            path = catalog.metrics_json(pool_id, period_label(period_end))
            catalog.write_text(dumps_metrics(document), path)
            written.append(PoolPeriod(pool_id, period_label(period_end), path))
    return written


# -- reports ------------------------------------------------------------------------
def render_disclosures(
    catalog: Catalog,
    deals: Mapping[str, DealTerms],
    periods: Sequence[PoolPeriod],
    *,
    generated_at: datetime,
    run_id: str,
) -> list[Path]:
    """Render every disclosure of ``periods`` from its metrics.json."""
    import json

    written = []
    for item in periods:
        metrics = json.loads(item.metrics_path.read_text(encoding="utf-8"))
        for language in REPORT_LANGUAGES:
            context = disclosure.build_context(
                metrics, deals[item.pool_id], locale=language, generated_at=generated_at, run_id=run_id
            )
            path = catalog.disclosure(item.pool_id, item.period, language)
            catalog.write_text(render_disclosure(context), path)
            written.append(path)
    return written


def render_report_index(
    catalog: Catalog, deals: Mapping[str, DealTerms], *, generated_at: datetime
) -> Path:
    """Rewrite reports/index.html from every disclosure on disk."""
    entries = []
    for pool_id, period, _ in catalog.metrics_documents():
        deal = deals.get(pool_id)
        for language in REPORT_LANGUAGES:
            path = catalog.disclosure(pool_id, period, language)
            if path.is_file():
                entries.append(
                    index.IndexEntry(
                        pool_id=pool_id,
                        deal_name=deal.name if deal else pool_id,
                        period=period,
                        href=path.relative_to(catalog.reports).as_posix(),
                        language=language,
                    )
                )
    context = index.build_context(entries, generated_at=generated_at)
    catalog.write_text(render_index(context), catalog.index_html)
    return catalog.index_html
