"""Ingest and validate landing deliveries into staged and quarantine partitions.

For each dataset of a run of business dates: read every file as text, cast to
the canonical types, validate against the dataset's contract (Great
Expectations), check references to loans, then write the accepted rows to
``staged/`` and every rejected row, with the rules it broke and the file and
line it came from, to ``quarantine/``. Every row read is accounted for:
read = accepted + quarantined, per file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from data_contracts.contract import load_contract
from data_contracts.validate import validate_frame
from flows.catalog import Catalog, sha256_file
from flows.landing import LandingFile, read_landing_file
from transforms import schema
from transforms.staging import TYPE_ERRORS, cast_landing

DATASET_ORDER = ("loans", "repayments", "pool_assets")
"""Loans first: the other datasets are checked against the loans known so far."""

MIN_ROWS_FOR_SHARE = 20
"""Files smaller than this are never rejected whole for their share of bad rows."""

QUARANTINE_SCHEMA = {
    "business_date": pl.Date,
    "source_file": pl.String,
    "source_line": pl.Int64,
    "rule_ids": pl.List(pl.String),
    "original": pl.String,
}


@dataclass
class FileOutcome:
    """What became of one delivered file."""

    dataset: str
    business_date: date
    path: str
    sha256: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    error: str | None = None
    rejected: str | None = None
    """Why the whole file was rejected, if it was."""


@dataclass
class IngestOutcome:
    """What an ingest of some business dates read, accepted and rejected."""

    files: list[FileOutcome] = field(default_factory=list)
    rule_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(dataset, rule_id, severity) -> rows."""
    contract_versions: dict[str, str] = field(default_factory=dict)
    staged: list[str] = field(default_factory=list)

    def merge(self, other: IngestOutcome) -> None:
        self.files.extend(other.files)
        self.rule_counts.update(other.rule_counts)
        self.contract_versions.update(other.contract_versions)
        self.staged.extend(other.staged)


def known_loan_ids(catalog: Catalog, before: date) -> set[str]:
    """Loan ids accepted in staged deliveries dated before ``before``."""
    parts = [
        p
        for p in catalog.staged_partitions("loans")
        if date.fromisoformat(p.parent.name.removeprefix("business_date=")) < before
    ]
    if not parts:
        return set()
    ids = pl.scan_parquet(parts).select("loan_id").unique().collect()
    return set(ids["loan_id"].to_list())


def ingest_dates(catalog: Catalog, dates: Sequence[date]) -> IngestOutcome:
    """Ingest every landing file of ``dates`` and (re)write their partitions whole."""
    outcome = IngestOutcome()
    if not dates:
        return outcome
    known = known_loan_ids(catalog, min(dates))
    for dataset in DATASET_ORDER:
        files = [
            read_landing_file(dataset, day, path, catalog.root)
            for day in dates
            for path in catalog.landing_files(day)[dataset]
        ]
        accepted, quarantined, part = _ingest_dataset(dataset, files, known)
        if dataset == "loans":
            known |= set(accepted["loan_id"].to_list())
        outcome.merge(part)
        outcome.staged.extend(_write_partitions(catalog, dataset, dates, accepted, quarantined))
    return outcome


