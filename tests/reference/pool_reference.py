"""A deliberately simple recomputation of the pool figures, in plain Python loops.

Written from DOMAIN.md and the conventions the metrics contract states, not from
``transforms/``: it imports nothing from there. Every loan is walked day by day
from origination, so the code stays close to the definitions (DPD, default,
charge-off, the split of principal into scheduled and unscheduled, the pool's
membership); it is slow and only meant for a tape of a few hundred loans.

Inputs are plain dicts (the rows of the curated loans, repayments and pool
events); amounts are integer fen, rates parts per million.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import Any

PERFORMING = ("current", "delinquent")
BUCKETS = ("current", "1-30", "31-60", "61-90", "91-120", "121-150", "151-180", "180+")


def half_up(value: Fraction) -> int:
    """Round a non-negative rational half-up to an integer."""
    return int((2 * value.numerator + value.denominator) // (2 * value.denominator))


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def schedule(loan: Mapping[str, Any]) -> list[tuple[date, int, int]]:
    """(due date, principal due, interest due) per instalment, DOMAIN.md "Loan mechanics"."""
    principal = int(loan["principal"])
    n = int(loan["term_months"])
    r = Fraction(int(loan["rate_ppm"]), 12 * 1_000_000)
    method = loan["repayment_method"]
    rows: list[tuple[int, int]] = []
    balance = principal
    if method == "equal_instalment":
        if r == 0:
            payment = half_up(Fraction(principal, n))
        else:
            growth = (1 + r) ** n
            payment = half_up(principal * r * growth / (growth - 1))
        for k in range(1, n + 1):
            interest = half_up(balance * r)
            due = balance if k == n else min(payment - interest, balance)
            rows.append((due, interest))
            balance -= due
    elif method == "equal_principal":
        each = half_up(Fraction(principal, n))
        for k in range(1, n + 1):
            interest = half_up(balance * r)
            due = balance if k == n else min(each, balance)
            rows.append((due, interest))
            balance -= due
    elif method == "interest_only":
        for k in range(1, n + 1):
            rows.append((principal if k == n else 0, half_up(principal * r)))
    elif method == "bullet":
        rows = [(0, 0)] * (n - 1) + [(principal, half_up(principal * r * n))]
    else:
        raise ValueError(f"unknown method {method}")
    first = loan["first_due_date"]
    return [(add_months(first, k), p, i) for k, (p, i) in enumerate(rows)]


@dataclass
class Rules:
    default_dpd: int = 90
    charge_off_dpd: int = 180
    tolerance: int = 100
    advance_days: int = 7


@dataclass
class LoanDay:
    """A loan's position at the end of one day (cumulative since origination)."""

    paid: int = 0
    scheduled: int = 0
    unscheduled: int = 0
    interest: int = 0
    fees: int = 0
    recoveries: int = 0
    performing_paid: int = 0
    dpd: int = 0
    default_day: date | None = None
    charge_off_day: date | None = None
    zero_day: date | None = None
    instalments_due: int = 0


@dataclass
class LoanHistory:
    """A loan's end-of-day positions on the days asked for."""

    loan: Mapping[str, Any]
    final_due: date
    instalments: int
    at: dict[date, LoanDay] = field(default_factory=dict)


