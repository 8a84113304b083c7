"""Benchmark: a pool delivered as servicer loan tapes beside the repayment-driven path.

For each book size two landing zones are written and run through the same
stages the pipeline runs (``flows.ingest.ingest_dates`` with its contracts and
quarantine, ``flows.curate.curate``, the snapshot stage
``flows.snapshots.build_loan_snapshots`` with its tape stage, then the pool
roll-forward, characteristics and delinquency marts):

- tape: N seasoned loans and 12 month-end ``loan_tape`` snapshots (balance,
  DPD, status, paid-to-date totals, charge-offs, recoveries) and no repayments;
- repayments: the engine benchmark's book (``benchmarks/engine.py``: N loans,
  their cash events over 12 months, a pool) as canonical landing files.

Each path runs in its own process so that its wall time per stage and its peak
resident memory are its own.

    .venv/bin/python benchmarks/loan_tape.py                  # 100k loans
    .venv/bin/python benchmarks/loan_tape.py --sizes 1000000  # 1M (memory permitting)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.engine import MONTH_ENDS, make_book  # noqa: E402 -- after the checkout is on the path
from benchmarks.measure import run_child  # noqa: E402
from flows.catalog import Catalog  # noqa: E402
from flows.curate import curate  # noqa: E402
from flows.generator.writer import two_class_deal, write_deal  # noqa: E402
from flows.ingest import ingest_dates  # noqa: E402
from flows.snapshots import build_loan_snapshots  # noqa: E402
from transforms import schema  # noqa: E402
from transforms.pool_metrics import (  # noqa: E402
    delinquency_buckets,
    pool_characteristics,
    pool_rollforward,
    rollforward_breaks,
)

POOL = "P1"
TAPE_CUTOFF = date(2023, 12, 31)


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    """Canonical landing text: money as yuan with two decimals, everything else as text."""
    columns = []
    for name, dtype in frame.schema.items():
        if (
            name in {c for cols in schema.MONEY_COLUMNS.values() for c in cols}
            and dtype == pl.Int64
        ):
            fen = pl.col(name)
            columns.append(
                pl.when(fen.is_null())
                .then(None)
                .otherwise(
                    pl.concat_str(
                        (fen // 100).cast(pl.String),
                        pl.lit("."),
                        (fen % 100).cast(pl.String).str.zfill(2),
                    )
                )
                .alias(name)
            )
        else:
            columns.append(pl.col(name).cast(pl.String))
    return frame.select(columns)


def _write(landing: Path, day: date, name: str, frame: pl.DataFrame) -> None:
    folder = landing / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    _text(frame).write_parquet(folder / f"{name}.parquet")


def _write_deal(landing: Path, balance: int, balance_source: str) -> None:
    """The benchmark pool's deal file (pool assets of an unknown deal are quarantined)."""
    deal = two_class_deal(
        POOL,
        ("Benchmark pool", "基准资产池"),
        TAPE_CUTOFF,
        balance,
        senior_percent=80,
        senior_coupon="0.0300",
        eligibility={"products": ["cash_loan"]},
        short_name="基准",
        servicer={"name": "Benchmark Servicer", "name_zh": "基准资产服务机构"},
    )
    write_deal(landing, POOL, {**deal, "balance_source": balance_source})


