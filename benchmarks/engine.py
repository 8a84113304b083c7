"""Benchmark: the loan performance engine against an independent DuckDB SQL reference.

For each book size a synthetic book is drawn (every loan originated in the
month before a 12-month window, so each one has up to 12 month-end snapshots;
on-time, late, stopped-then-recovered, prepaying, overpaying and reversed
payers, a pool with a cut-off and repurchases). Both implementations read the
same Parquet inputs (loans, schedules, repayments, pool_assets) and write the
12 month-end snapshots; each runs in its own process so that its wall time and
peak resident memory are its own. The outputs are compared row for row, and
the line ends with engine time / DuckDB time.

The engine runs the way the pipeline runs it: in loan batches
(``transforms.batches``, loan_id hash buckets of about ``--batch-loans``
loans). With more than one batch the inputs are first split by bucket in one
streaming pass, then each batch is computed and written on its own, and each
as-of date is put together from the batches; the split and the assembly are
part of the engine's time. Books are drawn a million loans at a time (one
Parquet file each), so a 10M book never has to fit in memory either.

    .venv/bin/python benchmarks/engine.py                  # 100k and 1M loans
    .venv/bin/python benchmarks/engine.py --loans 10000000 --no-reference
    .venv/bin/python benchmarks/engine.py --loans 20000 --batch-loans 5000

Targets (issue 16): 1M loans x 12 months in 10 s and 3 GiB; 10M within 16 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transforms import schema  # noqa: E402 -- after the checkout is on the path
from transforms.batches import (  # noqa: E402
    bucket_count,
    engine_batch,
    loan_bucket,
    merge_snapshots,
)
from transforms.performance import PerformanceRules  # noqa: E402
from transforms.schedules import build_schedules  # noqa: E402

POOL = "P1"
DEFAULT_DPD, CHARGE_OFF_DPD, TOLERANCE = 90, 180, 100
INPUTS = ("loans", "schedules", "repayments", "pool_assets")
DRAW_LOANS = 1_000_000
"""Loans drawn (and written) at a time."""


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
    frames = {
        "loans": loans,
        "schedules": schedules,
        "repayments": repayments,
        "pool_assets": pool_assets,
    }
    for name, frame in frames.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(out / name / f"part-{part:03d}.parquet")
    return {"loans": n, "schedule_rows": schedules.height, "repayments": repayments.height}


# -- the two implementations (each run in a child process) -----------------------------


def _split(folder: Path, scratch: Path, buckets: int) -> dict[str, list[pl.LazyFrame]]:
    """Each input split by loan bucket in one streaming pass: per input, a scan per bucket."""
    split: dict[str, list[pl.LazyFrame]] = {}
    for name in INPUTS:
        key = loan_bucket(pl.col("loan_id"), buckets).alias("bucket")
        pl.scan_parquet(folder / name / "*.parquet").sink_parquet(
            pl.PartitionBy(scratch / name, key=key, include_key=False), mkdir=True
        )
        split[name] = [
            pl.scan_parquet(scratch / name / f"bucket={b}" / "*.parquet")
            if (scratch / name / f"bucket={b}").is_dir()
            else pl.scan_parquet(folder / name / "*.parquet").clear()
            for b in range(buckets)
        ]
    return split


def run_polars(folder: Path, output: Path, batch_loans: int, dates: list[date]) -> int:
    """The engine under test, in batches; one Parquet file per as-of date under ``output``.

    Each batch's snapshots are cut by as-of date as soon as they are computed
    (with one batch, straight into the output); each date is then put
    together by merging the batches' parts, each already in ``loan_id``
    order.

    Returns:
        The number of batches.
    """
    scans = {name: pl.scan_parquet(folder / name / "*.parquet") for name in INPUTS}
    buckets = bucket_count(scans["loans"].select(pl.len()).collect().item(), batch_loans)
    rules = PerformanceRules(DEFAULT_DPD, CHARGE_OFF_DPD, TOLERANCE)
    output.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as scratch:
        spill = Path(scratch)
        split = _split(folder, spill, buckets) if buckets > 1 else None
        for b in range(buckets):
            loans, schedules, repayments, pool_assets = (
                split[name][b] if split else scans[name] for name in INPUTS
            )
            # Split inputs are the bucket already: each batch runs as one bucket.
            run = engine_batch(
                loans,
                schedules,
                repayments,
                pool_assets,
                dates,
                bucket=0,
                buckets=1,
                rules=rules,
                rules_by_pool={POOL: rules},
            )
            frame = run.snapshots.collect()
            for (as_of,), part in frame.partition_by(
                "as_of_date", maintain_order=True, as_dict=True
            ).items():
                if buckets == 1:
                    part.write_parquet(output / f"{as_of.isoformat()}.parquet")
                else:
                    part.write_parquet(
                        spill / f"{as_of.isoformat()}-{b}.parquet",
                        compression="lz4",
                        statistics=False,
                    )
            del run, frame
        if buckets > 1:
            for as_of in dates:
                parts = sorted(spill.glob(f"{as_of.isoformat()}-*.parquet"))
                merged = merge_snapshots([pl.scan_parquet(path) for path in parts])
                merged.collect().write_parquet(output / f"{as_of.isoformat()}.parquet")
    return buckets


REFERENCE_SQL = """
-- Loans are numbered (``loan_id`` below is that integer; ``lid`` the text id), so
-- every window, group and join from here on works on integers.
CREATE TEMP TABLE book AS
SELECT ROW_NUMBER() OVER (ORDER BY loan_id)::INT AS loan_id, loan_id AS lid,
       origination_date AS orig, principal AS lp
