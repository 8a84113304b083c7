"""Engine stage: loan snapshots at month-ends, cut-off dates and the latest business date."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

import polars as pl

from data_contracts.deal import DealTerms
from flows.catalog import Catalog
from flows.deals import performance_rules
from flows.periods import month_end, month_ends_between, previous_month_end
from transforms.performance import loan_snapshots


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
        frames.append(
            compute([previous_month_end(extra), extra]).filter(pl.col("as_of_date") == extra)
        )
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
