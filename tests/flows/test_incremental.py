"""The engine stage run night after night equals a recomputation from scratch.

Two data roots receive the same generated deliveries: one runs the engine
stage incrementally after each delivery, the other recomputes everything from
scratch. The nightly side also computes the book in loan batches (up to three
loan_id ranges), the scratch side in one. Their snapshot partitions and
engine states must be byte-identical after every run, including after a late
correction to an already processed date, which must send the incremental side
back to that date (and no earlier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from flows import state as state_module
from flows.catalog import (
    Catalog,
    absolute_root,
    located,
    read_parquet_at,
    remove_tree_at,
    sha256_file,
)
from flows.curate import CURATED, curate
from flows.deals import load_deals, performance_rules
from flows.generator import generate_landing
from flows.snapshots import (
    ENGINE_INPUTS,
    BucketJob,
    SnapshotOutcome,
    run_buckets_here,
    snapshot_dates,
    update_loan_snapshots,
)
from transforms import schema
from transforms.batches import combine_snapshots, combine_states, engine_batch

START, MONTHS = "2024-01", 9
NIGHTLY_BATCH_LOANS = 100
"""Up to three loan_id ranges of the 250 loans on the nightly side; one on the scratch side."""


def _typed(frame: pl.DataFrame, columns: schema.Columns) -> pl.DataFrame:
    exprs = []
    for name, dtype in columns.items():
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif dtype == schema.MONEY:
            exprs.append((pl.col(name).cast(pl.Decimal(18, 2)) * 100).cast(pl.Int64).alias(name))
        elif dtype == pl.Date:
            exprs.append(pl.col(name).str.to_date("%Y-%m-%d").alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype).alias(name))
    return frame.select(exprs)


def _stage(catalog: Catalog, landing: Path, day: date, edit: pl.Expr | None = None) -> None:
    """Write a business date's deliveries as staged partitions (what ingest would accept)."""
    for name, columns in schema.INPUT_DATASETS.items():
        path = landing / day.isoformat() / f"{name}.csv"
        if not path.is_file():
            continue
        frame = _typed(pl.read_csv(path, infer_schema=False), columns)
        if edit is not None and name == "repayments":
            frame = frame.with_columns(edit)
        staged = frame.with_columns(
            pl.lit(day).alias("business_date"),
            pl.lit(f"landing/{day.isoformat()}/{name}.csv").alias("source_file"),
            pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias("source_line"),
        )
        catalog.write_frame(staged, catalog.staged_partition(name, day))


@dataclass
class Twin:
    """Two data roots fed the same deliveries."""

    landing: Path
    nightly: Catalog
    scratch: Catalog
    curate_modes: list[str] = field(default_factory=list)

    def deliver(self, day: date, edit: pl.Expr | None = None) -> None:
        for catalog in (self.nightly, self.scratch):
            _stage(catalog, self.landing, day, edit)

    def run(self, until: date, *, scratch: bool = True) -> tuple[SnapshotOutcome, SnapshotOutcome]:
        """The engine stage on both sides: their outcomes, nightly then scratch.

        With ``scratch=False`` only the nightly side runs (its outcome is given twice).
        """
        outcomes = []
        sides = ((self.nightly, False), (self.scratch, True))
        for catalog, recompute in sides if scratch else sides[:1]:
            if recompute:  # the curated views too are rebuilt from every staged partition
                catalog.business_date_state.with_name("curate.json").unlink(missing_ok=True)
            curated = curate(catalog, until)
            self.curate_modes.append(curated.mode)
            assert curated.first_origination is not None
            deals = load_deals(catalog).deals
            dates = snapshot_dates(curated.first_origination, until, deals.values())
            batch_loans = NIGHTLY_BATCH_LOANS if catalog is self.nightly else 1_000_000
            outcomes.append(
                update_loan_snapshots(
                    catalog, dates, deals, recompute=recompute, batch_loans=batch_loans
                )
            )
        return outcomes[0], outcomes[-1]

    def assert_identical(self) -> None:
        dates = self.scratch.snapshot_dates()
        assert self.nightly.snapshot_dates() == dates
        for as_of in dates:
            mine = pl.read_parquet(self.nightly.snapshot_partition(as_of))
            theirs = pl.read_parquet(self.scratch.snapshot_partition(as_of))
            assert mine.equals(theirs), as_of
            assert sha256_file(self.nightly.snapshot_partition(as_of)) == sha256_file(
                self.scratch.snapshot_partition(as_of)
            ), as_of
        assert sha256_file(self.nightly.engine_state) == sha256_file(self.scratch.engine_state)
        for name in CURATED:
            ours, full = self.nightly.curated(name), self.scratch.curated(name)
            assert sha256_file(ours) == sha256_file(full), name


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tape")
    generate_landing(root / "landing", loans=250, start=START, months=MONTHS, seed=7)
    return root / "landing"


