"""Ingest and validate landing deliveries into staged and quarantine partitions.

For each dataset of a run of business dates: read every file as text (through
its servicer's mapping, if it names one), cast to the canonical types, validate
against the dataset's contract (the compiled Great Expectations suite, then the
contract's cross-dataset checks against the loans, repayments and pool events
delivered so far), then write the accepted rows to ``staged/`` and every
rejected row, with the rules it broke, the file and line it came from and its
original values, to ``quarantine/``. Every row read is accounted for:
read = accepted + quarantined, per file.

Re-deliveries: a loan delivered again with other terms is a correction
(accepted, recorded with the changed fields); a repayment or pool event
delivered again unchanged is accepted and counted as a duplicate (curation keeps
it once); a repayment_id delivered again with other values is quarantined.

Hostile input: files are found by ``lstat`` (``flows.landing.scan_day``) and read
under the limits of ``flows.limits``; a path that is not a regular file inside
the data root is refused and never opened, and a file over a limit is refused
with the limit named (each an error of the file, see
:meth:`IngestOutcome.rejections`). Row by row, a date outside the plausible
window breaks ``<dataset>.<column>.date_window``, a control character
``<dataset>.row.control_characters`` and a pool event for a pool with no deal
file ``pool_assets.pool_id.known_deal``. Folders and files that are not
deliveries are listed in ``ignored`` with the reason, never read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Final

import polars as pl
from pydantic import ValidationError

from data_contracts.contract import Contract, Rule, load_contract
from data_contracts.deal import is_iso_region
from flows.catalog import Catalog, parse_landing_name, remove_stale_temporaries, sha256_file
from flows.deals import deal_pool_ids
from flows.errors import InputRejectedError
from flows.landing import (
    ORIGINAL,
    READ_ERRORS,
    DayEntries,
    LandingFile,
    empty_frame,
    read_landing_file,
    scan_day,
    scan_landing,
    unreadable,
)
from flows.limits import Limits, current_limits, refusal
from flows.mapping import SourceMapping, load_mapping
from flows.serve_validation import validate
from flows.state import cached_sha256
from transforms import schema
from transforms.joins import latest_per_loan
from transforms.keys import pseudonymous_key
from transforms.staging import TYPE_ERRORS, cast_landing, type_rule_id

DATASET_ORDER: Final = ("loans", "repayments", "pool_assets", "loan_tape")
"""Loans first: the other datasets are checked against the loans known so far."""

MIN_ROWS_FOR_SHARE: Final = 20
"""Files smaller than this are never rejected whole for their share of bad rows."""

EXAMPLES_PER_RULE: Final = 5
"""How many ``file:line`` examples of each broken rule the outcome keeps."""

VIOLATIONS_SHOWN: Final = 8
"""How many distinct broken rules a file rejected row by row names in full (first row each)."""

QUARANTINE_SCHEMA: Final = {
    "business_date": pl.Date,
    "source_file": pl.String,
    "source_line": pl.Int64,
    "rule_ids": pl.List(pl.String),
    "original": pl.String,
}

_ORDER: Final = ("business_date", "source_file", "source_line")
_POOL_EVENT_KEY: Final = ("pool_id", "loan_id", "event_date", "event")


def required_columns_rule(dataset: str) -> str:
    """Broken by every row of a file that lacks a required column."""
    return f"{dataset}.schema.required_columns"


def field_count_rule(dataset: str) -> str:
    """Broken by a delimited row with more or fewer fields than the header."""
    return f"{dataset}.row.field_count"


def batch_rule(dataset: str) -> str:
    """Broken by the remaining rows of a file rejected whole for its share of errors."""
    return f"{dataset}.batch.error_share"


def date_window_rule(dataset: str, column: str) -> str:
    """Broken by a date outside the plausible window (settings ``min_date`` .. ``max_date``)."""
    return f"{dataset}.{column}.date_window"


KNOWN_DEAL_RULE: Final = "pool_assets.pool_id.known_deal"
"""Broken by a pool event for a pool that has no deal file."""

LANDING_FOLDER: Final = "landing"
"""The ``dataset`` of a :class:`FileOutcome` for a business date folder refused whole."""


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
    rows_duplicate: int = 0
    """Accepted rows that repeat an earlier delivery unchanged (kept once when curated)."""
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    error: str | None = None
    rejected: str | None = None
    """Why the whole file was rejected, if it was."""
    source: str | None = None
    file_format: str = "csv"
    encoding: str | None = None
    refused: bool = False
    """The path was refused (not a regular file inside the data root) and never opened;
    ``sha256`` is empty."""
    limit: str | None = None
    """The limit the file went over (``flows.limits.Limits`` field), if that refused it."""


@dataclass(frozen=True)
class FieldChange:
    """One term of a corrected loan: the value before and after, as text.

    Money is shown in yuan with two decimals (``previous_yuan`` / ``value_yuan`` give
    the Decimal); personal data (the borrower id) is never carried: ``redacted`` says
    that it changed and both values are None.
    """

    column: str
    previous: str | None
    value: str | None
    redacted: bool = False

    @property
    def is_money(self) -> bool:
        return self.column in _MONEY_TERMS

    @property
    def previous_yuan(self) -> Decimal | None:
        return Decimal(self.previous) if self.is_money and self.previous is not None else None

    @property
    def value_yuan(self) -> Decimal | None:
        return Decimal(self.value) if self.is_money and self.value is not None else None


@dataclass(frozen=True)
class Correction:
    """A loan delivered again with changed terms (accepted; the latest delivery wins).

    ``loan_id`` is for internal use only; anything published shows ``row_key``, a
    pseudonymous key of the delivery row (stable for the same file and line).
    """

    loan_id: str
    business_date: date
    source_file: str
    source_line: int
    previous_business_date: date
    changes: tuple[FieldChange, ...]
    row_key: str = ""


PERSONAL_TERMS: Final = frozenset({"borrower_id"})
"""Loan terms that identify a person: a correction says they changed, never to what."""

_MONEY_TERMS: Final = frozenset(c for c, dtype in schema.LOANS.items() if dtype == schema.MONEY)


def row_key(source_file: str, source_line: int) -> str:
    """A pseudonymous key of a delivered row: the same file and line give the same key."""
    return pseudonymous_key("row", f"{source_file}:{source_line}")


@dataclass
class IngestOutcome:
    """What an ingest of some business dates read, accepted and rejected."""

    files: list[FileOutcome] = field(default_factory=list)
    rule_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(dataset, rule_id, severity) -> rows."""
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(dataset, rule_id) -> up to EXAMPLES_PER_RULE ``file:line`` of rows that broke it."""
    corrections: list[Correction] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Landing entries that are not delivery files or date folders (not read)."""
    ignored_reasons: dict[str, str] = field(default_factory=dict)
    """Why each entry of ``ignored`` was not read."""
    contract_versions: dict[str, str] = field(default_factory=dict)
    staged: list[str] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)

    def merge(self, other: IngestOutcome) -> None:
        """Add another ingest's outcome (a later chunk of the same run) to this one."""
        self.files.extend(other.files)
        self.rule_counts.update(other.rule_counts)
        for key, found in other.examples.items():
            kept = self.examples.setdefault(key, [])
            kept.extend(found[: EXAMPLES_PER_RULE - len(kept)])
        self.corrections.extend(other.corrections)
        self.ignored.extend(p for p in other.ignored if p not in self.ignored_reasons)
        self.ignored_reasons.update(other.ignored_reasons)
        self.contract_versions.update(other.contract_versions)
        self.staged.extend(other.staged)
        self.dates.extend(other.dates)

    def ignore(self, relative: str, reason: str) -> None:
        """List a landing entry that is not read, once, with the reason."""
        if relative not in self.ignored_reasons:
            self.ignored.append(relative)
            self.ignored_reasons[relative] = reason

    def ignored_with_reasons(self) -> list[tuple[str, str]]:
        """(entry, reason) of everything ignored, in the order found."""
        return [(p, self.ignored_reasons.get(p, "not a delivery file")) for p in self.ignored]

    def rejections(self) -> list[InputRejectedError]:
        """One error per file refused or unreadable as a whole (exit code 3), file first."""
        return [
            InputRejectedError(
                (f.error or "").removeprefix(f"{f.path}: ") or "refused", where=f.path
            )
            for f in sorted(self.files, key=lambda f: (f.business_date, f.path))
            if f.error is not None
        ]


