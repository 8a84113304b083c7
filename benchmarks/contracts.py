"""Benchmark: checking a loan-snapshot partition against its contract.

Snapshots are derived data, checked by the contract compiled to Polars
expressions (``data_contracts.polars_checks``); delivered data goes through the
same contract's Great Expectations suite. This times both on one synthetic
snapshot frame of ``--rows`` rows (every row valid, so every rule scans every
row), each in its own process so that its peak resident memory is its own.

    .venv/bin/python benchmarks/contracts.py                  # 1M rows, Polars only
    .venv/bin/python benchmarks/contracts.py --gx             # and the GX suite

Target (issue 16): 1M rows in 2 s.
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

from benchmarks.measure import run_child  # noqa: E402 -- after the checkout is on the path
from transforms import schema  # noqa: E402


def make_snapshots(rows: int, seed: int) -> pl.DataFrame:
    """``rows`` valid snapshot rows of one as-of date, with every status and bucket."""
    rng = np.random.Generator(np.random.PCG64(seed))
    dpd = np.where(rng.random(rows) < 0.9, 0, rng.integers(1, 400, rows)).astype(np.int32)
    bounds = np.array([0, 30, 60, 90, 120, 150, 180])
    bucket = np.array(schema.DPD_BUCKETS)[(dpd[:, None] > bounds).sum(axis=1)]
    status = np.where(dpd > 90, "defaulted", np.where(dpd > 0, "delinquent", "current"))
    closing = rng.integers(0, 5_000_000, rows)
    return pl.DataFrame(
        {
            "as_of_date": date(2024, 6, 30),
            "loan_id": pl.Series(np.arange(rows)).cast(pl.String).str.zfill(10),
            "pool_id": pl.Series(rng.random(rows) < 0.7).replace_strict(
                {True: "HB2024-1", False: None}, return_dtype=pl.String
            ),
            "opening_principal": closing + rng.integers(0, 100_000, rows),
            "closing_principal": closing,
            "scheduled_principal_paid": rng.integers(0, 100_000, rows),
            "unscheduled_principal_paid": np.zeros(rows, dtype=np.int64),
            "interest_paid": rng.integers(0, 10_000, rows),
            "fees_paid": np.zeros(rows, dtype=np.int64),
            "dpd": dpd,
            "bucket": bucket,
            "status": status,
            "default_date": pl.Series(np.where(dpd > 90, 19_800, -1), dtype=pl.Int32)
            .replace(-1, None)
            .cast(pl.Date),
            "defaulted_principal": np.where(dpd > 90, closing, 0),
            "recoveries": np.zeros(rows, dtype=np.int64),
            "purchased_principal": np.zeros(rows, dtype=np.int64),
            "removed_principal": np.zeros(rows, dtype=np.int64),
            "months_on_book": rng.integers(0, 24, rows).astype(np.int32),
            "remaining_term": rng.integers(0, 24, rows).astype(np.int32),
            "new_drawings": np.zeros(rows, dtype=np.int64),
            # Loans in a pool all period: none of their cash fell outside it.
            **{
                outside: np.zeros(rows, dtype=np.int64)
                for outside in schema.LOAN_SNAPSHOTS
                if outside.startswith("outside_")
            },
        }
    ).cast(schema.LOAN_SNAPSHOTS)  # type: ignore[arg-type]


def _check(kind: str, path: Path) -> None:
    from data_contracts.contract import load_contract  # noqa: PLC0415 - child only

    frame = pl.read_parquet(path)
    contract = load_contract("loan_snapshots")
    began, cpu = time.perf_counter(), time.process_time()
    if kind == "polars":
        from data_contracts.polars_checks import check_frame  # noqa: PLC0415

        outcome = check_frame(contract, frame)
    else:
        from data_contracts.validate import validate_frame  # noqa: PLC0415

        outcome = validate_frame(contract, frame)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    failures = outcome.failures.height
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_bytes": peak, "failures": failures}))


def _measure(kind: str, path: Path) -> dict[str, float]:
    return run_child(__file__, ["--child", kind, "--frame", str(path)], kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--gx", action="store_true", help="also time the GX suite")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--child", choices=["polars", "gx"], help=argparse.SUPPRESS)
    parser.add_argument("--frame", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _check(args.child, args.frame)
        return
    print(f"{'rows':>10} {'checker':>8} {'seconds':>8} {'cpu':>8} {'peak':>10} {'failures':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            path = Path(scratch) / f"snapshots-{rows}.parquet"
            make_snapshots(rows, args.seed).write_parquet(path)
            for kind in ("polars", "gx") if args.gx else ("polars",):
                result = _measure(kind, path)
                print(
                    f"{rows:>10,} {kind:>8} {result['seconds']:>7.2f}s {result['cpu']:>7.2f}s "
                    f"{result['peak_bytes'] / 2**30:>6.2f} GiB {int(result['failures']):>8}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
