-- The DuckDB reference of the performance engine (benchmarks/engine.py): the same
-- loan-level computation as transforms/performance.py, written independently in SQL
-- from DOMAIN.md's definitions, for one run from nothing with one set of rules.
--
-- Loans are numbered (k) before anything else, so every window, join, group and the
-- final sort work on integers; the text loan_id is joined back at the end. Sums of fen
-- are cast back to BIGINT (DuckDB sums BIGINT into 128-bit HUGEINT, which costs in
-- every later window, join and sort and would be written to Parquet as DOUBLE), and the
-- two as-of joins for purchase and removal days read only the day rows of loans that
-- have one. Four tables are kept (the
-- book, the schedule, the day rows and the pool membership: each is read by several
-- later steps); everything else is a CTE.
--
-- Placeholders: {folder} {output} {last} {dates} {tolerance} {default_dpd}
-- {charge_off_dpd} {advance_days}.

CREATE TEMP TABLE book AS
SELECT (ROW_NUMBER() OVER (ORDER BY loan_id))::INTEGER AS k, loan_id AS lid,
       origination_date AS orig, principal AS lp
FROM read_parquet('{folder}/loans/*.parquet');

-- Schedule: cumulative principal and amount due by instalment.
CREATE TEMP TABLE sched AS
SELECT b.k, s.instalment_no, s.due_date AS due, s.principal_due + s.interest_due AS amount,
       (SUM(s.principal_due) OVER w)::BIGINT AS cum_pdue,
       (SUM(s.principal_due + s.interest_due) OVER w)::BIGINT AS cum_due,
       COUNT(*) OVER (PARTITION BY b.k) AS instalments,
       MAX(s.due_date) OVER (PARTITION BY b.k) AS final_due
FROM read_parquet('{folder}/schedules/*.parquet') s JOIN book b ON s.loan_id = b.lid
WINDOW w AS (PARTITION BY b.k ORDER BY s.instalment_no ROWS UNBOUNDED PRECEDING);