@dataclass
class _History:
    """Accepted rows delivered before the chunk, plus those accepted in it so far."""

    loans: pl.DataFrame
    repayments: pl.DataFrame
    pool_assets: pl.DataFrame
    loan_tape: pl.DataFrame


def _staged_before(catalog: Catalog, dataset: str, before: date) -> pl.DataFrame:
    columns = {**schema.INPUT_DATASETS[dataset], **schema.LINEAGE}
    parts = [p for day, p in catalog.staged_by_date(dataset).items() if day < before]
    return catalog.scan_many(parts, columns).select(list(columns)).collect()


def ingest_dates(
    catalog: Catalog,
    dates: Sequence[date],
    *,
    limits: Limits | None = None,
    deal_pools: frozenset[str] | None = None,
) -> IngestOutcome:
    """Ingest every landing file of ``dates`` and (re)write their partitions whole.

    Deliveries before ``min(dates)`` that are already staged are the history the
    cross-dataset checks compare with.

    Args:
        catalog: The data root.
        dates: The business dates to ingest.
        limits: Resource limits and the plausible date window (default: the
            ``ABS_PIPELINE_*`` settings over the defaults).
        deal_pools: Pools that have a deal file (default: the deal files found).
    """
    limits = limits if limits is not None else current_limits()
    if deal_pools is None:
        deal_pools = deal_pool_ids(catalog)
    outcome = IngestOutcome(dates=sorted(dates))
    if not dates:
        return outcome
    root = catalog.root
    for path, reason in scan_landing(root, catalog.landing):
        outcome.ignore(path.relative_to(root).as_posix(), reason)
    first = min(dates)
    history = _History(*(_staged_before(catalog, dataset, first) for dataset in DATASET_ORDER))
    mappings: dict[str, SourceMapping | str] = {}
    days: dict[date, DayEntries] = {}
    for day in sorted(dates):
        entries = days[day] = scan_day(root, catalog.landing_dir(day))
        for path, reason in entries.ignored:
            outcome.ignore(path.relative_to(root).as_posix(), reason)
        for refused in entries.refused:
            if refused.dataset is None:
                outcome.files.append(_refused_folder(day, refused.path, root, refused.reason))
    # Each landing file is hashed once: the delivery check recorded it (flows.state.HashBook).
    digests = cached_sha256(
        catalog,
        [path for day in sorted(dates) for paths in days[day].files.values() for path in paths],
    )
    for dataset in DATASET_ORDER:
        files = [
            _read(catalog, dataset, day, path, mappings, limits)
            for day in sorted(dates)
            for path in days[day].files[dataset]
        ] + [
            unreadable(
                dataset,
                day,
                refused.path,
                refused.path.relative_to(root).as_posix(),
                refused.reason,
                refused=True,
            )
            for day in sorted(dates)
            for refused in days[day].refused
            if refused.dataset == dataset
        ]
        files.sort(key=lambda f: (f.business_date, f.relative_path))
        accepted, quarantined, part = _ingest_dataset(
            dataset, files, history, limits=limits, deal_pools=deal_pools, digests=digests
        )
        setattr(history, dataset, pl.concat([getattr(history, dataset), accepted]))
        outcome.merge(part)
        delivered = {day for day in dates if any(f.business_date == day for f in files)}
        outcome.staged.extend(
            _write_partitions(catalog, dataset, dates, delivered, accepted, quarantined)
        )
    return outcome