FROM read_parquet('{folder}/loans/*.parquet');

CREATE TEMP TABLE sched AS
SELECT b.loan_id, instalment_no, due_date, principal_due + interest_due AS amount,
       SUM(principal_due) OVER w AS cum_pdue,
       SUM(principal_due + interest_due) OVER w AS cum_due
FROM read_parquet('{folder}/schedules/*.parquet') s JOIN book b ON s.loan_id = b.lid
WINDOW w AS (PARTITION BY b.loan_id ORDER BY instalment_no ROWS UNBOUNDED PRECEDING);

CREATE TEMP TABLE terms AS
SELECT loan_id, COUNT(*) AS instalments, MAX(due_date) AS final_due FROM sched GROUP BY loan_id;

-- Cash events in order, signed, with the cumulative principal before and after the cap.
CREATE TEMP TABLE ev AS
WITH e AS (
  SELECT b.loan_id, r.value_date AS day, r.kind = 'reversal' AS rev, b.lp,
         CASE WHEN r.kind = 'reversal' THEN -1 ELSE 1 END AS s,
         r.principal_paid, r.interest_paid, r.fee_paid + r.penalty_paid AS fp,
         ROW_NUMBER() OVER (PARTITION BY b.loan_id ORDER BY r.value_date, r.repayment_id) AS n
  FROM read_parquet('{folder}/repayments/*.parquet') r JOIN book b ON r.loan_id = b.lid
  WHERE r.value_date <= DATE '{last}'
), c AS (
  SELECT loan_id, day, rev, lp, n, s * principal_paid AS p, s * interest_paid AS i, s * fp AS f,
         SUM(s * principal_paid) OVER (PARTITION BY loan_id ORDER BY n
                                       ROWS UNBOUNDED PRECEDING) AS raw
  FROM e
)
SELECT c.*, LEAST(GREATEST(raw, 0), lp) AS c_after, LEAST(GREATEST(raw - p, 0), lp) AS c_before,
       COALESCE(s.cum_pdue, 0) AS d
FROM c ASOF LEFT JOIN sched s ON c.loan_id = s.loan_id AND c.day >= s.due_date;

