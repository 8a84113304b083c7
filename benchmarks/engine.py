"""Benchmark: the loan performance engine against an independent DuckDB SQL reference.

For each book size a synthetic book is drawn (every loan originated in the
month before a 12-month window, so each one has up to 12 month-end snapshots;
on-time, late, stopped-then-recovered, prepaying, overpaying and reversed
payers, a pool with a cut-off and repurchases). Both implementations read the
same Parquet inputs (loans, schedules, repayments, pool_assets) and write the
12 month-end snapshots; each runs in its own process so that its wall time and
peak resident memory are its own. The outputs are compared row for row, and
the line ends with engine time / DuckDB time.

The engine runs the way the pipeline runs it on a Dask cluster: in loan
batches (``transforms.batches``, contiguous loan_id ranges of about
``--batch-loans`` loans) taken by ``--workers`` processes. Each batch reads
its range straight from the book (stored in the curated datasets' order, so
the range filter skips the other row groups), is computed and cut by as-of
date on its own, and each as-of date is then the concatenation of the
batches' parts; cutting the ranges, the assembly and the workers' CPU time
are part of the engine's time, and its peak memory is the sum of every
process's own. Books are drawn a million loans at a time (one Parquet file
each), so a 10M book never has to fit in memory either.

    .venv/bin/python benchmarks/engine.py                  # 100k and 1M loans
    .venv/bin/python benchmarks/engine.py --loans 10000000 --no-reference
    .venv/bin/python benchmarks/engine.py --loans 20000 --batch-loans 5000

Targets (issue 16): 1M loans x 12 months in 10 s and 3 GiB; 10M within 16 GiB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import run_child  # noqa: E402 -- after the checkout is on the path
from transforms import schema  # noqa: E402
from transforms.batches import (  # noqa: E402
    LoanRange,
    concat_ranges,
    engine_batch,
    loan_ranges,
)
from transforms.performance import PerformanceRules  # noqa: E402
from transforms.schedules import build_schedules  # noqa: E402

POOL = "P1"
DEFAULT_DPD, CHARGE_OFF_DPD, TOLERANCE, ADVANCE_DAYS = 90, 180, 100, 7
REFERENCE_SQL = Path(__file__).with_name("engine_reference.sql")
"""The DuckDB SQL reference of the same loan-level computation."""
INPUTS = ("loans", "schedules", "repayments", "pool_assets")
OUTPUT_PARQUET: dict[str, Any] = {"compression": "zstd", "statistics": True}
"""How each as-of date's file is written (as the pipeline writes its partitions)."""
IpcCompression = Literal["uncompressed", "lz4"]
SCRATCH_UNCOMPRESSED_LOANS = 2_000_000
"""Up to this many loans the batches' parts are uncompressed Arrow IPC; beyond, LZ4."""
DRAW_LOANS = 1_000_000
"""Loans drawn (and written) at a time."""
WORKER_ENVIRONMENT = {
    # The cores are shared between the worker processes, not within one.
    "POLARS_MAX_THREADS": "1",
    # Polars' allocator (jemalloc) keeps freed pages for 10 s instead of
    # returning them at once: the engine's steps free and allocate columns of
    # the same sizes over and over, and each fresh page costs a page fault
    # (a tenth or more of a batch's CPU time with the default).
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1,narenas:1,oversize_threshold:0",
}
"""Environment of the engine's worker processes."""


def _month_ends(year: int) -> list[date]:
    ends = []
    for month in range(1, 13):
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        ends.append(date.fromordinal(nxt.toordinal() - 1))
    return ends


MONTH_ENDS = _month_ends(2024)
EPOCH = date(1970, 1, 1)


def _day(value: date) -> int:
    return (value - EPOCH).days


# -- the synthetic book ---------------------------------------------------------------


def make_book(n: int, seed: int, out: Path) -> dict[str, int]:
    """Draw ``n`` loans and their cash events, a million at a time.

    Each input is a folder of Parquet files (``<input>/part-<i>.parquet``).
    """
    counts = {"loans": 0, "schedule_rows": 0, "repayments": 0}
    for part, first in enumerate(range(0, n, DRAW_LOANS)):
        drawn = _draw(min(DRAW_LOANS, n - first), seed + part, first, out, part)
        counts = {key: counts[key] + drawn[key] for key in counts}
    return counts