def _refused_folder(day: date, folder: Path, root: Path, reason: str) -> FileOutcome:
    relative = folder.relative_to(root).as_posix()
    return FileOutcome(
        dataset=LANDING_FOLDER,
        business_date=day,
        path=relative,
        sha256="",
        error=f"{relative}: {reason}",
        rejected="refused: not a folder inside the data root",
        refused=True,
    )


def _read(  # noqa: PLR0917 (a file, its date, and how to read it)
    catalog: Catalog,
    dataset: str,
    day: date,
    path: Path,
    mappings: dict[str, SourceMapping | str],
    limits: Limits,
) -> LandingFile:
    """Read a landing file with the mapping its name points to."""
    parsed = parse_landing_name(path.name)
    source = parsed.source if parsed is not None else None
    if source is None:
        return read_landing_file(dataset, day, path, catalog.root, limits=limits)
    if source not in mappings:
        mapping_path = catalog.mapping_file(source)
        shown = mapping_path.relative_to(catalog.root).as_posix()
        refused = refusal(mapping_path, catalog.root)
        if not mapping_path.exists() and not mapping_path.is_symlink():
            mappings[source] = f"no mapping {shown} for source {source!r}"
        elif refused is not None:
            mappings[source] = f"mapping {shown} refused: {refused}"
        else:
            try:
                mappings[source] = load_mapping(mapping_path)
            except InputRejectedError as exc:
                # The loader names the file relative to its folder; show it from the root.
                line = (exc.where or "").partition(":")[2]
                place = f"{shown}:{line}" if line else shown
                mappings[source] = f"invalid mapping {place}: {exc.message}"
            except (ValidationError, ValueError, OSError) as exc:
                first_line = str(exc).splitlines()[0]
                mappings[source] = f"invalid mapping {shown}: {first_line}"
    mapping = mappings[source]
    if isinstance(mapping, str):
        relative = path.relative_to(catalog.root).as_posix()
        return unreadable(dataset, day, path, relative, mapping, source=source)
    return read_landing_file(dataset, day, path, catalog.root, mapping=mapping, limits=limits)


class _Rejections:
    """Rule ids broken by rows of one dataset's batch, by row number."""

    def __init__(self, dataset: str, outcome: IngestOutcome, lineage: pl.DataFrame) -> None:
        self.dataset = dataset
        self.outcome = outcome
        self.lineage = lineage
        self.parts: list[pl.DataFrame] = []

    def add(self, rows: pl.Series | Sequence[int], rule_id: str, severity: str = "error") -> None:
        found = pl.Series("row", rows, dtype=pl.UInt32)
        if found.len() == 0:
            return
        self.outcome.rule_counts[(self.dataset, rule_id, severity)] += found.len()
        where = self.lineage.join(found.head(EXAMPLES_PER_RULE).to_frame(), on="row")
        examples = self.outcome.examples.setdefault((self.dataset, rule_id), [])
        for source_file, line in where.sort("row").select("source_file", "source_line").iter_rows():
            if len(examples) < EXAMPLES_PER_RULE:
                examples.append(f"{source_file}:{line}")
        if severity == "error":
            self.parts.append(found.to_frame().with_columns(pl.lit(rule_id).alias("rule_id")))

    def frame(self) -> pl.DataFrame:
        """row -> sorted rule ids, one row per rejected row."""
        if not self.parts:
            return pl.DataFrame(schema={"row": pl.UInt32, "rule_ids": pl.List(pl.String)})
        return (
            pl.concat(self.parts)
            .group_by("row")
            .agg(pl.col("rule_id").unique().sort().alias("rule_ids"))
        )

    def rows(self) -> pl.Series:
        return self.frame()["row"]