def walk_loan(
    loan: Mapping[str, Any], cash: Sequence[Mapping[str, Any]], days: Iterable[date], rules: Rules
) -> LoanHistory:
    """Walk one loan day by day and keep its position on each day of ``days``."""
    plan = schedule(loan)
    principal = int(loan["principal"])
    wanted = sorted(d for d in set(days) if d >= loan["origination_date"])
    history = LoanHistory(loan, plan[-1][0], len(plan))
    if not wanted:
        return history
    by_day: dict[date, list[Mapping[str, Any]]] = defaultdict(list)
    for row in cash:
        by_day[row["value_date"]].append(row)
    raw = 0  # signed principal before the cap
    cash_total = 0  # principal + interest, what DPD compares with the amounts due
    ahead = 0  # running "principal paid ahead of the schedule"
    state = LoanDay()
    day = loan["origination_date"]
    while day <= wanted[-1]:
        for row in sorted(by_day.get(day, []), key=lambda x: x["repayment_id"]):
            sign = -1 if row["kind"] == "reversal" else 1
            p = sign * int(row["principal_paid"])
            i = sign * int(row["interest_paid"])
            f = sign * (int(row["fee_paid"]) + int(row["penalty_paid"]))
            before = min(max(raw, 0), principal)
            raw += p
            after = min(max(raw, 0), principal)
            cash_total += p + i
            horizon = day + timedelta(days=rules.advance_days)
            due_so_far = sum(pd for d, pd, _ in plan if d <= horizon)
            if sign > 0:
                new_ahead = max(ahead, 0, after - due_so_far)
            elif after < due_so_far:
                new_ahead = min(ahead, after)
            else:
                new_ahead = max(0, ahead - (before - after))
            unscheduled = new_ahead - ahead
            ahead = new_ahead
            paid = after - before
            performing = state.default_day is None or day <= state.default_day
            if performing:
                state.scheduled += paid - unscheduled
                state.unscheduled += unscheduled
                state.interest += i
                state.fees += f
                state.performing_paid += paid
            else:
                state.recoveries += paid + i + f
            state.paid = after
        repaid = state.paid >= principal
        if repaid and state.zero_day is None:
            state.zero_day = day
        if not repaid:
            state.zero_day = None
        # DPD: the oldest instalment whose cumulative amount due exceeds the cash by
        # more than the tolerance.
        dpd = 0
        if not repaid:
            running = 0
            for due_day, pd, idue in plan:
                if pd + idue == 0:
                    continue
                running += pd + idue
                if running - cash_total > rules.tolerance:
                    dpd = max(0, (day - due_day).days)
                    break
        state.dpd = dpd
        if state.default_day is None and dpd > rules.default_dpd:
            state.default_day = day
        if state.charge_off_day is None and dpd >= rules.charge_off_dpd:
            state.charge_off_day = day
        state.instalments_due = sum(1 for d, _, _ in plan if d <= day)
        if day in wanted:
            history.at[day] = LoanDay(**vars(state))
        day += timedelta(days=1)
    return history


def _bucket(dpd: int) -> str:
    bounds = (0, 30, 60, 90, 120, 150, 180)
    return BUCKETS[sum(1 for b in bounds if dpd > b)]


def _months_between(later: date, earlier: date) -> int:
    return (later.year * 12 + later.month) - (earlier.year * 12 + earlier.month)


@dataclass
class Membership:
    """One loan's effective pool events (repeated adds and stray removals dropped)."""

    events: list[tuple[date, str]]

    def member_on(self, day: date) -> bool:
        state = False
        for event_day, event in self.events:
            if event_day > day:
                break
            state = event == "added"
        return state

    def removed_between(self, start: date | None, end: date) -> bool:
        return any(
            event == "removed" and (start is None or d > start) and d <= end
            for d, event in self.events
        )

    def last(self, kind: str, start: date | None, end: date) -> date | None:
        """The day of the latest ``kind`` event in ``(start, end]``, if any."""
        days = [d for d, event in self.events if event == kind and d <= end]
        days = [d for d in days if start is None or d > start]
        return days[-1] if days else None

    def days(self) -> list[date]:
        return [d for d, _ in self.events]


def memberships(pool_events: Iterable[Mapping[str, Any]], pool_id: str) -> dict[str, Membership]:
    raw: dict[str, list[tuple[date, int, str]]] = defaultdict(list)
    for row in pool_events:
        if row["pool_id"] == pool_id:
            rank = 0 if row["event"] == "added" else 1
            raw[row["loan_id"]].append((row["event_date"], rank, row["event"]))
    out = {}
    for loan_id, events in raw.items():
        kept: list[tuple[date, str]] = []
        for d, _, event in sorted(events):
            previous = kept[-1][1] if kept else None
            # Repeated adds, and removals of a loan not in the pool, change nothing.
            changes = previous != "added" if event == "added" else previous == "added"
            if changes:
                kept.append((d, event))
        out[loan_id] = Membership(kept)
    return out