-- Day rows: each loan's opening row, then one row per day with cash, with the running
-- totals, the oldest unpaid instalment and the performing / recovered split.
CREATE TEMP TABLE days AS
WITH ev AS (
  -- Cash events in (value_date, repayment_id) order, signed; principal capped to
  -- [0, principal] cumulatively; d = principal due by value_date + advance days.
  SELECT e.*, LEAST(GREATEST(e.raw, 0), e.lp) AS c_after,
         LEAST(GREATEST(e.raw - e.p, 0), e.lp) AS c_before, COALESCE(s.cum_pdue, 0) AS d
  FROM (
    SELECT k, lp, day, rev, n, p, i, f,
           (SUM(p) OVER (PARTITION BY k ORDER BY n ROWS UNBOUNDED PRECEDING))::BIGINT AS raw
    FROM (
      SELECT b.k, b.lp, r.value_date AS day, r.kind = 'reversal' AS rev,
             ROW_NUMBER() OVER (PARTITION BY b.k ORDER BY r.value_date, r.repayment_id) AS n,
             CASE WHEN r.kind = 'reversal' THEN -1 ELSE 1 END * r.principal_paid AS p,
             CASE WHEN r.kind = 'reversal' THEN -1 ELSE 1 END * r.interest_paid AS i,
             CASE WHEN r.kind = 'reversal' THEN -1 ELSE 1 END * (r.fee_paid + r.penalty_paid) AS f
      FROM read_parquet('{folder}/repayments/*.parquet') r JOIN book b ON r.loan_id = b.lid
      WHERE r.value_date <= DATE '{last}'
    )
  ) e
  ASOF LEFT JOIN sched s ON e.k = s.k AND e.day + {advance_days} >= s.due
), seg AS (
  -- U, the unscheduled principal so far, is a running maximum of the principal paid
  -- ahead of the schedule; each reversal starts a segment whose opening U follows
  -- from the previous segment's last one.
  SELECT *, CASE WHEN rev THEN 0 ELSE GREATEST(c_after - d, 0) END AS x,
         SUM(rev::INTEGER) OVER (PARTITION BY k ORDER BY n ROWS UNBOUNDED PRECEDING) AS sg
  FROM ev
), segs AS (
  SELECT k, sg, MAX(x) AS peak, ARG_MIN(c_after, n) AS r_after,
         ARG_MIN(c_before, n) AS r_before, ARG_MIN(d, n) AS r_d
  FROM seg WHERE k IN (SELECT k FROM seg WHERE sg > 0) GROUP BY k, sg
), walk AS (
  -- Only loans with a reversal need the walk from segment to segment.
  WITH RECURSIVE w(k, sg, u_start, u_end) AS (
    SELECT k, sg, 0::BIGINT, peak FROM segs WHERE sg = 0
    UNION ALL
    SELECT s.k, s.sg, v.u, GREATEST(v.u, s.peak)
    FROM w JOIN segs s ON s.k = w.k AND s.sg = w.sg + 1,
    LATERAL (SELECT CASE WHEN s.r_after < s.r_d THEN LEAST(w.u_end, s.r_after)
                         ELSE GREATEST(w.u_end - (s.r_before - s.r_after), 0) END AS u) v
  )
  SELECT k, sg, u_start FROM w
), split AS (
  SELECT seg.k, seg.day, seg.n, seg.lp, seg.p, seg.i, seg.f, seg.c_after - seg.c_before AS paid,
         GREATEST(COALESCE(walk.u_start, 0),
                  MAX(seg.x) OVER (PARTITION BY seg.k, seg.sg ORDER BY seg.n
                                   ROWS UNBOUNDED PRECEDING)) AS u
  FROM seg LEFT JOIN walk ON walk.k = seg.k AND walk.sg = seg.sg
), cash AS (
  SELECT k, day, lp, SUM(p)::BIGINT AS p, SUM(p + i)::BIGINT AS cash, SUM(i)::BIGINT AS i,
         SUM(f)::BIGINT AS f, SUM(paid)::BIGINT AS paid, SUM(paid - unsched)::BIGINT AS sched,
         SUM(unsched)::BIGINT AS unsched
  FROM (SELECT *, u - LAG(u, 1, 0) OVER (PARTITION BY k ORDER BY n) AS unsched FROM split)
  GROUP BY k, day, lp
  UNION ALL
  SELECT k, DATE '1900-01-01', lp, 0, 0, 0, 0, 0, 0, 0 FROM book
), running AS (
  SELECT *, LEAST(GREATEST((SUM(p) OVER w)::BIGINT, 0), lp) AS cum_paid,
         (SUM(cash) OVER w)::BIGINT AS cum_cash,
         LEAD(day) OVER (PARTITION BY k ORDER BY day) AS next_day
  FROM cash WINDOW w AS (PARTITION BY k ORDER BY day ROWS UNBOUNDED PRECEDING)
), unpaid AS (
  -- DPD counts from the oldest instalment whose cumulative amount due exceeds the
  -- cash by more than the tolerance.
  SELECT r.*, r.cum_paid >= r.lp AS repaid, s.due AS oldest_unpaid
  FROM running r
  ASOF LEFT JOIN (SELECT k, cum_due, due FROM sched WHERE amount > 0) s
    ON r.k = s.k AND r.cum_cash + {tolerance} + 1 <= s.cum_due
), marked AS (
  -- Default: the first day DPD exceeds default_dpd; charge-off: the first day it
  -- reaches charge_off_dpd. DPD grows one a day between two day rows.
  SELECT *,
    MIN(CASE WHEN NOT repaid AND oldest_unpaid IS NOT NULL
              AND (next_day IS NULL OR GREATEST(day, oldest_unpaid + {default_dpd} + 1) < next_day)
             THEN GREATEST(day, oldest_unpaid + {default_dpd} + 1) END)
      OVER (PARTITION BY k) AS default_day,
    MIN(CASE WHEN NOT repaid AND oldest_unpaid IS NOT NULL
              AND (next_day IS NULL OR GREATEST(day, oldest_unpaid + {charge_off_dpd}) < next_day)
             THEN GREATEST(day, oldest_unpaid + {charge_off_dpd}) END)
      OVER (PARTITION BY k) AS charge_off_day,
    repaid AND NOT COALESCE(LAG(repaid) OVER (PARTITION BY k ORDER BY day), FALSE) AS reached
  FROM unpaid
), flagged AS (
  SELECT *, default_day IS NULL OR day <= default_day AS perf FROM marked
)
SELECT k, day, repaid, oldest_unpaid, cum_paid, default_day, charge_off_day,
  (SUM(CASE WHEN perf THEN sched ELSE 0 END) OVER w)::BIGINT AS c_sched,
  (SUM(CASE WHEN perf THEN unsched ELSE 0 END) OVER w)::BIGINT AS c_unsched,
  (SUM(CASE WHEN perf THEN i ELSE 0 END) OVER w)::BIGINT AS c_interest,
  (SUM(CASE WHEN perf THEN f ELSE 0 END) OVER w)::BIGINT AS c_fees,
  (SUM(CASE WHEN perf THEN paid ELSE 0 END) OVER w)::BIGINT AS c_paid_perf,
  (SUM(CASE WHEN perf THEN 0 ELSE paid + i + f END) OVER w)::BIGINT AS c_recoveries,
  MAX(CASE WHEN reached THEN day END) OVER w AS zero_day