def _ingest_dataset(
    dataset: str,
    files: list[LandingFile],
    history: _History,
    *,
    limits: Limits,
    deal_pools: frozenset[str],
    digests: Mapping[Path, str],
) -> tuple[pl.DataFrame, pl.DataFrame, IngestOutcome]:
    contract = load_contract(dataset)
    outcome = IngestOutcome(contract_versions={dataset: contract.version})
    columns = list(schema.INPUT_DATASETS[dataset])
    readable = [f for f in files if f.error is None]
    raw = pl.concat(
        [f.frame for f in readable] or [empty_frame(dataset)], how="vertical"
    ).with_row_index("row")
    lineage = raw.select("row", "source_file", "source_line")
    rejections = _Rejections(dataset, outcome, lineage)

    # Rows that could not be read or mapped, and every row of a file without a
    # required column (it cannot be read as this dataset at all).
    _reject_listed(rejections, raw.select("row", pl.col(READ_ERRORS)))
    incomplete = [f.relative_path for f in readable if f.missing_columns]
    if incomplete:
        rows = raw.filter(pl.col("source_file").is_in(incomplete))["row"]
        rejections.add(rows, required_columns_rule(dataset))

    typed = cast_landing(raw.drop(ORIGINAL, READ_ERRORS).lazy(), dataset).collect()
    # A row already refused as unreadable is not judged value by value as well.
    unread = rejections.rows().implode()
    _reject_listed(
        rejections, typed.filter(~pl.col("row").is_in(unread)).select("row", pl.col(TYPE_ERRORS))
    )

    _reject_implausible_dates(
        dataset, typed.filter(~pl.col("row").is_in(rejections.rows().implode())), rejections, limits
    )
    if dataset == "pool_assets":
        rejections.add(
            typed.filter(
                pl.col("pool_id").is_not_null() & ~pl.col("pool_id").is_in(sorted(deal_pools))
            )["row"],
            KNOWN_DEAL_RULE,
        )

    candidates = typed.filter(~pl.col("row").is_in(rejections.rows().implode()))
    if candidates.height:
        _run_suite(contract, candidates.select(*columns, *schema.LINEAGE, "row"), rejections)

    clean = typed.filter(~pl.col("row").is_in(rejections.rows().implode())).drop(TYPE_ERRORS)
    duplicates = pl.Series("row", [], dtype=pl.UInt32)
    for rule in sorted(
        (r for r in contract.rules if r.kind == "cross_dataset"),
        key=lambda r: (_CHECK_PHASE[r.check or ""], r.rule_id),
    ):
        failed, repeated = _CHECKS[rule.check or ""](rule, clean, history)
        rejections.add(failed, rule.rule_id, rule.severity)
        duplicates = pl.concat([duplicates, repeated])
        if rule.severity == "error":
            clean = clean.filter(~pl.col("row").is_in(failed.implode()))

    _reject_batches(contract, raw, rejections)

    flagged = rejections.frame()
    accepted_rows = typed.join(flagged, on="row", how="anti")
    if dataset == "loans":
        corrections, unchanged = _loan_corrections(accepted_rows, history.loans)
        outcome.corrections.extend(corrections)
        duplicates = pl.concat([duplicates, unchanged])
    duplicates = duplicates.unique()
    accepted = accepted_rows.select(*columns, *schema.LINEAGE).sort(*_ORDER)
    quarantined = raw.join(flagged, on="row", how="inner").select(*QUARANTINE_SCHEMA).sort(*_ORDER)
    outcome.files.extend(
        _file_outcomes(dataset, files, raw, flagged, accepted_rows, duplicates, digests)
    )
    return accepted, quarantined, outcome


def _reject_implausible_dates(
    dataset: str, typed: pl.DataFrame, rejections: _Rejections, limits: Limits
) -> None:
    """Dates outside the plausible window: a loan of 0001-01-01 would poison every later run."""
    for column, dtype in schema.INPUT_DATASETS[dataset].items():
        if dtype != pl.Date:
            continue
        outside = typed.filter(
            (pl.col(column) < limits.min_date) | (pl.col(column) > limits.max_date)
        )["row"]
        rejections.add(outside, date_window_rule(dataset, column))


def _reject_listed(rejections: _Rejections, listed: pl.DataFrame) -> None:
    """Add the rule ids of a (row, list of rule ids) frame."""
    name = listed.columns[1]
    grouped = listed.explode(name).drop_nulls(name).group_by(name).agg(pl.col("row")).sort(name)
    for rule_id, rows in grouped.iter_rows():
        rejections.add(rows, rule_id)