def _draw(n: int, seed: int, first_loan: int, out: Path, part: int) -> dict[str, int]:
    """Draw loans ``first_loan + 1 .. first_loan + n`` and write them as part ``part``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    origination = _day(date(2023, 12, 1)) + rng.integers(0, 31, n)
    terms = np.array([3, 6, 9, 12, 18, 24])
    term = terms[rng.choice(terms.size, n, p=[0.2, 0.25, 0.15, 0.25, 0.1, 0.05])]
    methods = np.array(schema.REPAYMENT_METHODS)
    method = methods[rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05])]
    principal = (np.clip(rng.lognormal(np.log(5_000), 0.8, n), 100, 200_000) * 100).astype(np.int64)
    rate_ppm = rng.choice([0, 79_500, 120_000, 150_000, 182_500, 240_000], n)
    loan_id = pl.Series(np.arange(first_loan + 1, first_loan + n + 1)).cast(pl.String).str.zfill(10)
    loans = pl.DataFrame(
        {
            "loan_id": "L" + loan_id,
            "origination_date": pl.Series(origination.astype(np.int32)).cast(pl.Date),
            "first_due_date": pl.Series(origination.astype(np.int32)).cast(pl.Date),
            "principal": principal,
            "annual_rate": pl.Series(rate_ppm).cast(pl.Decimal(18, 0)) / 1_000_000,
            "term_months": pl.Series(term, dtype=pl.Int32),
            "repayment_method": method,
        }
    ).with_columns(
        pl.col("first_due_date").dt.offset_by("1mo"),
        pl.col("annual_rate").cast(schema.RATE),
    )
    schedules = build_schedules(loans.lazy()).collect()

    # One row per instalment due in the window, with the loan's behaviour.
    last = _day(MONTH_ENDS[-1])
    inst = schedules.with_columns(
        pl.col("due_date").cast(pl.Int32).alias("due"),
        (pl.col("loan_id").str.slice(1).cast(pl.Int64) - 1 - first_loan).alias("j"),
    ).filter(pl.col("due") <= last)
    j = inst["j"].to_numpy()
    k = inst["instalment_no"].to_numpy().astype(np.int64)
    due = inst["due"].to_numpy().astype(np.int64)
    p_due = inst["principal_due"].to_numpy()
    i_due = inst["interest_due"].to_numpy()
    # 0 on time, 1 late, 2 stops (then maybe recovers), 3 prepays part,
    # 4 prepays in full, 5 a bounced payment, 6 overpays at the end.
    kind = rng.choice(7, n, p=[0.72, 0.1, 0.05, 0.05, 0.04, 0.03, 0.01])
    stop = rng.integers(1, 8, n)
    lag = np.where(kind[j] == 1, rng.integers(0, 45, j.size), 0)
    pay = ~((kind[j] == 2) & (k >= stop[j])) & ~((kind[j] == 4) & (k > stop[j]))
    ids = np.arange(j.size)
    parts = [
        {
            "loan": j[pay],
            "day": due[pay] + lag[pay],
            "p": p_due[pay],
            "i": i_due[pay],
            "f": np.where(lag[pay] > 0, 500, 0),
            "kind": np.zeros(int(pay.sum()), dtype=np.int64),
            "seq": ids[pay] * 4,
        }
    ]
    # Partial prepayments: at instalment `stop`, 20% of the principal, then full instalments.
    at_stop = (k == stop[j]) & np.isin(kind[j], [3, 4, 6]) & pay
    extra = np.where(kind[j] == 3, principal[j] // 5, 0)
    extra = np.where(kind[j] == 4, principal[j], extra)  # capped by the engine: the rest
    extra = np.where(kind[j] == 6, principal[j] // 2, extra)
    m = at_stop & (extra > 0)
    parts.append(
        {
            "loan": j[m],
            "day": due[m] + 3,
            "p": extra[m],
            "i": np.zeros(int(m.sum()), dtype=np.int64),
            "f": np.zeros(int(m.sum()), dtype=np.int64),
            "kind": np.where(kind[j[m]] == 3, 1, 2),
            "seq": ids[m] * 4 + 1,
        }
    )
    # A bounced instalment: reversed 3 days later, paid again 2 days after.
    b = (kind[j] == 5) & (k == stop[j]) & pay
    for offset, code, seq in ((3, 4, 2), (5, 0, 3)):
        parts.append(
            {
                "loan": j[b],
                "day": due[b] + lag[b] + offset,
                "p": p_due[b],
                "i": i_due[b],
                "f": np.zeros(int(b.sum()), dtype=np.int64),
                "kind": np.full(int(b.sum()), code),
                "seq": ids[b] * 4 + seq,
            }
        )
    # Recoveries 200 days after the first missed instalment, for half the stoppers.
    r = (kind[j] == 2) & (k == stop[j]) & (rng.random(j.size) < 0.5)
    parts.append(
        {
            "loan": j[r],
            "day": due[r] + 200,
            "p": principal[j[r]] // 4,
            "i": np.zeros(int(r.sum()), dtype=np.int64),
            "f": np.zeros(int(r.sum()), dtype=np.int64),
            "kind": np.full(int(r.sum()), 3),
            "seq": ids[r] * 4 + 1,
        }
    )
    cash = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    keep = cash["day"] <= last
    cash = {key: v[keep] for key, v in cash.items()}
    repayments = (
        pl.DataFrame(cash)
        .sort("seq")
        .select(
            ("R" + (pl.col("seq") + part * 10**10).cast(pl.String).str.zfill(12)).alias(
                "repayment_id"
            ),
            pl.col("loan"),
            pl.col("day").cast(pl.Int32).cast(pl.Date).alias("value_date"),
            pl.col("p").alias("principal_paid"),
            pl.col("i").alias("interest_paid"),
            pl.col("f").alias("fee_paid"),
            pl.lit(0, dtype=pl.Int64).alias("penalty_paid"),
            pl.col("kind").replace_strict(dict(enumerate(schema.REPAYMENT_KINDS))).alias("kind"),
        )
    )
    repayments = repayments.with_columns(
        loans["loan_id"].gather(repayments["loan"]).alias("loan_id")
    ).select(list(schema.REPAYMENTS))
    in_pool = rng.random(n) < 0.7
    removed = in_pool & (rng.random(n) < 0.02)
    cutoff = date(2024, 1, 1)
    pool_assets = pl.concat(
        [
            pl.DataFrame(
                {
                    "pool_id": POOL,
                    "loan_id": loans["loan_id"].filter(pl.Series(in_pool)),
                    "event_date": cutoff,
                    "event": "added",
                    "reason": "cutoff",
                    "purchase_price": principal[in_pool],
                }
            ),
            pl.DataFrame(
                {
                    "pool_id": POOL,
                    "loan_id": loans["loan_id"].filter(pl.Series(removed)),
                    "event_date": pl.Series(
                        (_day(date(2024, 6, 10)) + rng.integers(0, 60, int(removed.sum()))).astype(
                            np.int32
                        )
                    ).cast(pl.Date),
                    "event": "removed",
                    "reason": "repurchase",
                    "purchase_price": None,
                },
                schema_overrides={"purchase_price": pl.Int64},
            ),
        ]
    )
    # Stored in the order the pipeline's curated datasets keep (flows/curate.py).
    frames = {
        "loans": loans,
        "schedules": schedules,
        "repayments": repayments.sort("loan_id", "value_date", "repayment_id"),
        "pool_assets": pool_assets.sort("pool_id", "event_date", "loan_id", "event"),
    }
    for name, frame in frames.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(out / name / f"part-{part:03d}.parquet")
    return {"loans": n, "schedule_rows": schedules.height, "repayments": repayments.height}


# -- the two implementations (each run in a child process) -----------------------------


def _ready() -> int:
    """Nothing: started as soon as the pool opens, so each worker imports while the
    parent cuts the book into ranges."""
    return os.getpid()


def _batch_job(
    folder: str,
    loan_range: LoanRange,
    bucket: int,
    dates: list[date],
    *,
    target: str,
    single: bool,
    scratch: IpcCompression,
) -> dict[str, float]:
    """One batch: the engine on one loan range, its snapshots cut by as-of date.

    The batch reads its loans' rows straight from the book's Parquet files
    (sorted by ``loan_id``, so the range filter skips the other row groups).
    With ``single`` (the only batch) each date goes straight to ``target`` as
    the output; otherwise to ``target/<date>-<bucket>.arrow``, an Arrow IPC
    file (``scratch``: its compression) read back once when the date is put
    together.
    """
    began, cpu = time.perf_counter(), _cpu()
    rules = PerformanceRules(DEFAULT_DPD, CHARGE_OFF_DPD, TOLERANCE, ADVANCE_DAYS)
    loans, schedules, repayments, pool_assets = (
        pl.scan_parquet(Path(folder) / name / "*.parquet") for name in INPUTS
    )
    run = engine_batch(
        loans,
        schedules,
        repayments,
        pool_assets,
        dates,
        loan_range=loan_range,
        rules=rules,
        rules_by_pool={POOL: rules},
    )
    frame = run.snapshots.collect()
    # The snapshots are in (as-of date, loan_id) order: each date is a slice.
    offset = 0
    for as_of, rows in frame.group_by("as_of_date", maintain_order=True).len().iter_rows():
        part = frame.slice(offset, rows)
        offset += rows
        if single:
            part.write_parquet(Path(target) / f"{as_of.isoformat()}.parquet", **OUTPUT_PARQUET)
        else:
            part.write_ipc(
                Path(target) / f"{as_of.isoformat()}-{bucket}.arrow", compression=scratch
            )
    return _job_figures(began, cpu)


def _date_job(parts: list[str], target: str) -> dict[str, float]:
    """One as-of date put together from its batches' parts, taken in range order."""
    began, cpu = time.perf_counter(), _cpu()
    concat_ranges([pl.scan_ipc(path) for path in parts]).sink_parquet(target, **OUTPUT_PARQUET)
    return _job_figures(began, cpu)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _job_figures(began: float, cpu: float) -> dict[str, float]:
    """The job's process, its wall and CPU time, and the process's peak memory so far."""
    return {
        "pid": os.getpid(),
        "seconds": time.perf_counter() - began,
        "cpu": _cpu() - cpu,
        "peak": _peak_bytes(),
    }


