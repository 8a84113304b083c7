"""Engine stage: loan snapshots at month-ends, cut-off dates and the latest business date.

The stage is incremental. After each run the engine's per-loan running totals
(``transforms.performance.EngineState``) are kept in the catalog with a record
of what they were computed from: the last as-of date (the watermark), every
staged partition's hash and earliest effective date (origination, value or
event date), the deal rules and the code version. The next run then reads only
the events dated after the watermark and continues from the state, which gives
exactly the snapshots a recomputation from scratch gives.

When a delivery touches a date on or before the watermark (a late file, a
corrected partition, a loan re-delivered with new terms, a repayment dated in
the past), the snapshots are recomputed from scratch from the earliest
affected date on; earlier partitions cannot change and are kept. A change of
deal rules or code, a run that ends before the watermark, a missing or
inconsistent state, or ``recompute=True`` recompute everything.

On a night inside one collection period, only the loans with something new
(cash, a pool event, an instalment falling due) go through the engine; the
others keep their previous snapshot, dated the new day, with their days past
due aged by the calendar (:func:`_quiet_loans`). With more than one loan
bucket the engine's buckets are jobs named by locations under the data root
(:class:`BucketJob`), run here or as Prefect tasks on a cluster.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TypedDict, Unpack, cast

import polars as pl

from data_contracts.contract import load_contract
from data_contracts.deal import DealTerms
from data_contracts.polars_checks import PolarsCheck, compile_checks, failing_rows
from flows.catalog import (
    ENGINE_STATE_RELATIVE,
    Catalog,
    absolute_root,
    curated_relative,
    located,
    remove_tree_at,
    scan_parquet_at,
    sha256_file,
    write_parquet_at,
)
from flows.deals import performance_rules
from flows.settings import Settings
from flows.state import cached_sha256
from flows.tape import prepare_tape
from flows.version import code_version
from transforms import schema
from transforms.batches import (
    LoanRange,
    bucket_count,
    combine_snapshots,
    combine_states,
    concat_ranges,
    engine_batch,
    loan_ranges,
    merge_snapshots,
)
from transforms.performance import ENGINE_STATE, EngineState, PerformanceRules
from transforms.periods import month_end, month_ends_between, previous_month_end

EFFECTIVE_DATE = {
    "loans": "origination_date",
    "repayments": "value_date",
    "pool_assets": "event_date",
    "loan_tape": "as_of_date",
}
"""The column that dates a staged row's effect on the snapshots."""

_FORMAT = 1
"""Version of the state record's layout."""


def snapshot_dates(first_origination: date, until: date, deals: Iterable[DealTerms]) -> list[date]:
    """Month-ends from the first origination to ``until``, cut-off dates, and ``until``."""
    dates = set(month_ends_between(first_origination, until))
    dates.update(d.cutoff_date for d in deals if first_origination <= d.cutoff_date <= until)
    dates.add(until)
    return sorted(dates)


@dataclass(frozen=True)
class Partition:
    """A staged partition as the engine saw it."""

    sha256: str
    first_effective: date | None
    """Earliest effective date of its rows (None when it has none)."""