def _run_suite(contract: Contract, candidates: pl.DataFrame, rejections: _Rejections) -> None:
    """Validate with the compiled suite; add errors and count warnings.

    A served flow run hands the rows to the validation host when ``serve`` started one
    (``flows.serve_validation``): the same suite and outcome without importing Great
    Expectations into every run's process.
    """
    result = validate(contract, candidates.drop("row"))
    failures = result.failures.select(
        "rule_id",
        "severity",
        pl.col("row_index").cast(pl.UInt32),
    )
    if failures.height == 0:
        return
    positions = candidates.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row_index"), "row", "business_date"
    )
    located = failures.join(positions, on="row_index")
    for rule_id, severity in located.select("rule_id", "severity").unique().sort("rule_id").rows():
        rule = contract.rule(rule_id)
        broken = located.filter(pl.col("rule_id") == rule_id)
        if rule.kind in ("unique", "compound_unique"):
            # Identifiers are unique within one delivery; a later delivery of the
            # same id is a correction or a re-send, judged by the cross-dataset checks.
            broken = _repeated_within_delivery(candidates, list(rule.columns), broken)
        rejections.add(broken["row"], rule_id, severity)


def _repeated_within_delivery(
    candidates: pl.DataFrame, columns: list[str], broken: pl.DataFrame
) -> pl.DataFrame:
    """The rows of ``broken`` whose key repeats within the same business date."""
    repeated = candidates.filter(pl.struct("business_date", *columns).is_duplicated()).select("row")
    return broken.join(repeated, on="row", how="semi")


def _reject_batches(contract: Contract, raw: pl.DataFrame, rejections: _Rejections) -> None:
    """Reject the rest of every file whose share of bad rows passes the contract's limit.

    So many errors mean the delivery itself is broken. Below MIN_ROWS_FOR_SHARE rows
    a share says nothing (one bad row of five is 20%), so small files are judged row
    by row.
    """
    bad = rejections.rows().implode()
    shares = (
        raw.group_by("source_file")
        .agg(pl.len().alias("rows"), pl.col("row").is_in(bad).sum().alias("bad"))
        .filter(
            (pl.col("rows") >= MIN_ROWS_FOR_SHARE)
            & (pl.col("bad") < pl.col("rows"))
            & (pl.col("bad") > pl.col("rows") * contract.max_error_share)
        )
    )
    if shares.height == 0:
        return
    rest = raw.filter(
        pl.col("source_file").is_in(shares["source_file"].implode()) & ~pl.col("row").is_in(bad)
    )["row"]
    rejections.add(rest, batch_rule(contract.dataset))


# --- cross-dataset checks -----------------------------------------------------------------

_Check = Callable[[Rule, pl.DataFrame, _History], tuple[pl.Series, pl.Series]]
"""(rule, clean rows of the batch, history) -> (rows breaking the rule, duplicate rows)."""

_NO_ROWS: Final = pl.Series("row", [], dtype=pl.UInt32)


def _first_deliveries(loans: pl.DataFrame) -> pl.DataFrame:
    return loans.group_by("loan_id").agg(pl.col("business_date").min().alias("_first_delivery"))


def _known_loan(rule: Rule, clean: pl.DataFrame, history: _History) -> tuple[pl.Series, pl.Series]:
    """The loan was delivered on or before the row's business date."""
    joined = clean.select("row", "loan_id", "business_date").join(
        _first_deliveries(history.loans), on="loan_id", how="left"
    )
    failed = joined.filter(
        pl.col("loan_id").is_not_null()
        & (
            pl.col("_first_delivery").is_null()
            | (pl.col("_first_delivery") > pl.col("business_date"))
        )
    )
    return failed["row"], _NO_ROWS


def _not_after_business_date(
    rule: Rule, clean: pl.DataFrame, history: _History
) -> tuple[pl.Series, pl.Series]:
    """The row's date is not after its delivery's business date."""
    return clean.filter(pl.col(rule.column) > pl.col("business_date"))["row"], _NO_ROWS


def _loan_terms_as_of(clean: pl.DataFrame, loans: pl.DataFrame, terms: list[str]) -> pl.DataFrame:
    """``clean`` with the loan's latest ``terms`` (``_loan_<term>``) as of each business date."""
    latest = (
        loans.select("loan_id", "business_date", "source_file", "source_line", *terms)
        .sort(*_ORDER)
        .unique(subset=["loan_id", "business_date"], keep="last", maintain_order=True)
        .select(
            "loan_id",
            pl.col("business_date").alias("_delivered"),
            *[pl.col(t).alias(f"_loan_{t}") for t in terms],
        )
    )
    return latest_per_loan(clean, latest, on="business_date", history_on="_delivered")


def _on_or_after_origination(
    rule: Rule, clean: pl.DataFrame, history: _History
) -> tuple[pl.Series, pl.Series]:
    """The row's date is on or after the loan's origination (unknown loans are not judged)."""
    joined = _loan_terms_as_of(
        clean.select("row", "loan_id", "business_date", rule.column),
        history.loans,
        ["origination_date"],
    )
    return joined.filter(pl.col(rule.column) < pl.col("_loan_origination_date"))["row"], _NO_ROWS