@dataclass
class Row:
    """A pool loan's figures for one period, as the definitions use them."""

    status: str
    opening: int
    closing: int
    scheduled: int
    unscheduled: int
    interest: int
    fees: int
    recoveries: int
    defaulted_now: int
    removed: int
    purchased: int
    in_cohort: bool
    dpd: int
    remaining_term: int
    months_on_book: int


def pool_rows(
    history: LoanHistory,
    membership: Membership,
    grid: Sequence[date],
    t: date,
    rules: Rules,
) -> Row | None:
    """The loan's row in the pool for the period ending ``t`` (None: not in the pool)."""
    loan = history.loan
    if t < loan["origination_date"] or t not in history.at:
        return None
    dates = [d for d in grid if d >= loan["origination_date"]]
    position = dates.index(t)
    prev = dates[position - 1] if position else None
    grid_prev = grid[grid.index(t) - 1] if grid.index(t) else None
    removed = membership.removed_between(grid_prev, t)
    member = membership.member_on(t)
    if not member and not removed:
        return None
    now = history.at[t]
    before = history.at[prev] if prev is not None else LoanDay()
    principal = int(loan["principal"])
    defaulted = now.default_day is not None and now.default_day <= t
    defaulted_before = (
        now.default_day is not None and grid_prev is not None and now.default_day <= grid_prev
    )
    if removed:
        status = "repurchased"
    elif now.charge_off_day is not None and now.charge_off_day <= t:
        status = "charged_off"
    elif defaulted:
        status = "defaulted"
    elif now.paid >= principal:
        assert now.zero_day is not None
        late = (history.final_due - now.zero_day).days <= rules.advance_days
        status = "matured" if late else "prepaid"
    elif now.dpd > 0:
        status = "delinquent"
    else:
        status = "current"
    if prev is None:
        was_member = False
    else:
        prev_grid_prev = grid[grid.index(prev) - 1] if grid.index(prev) else None
        was_member = membership.member_on(prev) and not membership.removed_between(
            prev_grid_prev, prev
        )
    opening = principal - before.paid
    joined = not was_member and not defaulted_before

    def performing_on(day: date) -> bool:
        return now.default_day is None or now.default_day > day

    # A purchase or removal inside the period takes effect on its day, for a
    # loan still performing then: the pool holds the loan from the end of the
    # purchase day to the end of the removal day, and only that cash is its.
    bought_on = membership.last("added", grid_prev, t) if not was_member else None
    if bought_on is not None and performing_on(bought_on):
        start = history.at.get(bought_on, LoanDay())
        purchased = principal - start.paid
    else:
        start = before
        purchased = opening if joined else 0
    removed_on = membership.last("removed", grid_prev, t) if removed else None
    left_performing = removed_on is not None and performing_on(removed_on)
    end = history.at[removed_on] if left_performing and removed_on is not None else now
    defaulted_now = (
        principal - now.performing_paid
        if defaulted and not left_performing and (grid_prev is None or now.default_day > grid_prev)  # type: ignore[operator]
        else 0
    )
    return Row(
        status=status,
        opening=opening,
        closing=principal - now.paid,
        scheduled=end.scheduled - start.scheduled,
        unscheduled=end.unscheduled - start.unscheduled,
        interest=end.interest - start.interest,
        fees=end.fees - start.fees,
        recoveries=end.recoveries - start.recoveries,
        defaulted_now=defaulted_now,
        removed=principal - end.paid if left_performing else 0,
        purchased=purchased,
        in_cohort=purchased == 0 and opening > 0 and prev is not None and not defaulted_before,
        dpd=now.dpd,
        remaining_term=0 if now.paid >= principal else history.instalments - now.instalments_due,
        months_on_book=_months_between(t, loan["origination_date"]),
    )


