"""Metrics stage: pool marts and one metrics.json per pool and collection period."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from data_contracts.deal import DealTerms
from flows.catalog import Catalog
from flows.periods import month_end, period_label
from transforms import pool_metrics, schema
from transforms.metrics_document import build_metrics_document, dumps_metrics


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
    cutoffs = pool_metrics.cutoff_balances(
        cutoff_snapshots, {pool_id: deal.cutoff_date for pool_id, deal in deals.items()}
    )
    rollforward = pool_metrics.with_pool_factor(
        pool_metrics.pool_rollforward(snapshots, all_periods), cutoffs
    ).collect()
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