def _with_history(clean: pl.DataFrame, staged: pl.DataFrame) -> pl.DataFrame:
    """Earlier accepted rows (``row`` null) and the batch's rows, in delivery order."""
    earlier = staged.select(
        pl.lit(None, dtype=pl.UInt32).alias("row"), *[c for c in clean.columns if c != "row"]
    )
    return pl.concat([earlier, clean.select(earlier.columns)]).sort(*_ORDER)


def _id_conflict(rule: Rule, clean: pl.DataFrame, history: _History) -> tuple[pl.Series, pl.Series]:
    """A repeated id carries the values of its first delivery (else it is a conflict)."""
    key = rule.column
    dataset = rule.rule_id.split(".")[0]
    values = [c for c in schema.INPUT_DATASETS[dataset] if c != key]
    ids = clean[key].unique().implode()
    earlier = getattr(history, dataset).filter(pl.col(key).is_in(ids))
    judged = (
        _with_history(clean, earlier)
        .with_columns(pl.struct(values).alias("_values"))
        .with_columns(
            pl.col("_values").first().over(key).alias("_first"),
            (pl.int_range(pl.len()).over(key) > 0).alias("_repeat"),
        )
        .filter(pl.col("row").is_not_null() & pl.col("_repeat"))
    )
    conflict = judged.filter(pl.col("_values") != pl.col("_first"))["row"]
    same = judged.filter(pl.col("_values") == pl.col("_first"))["row"]
    return conflict, same


def _pool_sequence(clean: pl.DataFrame, history: _History) -> pl.DataFrame:
    """Every pool event once (first delivery), with the loan's previous event in that pool."""
    pairs = clean.select("pool_id", "loan_id").unique()
    earlier = history.pool_assets.join(pairs, on=["pool_id", "loan_id"], how="semi")
    return (
        _with_history(clean, earlier)
        .with_columns((pl.int_range(pl.len()).over(_POOL_EVENT_KEY) > 0).alias("_repeat"))
        .with_columns(
            pl.when(~pl.col("_repeat")).then(pl.col("event")).alias("_event"),
        )
        .filter(~pl.col("_repeat") | pl.col("row").is_not_null())
        .sort("pool_id", "loan_id", "event_date", *_ORDER)
        .with_columns(
            pl.col("_event")
            .shift(1)
            .fill_null(strategy="forward")
            .over("pool_id", "loan_id")
            .alias("_previous")
        )
    )


def _added_twice(rule: Rule, clean: pl.DataFrame, history: _History) -> tuple[pl.Series, pl.Series]:
    """An addition to a pool the loan is already in."""
    events = _pool_sequence(clean, history).filter(pl.col("row").is_not_null())
    failed = events.filter(
        ~pl.col("_repeat") & (pl.col("event") == "added") & (pl.col("_previous") == "added")
    )
    return failed["row"], events.filter(pl.col("_repeat"))["row"]


def _removed_not_in_pool(
    rule: Rule, clean: pl.DataFrame, history: _History
) -> tuple[pl.Series, pl.Series]:
    """A removal from a pool the loan is not in."""
    events = _pool_sequence(clean, history).filter(pl.col("row").is_not_null())
    failed = events.filter(
        ~pl.col("_repeat")
        & (pl.col("event") == "removed")
        & (pl.col("_previous").is_null() | (pl.col("_previous") != "added"))
    )
    return failed["row"], _NO_ROWS


def _within_outstanding(
    rule: Rule, clean: pl.DataFrame, history: _History
) -> tuple[pl.Series, pl.Series]:
    """Cumulative principal paid per loan, every cash event once, stays within the principal."""
    loan_ids = clean["loan_id"].unique().implode()
    earlier = history.repayments.filter(pl.col("loan_id").is_in(loan_ids))
    signed = (
        pl.when(pl.col("kind") == "reversal")
        .then(-pl.col("principal_paid"))
        .otherwise(pl.col("principal_paid"))
    )
    events = (
        _with_history(clean, earlier)
        .unique(subset="repayment_id", keep="first", maintain_order=True)
        .sort("business_date", "value_date", "repayment_id")
        .with_columns(signed.cum_sum().over("loan_id").alias("_paid"))
        .filter(pl.col("row").is_not_null())
    )
    joined = _loan_terms_as_of(events, history.loans, ["principal"])
    failed = joined.filter(
        (pl.col("kind") != "reversal")
        & (pl.col("principal_paid") > 0)
        & (pl.col("_paid") > pl.col("_loan_principal"))
    )
    return failed["row"], _NO_ROWS


def _iso_region(rule: Rule, clean: pl.DataFrame, history: _History) -> tuple[pl.Series, pl.Series]:
    """The region is an ISO 3166 country or subdivision code (which ones a deal allows is
    the deal's ``allowed_regions``, checked where loans join its pool)."""
    codes = clean[rule.column].drop_nulls().unique().to_list()
    unknown = [code for code in codes if not is_iso_region(code)]
    return clean.filter(pl.col(rule.column).is_in(unknown))["row"], _NO_ROWS