FROM flagged WINDOW w AS (PARTITION BY k ORDER BY day ROWS UNBOUNDED PRECEDING);

-- Pool membership at each as-of date: per (loan, pool) the latest effective event on or
-- before it (same day: the addition first); a removal in the period wins, then the
-- latest event, then the lower pool_id.
CREATE TEMP TABLE membership AS
WITH periods AS (
  SELECT as_of, LAG(as_of) OVER (ORDER BY as_of) AS prev_as_of
  FROM (SELECT UNNEST([{dates}]) AS as_of)
), pe AS (
  SELECT b.k, a.pool_id, a.event_date, a.event = 'added' AS added,
         LAG(a.event = 'added') OVER (PARTITION BY b.k, a.pool_id
                                      ORDER BY a.event_date, a.event <> 'added') AS prev_added
  FROM read_parquet('{folder}/pool_assets/*.parquet') a JOIN book b ON a.loan_id = b.lid
  WHERE a.event IN ('added', 'removed')
), eff AS (
  SELECT k, pool_id, event_date, added,
         CASE WHEN added THEN event_date
              ELSE LAG(event_date) OVER (PARTITION BY k, pool_id ORDER BY event_date, NOT added)
         END AS added_day,
         (event_date - DATE '1970-01-01') * 2 + CASE WHEN added THEN 0 ELSE 1 END AS ek
  FROM pe
  WHERE (added AND NOT COALESCE(prev_added, FALSE)) OR (NOT added AND COALESCE(prev_added, FALSE))
), candidates AS (
  SELECT b.k, p.as_of, p.prev_as_of, pr.pool_id, (p.as_of - DATE '1970-01-01') * 2 + 1 AS gk
  FROM (SELECT DISTINCT k, pool_id FROM eff) pr JOIN book b USING (k)
  JOIN periods p ON p.as_of >= b.orig
), matched AS (
  SELECT c.k, c.as_of, c.pool_id, e.added, e.event_date, e.added_day,
         NOT e.added AND (c.prev_as_of IS NULL OR e.event_date > c.prev_as_of) AS removed
  FROM candidates c ASOF JOIN eff e ON c.k = e.k AND c.pool_id = e.pool_id AND c.gk >= e.ek
)
SELECT k, as_of, pool_id, removed, added_day,
       CASE WHEN removed THEN event_date END AS removed_day
FROM matched WHERE added OR removed
QUALIFY ROW_NUMBER() OVER (PARTITION BY k, as_of
                           ORDER BY removed DESC, event_date DESC, pool_id) = 1;