-- U: a running maximum of the principal paid ahead of the schedule, between reversals.
CREATE TEMP TABLE seg AS
SELECT *, CASE WHEN rev THEN 0 ELSE GREATEST(c_after - d, 0) END AS x,
       SUM(rev::INT) OVER (PARTITION BY loan_id ORDER BY n ROWS UNBOUNDED PRECEDING) AS sg
FROM ev;

CREATE TEMP TABLE segs AS
SELECT loan_id, sg, MAX(x) AS peak,
       ARG_MIN(c_after, n) AS r_after, ARG_MIN(c_before, n) AS r_before, ARG_MIN(d, n) AS r_d
FROM seg GROUP BY loan_id, sg;

CREATE TEMP TABLE seg_u AS
WITH RECURSIVE walk(loan_id, sg, u_start, u_end) AS (
  SELECT loan_id, sg, 0::BIGINT, peak FROM segs WHERE sg = 0
  UNION ALL
  SELECT s.loan_id, s.sg, v.u, GREATEST(v.u, s.peak)
  FROM walk w JOIN segs s ON s.loan_id = w.loan_id AND s.sg = w.sg + 1,
  LATERAL (SELECT CASE WHEN s.r_after < s.r_d THEN LEAST(w.u_end, s.r_after)
                       ELSE GREATEST(w.u_end - (s.r_before - s.r_after), 0) END AS u) v
)
SELECT loan_id, sg, u_start FROM walk;

CREATE TEMP TABLE ev_u AS
WITH u AS (
  SELECT seg.*, GREATEST(su.u_start,
           MAX(x) OVER (PARTITION BY seg.loan_id, seg.sg ORDER BY n ROWS UNBOUNDED PRECEDING)) AS u
  FROM seg JOIN seg_u su ON su.loan_id = seg.loan_id AND su.sg = seg.sg
)
SELECT *, c_after - c_before AS paid,
       u - LAG(u, 1, 0) OVER (PARTITION BY loan_id ORDER BY n) AS unsched
FROM u;

-- Day rows: an opening row per loan, then each day with cash.
CREATE TEMP TABLE days0 AS
SELECT loan_id, day, p, cash, i, f, paid, sched, unsched, lp FROM (
  SELECT loan_id, DATE '1900-01-01' AS day, 0::BIGINT AS p, 0::BIGINT AS cash, 0::BIGINT AS i,
         0::BIGINT AS f, 0::BIGINT AS paid, 0::BIGINT AS sched, 0::BIGINT AS unsched, lp
  FROM book
  UNION ALL
  SELECT loan_id, day, SUM(p), SUM(p + i), SUM(i), SUM(f), SUM(paid), SUM(paid - unsched),
         SUM(unsched), ANY_VALUE(lp)
  FROM ev_u GROUP BY loan_id, day
);

CREATE TEMP TABLE days1 AS
WITH t AS (
  SELECT *, LEAST(GREATEST(SUM(p) OVER w, 0), lp) AS cum_paid, SUM(cash) OVER w AS cum_cash,
         LEAD(day) OVER (PARTITION BY loan_id ORDER BY day) AS next_day
  FROM days0 WINDOW w AS (PARTITION BY loan_id ORDER BY day ROWS UNBOUNDED PRECEDING)
)
SELECT t.*, t.cum_paid >= t.lp AS repaid, s.due_date AS oldest_unpaid
FROM t ASOF LEFT JOIN (SELECT loan_id, cum_due, due_date FROM sched WHERE amount > 0) s
  ON t.loan_id = s.loan_id AND t.cum_cash + {tolerance} + 1 <= s.cum_due;