_CHECKS: Final[dict[str, _Check]] = {
    "known_loan": _known_loan,
    "not_after_business_date": _not_after_business_date,
    "on_or_after_origination": _on_or_after_origination,
    "id_conflict": _id_conflict,
    "added_twice": _added_twice,
    "removed_not_in_pool": _removed_not_in_pool,
    "within_outstanding": _within_outstanding,
    "iso_region": _iso_region,
}

_CHECK_PHASE: Final = {
    "known_loan": 0,
    "not_after_business_date": 0,
    "on_or_after_origination": 1,
    "id_conflict": 2,
    "added_twice": 3,
    "removed_not_in_pool": 3,
    "within_outstanding": 4,
    "iso_region": 0,
}
"""Checks run in phases, each on the rows the earlier phases accepted."""


def _text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String)


def _loan_corrections(
    accepted: pl.DataFrame, history: pl.DataFrame
) -> tuple[list[Correction], pl.Series]:
    """Loans delivered again: changed terms are corrections, unchanged ones duplicates."""
    terms = [c for c in schema.LOANS if c != "loan_id"]
    earlier = history.join(accepted.select("loan_id").unique(), on="loan_id", how="semi")
    sequence = (
        _with_history(accepted.select("row", *schema.LOANS, *schema.LINEAGE), earlier)
        .with_columns(
            *[pl.col(c).shift(1).over("loan_id").alias(f"_prev_{c}") for c in terms],
            pl.col("business_date").shift(1).over("loan_id").alias("_prev_date"),
        )
        .filter(pl.col("row").is_not_null() & pl.col("_prev_date").is_not_null())
    )
    if sequence.height == 0:
        return [], _NO_ROWS
    differs = [pl.col(c).ne_missing(pl.col(f"_prev_{c}")) for c in terms]
    sequence = sequence.with_columns(pl.any_horizontal(differs).alias("_changed"))
    unchanged = sequence.filter(~pl.col("_changed"))["row"]
    changed = sequence.filter(pl.col("_changed")).sort("loan_id", *_ORDER)
    corrections = []
    for record in changed.select(
        "loan_id",
        *_ORDER,
        "_prev_date",
        *[_text(c) for c in terms],
        *[_text(f"_prev_{c}") for c in terms],
    ).iter_rows(named=True):
        changes = tuple(
            _field_change(c, record[f"_prev_{c}"], record[c])
            for c in terms
            if record[c] != record[f"_prev_{c}"]
        )
        corrections.append(
            Correction(
                loan_id=record["loan_id"],
                business_date=record["business_date"],
                source_file=record["source_file"],
                source_line=record["source_line"],
                previous_business_date=record["_prev_date"],
                changes=changes,
                row_key=row_key(record["source_file"], record["source_line"]),
            )
        )
    return corrections, unchanged


def _field_change(column: str, previous: str | None, value: str | None) -> FieldChange:
    """A changed term as it may be shown: money in yuan, personal data withheld."""
    if column in PERSONAL_TERMS:
        return FieldChange(column, None, None, redacted=True)
    if column in _MONEY_TERMS:
        return FieldChange(column, _fen_as_yuan(previous), _fen_as_yuan(value))
    return FieldChange(column, previous, value)


def _fen_as_yuan(fen: str | None) -> str | None:
    """Integer fen text as exact yuan text with two decimals (``1234550`` -> ``12345.50``)."""
    if fen is None:
        return None
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def _file_outcomes(  # noqa: PLR0917 (the parts of one dataset's batch)
    dataset: str,
    files: list[LandingFile],
    raw: pl.DataFrame,
    flagged: pl.DataFrame,
    accepted: pl.DataFrame,
    duplicates: pl.Series,
    digests: Mapping[Path, str],
) -> list[FileOutcome]:
    counts = {
        name: dict(zip(frame["source_file"], frame["len"], strict=True))
        for name, frame in (
            ("accepted", accepted.group_by("source_file").len()),
            ("quarantined", raw.join(flagged, on="row", how="semi").group_by("source_file").len()),
            (
                "duplicate",
                accepted.filter(pl.col("row").is_in(duplicates.implode()))
                .group_by("source_file")
                .len(),
            ),
        )
    }
    outcomes = []
    for f in files:
        per_file = FileOutcome(
            dataset=dataset,
            business_date=f.business_date,
            path=f.relative_path,
            sha256="" if f.refused else digests.get(f.path) or sha256_file(f.path),
            rows_read=f.frame.height,
            rows_accepted=counts["accepted"].get(f.relative_path, 0),
            rows_quarantined=counts["quarantined"].get(f.relative_path, 0),
            rows_duplicate=counts["duplicate"].get(f.relative_path, 0),
            missing_columns=f.missing_columns,
            extra_columns=f.extra_columns,
            error=f.error,
            source=f.source,
            file_format=f.file_format,
            encoding=f.encoding,
            refused=f.refused,
            limit=f.limit,
        )
        if f.refused:
            per_file.rejected = "refused: not a regular file inside the data root"
        elif f.limit:
            per_file.rejected = f"over the limit {f.limit}"
        elif f.error:
            per_file.rejected = "unreadable"
        elif f.empty:
            per_file.rejected = "empty file: no header line"
        elif f.missing_columns:
            per_file.rejected = f"missing required columns: {', '.join(f.missing_columns)}"
        elif (
            per_file.rows_read
            and per_file.rows_quarantined == per_file.rows_read
            and not _only_unknown_loans(per_file, raw, flagged)
        ):
            per_file.rejected = _every_row_rejected(dataset, per_file, raw, flagged)
        outcomes.append(per_file)
    _mark_share_rejections(dataset, outcomes, raw, flagged)
    return outcomes