COPY (
WITH periods AS (
  SELECT as_of, LAG(as_of) OVER (ORDER BY as_of) AS prev_as_of
  FROM (SELECT UNNEST([{dates}]) AS as_of)
), terms AS (
  SELECT DISTINCT k, instalments, final_due FROM sched
), grid AS (
  SELECT g.*, d.repaid, d.oldest_unpaid, d.cum_paid, d.default_day, d.charge_off_day,
         d.c_sched, d.c_unsched, d.c_interest, d.c_fees, d.c_paid_perf, d.c_recoveries,
         d.zero_day, COALESCE(sc.instalment_no, 0) AS instalments_due,
         t.instalments, t.final_due, m.pool_id, COALESCE(m.removed, FALSE) AS removed,
         m.added_day, m.removed_day
  FROM (SELECT b.k, b.orig, b.lp, p.as_of, p.prev_as_of
        FROM book b JOIN periods p ON p.as_of >= b.orig) g
  ASOF LEFT JOIN days d ON g.k = d.k AND g.as_of >= d.day
  ASOF LEFT JOIN sched sc ON g.k = sc.k AND g.as_of >= sc.due
  LEFT JOIN terms t ON t.k = g.k
  LEFT JOIN membership m ON m.k = g.k AND m.as_of = g.as_of
), flows AS (
  SELECT *,
    lp - cum_paid AS closing_principal,
    lp - COALESCE(LAG(cum_paid) OVER w, 0) AS opening_principal,
    c_sched - COALESCE(LAG(c_sched) OVER w, 0) AS sched,
    c_unsched - COALESCE(LAG(c_unsched) OVER w, 0) AS unsched,
    c_interest - COALESCE(LAG(c_interest) OVER w, 0) AS interest,
    c_fees - COALESCE(LAG(c_fees) OVER w, 0) AS fees,
    c_recoveries - COALESCE(LAG(c_recoveries) OVER w, 0) AS recoveries,
    LAG(CASE WHEN removed THEN NULL ELSE pool_id END) OVER w AS prev_member,
    CASE WHEN NOT repaid AND oldest_unpaid IS NOT NULL AND oldest_unpaid <= as_of
         THEN as_of - oldest_unpaid ELSE 0 END AS dpd,
    default_day IS NOT NULL AND default_day <= as_of AS defaulted,
    charge_off_day IS NOT NULL AND charge_off_day <= as_of AS charged_off
  FROM grid WINDOW w AS (PARTITION BY k ORDER BY as_of)
), pooled AS (
  -- A purchase takes effect at the end of its day, a removal too; a loan defaulted by
  -- then was already outside the performing pool.
  SELECT *,
    pool_id IS NOT NULL AND (prev_member IS NULL OR prev_member <> pool_id) AS entered,
    CASE WHEN pool_id IS NOT NULL AND (prev_member IS NULL OR prev_member <> pool_id)
              AND (prev_as_of IS NULL OR added_day > prev_as_of)
              AND NOT COALESCE(default_day <= added_day, FALSE)
         THEN added_day END AS start_day,
    CASE WHEN removed AND removed_day IS NOT NULL
              AND NOT COALESCE(default_day <= removed_day, FALSE)
         THEN removed_day END AS end_day
  FROM flows
), at_start AS (
  -- Totals at the end of a purchase or removal day, for the few rows that have one.
  SELECT p.k, p.as_of, s.cum_paid AS s_paid, s.c_sched AS s_sched, s.c_unsched AS s_unsched,
         s.c_interest AS s_interest, s.c_fees AS s_fees, s.c_recoveries AS s_recoveries
  FROM (SELECT k, as_of, start_day FROM pooled WHERE start_day IS NOT NULL) p
  ASOF JOIN (SELECT * FROM days
             WHERE k IN (SELECT k FROM pooled WHERE start_day IS NOT NULL)) s
    ON p.k = s.k AND p.start_day >= s.day
), at_end AS (
  SELECT p.k, p.as_of, e.cum_paid AS e_paid, e.c_sched AS e_sched, e.c_unsched AS e_unsched,
         e.c_interest AS e_interest, e.c_fees AS e_fees, e.c_recoveries AS e_recoveries
  FROM (SELECT k, as_of, end_day FROM pooled WHERE end_day IS NOT NULL) p
  ASOF JOIN (SELECT * FROM days WHERE k IN (SELECT k FROM pooled WHERE end_day IS NOT NULL)) e
    ON p.k = e.k AND p.end_day >= e.day
), bounded AS (
  SELECT * FROM pooled LEFT JOIN at_start USING (k, as_of) LEFT JOIN at_end USING (k, as_of)
), rows AS (
  SELECT *,
    -- The part of each flow outside the pool: before the end of the purchase day,
    -- after the end of the removal day.
    sched - (CASE WHEN end_day IS NOT NULL THEN e_sched ELSE c_sched END
             - CASE WHEN start_day IS NOT NULL THEN s_sched ELSE c_sched - sched END) AS o_sched,
    unsched - (CASE WHEN end_day IS NOT NULL THEN e_unsched ELSE c_unsched END
               - CASE WHEN start_day IS NOT NULL THEN s_unsched ELSE c_unsched - unsched END)
      AS o_unsched,
    interest - (CASE WHEN end_day IS NOT NULL THEN e_interest ELSE c_interest END
                - CASE WHEN start_day IS NOT NULL THEN s_interest ELSE c_interest - interest END)
      AS o_interest,
    fees - (CASE WHEN end_day IS NOT NULL THEN e_fees ELSE c_fees END
            - CASE WHEN start_day IS NOT NULL THEN s_fees ELSE c_fees - fees END) AS o_fees,
    recoveries - (CASE WHEN end_day IS NOT NULL THEN e_recoveries ELSE c_recoveries END
                  - CASE WHEN start_day IS NOT NULL THEN s_recoveries
                         ELSE c_recoveries - recoveries END) AS o_recoveries,
    CASE WHEN entered AND NOT COALESCE(default_day <= prev_as_of, FALSE)
         THEN CASE WHEN start_day IS NOT NULL THEN lp - s_paid ELSE opening_principal END
         ELSE 0 END AS purchased_principal
  FROM bounded
)
SELECT as_of AS as_of_date, b.lid AS loan_id, pool_id, opening_principal, closing_principal,
  sched AS scheduled_principal_paid, unsched AS unscheduled_principal_paid,
  interest AS interest_paid, fees AS fees_paid, dpd::INTEGER AS dpd,
  CASE WHEN dpd = 0 THEN 'current' WHEN dpd <= 30 THEN '1-30' WHEN dpd <= 60 THEN '31-60'
       WHEN dpd <= 90 THEN '61-90' WHEN dpd <= 120 THEN '91-120' WHEN dpd <= 150 THEN '121-150'
       WHEN dpd <= 180 THEN '151-180' ELSE '180+' END AS bucket,
  CASE WHEN removed THEN 'repurchased' WHEN charged_off THEN 'charged_off'
       WHEN defaulted THEN 'defaulted'
       WHEN repaid AND zero_day >= final_due - {advance_days} THEN 'matured'
       WHEN repaid THEN 'prepaid' WHEN dpd > 0 THEN 'delinquent' ELSE 'current' END AS status,
  CASE WHEN defaulted THEN default_day END AS default_date,
  CASE WHEN defaulted THEN r.lp - c_paid_perf ELSE 0 END AS defaulted_principal,
  recoveries, purchased_principal,
  CASE WHEN removed AND end_day IS NOT NULL THEN r.lp - e_paid ELSE 0 END AS removed_principal,
  ((year(as_of) * 12 + month(as_of)) - (year(r.orig) * 12 + month(r.orig)))::INTEGER
    AS months_on_book,
  (CASE WHEN repaid THEN 0 ELSE COALESCE(instalments, 0) - instalments_due END)::INTEGER
    AS remaining_term,
  o_sched AS outside_scheduled_principal_paid, o_unsched AS outside_unscheduled_principal_paid,
  o_interest AS outside_interest_paid, o_fees AS outside_fees_paid,
  o_recoveries AS outside_recoveries,
  -- A default after the end of the removal day is the loan's, outside the pool.
  CASE WHEN defaulted AND default_day > end_day THEN r.lp - c_paid_perf ELSE 0 END
    AS outside_defaulted_principal,
  0::BIGINT AS new_drawings
FROM rows r JOIN book b USING (k)
WHERE opening_principal > 0 OR closing_principal > 0 OR defaulted OR removed
   OR sched <> 0 OR unsched <> 0 OR interest <> 0 OR fees <> 0 OR recoveries <> 0
   OR purchased_principal <> 0
ORDER BY as_of, k
) TO '{output}' (FORMAT parquet);