CREATE TEMP TABLE marks AS
SELECT loan_id,
  MIN(CASE WHEN NOT repaid AND oldest_unpaid IS NOT NULL
            AND (next_day IS NULL OR GREATEST(day, oldest_unpaid + {default_dpd} + 1) < next_day)
           THEN GREATEST(day, oldest_unpaid + {default_dpd} + 1) END) AS default_day,
  MIN(CASE WHEN NOT repaid AND oldest_unpaid IS NOT NULL
            AND (next_day IS NULL OR GREATEST(day, oldest_unpaid + {charge_off_dpd} + 1) < next_day)
           THEN GREATEST(day, oldest_unpaid + {charge_off_dpd} + 1) END) AS charge_off_day
FROM days1 GROUP BY loan_id;

CREATE TEMP TABLE days AS
WITH t AS (
  SELECT d.*, m.default_day, m.charge_off_day,
         (m.default_day IS NULL OR d.day <= m.default_day) AS perf,
         d.repaid
           AND NOT COALESCE(LAG(d.repaid) OVER (PARTITION BY d.loan_id ORDER BY d.day), FALSE)
           AS reached
  FROM days1 d JOIN marks m USING (loan_id)
)
SELECT loan_id, day, repaid, oldest_unpaid, cum_paid, default_day, charge_off_day,
  SUM(CASE WHEN perf THEN sched ELSE 0 END) OVER w AS c_sched,
  SUM(CASE WHEN perf THEN unsched ELSE 0 END) OVER w AS c_unsched,
  SUM(CASE WHEN perf THEN i ELSE 0 END) OVER w AS c_interest,
  SUM(CASE WHEN perf THEN f ELSE 0 END) OVER w AS c_fees,
  SUM(CASE WHEN perf THEN paid ELSE 0 END) OVER w AS c_paid_perf,
  SUM(CASE WHEN perf THEN 0 ELSE paid + i + f END) OVER w AS c_recoveries,
  MAX(CASE WHEN reached THEN day END) OVER w AS zero_day
FROM t WINDOW w AS (PARTITION BY loan_id ORDER BY day ROWS UNBOUNDED PRECEDING);

CREATE TEMP TABLE periods AS
SELECT as_of, LAG(as_of) OVER (ORDER BY as_of) AS prev_as_of
FROM (SELECT UNNEST([{dates}]) AS as_of);

-- Pool membership: effective events per (loan, pool), the latest on or before each as-of.
CREATE TEMP TABLE eff AS
WITH pe AS (
  SELECT b.loan_id, a.pool_id, a.event_date, a.event,
         LAG(a.event) OVER (PARTITION BY b.loan_id, a.pool_id
                            ORDER BY a.event_date, CASE WHEN a.event = 'added' THEN 0 ELSE 1 END)
           AS prev_event
  FROM read_parquet('{folder}/pool_assets/*.parquet') a JOIN book b ON a.loan_id = b.lid
  WHERE a.event IN ('added', 'removed')
)
SELECT loan_id, pool_id, event_date, event,
       (event_date - DATE '1970-01-01') * 2 + CASE WHEN event = 'added' THEN 0 ELSE 1 END AS ek
FROM pe
WHERE (event = 'added' AND (prev_event IS NULL OR prev_event <> 'added'))
   OR (event = 'removed' AND prev_event = 'added');

CREATE TEMP TABLE grid AS
SELECT b.loan_id, b.orig, b.lp, p.as_of, p.prev_as_of
FROM book b JOIN periods p ON p.as_of >= b.orig;

CREATE TEMP TABLE membership AS
WITH pairs AS (SELECT DISTINCT loan_id, pool_id FROM eff),
candidates AS (
  SELECT g.loan_id, g.as_of, g.prev_as_of, pr.pool_id,
         (g.as_of - DATE '1970-01-01') * 2 + 1 AS gk
  FROM grid g JOIN pairs pr USING (loan_id)
), c AS (
  SELECT c.loan_id, c.as_of, c.pool_id, e.event, e.event_date, c.prev_as_of
  FROM candidates c ASOF JOIN eff e
    ON c.loan_id = e.loan_id AND c.pool_id = e.pool_id AND c.gk >= e.ek
), k AS (
  SELECT *, event = 'removed' AND (prev_as_of IS NULL OR event_date > prev_as_of) AS removed
  FROM c
)
SELECT loan_id, as_of, pool_id, removed FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY loan_id, as_of
                               ORDER BY removed DESC, event_date DESC, pool_id) AS pick
  FROM k WHERE event = 'added' OR removed
) WHERE pick = 1;

