"""An independent plain-SQL (DuckDB) implementation of the core pool metrics.

Written from DOMAIN.md and the team's conventions, not from the Polars code:
the pool roll-forward with counts, delinquency buckets, WAC and SMM/CPR (over
the opening cohort: loans performing in the pool at the previous period end)
per pool and period end. The tests compare it with ``transforms.pool_metrics`` on
a generated tape; ``benchmarks/metrics.py`` times both.

Input tables (registered by the caller): ``snapshots`` (loan snapshots at
month-ends) and ``loans``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import polars as pl

_PERIODS = """
with as_of as (
    select as_of_date, lag(as_of_date) over (order by as_of_date) as previous_as_of
    from (select distinct as_of_date from snapshots)
), pooled as (
    -- Pool cash: the loan's, less what was paid outside pool membership (before
    -- the end of a purchase day, after a removal day). A removal counts unless
    -- the loan had defaulted by the previous as-of date; a loan removed before
    -- it defaulted left the pool performing, and a default after the removal day
    -- (outside_defaulted_principal) is not the pool's.
    select s.*, a.previous_as_of,
           s.scheduled_principal_paid - s.outside_scheduled_principal_paid as pool_scheduled,
           s.unscheduled_principal_paid - s.outside_unscheduled_principal_paid
               as pool_unscheduled,
           s.status in ('current', 'delinquent') as performing,
           s.removed_principal <> 0
               and not coalesce(s.default_date <= a.previous_as_of, false) as removed_now,
           s.default_date is not null and s.default_date <= s.as_of_date
               and (a.previous_as_of is null or s.default_date > a.previous_as_of)
               and s.removed_principal = 0
               and s.defaulted_principal - s.outside_defaulted_principal > 0
               as defaulted_now
    from snapshots s join as_of a using (as_of_date)
    where s.pool_id is not null
)
"""

ROLLFORWARD = (
    _PERIODS
    + """
, flows as (
    select pool_id, as_of_date, any_value(previous_as_of) as previous_as_of,
           sum(pool_scheduled) as scheduled_principal,
           sum(pool_unscheduled) as unscheduled_principal,
           sum(case when defaulted_now then defaulted_principal - outside_defaulted_principal
                    else 0 end) as defaulted_principal,
           sum(case when removed_now then removed_principal else 0 end) as removed_principal,
           sum(purchased_principal) as purchased_principal,
           sum(case when performing then closing_principal else 0 end) as closing_balance,
           count(*) filter (where performing) as closing_count
    from pooled group by pool_id, as_of_date
)
select f.pool_id, f.as_of_date as period_end,
       coalesce(o.closing_balance, 0) as opening_balance,
       f.scheduled_principal, f.unscheduled_principal, f.defaulted_principal,
       f.removed_principal, f.purchased_principal, f.closing_balance,
       coalesce(o.closing_count, 0) as opening_count, f.closing_count
from flows f
left join flows o on o.pool_id = f.pool_id and o.as_of_date = f.previous_as_of
where f.as_of_date in (select unnest($periods))
order by f.pool_id, f.as_of_date
"""
)

DELINQUENCY = """
with buckets(bucket, bucket_order) as (
    values ('current', 0), ('1-30', 1), ('31-60', 2), ('61-90', 3),
           ('91-120', 4), ('121-150', 5), ('151-180', 6), ('180+', 7)
), performing as (
    select pool_id, as_of_date as period_end, bucket, closing_principal
    from snapshots
    where pool_id is not null and status in ('current', 'delinquent')
      and as_of_date in (select unnest($periods))
), keys as (select distinct pool_id, period_end from performing),
counted as (
    select k.pool_id, k.period_end, b.bucket, b.bucket_order,
           count(p.closing_principal) as count,
           coalesce(sum(p.closing_principal), 0) as balance
    from keys k cross join buckets b
    left join performing p
      on p.pool_id = k.pool_id and p.period_end = k.period_end and p.bucket = b.bucket
    group by all
)
select pool_id, period_end, bucket, count, balance,
       balance / nullif(sum(balance) over (partition by pool_id, period_end), 0)
           as balance_share
from counted
order by pool_id, period_end, bucket_order
"""

WAC = """
select s.pool_id, s.as_of_date as period_end,
       sum(cast(l.annual_rate as double) * s.closing_principal) / sum(s.closing_principal) as wac
from snapshots s join loans l using (loan_id)
where s.pool_id is not null and s.status in ('current', 'delinquent')
  and s.as_of_date in (select unnest($periods))
group by all
having sum(s.closing_principal) > 0
order by 1, 2
"""

CPR = (
    _PERIODS
    + """
, cohort as (
    -- The opening cohort: loans performing in the same pool at the previous as-of date.
    select p.pool_id, p.as_of_date,
           sum(prev.closing_principal) as opening,
           sum(p.pool_scheduled) as scheduled,
           sum(p.pool_unscheduled) as unscheduled
    from pooled p
    join snapshots prev
      on prev.loan_id = p.loan_id and prev.as_of_date = p.previous_as_of
         and prev.pool_id = p.pool_id and prev.status in ('current', 'delinquent')
    group by p.pool_id, p.as_of_date
), periods as (
    select distinct pool_id, as_of_date from pooled
)
select k.pool_id, k.as_of_date as period_end,
       c.unscheduled / nullif(c.opening - c.scheduled, 0) as smm,
       1 - pow(1 - c.unscheduled / nullif(c.opening - c.scheduled, 0), 12) as cpr
from periods k
left join cohort c on c.pool_id = k.pool_id and c.as_of_date = k.as_of_date
where k.as_of_date in (select unnest($periods))
order by 1, 2
"""
)


def reference_metrics(
    snapshots: pl.DataFrame, loans: pl.DataFrame, periods: Sequence[date]
) -> dict[str, pl.DataFrame]:
    """Roll-forward, delinquency buckets, WAC and SMM/CPR computed in DuckDB.

    Args:
        snapshots: Loan snapshots at month-ends (consecutive).
        loans: Loans (``loan_id``, ``annual_rate``).
        periods: Period ends to report.

    Returns:
        ``rollforward``, ``delinquency``, ``wac`` and ``cpr`` frames.
    """
    connection = duckdb.connect()
    try:
        connection.register("snapshots", snapshots.to_arrow())
        connection.register("loans", loans.select("loan_id", "annual_rate").to_arrow())
        parameters = {"periods": list(periods)}
        frames = {
            name: connection.sql(sql, params=parameters).pl()
            for name, sql in (
                ("rollforward", ROLLFORWARD),
                ("delinquency", DELINQUENCY),
                ("wac", WAC),
                ("cpr", CPR),
            )
        }
    finally:
        connection.close()
    # SQL sums of BIGINT are HUGEINT (DECIMAL(38, 0) in Arrow); amounts are whole fen.
    return {
        name: frame.with_columns(pl.col(pl.Decimal).cast(pl.Int64))
        for name, frame in frames.items()
    }