def _ingest_dataset(
    dataset: str, files: list[LandingFile], known_loans: set[str]
) -> tuple[pl.DataFrame, pl.DataFrame, IngestOutcome]:
    contract = load_contract(dataset)
    outcome = IngestOutcome(contract_versions={dataset: contract.version})
    columns = list(schema.INPUT_DATASETS[dataset])
    readable = [f for f in files if f.error is None]
    raw = (
        pl.concat([f.frame for f in readable], how="vertical")
        if readable
        else pl.DataFrame(schema={**dict.fromkeys(columns, pl.String), **schema.LINEAGE})
    ).with_row_index("row")

    rules: dict[int, list[str]] = {}

    def reject(rows: Iterable[int], rule_id: str, severity: str = "error") -> None:
        count = 0
        for row in rows:
            rules.setdefault(row, []).append(rule_id)
            count += 1
        if count:
            outcome.rule_counts[(dataset, rule_id, severity)] += count

    # A file without a required column cannot be read as this dataset at all.
    for f in readable:
        if f.missing_columns:
            rows = raw.filter(pl.col("source_file") == f.relative_path)["row"].to_list()
            reject(rows, f"{dataset}.schema.required_columns")

    typed = cast_landing(raw.lazy(), dataset).collect()
    for rule_id, rows in (
        typed.select("row", TYPE_ERRORS)
        .explode(TYPE_ERRORS)
        .drop_nulls(TYPE_ERRORS)
        .group_by(TYPE_ERRORS)
        .agg(pl.col("row"))
        .sort(TYPE_ERRORS)
        .iter_rows()
    ):
        reject(rows, rule_id)

    candidates = typed.filter(~pl.col("row").is_in(list(rules)))
    if candidates.height:
        result = validate_frame(contract, candidates.select(*columns, *schema.LINEAGE))
        positions = candidates["row"]
        for rule_id, severity, failed in (
            result.failures.group_by("rule_id", "severity")
            .agg(pl.col("row_index"))
            .sort("rule_id")
            .iter_rows()
        ):
            idx = failed
            rule = contract.rule(rule_id)
            if rule.kind in ("unique", "compound_unique"):
                # Identifiers are unique within one delivery; a later delivery of the
                # same id is a correction or a re-send, judged at curation.
                idx = _duplicated_within_delivery(candidates, list(rule.columns), idx)
            rows = positions.gather(idx).to_list()
            if not rows:
                continue
            if severity == "error":
                reject(rows, rule_id)
            else:
                outcome.rule_counts[(dataset, rule_id, severity)] += len(rows)

    if dataset in ("repayments", "pool_assets"):
        unknown = typed.filter(
            ~pl.col("row").is_in(list(rules))
            & pl.col("loan_id").is_not_null()
            & ~pl.col("loan_id").is_in(list(known_loans))
        )["row"].to_list()
        reject(unknown, f"{dataset}.loan_id.known_loan")

    # A file whose share of bad rows passes the contract's limit is rejected whole:
    # so many errors mean the delivery itself is broken. Below MIN_ROWS_FOR_SHARE rows
    # a share says nothing (one bad row of five is 20%), so small files are judged row by row.
    limit = contract.max_error_share
    bad_rows = set(rules)
    for f in readable:
        file_rows = raw.filter(pl.col("source_file") == f.relative_path)["row"].to_list()
        bad = sum(1 for r in file_rows if r in bad_rows)
        if len(file_rows) < MIN_ROWS_FOR_SHARE:
            continue
        if bad / len(file_rows) > limit and bad < len(file_rows):
            reject([r for r in file_rows if r not in bad_rows], f"{dataset}.batch.error_share")

    flagged = pl.DataFrame(
        {"row": list(rules), "rule_ids": [sorted(set(v)) for v in rules.values()]},
        schema={"row": pl.UInt32, "rule_ids": pl.List(pl.String)},
    )
    accepted = (
        typed.join(flagged, on="row", how="anti")
        .select(*columns, *schema.LINEAGE)
        .sort("business_date", "source_file", "source_line")
    )
    text_columns = [c for c in columns if c in raw.columns]
    quarantined = (
        raw.join(flagged, on="row", how="inner")
        .select(
            "business_date",
            "source_file",
            "source_line",
            "rule_ids",
            pl.struct(text_columns).struct.json_encode().alias("original"),
        )
        .sort("business_date", "source_file", "source_line")
    )

    for f in files:
        per_file = FileOutcome(
            dataset=dataset,
            business_date=f.business_date,
            path=f.relative_path,
            sha256=sha256_file(f.path),
            rows_read=f.frame.height,
            missing_columns=f.missing_columns,
            extra_columns=f.extra_columns,
            error=f.error,
        )
        per_file.rows_accepted = accepted.filter(pl.col("source_file") == f.relative_path).height
        per_file.rows_quarantined = quarantined.filter(
            pl.col("source_file") == f.relative_path
        ).height
        if f.missing_columns:
            per_file.rejected = f"missing required columns: {', '.join(f.missing_columns)}"
        elif per_file.rows_read and per_file.rows_accepted == 0:
            per_file.rejected = "no row passed validation"
        outcome.files.append(per_file)
    return accepted, quarantined, outcome


def _duplicated_within_delivery(
    frame: pl.DataFrame, columns: list[str], positions: list[int]
) -> list[int]:
    """The positions among ``positions`` whose key repeats within the same business date."""
    repeated = frame.select(pl.struct("business_date", *columns).is_duplicated().alias("repeated"))[
        "repeated"
    ]
    return [p for p in positions if repeated[p]]


def _write_partitions(
    catalog: Catalog,
    dataset: str,
    dates: Sequence[date],
    accepted: pl.DataFrame,
    quarantined: pl.DataFrame,
) -> list[str]:
    """Replace the staged and quarantine partitions of every date, whole."""
    written = []
    for day in dates:
        has_files = bool(catalog.landing_files(day)[dataset])
        staged_path = catalog.staged_partition(dataset, day)
        quarantine_path = catalog.quarantine_partition(dataset, day)
        if not has_files:
            staged_path.unlink(missing_ok=True)
            quarantine_path.unlink(missing_ok=True)
            continue
        catalog.write_frame(accepted.filter(pl.col("business_date") == day), staged_path)
        written.append(str(staged_path))
        bad = quarantined.filter(pl.col("business_date") == day)
        if bad.height:
            catalog.write_frame(bad, quarantine_path)
        else:
            quarantine_path.unlink(missing_ok=True)
    return written