CREATE TEMP TABLE rows AS
WITH s AS (
  SELECT g.*, d.repaid, d.oldest_unpaid, d.cum_paid, d.default_day, d.charge_off_day,
         d.c_sched, d.c_unsched, d.c_interest, d.c_fees, d.c_paid_perf, d.c_recoveries,
         d.zero_day, COALESCE(sc.instalment_no, 0) AS instalments_due,
         t.instalments, t.final_due, m.pool_id, COALESCE(m.removed, FALSE) AS removed
  FROM grid g
  ASOF LEFT JOIN days d ON g.loan_id = d.loan_id AND g.as_of >= d.day
  ASOF LEFT JOIN sched sc ON g.loan_id = sc.loan_id AND g.as_of >= sc.due_date
  LEFT JOIN terms t ON t.loan_id = g.loan_id
  LEFT JOIN membership m ON m.loan_id = g.loan_id AND m.as_of = g.as_of
), f AS (
  SELECT s.*,
    lp - cum_paid AS closing_principal,
    lp - COALESCE(LAG(cum_paid) OVER w, 0) AS opening_principal,
    c_sched - COALESCE(LAG(c_sched) OVER w, 0) AS sched,
    c_unsched - COALESCE(LAG(c_unsched) OVER w, 0) AS unsched,
    c_interest - COALESCE(LAG(c_interest) OVER w, 0) AS interest,
    c_fees - COALESCE(LAG(c_fees) OVER w, 0) AS fees,
    c_recoveries - COALESCE(LAG(c_recoveries) OVER w, 0) AS recoveries,
    LAG(CASE WHEN removed THEN NULL ELSE pool_id END) OVER w AS prev_member,
    CASE WHEN NOT repaid AND oldest_unpaid IS NOT NULL AND oldest_unpaid <= as_of
         THEN (as_of - oldest_unpaid) ELSE 0 END AS dpd,
    default_day IS NOT NULL AND default_day <= as_of AS defaulted,
    charge_off_day IS NOT NULL AND charge_off_day <= as_of AS charged_off
  FROM s WINDOW w AS (PARTITION BY loan_id ORDER BY as_of)
)
SELECT *,
  CASE WHEN removed THEN 'repurchased' WHEN charged_off THEN 'charged_off'
       WHEN defaulted THEN 'defaulted'
       WHEN repaid AND zero_day >= final_due THEN 'matured' WHEN repaid THEN 'prepaid'
       WHEN dpd > 0 THEN 'delinquent' ELSE 'current' END AS status,
  CASE WHEN pool_id IS NOT NULL AND (prev_member IS NULL OR prev_member <> pool_id)
            AND NOT COALESCE(default_day <= prev_as_of, FALSE)
       THEN opening_principal ELSE 0 END AS purchased_principal
FROM f;