def make_tape_landing(n: int, seed: int, landing: Path) -> int:
    """N seasoned equal-principal loans and their 12 month-end tapes; returns tape rows."""
    rng = np.random.Generator(np.random.PCG64(seed))
    origination = np.datetime64("2023-06-01") + rng.integers(0, 150, n)
    term = rng.choice(np.array([12, 18, 24, 36]), n)
    principal = rng.integers(50, 2_000, n).astype(np.int64) * 1_000
    rate_bp = rng.integers(600, 2_400, n)
    ids = pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(10)
    loans = pl.DataFrame(
        {
            "loan_id": "T" + ids,
            "borrower_id": "B" + ids,
            "product": "cash_loan",
            "origination_date": pl.Series(origination).cast(pl.Date),
            "first_due_date": pl.Series(origination + 31).cast(pl.Date),
            "principal": principal,
            "annual_rate": pl.Series(rate_bp / 10_000).cast(pl.String),
            "term_months": term,
            "repayment_method": "equal_principal",
            "province": "CN-GD",
        }
    )
    _write(landing, TAPE_CUTOFF, "loans", loans)
    _write_deal(landing, int(principal.sum()), "servicer")
    _write(
        landing,
        TAPE_CUTOFF,
        "pool_assets",
        loans.select(
            pl.lit(POOL).alias("pool_id"),
            "loan_id",
            pl.lit(TAPE_CUTOFF).alias("event_date"),
            pl.lit("added").alias("event"),
            pl.lit("cutoff").alias("reason"),
        ),
    )
    instalment = principal // term
    months_paid = ((np.datetime64("2023-12-31") - origination).astype(np.int64) // 30).clip(0)
    balance = np.maximum(principal - instalment * months_paid, 0)
    paid = principal - balance
    interest = np.zeros(n, dtype=np.int64)
    charged = np.zeros(n, dtype=np.int64)
    recovered = np.zeros(n, dtype=np.int64)
    dpd = np.zeros(n, dtype=np.int64)
    late = rng.random(n) < 0.05
    stop_month = rng.integers(0, 12, n)
    prepay_month = np.where(rng.random(n) < 0.1, rng.integers(0, 12, n), 99)
    rows = 0
    for i, as_of in enumerate([TAPE_CUTOFF, *MONTH_ENDS[:-1]]):
        if i > 0:
            stopped = late & (stop_month < i)
            paying = (balance > 0) & ~stopped
            interest += np.where(paying, balance * rate_bp // 120_000, 0)
            step = np.where(prepay_month == i, balance, np.minimum(instalment, balance))
            step = np.where(paying, step, 0)
            balance -= step
            paid += step
            dpd = np.where(stopped & (balance > 0), dpd + 30, 0)
            write_off = (dpd >= 180) & (balance > 0)
            charged = np.where(write_off, balance, charged)
            balance = np.where(write_off, 0, balance)
            recovered += np.where((charged > 0) & ~write_off, charged // 50, 0)
        status = np.select(
            [charged > 0, dpd > 90, dpd > 0, (balance == 0) & (prepay_month <= i), balance == 0],
            ["charged_off", "defaulted", "delinquent", "prepaid", "matured"],
            "current",
        )
        tape = pl.DataFrame(
            {
                "as_of_date": as_of,
                "loan_id": loans["loan_id"],
                "current_principal": balance,
                "dpd": dpd,
                "status": status,
                "principal_paid_to_date": paid,
                "interest_paid_to_date": interest,
                "charged_off_principal": charged,
                "recoveries_to_date": recovered,
            }
        )
        _write(landing, as_of, "loan_tape", tape)
        rows += tape.height
    return rows


def make_repayment_landing(n: int, seed: int, landing: Path, scratch: Path) -> int:
    """The engine benchmark's book as landing files by month-end; returns cash events."""
    counts = make_book(n, seed, scratch)
    loans = pl.read_parquet(scratch / "loans" / "*.parquet").with_columns(
        ("B" + pl.col("loan_id")).alias("borrower_id"),
        pl.lit("cash_loan").alias("product"),
        pl.lit("CN-GD").alias("province"),
    )
    _write(
        landing,
        date(2023, 12, 31),
        "loans",
        loans.select([c for c in schema.LOANS if c in loans.columns]),
    )
    _write_deal(landing, int(loans["principal"].sum()), "engine")
    for name, column in (("repayments", "value_date"), ("pool_assets", "event_date")):
        frame = pl.read_parquet(scratch / name / "*.parquet").with_columns(
            pl.col(column).dt.month_end().alias("_folder")
        )
        for (day,), part in frame.partition_by("_folder", as_dict=True).items():
            columns = schema.REPAYMENTS if name == "repayments" else schema.POOL_ASSETS
            _write(landing, day, name, part.select([c for c in columns if c in part.columns]))
    return counts["repayments"]


def run_path(root: Path) -> dict[str, float]:
    """Ingest, curate, snapshots (engine and tape stage) and the pool marts; seconds per stage."""
    catalog = Catalog(root)
    timings: dict[str, float] = {}
    mark = time.perf_counter()
    dates = catalog.landing_dates()
    outcome = ingest_dates(catalog, dates)
    timings["ingest"] = time.perf_counter() - mark
    quarantined = sum(f.rows_quarantined for f in outcome.files)
    mark = time.perf_counter()
    curated = curate(catalog, dates[-1])
    timings["curate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    assert curated.first_origination is not None
    as_of = [d for d in [TAPE_CUTOFF, *MONTH_ENDS] if d >= curated.first_origination]
    build_loan_snapshots(catalog, as_of, {})
    timings["snapshots"] = time.perf_counter() - mark
    mark = time.perf_counter()
    snapshots = catalog.scan_many(
        [catalog.snapshot_partition(d) for d in catalog.snapshot_dates()], schema.LOAN_SNAPSHOTS
    )
    loans = catalog.scan(catalog.curated("loans"))
    roll = pool_rollforward(snapshots, MONTH_ENDS).collect()
    pool_characteristics(snapshots, loans, MONTH_ENDS).collect()
    delinquency_buckets(snapshots, MONTH_ENDS).collect()
    timings["metrics"] = time.perf_counter() - mark
    timings["rollforward_breaks"] = rollforward_breaks(roll.lazy()).collect().height
    timings["quarantined"] = quarantined
    return timings


def _child(root: Path) -> None:
    timings = run_path(root)
    timings["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(timings))


def _measure(root: Path) -> dict[str, float]:
    return run_child(__file__, ["--child", str(root)], "run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    header = (
        f"{'path':<11} {'loans':>10} {'input rows':>11} {'ingest':>8} {'curate':>8} "
        f"{'snapshots':>9} {'metrics':>8} {'total':>8} {'peak':>10}  checks"
    )
    print(header)
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        base = Path(scratch)
        for n in args.sizes:
            tape_root = base / f"tape-{n}"
            tape_rows = make_tape_landing(n, args.seed, tape_root / "landing")
            paid_root = base / f"repayments-{n}"
            events = make_repayment_landing(n, args.seed, paid_root / "landing", base / f"book-{n}")
            for path, root, rows in (
                ("tape", tape_root, tape_rows),
                ("repayments", paid_root, events),
            ):
                result = _measure(root)
                stages = ("ingest", "curate", "snapshots", "metrics")
                total = sum(result[s] for s in stages)
                print(
                    f"{path:<11} {n:>10,} {rows:>11,} "
                    + " ".join(f"{result[s]:>7.1f}s" for s in stages)
                    + f" {total:>7.1f}s {result['peak_bytes'] / 2**30:>6.2f} GiB  "
                    f"roll-forward breaks {int(result['rollforward_breaks'])}, "
                    f"quarantined {int(result['quarantined'])}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
