"""Curate stage: current views of everything staged, and the repayment schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flows.catalog import Catalog
from transforms import curation, schema
from transforms.performance import overpayments
from transforms.schedules import build_schedules


@dataclass(frozen=True)
class CurateOutcome:
    loans: int
    repayments: int
    pool_events: int
    schedule_rows: int
    corrections: int
    overpayments: int
    """Cash events flagged for paying principal beyond what the loan owed."""
    first_origination: date | None


def curate(catalog: Catalog, until: date) -> CurateOutcome:
    """Current views of everything staged up to ``until``, the loans' schedules, and the
    cash events that overpaid principal (capped in the snapshots, listed in
    ``curated/overpayments``)."""
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
    overpaid = overpayments(loans.lazy(), repayments.lazy()).collect()
    catalog.write_frame(loans, catalog.curated("loans"))
    catalog.write_frame(repayments, catalog.curated("repayments"))
    catalog.write_frame(pool_assets, catalog.curated("pool_assets"))
    catalog.write_frame(corrections, catalog.curated("loan_corrections"))
    catalog.write_frame(schedules, catalog.curated("schedules"))
    catalog.write_frame(overpaid, catalog.curated("overpayments"))
    first = loans["origination_date"].min() if loans.height else None
    return CurateOutcome(
        loans=loans.height,
        repayments=repayments.height,
        pool_events=pool_assets.height,
        schedule_rows=schedules.height,
        corrections=corrections.height,
        overpayments=overpaid.height,
        first_origination=first if isinstance(first, date) else None,
    )