COPY (
  SELECT as_of AS as_of_date, bk.lid AS loan_id, pool_id, opening_principal, closing_principal,
    sched AS scheduled_principal_paid, unsched AS unscheduled_principal_paid,
    interest AS interest_paid, fees AS fees_paid, dpd::INT AS dpd,
    CASE WHEN dpd = 0 THEN 'current' WHEN dpd <= 30 THEN '1-30' WHEN dpd <= 60 THEN '31-60'
         WHEN dpd <= 90 THEN '61-90' WHEN dpd <= 120 THEN '91-120' WHEN dpd <= 150 THEN '121-150'
         WHEN dpd <= 180 THEN '151-180' ELSE '180+' END AS bucket,
    status,
    CASE WHEN defaulted THEN default_day END AS default_date,
    CASE WHEN defaulted THEN lp - c_paid_perf ELSE 0 END AS defaulted_principal,
    recoveries, purchased_principal,
    CASE WHEN removed AND NOT defaulted THEN closing_principal ELSE 0 END AS removed_principal,
    ((year(as_of) * 12 + month(as_of)) - (year(orig) * 12 + month(orig)))::INT AS months_on_book,
    (CASE WHEN repaid THEN 0 ELSE instalments - instalments_due END)::INT AS remaining_term
  FROM rows JOIN (SELECT loan_id, lid FROM book) bk USING (loan_id)
  WHERE opening_principal > 0 OR closing_principal > 0 OR defaulted OR removed
     OR sched <> 0 OR unsched <> 0 OR interest <> 0 OR fees <> 0 OR recoveries <> 0
     OR purchased_principal <> 0
  ORDER BY as_of, bk.lid
) TO '{output}' (FORMAT parquet);
"""


def run_duckdb(folder: Path, output: Path, threads: int, dates: list[date]) -> None:
    """The reference: the same computation written independently in DuckDB SQL."""
    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    connection.execute("SET preserve_insertion_order = false")
    sql = REFERENCE_SQL.format(
        folder=folder.as_posix(),
        output=output.as_posix(),
        last=dates[-1].isoformat(),
        dates=", ".join(f"DATE '{d.isoformat()}'" for d in dates),
        tolerance=TOLERANCE,
        default_dpd=DEFAULT_DPD,
        charge_off_dpd=CHARGE_OFF_DPD,
    )
    connection.execute(sql)


def _child(args: argparse.Namespace) -> None:
    dates = MONTH_ENDS[: args.months]
    began = time.perf_counter()
    batches = 1
    if args.child == "polars":
        batches = run_polars(Path(args.folder), Path(args.output), args.batch_loans, dates)
    else:
        run_duckdb(Path(args.folder), Path(args.output), args.threads, dates)
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak, cpu = usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_bytes": peak, "batches": batches}))


def _measure(kind: str, folder: Path, output: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--folder",
        str(folder),
        "--output",
        str(output),
        "--threads",
        str(args.threads),
        "--batch-loans",
        str(args.batch_loans),
        "--months",
        str(args.months),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


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
        "--batch-loans", type=int, default=250_000, help="loans per engine batch (hash bucket)"
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="time the engine only (no DuckDB run)"
    )
    parser.add_argument(
        "--months", type=int, default=12, choices=range(1, 13), help="month-end snapshots of 2024"
    )
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
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
            f"{'loans':>10} {'events':>10} {'rows':>10} {'batches':>7} {'engine':>9} {'peak':>10} "
            f"{'duckdb':>9} {'peak':>10} {'ratio':>6}  outputs"
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
                "loans": n,
                "months": args.months,
                "batch_loans": args.batch_loans,
                "events": counts["repayments"],
                "rows": rows,
                "engine": engine,
            }
            if args.no_reference:
                tail = f"{'-':>9} {'-':>10} {'-':>6}  not compared"
            else:
                reference = _measure("duckdb", folder, base / f"duckdb-{n}.parquet", args)
                verdict = _compare(mine, base / f"duckdb-{n}.parquet", MONTH_ENDS[: args.months])
                ratio = engine["seconds"] / reference["seconds"]
                result |= {"duckdb": reference, "ratio": ratio, "outputs": verdict}
                tail = (
                    f"{reference['seconds']:>8.1f}s {_gib(reference['peak_bytes']):>10} "
                    f"{ratio:>6.2f}  {verdict}"
                )
            print(
                f"{n:>10,} {counts['repayments']:>10,} {rows:>10,} {int(engine['batches']):>7} "
                f"{engine['seconds']:>8.1f}s {_gib(engine['peak_bytes']):>10} "
                f"{tail}  (book drawn in {built:.1f}s)",
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