def _twin(tmp_path: Path, landing: Path) -> Twin:
    catalogs = []
    for name in ("nightly", "scratch"):
        root = tmp_path / name
        (root / "landing" / "deals").mkdir(parents=True)
        for deal in (landing / "deals").glob("*.yaml"):
            (root / "landing" / "deals" / deal.name).write_bytes(deal.read_bytes())
        catalogs.append(Catalog(root))
    return Twin(landing, catalogs[0], catalogs[1])


def _business_dates(landing: Path) -> list[date]:
    return sorted(date.fromisoformat(p.name) for p in landing.iterdir() if p.name[0].isdigit())


def test_nightly_runs_equal_a_recomputation_at_every_date(landing: Path, tmp_path: Path) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)
    # Runs after one delivery, after several (weekends, a missed night), across
    # month-ends and the pool's cut-off.
    steps = [1, 1, 3, 5, 1, 8, 2, 13, 1, 1, 21, 4, 1, 9, 17, 1, 30, 2, 11, 1]
    position = 0
    modes, carried = [], []
    for step in steps:
        batch = days[position : position + step]
        if not batch:
            break
        for day in batch:
            twin.deliver(day)
        position += step
        nightly, scratch = twin.run(batch[-1])
        modes.append(nightly.mode)
        carried.append(nightly.carried)
        assert scratch.mode == "full"
        twin.assert_identical()
    assert modes[0] == "full"
    assert set(modes[1:]) == {"incremental"}
    assert len(modes) == len(steps)
    # The nightly side's curated views were appended to after the first run.
    assert twin.curate_modes[0::2] == ["full"] + ["appended"] * (len(steps) - 1)
    # Nights inside a collection period carry the quiet loans forward.
    assert sum(1 for n in carried if n > 0) >= 3


def test_a_late_correction_recomputes_from_the_earliest_affected_date(
    landing: Path, tmp_path: Path
) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)
    cut = days.index(next(d for d in days if d >= date(2024, 7, 10)))
    for day in days[:cut]:
        twin.deliver(day)
    twin.run(days[cut - 1])
    twin.assert_identical()

    # The servicer re-delivers an old business date with every principal amount
    # 1.00 lower: the snapshots change from that date, not before.
    corrected = next(d for d in days if d >= date(2024, 4, 15))
    before = {
        d: twin.nightly.snapshot_partition(d).stat().st_mtime_ns
        for d in twin.nightly.snapshot_dates()
    }
    shorter = (pl.col("principal_paid") - 100).clip(lower_bound=0)
    twin.deliver(corrected, shorter.alias("principal_paid"))
    twin.deliver(days[cut])
    nightly, _ = twin.run(days[cut])
    assert nightly.mode == "recomputed_from"
    assert nightly.recomputed_from == corrected
    assert min(nightly.written) == date(2024, 4, 30)
    for as_of, stamp in before.items():
        if as_of < corrected:
            assert twin.nightly.snapshot_partition(as_of).stat().st_mtime_ns == stamp
    twin.assert_identical()

    # A repayment dated in the past arrives in today's delivery.
    late = days[cut + 1]
    twin.deliver(late, pl.col("value_date") - timedelta(days=40))
    nightly, _ = twin.run(late)
    assert nightly.mode == "recomputed_from"
    assert nightly.recomputed_from == late - timedelta(days=40)
    twin.assert_identical()

    # And the nights after go back to incremental.
    for day in days[cut + 2 : cut + 6]:
        twin.deliver(day)
        nightly, _ = twin.run(day)
        assert nightly.mode == "incremental"
        twin.assert_identical()


def test_the_same_date_again_with_nothing_new_changes_nothing(
    landing: Path, tmp_path: Path
) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)[:25]
    for day in days:
        twin.deliver(day)
    first, _ = twin.run(days[-1])
    stamps = {d: twin.nightly.snapshot_partition(d).stat().st_mtime_ns for d in first.written}
    again, _ = twin.run(days[-1])
    assert (first.mode, again.mode, again.written) == ("full", "unchanged", [])
    assert {
        d: twin.nightly.snapshot_partition(d).stat().st_mtime_ns for d in first.written
    } == stamps
    twin.assert_identical()