def _concentration(
    performing: Sequence[tuple[Mapping[str, Any], Row]], total: int
) -> dict[str, Any]:
    """Obligor shares of the performing balance, and the province shares."""
    by_obligor: dict[str, int] = defaultdict(int)
    by_province: dict[str, int] = defaultdict(int)
    for loan, row in performing:
        by_obligor[loan["borrower_id"]] += row.closing
        by_province[loan["province"] or "unknown"] += row.closing
    ranked = sorted(by_obligor.values(), reverse=True)
    # The largest obligors above 1% of the balance, ties by borrower id; no id is kept.
    largest = sorted(by_obligor.items(), key=lambda item: (-item[1], item[0]))
    top = [
        {"rank": i, "balance": _money(b), "balance_share": b / total}
        for i, (_, b) in enumerate([x for x in largest if x[1] * 100 > total][:20], start=1)
    ]
    return {
        "top_obligors": top,
        "top1_obligor_share": _ratio(sum(ranked[:1]), total),
        "top10_obligor_share": _ratio(sum(ranked[:10]), total),
        "hhi_obligor": float(sum(Fraction(b, total) ** 2 for b in ranked)) if total else None,
        "province_shares": {p: _ratio(b, total) for p, b in sorted(by_province.items())},
    }


def _purchased(bought: Sequence[tuple[Mapping[str, Any], Row]]) -> dict[str, Any]:
    """The loans bought in the period, weighted by the principal bought."""
    total = 0
    rate = 0
    term = 0
    loan_ids = set()
    for loan, r in bought:
        total += r.purchased
        rate += int(loan["rate_ppm"]) * r.purchased
        term += r.remaining_term * r.purchased
        loan_ids.add(loan["loan_id"])
    if not loan_ids:
        return {
            "purchased_wac": None,
            "purchased_wam_months": None,
            "purchased_average_balance": None,
        }
    return {
        "purchased_wac": _ratio(rate, total * 1_000_000),
        "purchased_wam_months": _ratio(term, total),
        "purchased_average_balance": _money(half_up(Fraction(total, len(loan_ids)))),
    }


def _ratio(numer: int | float, denom: int | float) -> float | None:
    return None if denom == 0 else numer / denom