_CANONICAL_FORMS: Final[dict[object, str]] = {
    schema.MONEY: "an amount in yuan with at most two decimals (1234.50)",
    schema.RATE: "a decimal rate with at most six decimals (0.1095)",
    pl.Int32: "a whole number",
    pl.Date: "an ISO date (YYYY-MM-DD)",
}
"""What a canonical landing value of each type looks like (a ``<dataset>.<column>.type`` rule)."""


def _only_unknown_loans(per_file: FileOutcome, raw: pl.DataFrame, flagged: pl.DataFrame) -> bool:
    """Whether the file's rows break nothing but the reference to a loan not yet staged.

    Such rows wait for the loans' own delivery (a date processed later, or one that
    failed): they are quarantined row by row and checked again when the planner
    re-ingests the date, rather than rejecting a file that is itself well formed.
    """
    rules = (
        raw.filter(pl.col("source_file") == per_file.path)
        .join(flagged, on="row", how="inner")
        .explode("rule_ids")["rule_ids"]
        .unique()
        .to_list()
    )
    return bool(rules) and all(rule.endswith(".known_loan") for rule in rules)


def _every_row_rejected(
    dataset: str, per_file: FileOutcome, raw: pl.DataFrame, flagged: pl.DataFrame
) -> str:
    """Why a file none of whose rows was accepted is rejected, with its first violations.

    Each distinct broken rule (up to :data:`VIOLATIONS_SHOWN`, in the order of the first
    line breaking it) is named in full: its id, the column, the file's line number, the
    delivered value (withheld for personal data) and the rule's description.
    """
    contract = load_contract(dataset)
    descriptions = {r.rule_id: r.description for r in contract.rules}
    columns_typed = schema.INPUT_DATASETS[dataset]
    columns = set(columns_typed)
    broken = (
        raw.filter(pl.col("source_file") == per_file.path)
        .join(flagged, on="row", how="inner")
        .explode("rule_ids")
        .sort("source_line", "rule_ids")
        .unique(subset=["rule_ids"], keep="first", maintain_order=True)
    )
    lines = []
    for record in broken.head(VIOLATIONS_SHOWN).iter_rows(named=True):
        rule_id: str = record["rule_ids"]
        column = rule_id.split(".")[1] if rule_id.count(".") >= 2 else ""
        where = f"line {record['source_line']}: {rule_id}"
        if column in columns:
            shown = "withheld" if column in PERSONAL_TERMS else repr(record[column] or "")
            where += f" (column {column}, value {shown})"
        description = descriptions.get(rule_id)
        if description is None and rule_id == type_rule_id(dataset, column):
            description = f"{column} is {_CANONICAL_FORMS.get(columns_typed[column], 'text')}"
        lines.append(f"{where}: {description}" if description else where)
    more = broken.height - len(lines)
    if more > 0:
        lines.append(f"... and {more} more rules (see the quarantine)")
    head = (
        f"every row rejected ({per_file.rows_quarantined} of {per_file.rows_read} rows "
        "quarantined); first rule violations:"
    )
    return "\n".join([head, *(f"  {line}" for line in lines)])


def _mark_share_rejections(
    dataset: str, outcomes: list[FileOutcome], raw: pl.DataFrame, flagged: pl.DataFrame
) -> None:
    rule = batch_rule(dataset)
    whole = (
        raw.join(flagged.filter(pl.col("rule_ids").list.contains(rule)), on="row", how="semi")[
            "source_file"
        ]
        .unique()
        .to_list()
    )
    for per_file in outcomes:
        if per_file.path in whole:
            bad = per_file.rows_quarantined
            per_file.rejected = (
                f"share of rows breaking error rules above the contract's limit "
                f"(batch rejected whole: {bad} of {per_file.rows_read} rows quarantined)"
            )


def _write_partitions(  # noqa: PLR0917 (the parts of one dataset's batch)
    catalog: Catalog,
    dataset: str,
    dates: Sequence[date],
    delivered: set[date],
    accepted: pl.DataFrame,
    quarantined: pl.DataFrame,
) -> list[str]:
    """Replace the staged and quarantine partitions of every date, whole."""
    written = []
    for day in dates:
        has_files = day in delivered
        staged_path = catalog.staged_partition(dataset, day)
        quarantine_path = catalog.quarantine_partition(dataset, day)
        remove_stale_temporaries(staged_path)
        remove_stale_temporaries(quarantine_path)
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