def test_files_are_hashed_once_until_their_size_or_time_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(tmp_path)
    first, second = tmp_path / "staged" / "a.parquet", tmp_path / "staged" / "b.parquet"
    catalog.write_text("one", first)
    catalog.write_text("two", second)
    read: list[Path] = []

    def counting(path: Path) -> str:
        read.append(path)
        return sha256_file(path)

    monkeypatch.setattr(state_module, "sha256_file", counting)
    digests = state_module.cached_sha256(catalog, [first, second])
    assert digests == {first: sha256_file(first), second: sha256_file(second)}
    assert read == [first, second]
    recorded = state_module.HashBook.load(catalog).files["staged/a.parquet"]
    assert (recorded.size, recorded.mtime_ns) == (3, first.stat().st_mtime_ns)

    read.clear()
    assert state_module.cached_sha256(catalog, [first, second]) == digests
    assert read == []

    catalog.write_text("uno", first)  # same size, a new file (atomic rename): read again
    again = state_module.cached_sha256(catalog, [first, second])
    assert read == [first]
    assert again[first] == sha256_file(first) != digests[first]
    second.unlink()
    state_module.cached_sha256(catalog, [first])
    assert set(state_module.HashBook.load(catalog).files) == {"staged/a.parquet"}


def test_one_night_at_a_time_computes_only_the_active_loans_and_equals_a_recomputation(
    landing: Path, tmp_path: Path
) -> None:
    twin = _twin(tmp_path, landing)
    days = _business_dates(landing)
    cut = days.index(next(d for d in days if d >= date(2024, 8, 1)))
    for day in days[:cut]:
        twin.deliver(day)
    twin.run(days[cut - 1])
    nights = []
    twelve = days[cut : cut + 12]
    for day in twelve:
        twin.deliver(day)
        # Each night writes only its own dates: after the last, every partition the
        # nights wrote, the engine state and the curated views equal one recomputation
        # (each night's equality is tested above, in runs of one to thirty days).
        nightly, _ = twin.run(day, scratch=day == twelve[-1])
        nights.append(nightly)
    twin.assert_identical()
    carried = [n for n in nights if n.carried]
    assert len(carried) >= len(nights) - 2  # every night but the month's first
    for night in carried:
        assert night.computed is not None
        assert night.computed < night.carried


def test_bucket_jobs_on_an_fsspec_data_root_put_together_equal_one_run(
    landing: Path, tmp_path: Path
) -> None:
    import fsspec  # type: ignore[import-untyped]

    twin = _twin(tmp_path, landing)
    days = [d for d in _business_dates(landing) if d <= date(2024, 4, 30)]
    for day in days:
        _stage(twin.scratch, landing, day)
    curate(twin.scratch, days[-1])
    chain = [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    rules = {p: performance_rules(d) for p, d in load_deals(twin.scratch).deals.items()}

    url = "memory://abs-bucket-test"
    memory = fsspec.filesystem("memory")
    for name in ENGINE_INPUTS:
        memory.pipe(
            f"/abs-bucket-test/curated/{name}/part-0.parquet",
            twin.scratch.curated(name).read_bytes(),
        )
    jobs = [
        BucketJob(url, "work/engine/run-1", n, 3, tuple(chain), chain[-1], rules, None, None)
        for n in range(3)
    ]
    outputs = run_buckets_here(jobs)

    def scan(name: str) -> pl.LazyFrame:
        return pl.scan_parquet(twin.scratch.curated(name))

    single = engine_batch(
        scan("loans"), scan("schedules"), scan("repayments"), scan("pool_assets"), chain,
        bucket=0, buckets=1, base=chain[-1], rules_by_pool=rules,
    )  # fmt: skip
    expected = single.snapshots.collect()
    assert expected.height > 0
    for as_of in chain:
        parts = [
            read_parquet_at(located(url, o.snapshots[as_of])).lazy()
            for o in outputs
            if as_of in o.snapshots
        ]
        assert len(parts) == 3
        combined = combine_snapshots(parts).collect()
        assert combined.equals(expected.filter(pl.col("as_of_date") == as_of)), as_of
    states = [read_parquet_at(located(url, o.state)).lazy() for o in outputs]
    assert combine_states(states).collect().equals(single.state.loans.collect())
    # Everything went to the URL's file system, nothing to the local data root.
    assert not (twin.scratch.root / "work").exists()
    remove_tree_at(located(url, "work/engine"))
    assert not memory.exists("/abs-bucket-test/work/engine")
    memory.rm("/abs-bucket-test", recursive=True)


def test_a_relative_data_root_is_made_absolute_before_dispatch_and_a_url_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_root("data") == str(tmp_path.resolve() / "data")
    assert absolute_root("s3://bucket/abs/") == "s3://bucket/abs"
    assert located("s3://bucket/abs", Path("curated") / "loans") == "s3://bucket/abs/curated/loans"
