"""Curate stage: current views of everything staged, and the repayment schedules.

The stage remembers which staged partitions (and their sha256) the curated
datasets were built from (``state/curate.json``). When the staged data has
only grown by partitions of later business dates, the current views are
brought up to date from the new partitions alone: a loan delivered again
replaces its row (the latest delivery wins), a repayment already known is
kept once, a pool event is replaced by its latest delivery, and only the
loans with a new delivery or new cash get new schedules and overpayment
checks. A dataset nothing new touched is not written again. Any other change
(a partition corrected or withdrawn, another code version, a missing output)
rebuilds everything from every staged partition. Both ways give the same bytes
(``tests/flows/test_incremental.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from flows.catalog import Catalog
from flows.state import cached_sha256
from flows.version import code_version
from transforms import curation, schema
from transforms.performance import overpayments
from transforms.schedules import build_schedules

CURATED = ("loans", "repayments", "pool_assets", "loan_corrections", "schedules", "overpayments")
_DELIVERY_ORDER = ("business_date", "source_file", "source_line")
_POOL_EVENT = ["pool_id", "loan_id", "event_date", "event"]


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
    mode: str = "full"
    """``full`` (rebuilt from every staged partition) or ``appended`` (new partitions only)."""


def curate(catalog: Catalog, until: date) -> CurateOutcome:
    """Current views of everything staged up to ``until``, the loans' schedules, and the
    cash events that overpaid principal (capped in the snapshots, listed in
    ``curated/overpayments``)."""
    partitions = {name: catalog.staged_partitions(name, until) for name in schema.INPUT_DATASETS}
    digests = cached_sha256(catalog, [p for paths in partitions.values() for p in paths])
    built = {
        name: {Catalog.staged_business_date(p).isoformat(): digests[p] for p in paths}
        for name, paths in partitions.items()
    }
    new = _new_partitions(catalog, built, partitions)
    if new is None:
        frames = _rebuild(catalog, partitions)
        mode = "full"
    else:
        frames = _append(catalog, new)
        mode = "appended"
    for name, frame in frames.items():
        catalog.write_frame(frame, catalog.curated(name))
    record = {"code": code_version(), "partitions": built}
    catalog.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", _record_path(catalog))
    current = {name: frames.get(name) for name in CURATED}

    def height(name: str) -> int:
        frame = current[name]
        if frame is not None:
            return frame.height
        return int(catalog.scan(catalog.curated(name)).select(pl.len()).collect().item())

    loans = current["loans"]
    if loans is None:
        loans = pl.read_parquet(catalog.curated("loans"), columns=["origination_date"])
    first = loans["origination_date"].min() if loans.height else None
    return CurateOutcome(
        loans=loans.height,
        repayments=height("repayments"),
        pool_events=height("pool_assets"),
        schedule_rows=height("schedules"),
        corrections=height("loan_corrections"),
        overpayments=height("overpayments"),
        first_origination=first if isinstance(first, date) else None,
        mode=mode,
    )


def _record_path(catalog: Catalog) -> Path:
    """What the curated datasets were built from (beside the other state files)."""
    return catalog.curate_state


def _new_partitions(
    catalog: Catalog, built: dict[str, dict[str, str]], partitions: dict[str, list[Path]]
) -> dict[str, list[Path]] | None:
    """The partitions staged since the last build, when the build can be appended to;
    None when everything must be rebuilt."""
    try:
        record = json.loads(_record_path(catalog).read_text(encoding="utf-8"))
        previous: dict[str, dict[str, str]] = record["partitions"]
        same_code = record["code"] == code_version()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not same_code or not all(catalog.curated(name).is_file() for name in CURATED):
        return None
    new: dict[str, list[Path]] = {}
    for name, paths in partitions.items():
        before = previous.get(name, {})
        now = built[name]
        if any(now.get(day) != sha for day, sha in before.items()):
            return None  # a partition was corrected or withdrawn
        last = max(before, default="")
        added = [p for p in paths if Catalog.staged_business_date(p).isoformat() not in before]
        if any(Catalog.staged_business_date(p).isoformat() <= last for p in added):
            return None  # a late partition: it is not the latest delivery of its rows
        new[name] = added
    return new


def _rebuild(catalog: Catalog, partitions: dict[str, list[Path]]) -> dict[str, pl.DataFrame]:
    staged = {
        name: catalog.scan_many(partitions[name], {**columns, **schema.LINEAGE})
        for name, columns in schema.INPUT_DATASETS.items()
    }
    loans = curation.current_loans(staged["loans"]).collect()
    repayments = curation.current_repayments(staged["repayments"]).collect()
    return {
        "loans": loans,
        "repayments": repayments,
        "pool_assets": curation.current_pool_assets(staged["pool_assets"]).collect(),
        "loan_corrections": curation.loan_corrections(staged["loans"]).collect(),
        "schedules": build_schedules(loans.lazy()).collect(),
        "overpayments": overpayments(loans.lazy(), repayments.lazy()).collect(),
    }


def _append(catalog: Catalog, new: dict[str, list[Path]]) -> dict[str, pl.DataFrame]:
    """The curated datasets the new partitions change, from the previous ones and them."""

    def staged(name: str) -> pl.LazyFrame:
        columns = {**schema.INPUT_DATASETS[name], **schema.LINEAGE}
        return catalog.scan_many(new[name], columns).select(list(columns))

    def previous(name: str) -> pl.DataFrame:
        return pl.read_parquet(catalog.curated(name))

    changed: dict[str, pl.DataFrame] = {}
    loans = previous("loans")
    fresh_loans = pl.DataFrame(schema=loans.schema)
    if new["loans"]:
        fresh_loans = curation.current_loans(staged("loans")).collect()
        ids = fresh_loans.select("loan_id")
        # The previous current row of a loan delivered again is the delivery before the
        # new ones: dated before any of them, it is what a correction is judged against.
        before = (
            loans.join(ids, on="loan_id", how="semi")
            .with_columns(
                pl.lit(date.min).alias("business_date"),
                pl.lit("").alias("source_file"),
                pl.lit(0, dtype=pl.Int64).alias("source_line"),
            )
            .lazy()
        )
        corrections = curation.loan_corrections(pl.concat([before, staged("loans")])).collect()
        loans = pl.concat([loans.join(ids, on="loan_id", how="anti"), fresh_loans]).sort("loan_id")
        changed["loans"] = loans
        schedules = previous("schedules").join(ids, on="loan_id", how="anti")
        fresh_schedules = build_schedules(fresh_loans.lazy()).collect()
        changed["schedules"] = pl.concat([schedules, fresh_schedules]).sort(
            "loan_id", "instalment_no"
        )
        if corrections.height:
            changed["loan_corrections"] = pl.concat(
                [previous("loan_corrections"), corrections]
            ).sort("loan_id", *_DELIVERY_ORDER)
    repayments = previous("repayments")
    fresh_cash = pl.DataFrame(schema=repayments.schema)
    if new["repayments"]:
        known = repayments.lazy().select("repayment_id")
        fresh_cash = curation.current_repayments(
            staged("repayments").join(known, on="repayment_id", how="anti")
        ).collect()
        if fresh_cash.height:
            repayments = pl.concat([repayments, fresh_cash]).sort(
                "loan_id", "value_date", "repayment_id"
            )
            changed["repayments"] = repayments
    if new["pool_assets"]:
        fresh_events = curation.current_pool_assets(staged("pool_assets")).collect()
        kept = previous("pool_assets").join(
            fresh_events.select(_POOL_EVENT), on=_POOL_EVENT, how="anti", nulls_equal=True
        )
        changed["pool_assets"] = pl.concat([kept, fresh_events]).sort(
            "pool_id", "event_date", "loan_id", "event"
        )
    touched = pl.concat([fresh_loans.select("loan_id"), fresh_cash.select("loan_id")]).unique()
    if touched.height:
        # Overpayment is judged per loan, from its terms and all its cash.
        fresh_over = overpayments(
            loans.lazy().join(touched.lazy(), on="loan_id", how="semi"),
            repayments.lazy().join(touched.lazy(), on="loan_id", how="semi"),
        ).collect()
        kept_over = previous("overpayments").join(touched, on="loan_id", how="anti")
        changed["overpayments"] = pl.concat([kept_over, fresh_over]).sort(
            "loan_id", "value_date", "repayment_id"
        )
    return changed