@dataclass(frozen=True)
class StateRecord:
    """What the stored engine state was computed from."""

    as_of: date
    base: date | None
    fingerprint: str
    state_sha256: str
    partitions: dict[str, dict[date, Partition]]

    def to_json(self) -> str:
        document = {
            "format": _FORMAT,
            "as_of": self.as_of.isoformat(),
            "base": self.base.isoformat() if self.base else None,
            "fingerprint": self.fingerprint,
            "state_sha256": self.state_sha256,
            "partitions": {
                name: {
                    day.isoformat(): {
                        "sha256": p.sha256,
                        "first_effective": p.first_effective.isoformat()
                        if p.first_effective
                        else None,
                    }
                    for day, p in sorted(parts.items())
                }
                for name, parts in sorted(self.partitions.items())
            },
        }
        return json.dumps(document, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StateRecord | None:
        """The record, or None when it is unreadable or of another layout."""
        try:
            document = json.loads(text)
            if document.get("format") != _FORMAT:
                return None
            partitions = {
                name: {
                    date.fromisoformat(day): Partition(
                        entry["sha256"],
                        date.fromisoformat(entry["first_effective"])
                        if entry["first_effective"]
                        else None,
                    )
                    for day, entry in parts.items()
                }
                for name, parts in document["partitions"].items()
            }
            return cls(
                as_of=date.fromisoformat(document["as_of"]),
                base=date.fromisoformat(document["base"]) if document["base"] else None,
                fingerprint=document["fingerprint"],
                state_sha256=document["state_sha256"],
                partitions=partitions,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class SnapshotOutcome:
    """What the engine stage did."""

    written: list[date]
    mode: str
    """``incremental``, ``recomputed_from`` (a late change), ``full`` or ``unchanged``."""
    recomputed_from: date | None = None
    carried: int = 0
    """Loans whose snapshot was carried forward from the previous date, not recomputed."""
    computed: int | None = None
    """Loans the engine computed (None: every loan of the book)."""


def _fingerprint(rules_by_pool: Mapping[str, PerformanceRules]) -> str:
    rules = sorted(
        (p, r.default_dpd, r.charge_off_dpd, r.tolerance_fen, r.advance_payment_days)
        for p, r in rules_by_pool.items()
    )
    # The snapshot columns too: a partition written before a column was added is recomputed.
    text = json.dumps(
        {
            "code": code_version(),
            "rules": rules,
            "state": list(ENGINE_STATE),
            "snapshots": list(schema.LOAN_SNAPSHOTS),
        }
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _staged(catalog: Catalog, until: date) -> dict[str, dict[date, Path]]:
    return {name: catalog.staged_by_date(name, until) for name in schema.INPUT_DATASETS}


def _first_effective(catalog: Catalog, dataset: str, path: Path) -> date | None:
    column = EFFECTIVE_DATE[dataset]
    value = catalog.scan(path).select(pl.col(column).min()).collect().item()
    return value if isinstance(value, date) else None


def _load_state(catalog: Catalog, fingerprint: str) -> tuple[StateRecord, EngineState] | None:
    meta, path = catalog.engine_state_meta, catalog.engine_state
    if not (meta.is_file() and path.is_file()):
        return None
    record = StateRecord.from_json(meta.read_text(encoding="utf-8"))
    if record is None or record.fingerprint != fingerprint:
        return None
    if sha256_file(path) != record.state_sha256:
        return None
    return record, EngineState(record.as_of, record.base, catalog.scan(path))


def _earliest_affected(
    catalog: Catalog,
    record: StateRecord,
    state: EngineState,
    staged: dict[str, dict[date, Path]],
    hashes: dict[str, dict[date, str]],
) -> date | None:
    """The earliest date whose snapshots a delivery since the state could change.

    A partition that is new, changed or gone affects the snapshots from the
    earliest effective date of its rows, old and new; a re-delivered loan
    also from its previous origination date.
    """
    found: list[date] = []
    for name, current in staged.items():
        recorded = record.partitions.get(name, {})
        for day in sorted(set(current) | set(recorded)):
            old = recorded.get(day)
            if day in current and old is not None and old.sha256 == hashes[name][day]:
                continue
            if old is not None and old.first_effective is not None:
                found.append(old.first_effective)
            if day not in current:
                continue
            first = _first_effective(catalog, name, current[day])
            if first is not None:
                found.append(first)
            if name == "loans":
                previous = (
                    catalog.scan(current[day])
                    .select("loan_id")
                    .join(state.loans.select("loan_id", "origination_date"), on="loan_id")
                    .select(pl.col("origination_date").min())
                    .collect()
                    .item()
                )
                if isinstance(previous, date):
                    found.append(previous)
    return min(found) if found else None


class SnapshotOptions(TypedDict, total=False):
    """The keyword options of :func:`update_loan_snapshots`."""

    recompute: bool
    batch_loans: int | None
    dispatch: Dispatch | None


def build_loan_snapshots(
    catalog: Catalog,
    as_of_dates: Sequence[date],
    deals: Mapping[str, DealTerms],
    **options: Unpack[SnapshotOptions],
) -> list[date]:
    """Compute and write the snapshot partitions that can have changed; return their dates.

    See :func:`update_loan_snapshots`.
    """
    return update_loan_snapshots(catalog, as_of_dates, deals, **options).written


def update_loan_snapshots(
    catalog: Catalog,
    as_of_dates: Sequence[date],
    deals: Mapping[str, DealTerms],
    *,
    recompute: bool = False,
    batch_loans: int | None = None,
    dispatch: Dispatch | None = None,
) -> SnapshotOutcome:
    """Compute and write the snapshot partitions of ``as_of_dates`` that can have changed.

    Month-end snapshots carry each collection period's flows; a snapshot on any
    other date (a cut-off, the latest business date) carries the flows since the
    month-end before it, so it never splits a collection period.

    Args:
        catalog: The data root.
        as_of_dates: Every snapshot date up to the latest business date (month-ends,
            cut-off dates and the latest business date, see :func:`snapshot_dates`).
        deals: Deal terms by pool (their definitions set the DPD rules).
        recompute: Recompute every date from scratch, whatever the stored state.
        batch_loans: About how many loans the engine computes at a time (loan_id
            ranges, see :mod:`transforms.batches`); default the setting
            ``ABS_PIPELINE_ENGINE_BATCH_LOANS``. The snapshots do not depend on it.
        dispatch: Runs the buckets' jobs when there is more than one bucket (default
            :func:`run_buckets_here`; the flow passes one that runs them as Prefect
            tasks, on a Dask cluster with the Dask task runner).

    Returns:
        The dates written and how they were computed.
    """
    dates = sorted(set(as_of_dates))
    until = dates[-1]
    rules_by_pool = {pool_id: performance_rules(deal) for pool_id, deal in deals.items()}
    fingerprint = _fingerprint(rules_by_pool)
    staged = _staged(catalog, until)
    # Staged partitions are hashed once: unchanged ones keep their recorded sha256 (flows.state).
    digests = cached_sha256(catalog, [p for parts in staged.values() for p in parts.values()])
    hashes = {name: {d: digests[p] for d, p in parts.items()} for name, parts in staged.items()}
    cutoffs = {d.cutoff_date for d in deals.values()}

    loaded = None if recompute else _load_state(catalog, fingerprint)
    start: date | None = None
    mode = "full"
    if loaded is not None and until >= loaded[0].as_of:
        record, state = loaded
        start = _earliest_affected(catalog, record, state, staged, hashes)
        mode = "incremental" if start is None or start > record.as_of else "recomputed_from"
        if mode == "incremental" and until == record.as_of:
            # The same business date again with nothing changed: every partition stands.
            return SnapshotOutcome([], "unchanged")
    inputs = {
        name: catalog.scan(catalog.curated(name)) for name in ("loans", "schedules", "repayments")
    }
    pool_assets = catalog.scan(catalog.curated("pool_assets"))
    # The servicer's tape: its loans' snapshots, charge-offs and reconciliation (flows.tape).
    # Loans known only from the tape are not run through the engine at all.
    tape = prepare_tape(catalog, until, deals)
    inputs = {
        name: frame.join(tape.tape_only.lazy(), on="loan_id", how="anti")
        for name, frame in inputs.items()
    }

    batch = batch_loans if batch_loans is not None else Settings().engine_batch_loans
    spill = ExitStack()
    runner = _BucketRunner(
        catalog,
        rules_by_pool=rules_by_pool,
        dispatch=dispatch or run_buckets_here,
        left_out=tape.tape_only.select("loan_id"),
    )

    def engine(
        chain: list[date],
        state: EngineState | None,
        base: date | None,
        leave_out: pl.DataFrame | None = None,
    ) -> tuple[_Snapshots, EngineState]:
        """The engine over ``chain``; ``leave_out`` (``loan_id``) are loans it does not run."""
        frames, from_state = inputs, state
        if leave_out is not None:
            ids = leave_out.lazy().select("loan_id")
            frames = {n: f.join(ids, on="loan_id", how="anti") for n, f in inputs.items()}
            if state is not None:
                kept = state.loans.join(ids, on="loan_id", how="anti")
                from_state = EngineState(state.as_of, state.base, kept)
        loan_ids = frames["loans"].select("loan_id").collect().get_column("loan_id")
        if bucket_count(loan_ids.len(), batch) == 1:
            snapshots, new_state = _run_here(
                frames, pool_assets, chain, state=from_state, base=base, rules_by_pool=rules_by_pool
            )
        else:
            # Buckets are loan_id ranges: the curated data is in loan_id order.
            ranges = loan_ranges(loan_ids, batch)
            snapshots, new_state = runner.run(
                chain, state=state, base=base, ranges=ranges, leave_out=leave_out, spill=spill
            )
        if tape.tape.height == 0:
            return snapshots, new_state
        # The servicer's snapshots replace the engine's for the tape's loans (flows.tape).
        engine_rows = pl.concat([snapshots.at(d) for d in chain])
        return _Snapshots.of(tape.merge(engine_rows, chain)), new_state

    with spill:
        written: list[date] = []
        carried, computed = 0, cast("int | None", None)
        if mode == "incremental" and loaded is not None:
            record, state = loaded
            chain = [d for d in dates if d > record.as_of and (d == month_end(d) or d == until)]
            base = _base(chain, record.base)
            quiet = (
                _quiet_loans(
                    catalog, inputs, pool_assets, previous=record.as_of, until=until, state=state
                )
                if tape.tape.height == 0 and _carries(record.as_of, until, chain, catalog)
                else None
            )
            if quiet is None:
                frame, new_state = engine(chain, state, base)
            else:
                carried = quiet.height
                active = inputs["loans"].join(quiet.lazy(), on="loan_id", how="anti")
                computed = active.select(pl.len()).collect().item()
                frame, new_state = _carry_forward(
                    catalog,
                    previous=record.as_of,
                    until=until,
                    state=state,
                    quiet=quiet,
                    engine=engine,
                )
            written += _write(catalog, frame, chain)
            # A mid-period date before the last (a cut-off) has its own base.
            redo = [d for d in dates if record.as_of < d < until and d != month_end(d)]
        else:
            redo = [d for d in dates if start is None or mode == "full" or d >= start]
            chain = sorted({*_lead_in(redo[0]), *(d for d in redo if d == month_end(d)), until})
            frame, new_state = engine(chain, None, _base(chain, None))
            written += _write(catalog, frame, [d for d in chain if d in redo])
        for extra in (d for d in redo if d != month_end(d) and d != until):
            part, _ = engine([*_lead_in(extra), extra], None, None)
            written += _write(catalog, part, [extra])
        _save_state(
            catalog,
            new_state,
            fingerprint=fingerprint,
            staged=staged,
            hashes=hashes,
            previous=loaded[0] if loaded is not None else None,
        )
        tape.write_revolving()
    # Only the latest business date keeps a mid-month snapshot; older ones are superseded.
    keep = set(dates) | cutoffs
    for stale in catalog.snapshot_dates():
        if stale != month_end(stale) and stale not in keep:
            catalog.snapshot_partition(stale).unlink()
    return SnapshotOutcome(
        sorted(written),
        mode,
        start if mode == "recomputed_from" else None,
        carried=carried,
        computed=computed,
    )


# -- carrying quiet loans forward -----------------------------------------------------------
Engine = Callable[
    [list[date], EngineState | None, date | None, pl.DataFrame | None],
    tuple["_Snapshots", EngineState],
]


def _carries(previous: date, until: date, chain: Sequence[date], catalog: Catalog) -> bool:
    """Whether quiet loans can be carried from the snapshot of ``previous`` to ``until``.

    Both dates must lie inside one collection period, neither its end: a snapshot
    on such a date carries the flows since the month-end before it, so a loan
    with nothing new in between has the same flows, balances and state at both.
    """
    return (
        list(chain) == [until]
        and previous != month_end(previous)
        and until != month_end(until)
        and (previous.year, previous.month) == (until.year, until.month)
        and catalog.snapshot_partition(previous).is_file()
    )


def _quiet_loans(
    catalog: Catalog,
    inputs: Mapping[str, pl.LazyFrame],
    pool_assets: pl.LazyFrame,
    *,
    previous: date,
    until: date,
    state: EngineState,
) -> pl.DataFrame:
    """``loan_id`` (and the aged ``dpd``) of the loans whose snapshot at ``until`` is their
    snapshot at ``previous`` aged by the calendar.

    A loan is quiet when it is in the stored state and, after ``previous``, has no
    cash event, no pool event and no instalment falling due (from ``previous`` on, as
    an instalment due that day is overdue the day after). A quiet loan not shown at
    ``previous`` (nothing owed, nothing paid) stays hidden. A shown one keeps its row;
    its days past due (DOMAIN.md: days since the oldest unpaid instalment fell due)
    grow by the days between the dates when it was overdue, and it stays quiet only
    while that keeps its delinquency bucket and stays clear of the default and
    charge-off thresholds; otherwise the engine computes it.
    """
    days = (until - previous).days
    events = pl.concat(
        [
            inputs["repayments"].filter(pl.col("value_date") > previous).select("loan_id"),
            pool_assets.filter(pl.col("event_date") > previous).select("loan_id"),
            inputs["schedules"]
            .filter(pl.col("due_date").is_between(previous, until))
            .select("loan_id"),
        ]
    )
    candidates = (
        state.loans.select("loan_id", "default_dpd", "charge_off_dpd")
        .join(inputs["loans"].select("loan_id"), on="loan_id", how="semi")
        .join(events, on="loan_id", how="anti")
    )
    shown = catalog.scan(catalog.snapshot_partition(previous)).select(
        "loan_id", "dpd", "bucket", "status"
    )
    aged = pl.when(pl.col("dpd") > 0).then(pl.col("dpd") + days).otherwise(0).cast(pl.Int32)
    status = pl.col("status")
    keeps = (
        (pl.col("dpd") == 0)
        | (
            (aged <= _bucket_upper(pl.col("bucket")))
            & (
                status.is_in(["current", "delinquent"])
                & (aged + 1 < pl.col("default_dpd"))
                & (aged + 1 < pl.col("charge_off_dpd"))
                | (status == "defaulted") & (aged + 1 < pl.col("charge_off_dpd"))
                | (status == "charged_off")
            )
        )
    ).fill_null(False)
    carried = (
        candidates.join(shown, on="loan_id", how="inner")
        .filter(keeps)
        .select("loan_id", aged.alias("dpd"))
    )
    hidden = candidates.join(shown, on="loan_id", how="anti").select(
        "loan_id", pl.lit(None, dtype=pl.Int32).alias("dpd")
    )
    return pl.concat([carried, hidden]).collect()


def _bucket_upper(bucket: pl.Expr) -> pl.Expr:
    """The largest days past due of a delinquency bucket (``1-30`` -> 30; ``180+`` has none)."""
    upper = {label: int(label.rsplit("-", 1)[1]) for label in schema.DPD_BUCKETS if "-" in label}
    upper["current"] = 0
    return bucket.replace_strict(upper, default=None, return_dtype=pl.Int32).fill_null(2**31 - 1)


def _carry_forward(
    catalog: Catalog,
    *,
    previous: date,
    until: date,
    state: EngineState,
    quiet: pl.DataFrame,
    engine: Engine,
) -> tuple[_Snapshots, EngineState]:
    """The snapshots of ``until``: the engine on the active loans, the quiet ones carried.

    The engine continues from the stored state of the active loans only; the quiet
    loans keep their state rows (nothing of theirs changed) and their snapshot rows
    of ``previous``, dated ``until`` with their days past due aged.
    """
    ids = quiet.lazy().select("loan_id")
    snapshots, new_state = engine([until], state, state.base, quiet.select("loan_id"))
    carried = (
        catalog.scan(catalog.snapshot_partition(previous))
        .join(
            quiet.lazy().filter(pl.col("dpd").is_not_null()),
            on="loan_id",
            how="inner",
            suffix="_aged",
        )
        .with_columns(pl.lit(until).alias("as_of_date"), pl.col("dpd_aged").alias("dpd"))
        .drop("dpd_aged")
    )
    rows = combine_snapshots([snapshots.at(until).lazy(), carried]).collect()
    loans = combine_states([new_state.loans, state.loans.join(ids, on="loan_id", how="semi")])
    return _Snapshots.of(rows), EngineState(new_state.as_of, new_state.base, loans)


@dataclass
class _Snapshots:
    """An engine run's snapshots, read back one as-of date at a time."""

    parts: dict[date, list[pl.LazyFrame]] = field(default_factory=dict)
    """Per as-of date, each bucket's rows (in memory, or written under the data root)."""
    in_ranges: bool = False
    """The parts are consecutive loan_id ranges, in range order."""

    def add(self, frame: pl.DataFrame) -> None:
        """Add a frame of snapshots (of any as-of dates) held in memory."""
        for part in frame.partition_by("as_of_date", maintain_order=True):
            self.parts.setdefault(part["as_of_date"][0], []).append(part.lazy())

    @classmethod
    def of(cls, frame: pl.DataFrame) -> _Snapshots:
        """Snapshots held in memory, from one frame of several as-of dates."""
        snapshots = cls()
        snapshots.add(frame)
        return snapshots

    def at(self, as_of: date) -> pl.DataFrame:
        """The snapshots of ``as_of`` in the order of a single run (``loan_id``).

        Each part (a bucket's rows of the date) is in ``loan_id`` order
        already: the parts are merged, not sorted again, and parts of
        consecutive loan ranges are only concatenated.
        """
        parts = self.parts.get(as_of, [])
        if len(parts) == 1:
            return parts[0].collect()
        if self.in_ranges:
            return concat_ranges(parts).collect()
        return merge_snapshots(parts).collect()


def _run_here(
    inputs: Mapping[str, pl.LazyFrame],
    pool_assets: pl.LazyFrame,
    chain: list[date],
    *,
    state: EngineState | None,
    base: date | None,
    rules_by_pool: Mapping[str, PerformanceRules],
) -> tuple[_Snapshots, EngineState]:
    """The engine over the whole book in this process, held in memory (one bucket)."""
    run = engine_batch(
        inputs["loans"],
        inputs["schedules"],
        inputs["repayments"],
        pool_assets,
        chain,
        bucket=0,
        buckets=1,
        state=state,
        base=base,
        rules_by_pool=rules_by_pool,
    )
    frame, loans = pl.collect_all([run.snapshots, run.state.loans])
    return _Snapshots.of(frame), EngineState(max(chain), base, loans.lazy())


# -- loan buckets as jobs -------------------------------------------------------------------
ENGINE_INPUTS = ("loans", "schedules", "repayments", "pool_assets")
"""The curated datasets a bucket reads."""

WORK_FOLDER = "work/engine"
"""Under the data root: each run's bucket outputs, removed when the stage ends."""


@dataclass(frozen=True)
class BucketJob:
    """One loan bucket of an engine run, everything named by a location under the data root.

    A job is plain data: it can be sent to another process or machine
    (a Dask worker) that reaches the same data root.
    """

    data_root: str
    """An absolute local path or an fsspec URL."""
    work: str
    """The run's folder under the data root (POSIX, relative) the bucket writes to."""
    bucket: int
    buckets: int
    chain: tuple[date, ...]
    base: date | None
    rules_by_pool: Mapping[str, PerformanceRules]
    state: tuple[date, date | None] | None
    """The stored engine state's (as-of, base) to continue from, or None to start afresh."""
    left_out: str | None
    """A Parquet file (relative) of the ``loan_id`` the engine does not run, if any."""
    carried: str | None = None
    """A Parquet file (relative) of the ``loan_id`` carried forward: not run, and left out
    of the state too."""
    loan_range: LoanRange | None = None
    """The bucket's loans: this ``loan_id`` range (``bucket`` is then its position among
    the run's ranges), else hash bucket ``bucket`` of ``buckets``."""


@dataclass(frozen=True)
class BucketOutput:
    """Where a bucket wrote its snapshots (per as-of date) and its loans' state."""

    snapshots: dict[date, str]
    state: str


Dispatch = Callable[[Sequence[BucketJob]], list[BucketOutput]]
"""Runs bucket jobs (here, one after the other, or as tasks on a cluster) in order."""


def run_bucket(job: BucketJob) -> BucketOutput:
    """Run the engine on one bucket's loans and write its outputs under the data root.

    Reads the curated inputs (and the stored engine state) at ``job.data_root``;
    writes ``<work>/bucket-<n>/<as-of>.parquet`` and ``<work>/bucket-<n>/state.parquet``.
    """

    def at(relative: str | Path) -> str:
        return located(job.data_root, relative)

    frames = {name: scan_parquet_at(at(curated_relative(name))) for name in ENGINE_INPUTS}
    state = (
        None
        if job.state is None
        else EngineState(job.state[0], job.state[1], scan_parquet_at(at(ENGINE_STATE_RELATIVE)))
    )
    for relative in (job.left_out, job.carried):
        if relative is None:
            continue
        ids = scan_parquet_at(at(relative))
        frames = {
            name: frame if name == "pool_assets" else frame.join(ids, on="loan_id", how="anti")
            for name, frame in frames.items()
        }
        if state is not None and relative == job.carried:
            state = EngineState(
                state.as_of, state.base, state.loans.join(ids, on="loan_id", how="anti")
            )
    run = engine_batch(
        frames["loans"],
        frames["schedules"],
        frames["repayments"],
        frames["pool_assets"],
        list(job.chain),
        bucket=job.bucket if job.loan_range is None else 0,
        buckets=job.buckets if job.loan_range is None else 1,
        loan_range=job.loan_range,
        state=state,
        base=job.base,
        rules_by_pool=job.rules_by_pool,
    )
    frame, loans = pl.collect_all([run.snapshots, run.state.loans])
    folder = f"{job.work}/bucket-{job.bucket}"
    written = {}
    for part in frame.partition_by("as_of_date", maintain_order=True):
        as_of: date = part["as_of_date"][0]
        written[as_of] = f"{folder}/{as_of.isoformat()}.parquet"
        write_parquet_at(part, at(written[as_of]), compression="lz4")
    write_parquet_at(loans, at(f"{folder}/state.parquet"), compression="lz4")
    return BucketOutput(written, f"{folder}/state.parquet")


def run_buckets_here(jobs: Sequence[BucketJob]) -> list[BucketOutput]:
    """Run the jobs one after the other in this process (memory: one bucket at a time)."""
    return [run_bucket(job) for job in jobs]


@dataclass
class _BucketRunner:
    """Splits an engine run into bucket jobs, dispatches them and reads their outputs back."""

    catalog: Catalog
    rules_by_pool: Mapping[str, PerformanceRules]
    dispatch: Dispatch
    left_out: pl.DataFrame
    """``loan_id`` no engine run computes (the servicer tape's own loans)."""
    runs: int = 0

    def run(
        self,
        chain: list[date],
        *,
        state: EngineState | None,
        base: date | None,
        ranges: Sequence[LoanRange],
        leave_out: pl.DataFrame | None,
        spill: ExitStack,
    ) -> tuple[_Snapshots, EngineState]:
        """The engine over one bucket per loan range; ``state`` must be the stored one (or None).

        The outputs stay under the data root until the stage ends (``spill`` removes
        them), so the memory in use is one bucket's engine run, then one as-of date.
        """
        root = absolute_root(self.catalog.root)
        if self.runs == 0:
            # A stage killed earlier may have left its work behind; this run holds the lock.
            remove_tree_at(located(root, WORK_FOLDER))
            spill.callback(remove_tree_at, located(root, WORK_FOLDER))
        self.runs += 1
        work = f"{WORK_FOLDER}/run-{self.runs}"
        left_out = carried = None
        if self.left_out.height:
            left_out = f"{work}/left-out.parquet"
            write_parquet_at(self.left_out, located(root, left_out), compression="lz4")
        if leave_out is not None:
            carried = f"{work}/carried.parquet"
            write_parquet_at(leave_out.select("loan_id"), located(root, carried), compression="lz4")
        jobs = [
            BucketJob(
                data_root=root,
                work=work,
                bucket=bucket,
                buckets=len(ranges),
                chain=tuple(chain),
                base=base,
                rules_by_pool=dict(self.rules_by_pool),
                state=None if state is None else (state.as_of, state.base),
                left_out=left_out,
                carried=carried,
                loan_range=loan_range,
            )
            for bucket, loan_range in enumerate(ranges)
        ]
        snapshots = _Snapshots(in_ranges=True)
        states = []
        for output in self.dispatch(jobs):
            for as_of, relative in output.snapshots.items():
                snapshots.parts.setdefault(as_of, []).append(
                    scan_parquet_at(located(root, relative))
                )
            states.append(scan_parquet_at(located(root, output.state)))
        return snapshots, EngineState(max(chain), base, concat_ranges(states, ENGINE_STATE))


def _lead_in(first: date) -> list[date]:
    """The two period ends before ``first``, computed but not written.

    The first date of a chain computed from scratch has no previous as-of
    date, so its pool membership counts every removal ever made; the second
    one's is exact, and the first written date's period starts after it.
    """
    previous = previous_month_end(first)
    return [previous_month_end(previous), previous]


def _base(chain: Sequence[date], previous: date | None) -> date | None:
    """The last period end of the chain, else the previous state's."""
    ends = [d for d in chain if d == month_end(d)]
    return ends[-1] if ends else previous


class SnapshotContractError(RuntimeError):
    """The engine produced snapshots that break their contract: nothing was written."""


def check_snapshots(frame: pl.DataFrame) -> None:
    """Check snapshots against ``loan_snapshots.odcs.yaml`` before they are published.

    Snapshots are derived data: a broken rule is a defect in the engine or in
    its inputs, so the stage stops rather than quarantining rows. The contract
    is compiled to Polars expressions (:mod:`data_contracts.polars_checks`):
    the same rules as the Great Expectations suite used on delivered data, at
    a fraction of its cost.

    Raises:
        SnapshotContractError: Naming each error rule broken, its row count and a
            first example (as-of date and loan).
    """
    if frame.height == 0:
        return
    checks = [c for c in _snapshot_checks() if c.severity == "error"]
    lines = []
    for check, positions in failing_rows(checks, frame):
        first = frame.row(positions[0], named=True)
        lines.append(
            f"{check.rule_id}: {len(positions)} rows, e.g. loan {first['loan_id']} "
            f"as of {first['as_of_date']}"
        )
    if lines:
        raise SnapshotContractError("loan snapshots break their contract: " + "; ".join(lines))


@functools.cache
def _snapshot_checks() -> tuple[PolarsCheck, ...]:
    return compile_checks(load_contract("loan_snapshots"))


def _write(catalog: Catalog, snapshots: _Snapshots, keep: Sequence[date]) -> list[date]:
    """Write the partitions of ``keep``; a date without rows has no partition.

    Every date is checked before any is written, so a broken contract writes nothing.
    """
    for as_of in keep:
        check_snapshots(snapshots.at(as_of))
    written = []
    for as_of in keep:
        path = catalog.snapshot_partition(as_of)
        part = snapshots.at(as_of)
        if part.height == 0:
            path.unlink(missing_ok=True)
            continue
        catalog.write_frame(part, path)
        written.append(as_of)
    return written


def _save_state(
    catalog: Catalog,
    state: EngineState,
    *,
    fingerprint: str,
    staged: dict[str, dict[date, Path]],
    hashes: dict[str, dict[date, str]],
    previous: StateRecord | None,
) -> None:
    """Write the state, then its record (a crash between leaves a mismatch: recompute)."""
    catalog.write_frame(state.loans.collect(), catalog.engine_state)
    known = previous.partitions if previous is not None else {}
    partitions: dict[str, dict[date, Partition]] = {}
    for name, parts in staged.items():
        partitions[name] = {}
        for day, path in parts.items():
            old = known.get(name, {}).get(day)
            if old is not None and old.sha256 == hashes[name][day]:
                partitions[name][day] = old
            else:
                partitions[name][day] = Partition(
                    hashes[name][day], _first_effective(catalog, name, path)
                )
    record = StateRecord(
        as_of=state.as_of,
        base=state.base,
        fingerprint=fingerprint,
        state_sha256=sha256_file(catalog.engine_state),
        partitions=partitions,
    )
    catalog.write_text(record.to_json(), catalog.engine_state_meta)