def run_polars(
    folder: Path, output: Path, batch_loans: int, dates: list[date], workers: int
) -> tuple[int, int, dict[str, float]]:
    """The engine under test, in batches; one Parquet file per as-of date under ``output``.

    The book is cut into contiguous ``loan_id`` ranges of about
    ``batch_loans`` loans (:func:`transforms.batches.loan_ranges`), as the
    pipeline's snapshot stage cuts it; then ``workers`` processes (one Polars
    thread each) take the batches, and then the as-of dates, as a Dask
    cluster's workers take the pipeline's bucket jobs. Each batch's snapshots
    are cut by as-of date as soon as they are computed (with one batch,
    straight into the output); each date is then the concatenation of its
    batches' parts in range order.

    Returns:
        The number of batches, the sum of the workers' peak memory, and the
        phases' figures (wall and CPU seconds).
    """
    began = time.perf_counter()
    output.mkdir(parents=True)
    peaks: dict[int, int] = {}
    phases: dict[str, float] = {}

    def finished(figures: dict[str, float], phase: str) -> None:
        pid = int(figures["pid"])
        peaks[pid] = max(peaks.get(pid, 0), int(figures["peak"]))
        phases[f"{phase}_cpu"] = phases.get(f"{phase}_cpu", 0.0) + figures["cpu"]

    with tempfile.TemporaryDirectory(dir=output.parent) as scratch, _pool(workers) as pool:
        for _ in range(workers):
            pool.submit(_ready)
        ids = pl.scan_parquet(folder / "loans" / "*.parquet").select("loan_id").collect()
        ranges = loan_ranges(ids.get_column("loan_id"), batch_loans)
        loans = ids.height
        del ids
        phases["ranges_seconds"] = time.perf_counter() - began
        single = len(ranges) == 1
        # Uncompressed parts cost the least to write and read (1.7 GiB of
        # scratch at 1M loans); beyond SCRATCH_UNCOMPRESSED_LOANS, LZ4 keeps
        # them to a tenth of that.
        small = loans <= SCRATCH_UNCOMPRESSED_LOANS
        compression: IpcCompression = "uncompressed" if small else "lz4"
        target = str(output if single else scratch)
        jobs = [
            pool.submit(
                _batch_job,
                str(folder),
                r,
                b,
                dates,
                target=target,
                single=single,
                scratch=compression,
            )
            for b, r in enumerate(ranges)
        ]
        for job in jobs:
            finished(job.result(), "batches")
        phases["batches_seconds"] = time.perf_counter() - began - phases["ranges_seconds"]
        if not single:
            assembly = [
                pool.submit(
                    _date_job,
                    [
                        str(part)
                        for b in range(len(ranges))
                        if (part := Path(scratch) / f"{as_of.isoformat()}-{b}.arrow").exists()
                    ],
                    str(output / f"{as_of.isoformat()}.parquet"),
                )
                for as_of in dates
            ]
            for job in assembly:
                finished(job.result(), "dates")
            phases["dates_seconds"] = (
                time.perf_counter() - began - phases["ranges_seconds"] - phases["batches_seconds"]
            )
    return len(ranges), sum(peaks.values()), phases


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """``workers`` fresh processes, each with :data:`WORKER_ENVIRONMENT`.

    The pool starts its processes as jobs arrive, so the environment stays
    set while the pool is open (this process's Polars has read its own).
    """
    before = {name: os.environ.get(name) for name in WORKER_ENVIRONMENT}
    os.environ.update(WORKER_ENVIRONMENT)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_duckdb(
    folder: Path, output: Path, threads: int, dates: list[date], memory_limit: str
) -> None:
    """The reference: the same computation written independently in DuckDB SQL.

    DuckDB spills to a folder beside the output beyond ``memory_limit``
    (its default, 80 % of RAM, is more than a shared machine can give).
    """
    import duckdb  # noqa: PLC0415 -- only the reference's process needs it (0.3 s to import)

    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    connection.execute(f"SET temp_directory = '{output.parent.as_posix()}/duckdb-spill'")
    connection.execute("SET preserve_insertion_order = false")
    sql = REFERENCE_SQL.read_text(encoding="utf-8").format(
        folder=folder.as_posix(),
        output=output.as_posix(),
        last=dates[-1].isoformat(),
        dates=", ".join(f"DATE '{d.isoformat()}'" for d in dates),
        tolerance=TOLERANCE,
        default_dpd=DEFAULT_DPD,
        charge_off_dpd=CHARGE_OFF_DPD,
        advance_days=ADVANCE_DAYS,
    )
    connection.execute(sql)


