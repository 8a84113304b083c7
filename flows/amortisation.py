"""Early amortisation end to end: purchases dated after a breach leave the trust.

When a pool breaches an early-amortisation trigger, revolving purchases stop
(DOMAIN.md "Early amortisation"). A purchase event dated after the breach
period is moved from ``staged/pool_assets`` to ``quarantine/pool_assets`` with
the reason ``purchase after early amortisation``; the curated views and the
loan snapshots are then rebuilt, so every period from the breach on is
recomputed without it and the cash that would have bought it amortises the
notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from flows.catalog import Catalog
from flows.ingest import QUARANTINE_SCHEMA
from transforms import schema
from transforms.waterfall import (
    PURCHASE_AFTER_EARLY_AMORTISATION,
    purchases_after_early_amortisation,
)

_DATASET = "pool_assets"


def _original() -> pl.Expr:
    # The row as staged, with the landing column names, dates ISO and money in yuan.
    price = pl.col("purchase_price")
    return pl.struct(
        pl.col("pool_id"),
        pl.col("loan_id"),
        pl.col("event_date").dt.strftime("%Y-%m-%d"),
        pl.col("event"),
        pl.col("reason"),
        pl.format("{}.{}", price // 100, (price % 100).cast(pl.String).str.zfill(2)).alias(
            "purchase_price"
        ),
    ).struct.json_encode()


def quarantine_late_purchases(catalog: Catalog, starts: Mapping[str, date]) -> int:
    """Move purchases dated after each pool's breach period from staged to quarantine.

    Args:
        catalog: The data root.
        starts: Breach period end per pool.

    Returns:
        How many purchase events were moved (0 when nothing changed).
    """
    if not starts:
        return 0
    late = purchases_after_early_amortisation(starts)
    moved = 0
    for day, path in catalog.staged_by_date(_DATASET).items():
        staged = pl.read_parquet(path)
        flagged = staged.filter(late)
        if not flagged.height:
            continue
        quarantine_path = catalog.quarantine_partition(_DATASET, day)
        rows = flagged.select(
            *schema.LINEAGE,
            pl.lit([PURCHASE_AFTER_EARLY_AMORTISATION], dtype=pl.List(pl.String)).alias("rule_ids"),
            _original().alias("original"),
        ).select(list(QUARANTINE_SCHEMA))
        existing = pl.read_parquet(quarantine_path) if quarantine_path.exists() else rows.clear()
        catalog.write_frame(
            pl.concat([existing, rows]).sort("business_date", "source_file", "source_line"),
            quarantine_path,
        )
        catalog.write_frame(staged.filter(~late), path)
        moved += flagged.height
    return moved