def _money(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def pool_figures(
    *,
    loans: Sequence[Mapping[str, Any]],
    repayments: Sequence[Mapping[str, Any]],
    pool_events: Sequence[Mapping[str, Any]],
    pool_id: str,
    cutoff: date,
    grid: Sequence[date],
    periods: Sequence[date],
    rules: Rules,
    denominator: str,
) -> dict[date, dict[str, Any]]:
    """The figures of each period as metrics.json states them (money as yuan strings).

    Args:
        loans: Curated loans with ``rate_ppm`` added.
        repayments: Curated repayments.
        pool_events: Curated pool events.
        pool_id: The pool.
        cutoff: Its cut-off date.
        grid: Every snapshot date the pipeline used, sorted (month-ends, cut-offs).
        periods: Month-ends to report (after the cut-off month).
        rules: The deal's definitions.
        denominator: ``initial`` or ``initial_plus_purchases``.
    """
    cash: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in repayments:
        cash[row["loan_id"]].append(row)
    members = memberships(pool_events, pool_id)
    in_pool = [loan for loan in loans if loan["loan_id"] in members]
    # Each loan's position is also kept on its pool event days: purchases and
    # removals take effect there.
    histories = {
        loan["loan_id"]: walk_loan(
            loan, cash[loan["loan_id"]], [*grid, *members[loan["loan_id"]].days()], rules
        )
        for loan in in_pool
    }
    month_ends = [d for d in grid if (d + timedelta(days=1)).day == 1]

    def rows_at(t: date, chain: Sequence[date]) -> list[tuple[Mapping[str, Any], Row]]:
        out = []
        for loan in in_pool:
            row = pool_rows(histories[loan["loan_id"]], members[loan["loan_id"]], chain, t, rules)
            if row is not None:
                out.append((loan, row))
        return out

    # The cut-off balance: performing loans of the pool at the cut-off date.
    cutoff_balance = sum(r.closing for _, r in rows_at(cutoff, grid) if r.status in PERFORMING)
    figures: dict[date, dict[str, Any]] = {}
    cumulative = {"defaulted": 0, "recoveries": 0, "purchased": 0}
    # Collection periods start in the month after the cut-off month.
    first_reported = date(
        cutoff.year, cutoff.month, calendar.monthrange(cutoff.year, cutoff.month)[1]
    )
    for t in month_ends:
        if t <= first_reported:
            continue
        # Period 1 opens at the cut-off date (cash up to it is the seller's); the
        # others at the previous month-end. Every snapshot date in between splits
        # the period into parts whose flows add up.
        first = t == month_ends[month_ends.index(first_reported) + 1]
        prev = cutoff if first else month_ends[month_ends.index(t) - 1]
        parts = [d for d in grid if prev < d <= t]
        by_part = {d: rows_at(d, grid) for d in parts}
        rows = [row for d in parts for row in by_part[d]]
        bought = {loan["loan_id"] for loan, r in rows if r.purchased != 0}
        opening_rows = [r for _, r in rows_at(prev, grid) if r.status in PERFORMING]
        performing = [(loan, r) for loan, r in by_part[t] if r.status in PERFORMING]
        opening = sum(r.closing for r in opening_rows)
        closing = sum(r.closing for _, r in performing)
        scheduled = sum(r.scheduled for _, r in rows)
        unscheduled = sum(r.unscheduled for _, r in rows)
        interest = sum(r.interest for _, r in rows)
        fees = sum(r.fees for _, r in rows)
        recoveries = sum(r.recoveries for _, r in rows)
        defaulted = sum(r.defaulted_now for _, r in rows)
        purchased = sum(r.purchased for _, r in rows)
        # The opening cohort: loans performing in the pool at the period start.
        cohort = [
            (d, r)
            for d in parts
            for loan, r in by_part[d]
            if r.in_cohort and loan["loan_id"] not in bought
        ]
        c_open = sum(r.opening for d, r in cohort if d == parts[0])
        c_sched = sum(r.scheduled for _, r in cohort)
        c_unsched = sum(r.unscheduled for _, r in cohort)
        c_default = sum(r.defaulted_now for _, r in cohort)
        cumulative["defaulted"] += defaulted
        cumulative["recoveries"] += recoveries
        cumulative["purchased"] += purchased
        if t not in periods:
            continue
        smm = _ratio(c_unsched, c_open - c_sched)
        mdr = _ratio(c_default, c_open)
        base = cutoff_balance + (
            cumulative["purchased"] if denominator == "initial_plus_purchases" else 0
        )
        weight = sum(r.closing for _, r in performing)
        by_bucket: dict[str, list[int]] = {b: [0, 0] for b in BUCKETS}
        for _, r in performing:
            by_bucket[_bucket(r.dpd)][0] += 1
            by_bucket[_bucket(r.dpd)][1] += r.closing
        count = len(performing)
        figures[t] = {
            "pool": {
                "opening_balance": _money(opening),
                "scheduled_principal": _money(scheduled),
                "unscheduled_principal": _money(unscheduled),
                "defaulted_principal": _money(defaulted),
                "removed_principal": _money(sum(r.removed for _, r in rows)),
                "purchased_principal": _money(purchased),
                # Repayment-driven loans never draw: new drawings are a revolving account's.
                "new_drawings": _money(0),
                "closing_balance": _money(closing),
                "cutoff_balance": _money(cutoff_balance),
                "pool_factor": _ratio(closing, cutoff_balance),
                "opening_count": len(opening_rows),
                "closing_count": count,
            },
            "collections": {
                "principal": _money(scheduled + unscheduled),
                "interest": _money(interest),
                "fees": _money(fees),
                "recoveries": _money(recoveries),
                "total": _money(scheduled + unscheduled + interest + fees + recoveries),
            },
            "characteristics": {
                "wac": _ratio(
                    sum(int(loan["rate_ppm"]) * r.closing for loan, r in performing),
                    weight * 1_000_000,
                ),
                "wam_months": _ratio(
                    sum(r.remaining_term * r.closing for _, r in performing), weight
                ),
                "wala_months": _ratio(
                    sum(r.months_on_book * r.closing for _, r in performing), weight
                ),
                "average_balance": _money(half_up(Fraction(weight, count))) if count else None,
                "loan_count": count,
                "obligor_count": len({loan["borrower_id"] for loan, _ in performing}),
            },
            "delinquency": [
                {
                    "bucket": b,
                    "count": by_bucket[b][0],
                    "balance": _money(by_bucket[b][1]),
                    "balance_share": _ratio(by_bucket[b][1], weight),
                }
                for b in BUCKETS
            ],
            "performance": {
                "smm": smm,
                "cpr": None if smm is None else 1 - (1 - smm) ** 12,
                "mdr": mdr,
                "cdr": None if mdr is None else 1 - (1 - mdr) ** 12,
                "payment_rate": _ratio(scheduled + unscheduled + interest + fees, opening),
                "cumulative_default_rate": _ratio(cumulative["defaulted"], base),
                "cumulative_net_loss_rate": _ratio(
                    cumulative["defaulted"] - cumulative["recoveries"], base
                ),
                "recovery_rate": _ratio(cumulative["recoveries"], cumulative["defaulted"]),
            },
            "concentration": _concentration(performing, weight),
            "delinquency_ratio": _ratio(
                sum(r.closing for _, r in performing if r.dpd > 30), weight
            ),
            "revolving": {
                "purchased_count": sum(1 for _, r in rows if r.purchased != 0),
                "purchased_principal": _money(purchased),
                **_purchased([(loan, r) for loan, r in rows if r.purchased != 0]),
            },
        }
    return figures


# --------------------------------------------------------------------------- card tape


def card_pool_rollforward(
    tape: Iterable[Mapping[str, Any]],
    pool_events: Iterable[Mapping[str, Any]],
    *,
    pool_id: str,
    periods: Sequence[date],
    default_dpd: int,
    charge_off_dpd: int,
) -> dict[date, dict[str, str]]:
    """The roll-forward of a card pool delivered only as month-end statements.

    DOMAIN.md's roll-forward, account by account between consecutive statements:
    principal collected is the increase of principal paid to date; what the
    account drew is the rest of its balance change (closing - opening + collected
    + charged off, never negative), a new drawing (新增用款), never a purchase; an
    account defaults at its first statement past ``default_dpd``, reaching
    ``charge_off_dpd``, or that the servicer reports defaulted or charged off, its
    defaulted principal being its balance then plus what was charged off; from
    then on it is out of the performing pool. Only the cut-off pool is handled (no
    purchases or removals after it).
    """
    members = {
        e["loan_id"]
        for e in pool_events
        if e["pool_id"] == pool_id and e["event"] == "added" and e["reason"] == "cutoff"
    }
    assert not any(e["pool_id"] == pool_id and e["reason"] != "cutoff" for e in pool_events), (
        "only a cut-off pool"
    )
    statements: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in tape:
        if row["loan_id"] in members:
            statements[row["loan_id"]].append(row)
    totals: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for rows in statements.values():
        rows.sort(key=lambda r: r["as_of_date"])
        defaulted = False
        for before, now in pairwise(rows):
            if defaulted:
                break
            day = now["as_of_date"]
            opening, closing = int(before["current_principal"]), int(now["current_principal"])
            charged = int(now["charged_off_principal"] or 0) - int(
                before["charged_off_principal"] or 0
            )
            collected = int(now["principal_paid_to_date"]) - int(before["principal_paid_to_date"])
            drawn = max(closing - opening + collected + charged, 0)
            defaulted = (
                now["status"] in ("defaulted", "charged_off")
                or now["dpd"] > default_dpd
                or now["dpd"] >= charge_off_dpd
                or charged > 0
            )
            period = totals[day]
            period["opening"] += opening
            period["collected"] += collected
            period["drawn"] += drawn
            period["defaulted"] += closing + charged if defaulted else 0
            period["closing"] += 0 if defaulted else closing
    return {
        t: {
            "opening_balance": _money(totals[t]["opening"]),
            "scheduled_principal": _money(totals[t]["collected"]),
            "unscheduled_principal": _money(0),
            "defaulted_principal": _money(totals[t]["defaulted"]),
            "removed_principal": _money(0),
            "purchased_principal": _money(0),
            "new_drawings": _money(totals[t]["drawn"]),
            "closing_balance": _money(totals[t]["closing"]),
        }
        for t in periods
    }


# --------------------------------------------------------------------------- the waterfall


def _exchange_days() -> frozenset[date]:
    import warnings

    import exchange_calendars  # type: ignore[import-untyped]  # no type information

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calendar_ = exchange_calendars.get_calendar("XSHG", start="2015-01-05")
        return frozenset(d.date() for d in calendar_.sessions)


def _payment_date(period_end: date, day: int, open_days: frozenset[date]) -> date:
    paid = add_months(date(period_end.year, period_end.month, day), 1)
    while paid not in open_days:
        paid += timedelta(days=1)
    return paid


def _fraction(start: date, end: date, day_count: str) -> Fraction:
    if day_count == "ACT/365":
        return Fraction((end - start).days, 365)
    if day_count == "ACT/360":
        return Fraction((end - start).days, 360)
    d1 = min(start.day, 30)
    d2 = min(end.day, 30) if d1 == 30 else end.day
    return Fraction(360 * (end.year - start.year) + 30 * (end.month - start.month) + d2 - d1, 360)


def _fen(text: str) -> int:
    whole, cents = text.lstrip("-").split(".")
    value = int(whole) * 100 + int(cents)
    return -value if text.startswith("-") else value


def add_waterfall(
    figures: dict[date, dict[str, Any]],
    *,
    deal: Any,
    pool_events: Sequence[Mapping[str, Any]],
    delinquency_ratio: Mapping[date, float | None],
) -> None:
    """Add ``tranches``, ``triggers`` and ``performance.excess_spread`` to each period.

    DOMAIN.md "Tranches, waterfall, triggers" and the conventions: fees and note
    interest accrue on the opening balances for the interest period's day-count
    fraction; triggers test the period's figures before principal is paid and
    a breach switches to sequential pay from its own period; purchases made in
    the breach period are paid, later ones are not.
    """
    open_days = _exchange_days()
    rule = deal.payment_rule
    ppm = 1_000_000
    classes = list(deal.tranches)
    balances = [t.original_balance for t in classes]
    arrears = [0] * len(classes)
    fee_arrears = 0
    principal_account = 0
    deficiency = 0
    early = False
    previous_payment: date | None = None
    prices: dict[date, int] = defaultdict(int)
    for row in pool_events:
        if row["pool_id"] == deal.pool_id and row["event"] == "added":
            end = add_months(date(row["event_date"].year, row["event_date"].month, 1), 1)
            prices[end - timedelta(days=1)] += int(row["purchase_price"] or 0)
    for t in sorted(figures):
        f = figures[t]
        number = (t.year - deal.cutoff_date.year) * 12 + t.month - deal.cutoff_date.month
        paid_on = _payment_date(t, rule.day_of_month, open_days)
        fraction = _fraction(previous_payment or deal.closing_date, paid_on, deal.day_count)
        previous_payment = paid_on
        opening = _fen(f["pool"]["opening_balance"])
        interest = _fen(f["collections"]["interest"])
        fees = _fen(f["collections"]["fees"])
        cash = interest + fees + _fen(f["collections"]["recoveries"])
        income_in = cash

        def pay(due: int) -> int:
            nonlocal cash
            paid = min(cash, max(due, 0))
            cash -= paid
            return paid

        taxes = half_up(interest * Fraction(int(deal.fees.tax_on_interest * ppm), ppm))
        trustee, management, custody, servicer = (
            half_up(opening * Fraction(int(rate * ppm), ppm) * fraction)
            for rate in (
                deal.fees.trustee,
                deal.fees.management,
                deal.fees.custody,
                deal.fees.servicer,
            )
        )
        paid_fees = [
            pay(taxes),
            pay(trustee + fee_arrears),
            pay(management),
            pay(custody),
            pay(servicer),
        ]
        expenses_due = taxes + trustee + management + custody + servicer
        fee_arrears = expenses_due + fee_arrears - sum(paid_fees)
        due = [
            half_up(b * Fraction(int(c.coupon * ppm), ppm) * fraction)
            for b, c in zip(balances, classes, strict=True)
        ]
        paid_interest = [0] * len(classes)
        note_interest = 0
        for i, c in enumerate(classes):
            if c.kind != "subordinated":
                note_interest += due[i]
                paid_interest[i] = pay(due[i] + arrears[i])
        spread = interest + fees - expenses_due - note_interest
        excess = spread / opening * 12 if opening else None
        metrics = {
            **f["performance"],
            "excess_spread": excess,
            "delinquency_ratio": delinquency_ratio.get(t),
        }
        triggers = []
        breach = False
        for trig in deal.triggers:
            threshold = float(trig.threshold_for(number))
            actual = metrics.get(trig.metric)
            hit = actual is not None and (
                actual > threshold if trig.comparison == "above" else actual < threshold
            )
            breach = breach or (hit and trig.consequence == "early_amortisation")
            triggers.append(
                {"name": trig.name, "threshold": threshold, "actual": actual, "breached": hit}
            )
        deficiency += _fen(f["pool"]["defaulted_principal"])
        top_up = pay(deficiency)
        deficiency -= top_up
        residual = [0] * len(classes)
        if classes[-1].kind == "subordinated":
            paid_interest[-1] = pay(due[-1])
            residual[-1] = pay(cash)
        else:
            pay(cash)
        for i, c in enumerate(classes):
            if c.kind != "subordinated":
                arrears[i] += due[i] - paid_interest[i]
        principal_in = (
            _fen(f["pool"]["scheduled_principal"])
            + _fen(f["pool"]["unscheduled_principal"])
            + _fen(f["pool"]["removed_principal"])
            + top_up
        )
        account_opening = principal_account
        funds = principal_in + principal_account
        revolving_period = deal.revolving_period_end is not None and t <= deal.revolving_period_end
        in_revolving = revolving_period and not early
        paid_principal = [0] * len(classes)
        if in_revolving:
            bought = min(funds, prices.get(t, 0))
            funds -= bought
        if in_revolving and not breach:
            principal_account = funds
        else:
            for i in range(len(classes)):
                paid_principal[i] = min(funds, balances[i])
                funds -= paid_principal[i]
            principal_account = 0
        early = early or breach
        collected = principal_in - top_up + income_in
        f["accounts"] = [
            {
                "account": "collection",
                "opening": "0.00",
                "inflow": _money(collected),
                "outflow": _money(collected),
                "closing": "0.00",
            },
            {
                "account": "principal",
                "opening": _money(account_opening),
                "inflow": _money(principal_in),
                "outflow": _money(account_opening + principal_in - principal_account),
                "closing": _money(principal_account),
            },
            {
                "account": "income",
                "opening": "0.00",
                "inflow": _money(income_in),
                "outflow": _money(income_in - cash),
                "closing": _money(cash),
            },
        ]
        f["expenses"] = {
            "taxes": _money(paid_fees[0]),
            "management_fee": _money(paid_fees[1] + paid_fees[2]),
            "custody_fee": _money(paid_fees[3]),
            "servicer_fee": _money(paid_fees[4]),
        }
        tranches = []
        for i, c in enumerate(classes):
            tranches.append(
                {
                    "class": c.class_name,
                    "opening_balance": _money(balances[i]),
                    "interest_paid": _money(paid_interest[i]),
                    "principal_paid": _money(paid_principal[i]),
                    "residual_paid": _money(residual[i]),
                    "closing_balance": _money(balances[i] - paid_principal[i]),
                    "coupon": float(c.coupon),
                    "bond_factor": (balances[i] - paid_principal[i]) / c.original_balance,
                }
            )
            balances[i] -= paid_principal[i]
        f["tranches"] = tranches
        f["triggers"] = triggers
        f["performance"]["excess_spread"] = excess
