"""Small hand-written tape books: one delivery's files and deals, run up to the snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from flows.catalog import Catalog
from flows.curate import CurateOutcome, curate
from flows.deals import load_deals
from flows.ingest import ingest_dates
from flows.snapshots import build_loan_snapshots, snapshot_dates
from tests.polars_warnings import no_sortedness_warning


def build_tape_book(
    root: Path, day: date, files: Mapping[str, str], deals: Mapping[str, Mapping[str, Any]]
) -> CurateOutcome:
    """Land ``files`` (name to CSV text) for ``day`` with ``deals`` (pool id to terms), then
    ingest (every row accepted), curate and build the loan snapshots; the curate result.

    Polars' sortedness warning fails the build (see :mod:`tests.polars_warnings`).
    """
    folder = root / "landing" / day.isoformat()
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    catalog = Catalog(root)
    catalog.deals_dir.mkdir(parents=True)
    for pool_id, terms in deals.items():
        (catalog.deals_dir / f"{pool_id}.yaml").write_text(yaml.safe_dump(dict(terms)), "utf-8")
    with no_sortedness_warning():
        outcome = ingest_dates(catalog, [day])
        assert all(f.rows_quarantined == 0 for f in outcome.files), outcome.rule_counts
        curated = curate(catalog, day)
        assert curated.first_origination is not None
        loaded = load_deals(catalog).deals
        build_loan_snapshots(
            catalog, snapshot_dates(curated.first_origination, day, loaded.values()), loaded
        )
    return curated
