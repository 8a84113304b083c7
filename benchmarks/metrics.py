"""Benchmark: every metrics mart at 1M loans x 12 months, against the DuckDB reference.

    .venv/bin/python benchmarks/metrics.py [--loans 1000000] [--months 12] [--seed 1]

A synthetic book of loan snapshots is simulated with numpy (originations
spread over the window, equal-principal schedules, prepayments, late payers,
defaults with recoveries, a revolving pool with a cut-off, purchases and
repurchases), so that the roll-forward closes as in real data. Each engine
then runs in its own process, on the same frames held in memory, and reports
wall time, CPU time (wall time is inflated when other work shares the
machine) and the process's peak resident memory:

- ``polars all marts``: ``transforms.pool_marts.metric_marts`` (every mart, including
  stratifications, vintage curves, roll rates, concentration and the
  waterfall);
- ``polars core``: the four metrics the reference implements (roll-forward,
  delinquency buckets, WAC, SMM/CPR);
- ``duckdb core``: ``benchmarks.metrics_reference`` (plain SQL).

The run checks that the core results agree before it prints the figures.
Target: all marts under 30 s, and the Polars core no slower than DuckDB's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.metrics_reference import reference_metrics
from data_contracts.deal import DealTerms
from flows.metrics import pool_terms
from transforms import pool_metrics, schema
from transforms.pool_marts import metric_marts

POOL = "BENCH-1"
STATUSES = schema.LOAN_STATUSES
BUCKET_BOUNDS = np.array([0, 30, 60, 90, 120, 150, 180])


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def simulate(loans: int, months: int, seed: int) -> dict[str, Any]:
    """A synthetic book: loans, pool events and month-end snapshots (month 0 opens the book)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    ends = [_month_end(2024, m) for m in range(months + 1)]
    origination_month = rng.integers(0, months, loans)
    origination_month[: loans // 3] = 0
    principal = rng.integers(1_000, 20_000, loans).astype(np.int64) * 100
    term = rng.choice([3, 6, 9, 12, 18, 24], loans)
    rate_ppm = rng.choice([72_000, 108_000, 150_000, 180_000, 240_000], loans)
    instalment = (principal + term - 1) // term
    cutoff_month = 1
    in_pool = np.zeros(loans, dtype=bool)
    bal = principal.copy()
    missed = np.zeros(loans, dtype=np.int64)
    default_day = np.full(loans, -1, dtype=np.int64)
    defaulted_principal = np.zeros(loans, dtype=np.int64)
    gone = np.zeros(loans, dtype=bool)
    paid_instalments = np.zeros(loans, dtype=np.int64)
    frames = []
    events = []
    epoch = date(1970, 1, 1)
    for t, as_of in enumerate(ends):
        day = (as_of - epoch).days
        alive = (origination_month <= t) & ~gone
        new = origination_month == t
        opening = np.where(new, principal, bal)
        performing = alive & (default_day < 0) & ~new
        u = rng.random(loans)
        prepay = performing & (u < 0.02)
        miss = performing & ~prepay & (u > 0.96)
        pay = performing & ~prepay & ~miss
        sched = np.where(pay | prepay, np.minimum(instalment, opening), 0)
        unsched = np.where(prepay, opening - sched, 0)
        missed = np.where(miss, missed + 1, np.where(pay, 0, missed))
        defaults_now = performing & (missed >= 4)
        sched = np.where(defaults_now, 0, sched)
        default_day = np.where(defaults_now, day - 5, default_day)
        defaulted_principal = np.where(defaults_now, opening, defaulted_principal)
        old_default = alive & (default_day >= 0) & ~defaults_now
        recoveries = np.where(old_default, np.minimum(opening, principal // 50), 0)
        closing = opening - sched - unsched - recoveries
        paid_instalments += (sched > 0).astype(np.int64)
        interest = np.where(pay | prepay, opening * rate_ppm // 12_000_000, 0)
        dpd = np.where((default_day < 0) & (closing > 0), missed * 30, 0) + np.where(
            default_day >= 0, day - default_day + 91, 0
        )
        bucket = np.searchsorted(BUCKET_BOUNDS, dpd, side="left")
        repaid = (closing == 0) & (default_day < 0)
        status = np.where(
            default_day >= 0,
            2,
            np.where(repaid, np.where(prepay, 4, 5), np.where(dpd > 0, 1, 0)),
        )
        purchased = np.zeros(loans, dtype=np.int64)
        if t == cutoff_month:
            chosen = (
                alive
                & (default_day < 0)
                & (closing > 0)
                & (missed == 0)
                & (rng.random(loans) < 0.5)
            )
            in_pool |= chosen
            purchased = np.where(chosen, opening, 0)
            events.append(("cutoff", np.flatnonzero(chosen), day, closing[chosen]))
        elif cutoff_month < t <= cutoff_month + 8:
            bought = new & ~in_pool & (rng.random(loans) < 0.35)
            in_pool |= bought
            purchased = np.where(bought, opening, 0)
            events.append(("revolving_purchase", np.flatnonzero(bought), day - 1, opening[bought]))
        removed = np.zeros(loans, dtype=np.int64)
        if t > cutoff_month:
            buyback = in_pool & (default_day < 0) & (closing > 0) & (rng.random(loans) < 0.002)
            removed = np.where(buyback, closing, 0)
            status = np.where(buyback, 6, status)
        remaining = np.where(closing > 0, np.maximum(term - paid_instalments, 0), 0)
        rows = np.flatnonzero(alive)
        frames.append(
            pl.DataFrame(
                {
                    "as_of_date": pl.Series([as_of] * rows.size, dtype=pl.Date),
                    "loan_id": rows,
                    "pool_in": in_pool[rows] | (removed[rows] > 0),
                    "opening_principal": opening[rows],
                    "closing_principal": closing[rows],
                    "scheduled_principal_paid": sched[rows],
                    "unscheduled_principal_paid": unsched[rows],
                    "interest_paid": interest[rows],
                    "fees_paid": np.zeros(rows.size, dtype=np.int64),
                    "dpd": dpd[rows].astype(np.int32),
                    "bucket_code": bucket[rows],
                    "status_code": status[rows],
                    "default_day": default_day[rows],
                    "defaulted_principal": np.where(
                        default_day[rows] >= 0, defaulted_principal[rows], 0
                    ),
                    "recoveries": recoveries[rows],
                    "purchased_principal": np.where(in_pool[rows], purchased[rows], 0),
                    "removed_principal": removed[rows],
                    "months_on_book": (t - origination_month[rows]).astype(np.int32),
                    "remaining_term": remaining[rows].astype(np.int32),
                    # Instalment loans never draw.
                    "new_drawings": np.zeros(rows.size, dtype=np.int64),
                    # Pool events fall on month-ends here: nothing happens outside a pool.
                    **{
                        outside: np.zeros(rows.size, dtype=np.int64)
                        for outside in schema.LOAN_SNAPSHOTS
                        if outside.startswith("outside_")
                    },
                }
            )
        )
        in_pool &= removed == 0
        bal = closing
        gone |= repaid & alive
    snapshots = (
        pl.concat(frames)
        .with_columns(
            loan_id=pl.format("L{}", pl.col("loan_id").cast(pl.String).str.zfill(8)),
            pool_id=pl.when(pl.col("pool_in")).then(pl.lit(POOL)),
            bucket=pl.col("bucket_code").replace_strict(
                dict(enumerate(schema.DPD_BUCKETS)), return_dtype=pl.String
            ),
            status=pl.col("status_code").replace_strict(
                dict(enumerate(STATUSES)), return_dtype=pl.String
            ),
            default_date=pl.when(pl.col("default_day") >= 0).then(
                pl.col("default_day").cast(pl.Int32).cast(pl.Date)
            ),
        )
        .select(list(schema.LOAN_SNAPSHOTS))
        .cast(schema.LOAN_SNAPSHOTS)  # type: ignore[arg-type]
    )
    ids = np.arange(loans)
    loan_frame = pl.DataFrame(
        {
            "loan_id": ids,
            "borrower_id": rng.integers(0, int(loans * 0.8), loans),
            "product": rng.integers(0, 2, loans),
            "origination_date": [ends[m] - timedelta(days=10) for m in origination_month],
            "principal": principal,
            "rate_ppm": rate_ppm,
            "term_months": term.astype(np.int32),
            "province": rng.integers(0, 31, loans),
            "borrower_age": rng.integers(18, 70, loans).astype(np.int32),
            "credit_score": rng.integers(450, 900, loans).astype(np.int32),
        }
    ).with_columns(
        loan_id=pl.format("L{}", pl.col("loan_id").cast(pl.String).str.zfill(8)),
        borrower_id=pl.format("B{}", pl.col("borrower_id")),
        product=pl.col("product").replace_strict(dict(enumerate(schema.PRODUCTS))),
        annual_rate=(pl.col("rate_ppm").cast(pl.Decimal(18, 6)) / schema.RATE_SCALE).cast(
            schema.RATE
        ),
        province=pl.format("CN-{}", pl.col("province")),
    )
    pool_assets = pl.concat(
        [
            pl.DataFrame(
                {
                    "pool_id": POOL,
                    "loan_id": [f"L{i:08d}" for i in chosen],
                    "event_date": pl.Series(
                        [epoch + timedelta(days=int(day))] * chosen.size, dtype=pl.Date
                    ),
                    "event": "added",
                    "reason": reason,
                    "purchase_price": price,
                },
                schema=schema.POOL_ASSETS,
            )
            for reason, chosen, day, price in events
        ]
    )
    cutoff_balance = int(
        snapshots.filter(
            (pl.col("as_of_date") == ends[cutoff_month])
            & (pl.col("pool_id") == POOL)
            & pl.col("status").is_in(list(schema.PERFORMING_STATUSES))
        )["closing_principal"].sum()
    )
    return {
        "snapshots": snapshots,
        "loans": loan_frame.drop("rate_ppm"),
        "pool_assets": pool_assets,
        "periods": ends[1:],
        "cutoff": ends[cutoff_month],
        "revolving_end": ends[cutoff_month + 8],
        "cutoff_balance": cutoff_balance,
    }


def deal(book: dict[str, Any]) -> DealTerms:
    """Deal terms sized on the simulated pool's cut-off balance (89 / 3.5 / 7.5%)."""
    cutoff = book["cutoff_balance"] // 100
    class_a = cutoff * 89 // 100
    class_b = cutoff * 35 // 1000
    tranches = [
        {"class": "A", "kind": "senior", "original_balance": class_a, "coupon": "0.039"},
        {"class": "B", "kind": "mezzanine", "original_balance": class_b, "coupon": "0.042"},
        {
            "class": "C",
            "kind": "subordinated",
            "original_balance": cutoff - class_a - class_b,
            "coupon": "0",
        },
    ]
    steps = [{"from_period": 1, "threshold": "0.02"}, {"from_period": 7, "threshold": "0.04"}]
    triggers = [
        {"name": "Cumulative default rate", "metric": "cumulative_default_rate", "schedule": steps},
        {"name": "Excess spread", "metric": "excess_spread", "comparison": "below", "threshold": 0},
    ]
    return DealTerms.model_validate(
        {
            "pool_id": POOL,
            "name": "Benchmark pool",
            "cutoff_date": book["cutoff"],
            "closing_date": book["cutoff"] + timedelta(days=10),
            "revolving_period_end": book["revolving_end"],
            "tranches": tranches,
            "triggers": triggers,
        }
    )


def _polars_all(book: dict[str, Any]) -> dict[str, pl.DataFrame]:
    terms = deal(book)
    snapshots = book["snapshots"].lazy()
    return metric_marts(
        month_end_snapshots=snapshots,
        all_snapshots=snapshots,
        cutoff_snapshots=snapshots.filter(pl.col("as_of_date") == book["cutoff"]),
        loans=book["loans"].lazy(),
        pool_assets=book["pool_assets"].lazy(),
        pools={POOL: pool_terms(terms)},
        periods=book["periods"],
    )


def _polars_core(book: dict[str, Any]) -> dict[str, pl.DataFrame]:
    snapshots = book["snapshots"].lazy()
    periods = book["periods"]
    rollforward = pool_metrics.pool_rollforward(snapshots, periods).collect(engine="streaming")
    return {
        "rollforward": rollforward,
        "delinquency": pool_metrics.delinquency_buckets(snapshots, periods).collect(
            engine="streaming"
        ),
        "characteristics": pool_metrics.pool_characteristics(
            snapshots, book["loans"].lazy(), periods
        ).collect(engine="streaming"),
        "rates": pool_metrics.with_period_rates(
            rollforward.lazy(), pool_metrics.pool_collections(snapshots, periods)
        ).collect(),
    }


def _duckdb_core(book: dict[str, Any]) -> dict[str, pl.DataFrame]:
    return reference_metrics(book["snapshots"], book["loans"], book["periods"])


ENGINES = {
    "polars all marts": _polars_all,
    "polars core": _polars_core,
    "duckdb core": _duckdb_core,
}


def _run(engine: str, path: str, meta: dict[str, Any], queue: Any) -> None:
    book = {
        **meta,
        "snapshots": pl.read_parquet(f"{path}/snapshots.parquet"),
        "loans": pl.read_parquet(f"{path}/loans.parquet"),
        "pool_assets": pl.read_parquet(f"{path}/pool_assets.parquet"),
    }
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began, cpu = time.perf_counter(), time.process_time()
    result = ENGINES[engine](book)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    core = {}
    if engine == "polars core":
        core = {
            "rollforward": result["rollforward"],
            "delinquency": result["delinquency"],
            "wac": result["characteristics"].select("pool_id", "period_end", "wac"),
            "cpr": result["rates"].select("pool_id", "period_end", "smm", "cpr"),
        }
    elif engine == "duckdb core":
        core = result
    rows = sum(frame.height for frame in result.values())
    queue.put((engine, seconds, cpu, loaded / 1024, peak / 1024, rows, core))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    began = time.perf_counter()
    book = simulate(args.loans, args.months, args.seed)
    print(
        f"simulated {args.loans:,} loans x {args.months} months: "
        f"{book['snapshots'].height:,} snapshot rows in {time.perf_counter() - began:.1f} s"
    )
    breaks = pool_metrics.rollforward_breaks(
        pool_metrics.pool_rollforward(book["snapshots"].lazy(), book["periods"])
    ).collect()
    print(f"roll-forward breaks in the simulated book: {breaks.height}")
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        book["snapshots"].write_parquet(f"{tmp}/snapshots.parquet")
        book["loans"].write_parquet(f"{tmp}/loans.parquet")
        book["pool_assets"].write_parquet(f"{tmp}/pool_assets.parquet")
        meta = {k: v for k, v in book.items() if k not in ("snapshots", "loans", "pool_assets")}
        results = {}
        for engine in ENGINES:
            queue = context.Queue()
            process = context.Process(target=_run, args=(engine, tmp, meta, queue))
            process.start()
            results[engine] = queue.get()
            process.join()
    cores = {name: results[name][-1] for name in ("polars core", "duckdb core")}
    for name in ("rollforward", "delinquency", "wac", "cpr"):
        left, right = cores["polars core"][name], cores["duckdb core"][name]
        right = right.join(
            left.select("pool_id", "period_end").unique(), on=["pool_id", "period_end"]
        )
        left = left.join(
            right.select("pool_id", "period_end").unique(), on=["pool_id", "period_end"]
        )
        assert_frame_equal(
            left.select(right.columns).sort(right.columns[:3]),
            right.sort(right.columns[:3]),
            check_exact=False,
            rel_tol=1e-9,
            check_dtypes=False,
        )
    print("core results agree (roll-forward, delinquency buckets, WAC, SMM/CPR)")
    print(
        f"{'engine':<18}{'wall s':>8}{'CPU s':>8}{'data MiB':>10}{'peak MiB':>10}{'rows out':>10}"
    )
    for engine, seconds, cpu, loaded, peak, rows, _ in results.values():
        print(f"{engine:<18}{seconds:>8.2f}{cpu:>8.2f}{loaded:>10.0f}{peak:>10.0f}{rows:>10,}")
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    all_marts = results["polars all marts"][1]
    ratio = results["polars core"][1] / results["duckdb core"][1]
    print(
        f"all marts {all_marts:.1f} s (target < 30 s: {'met' if all_marts < 30 else 'MISSED'}); "
        f"polars core / duckdb core = {ratio:.2f} ({'met' if ratio <= 1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