def _peak_bytes() -> int:
    """This process's own peak resident memory (``VmHWM``).

    ``ru_maxrss`` is no use in a child: Linux carries it over fork and exec,
    so a child started by a parent that drew a large book reports the
    parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(args: argparse.Namespace) -> None:
    dates = MONTH_ENDS[: args.months]
    began = time.perf_counter()
    batches, worker_peaks, phases = 1, 0, {}
    if args.child == "polars":
        batches, worker_peaks, phases = run_polars(
            Path(args.folder), Path(args.output), args.batch_loans, dates, args.workers
        )
    else:
        run_duckdb(Path(args.folder), Path(args.output), args.threads, dates, args.duckdb_memory)
    seconds = time.perf_counter() - began
    # The workers have exited: their CPU time is in RUSAGE_CHILDREN.
    cpu = sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )
    # A bound on the peak: this process's and every worker's, as if all at once.
    own = _peak_bytes()
    result = {"seconds": seconds, "cpu": cpu, "peak_bytes": own + worker_peaks, "batches": batches}
    if phases:
        # The rest of the CPU time: this process (the ranges, the pool) and the
        # workers' start-up and imports.
        phases["other_cpu"] = cpu - phases.get("batches_cpu", 0) - phases.get("dates_cpu", 0)
        result["phases"] = phases
    print(json.dumps(result | {"own_peak_bytes": own, "worker_peak_bytes": worker_peaks}))


def _measure(kind: str, folder: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    arguments = [
        "--child",
        kind,
        "--folder",
        str(folder),
        "--output",
        str(output),
        "--threads",
        str(args.threads),
        "--duckdb-memory",
        args.duckdb_memory,
        "--batch-loans",
        str(args.batch_loans),
        "--months",
        str(args.months),
        "--workers",
        str(args.workers),
    ]
    return run_child(__file__, arguments, kind)


def _compare(polars_out: Path, duckdb_out: Path, dates: list[date]) -> str:
    """Row-for-row equality, one as-of date at a time (bounded memory)."""
    theirs = pl.scan_parquet(duckdb_out).cast(schema.LOAN_SNAPSHOTS)  # type: ignore[arg-type]
    for as_of in dates:
        a = pl.read_parquet(polars_out / f"{as_of.isoformat()}.parquet")
        b = theirs.filter(pl.col("as_of_date") == as_of).sort("loan_id").collect()
        if not a.equals(b):
            if a.height != b.height:
                return f"differ at {as_of}: {a.height} rows vs {b.height}"
            diff = [c for c in a.columns if not a[c].equals(b[c], check_names=False)]
            return f"differ at {as_of} in {', '.join(diff)}"
    return "identical"


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--loans", "--sizes", dest="sizes", type=int, nargs="*", default=[100_000, 1_000_000]
    )
    parser.add_argument("--10m", dest="ten_million", action="store_true", help="add 10M loans")
    parser.add_argument(
        "--batch-loans", type=int, default=100_000, help="loans per engine batch (hash bucket)"
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="time the engine only (no DuckDB run)"
    )
    parser.add_argument(
        "--months", type=int, default=12, choices=range(1, 13), help="month-end snapshots of 2024"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="engine worker processes (batches at once)"
    )
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--duckdb-memory", default="12GB", help="DuckDB memory_limit")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="append each result as JSON")
    parser.add_argument("--child", choices=["polars", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sizes = [*args.sizes, *([10_000_000] if args.ten_million else [])]
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        base = Path(scratch)
        print(
            f"{'loans':>10} {'events':>10} {'rows':>10} {'batches':>7} {'engine':>9} {'cpu':>8} "
            f"{'peak':>10} {'duckdb':>9} {'cpu':>8} {'peak':>10} {'ratio':>6}  outputs"
        )
        for n in sizes:
            folder = base / f"book-{n}"
            began = time.perf_counter()
            counts = make_book(n, args.seed, folder)
            built = time.perf_counter() - began
            mine = base / f"polars-{n}"
            engine = _measure("polars", folder, mine, args)
            rows = pl.scan_parquet(mine / "*.parquet").select(pl.len()).collect().item()
            result = {
                # The machine is shared: the 1-minute load average when the book was drawn.
                "load": os.getloadavg()[0],
                "loans": n,
                "months": args.months,
                "batch_loans": args.batch_loans,
                "events": counts["repayments"],
                "rows": rows,
                "engine": engine,
            }
            if args.no_reference:
                tail = f"{'-':>9} {'-':>8} {'-':>10} {'-':>6}  not compared"
            else:
                reference = _measure("duckdb", folder, base / f"duckdb-{n}.parquet", args)
                verdict = _compare(mine, base / f"duckdb-{n}.parquet", MONTH_ENDS[: args.months])
                ratio = engine["seconds"] / reference["seconds"]
                result |= {
                    "duckdb": reference,
                    "ratio": ratio,
                    "cpu_ratio": engine["cpu"] / reference["cpu"],
                    "outputs": verdict,
                }
                tail = (
                    f"{reference['seconds']:>8.1f}s {reference['cpu']:>7.1f}s "
                    f"{_gib(reference['peak_bytes']):>10} "
                    f"{ratio:>6.2f}  {verdict}"
                )
            print(
                f"{n:>10,} {counts['repayments']:>10,} {rows:>10,} {int(engine['batches']):>7} "
                f"{engine['seconds']:>8.1f}s {engine['cpu']:>7.1f}s "
                f"{_gib(engine['peak_bytes']):>10} "
                f"{tail}  (book drawn in {built:.1f}s)",
                flush=True,
            )
            if "phases" in engine:
                print(
                    "{:>10} engine phases: ".format("")
                    + ", ".join(f"{name} {value:.1f}s" for name, value in engine["phases"].items()),
                    flush=True,
                )
            if args.json is not None:
                with args.json.open("a", encoding="utf-8") as sink:
                    sink.write(json.dumps(result, sort_keys=True) + "\n")
            for leftover in (mine, base / f"duckdb-{n}.parquet", folder):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
