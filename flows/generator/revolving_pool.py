"""The demo's revolving pool: Huabei-style card accounts delivered as a monthly loan tape.

A card servicer delivers its accounts once (at the pool's cut-off: no schedule
terms, only the account's opening date, region and revolving interest rate) and
then a month-end ``loan_tape``: statement balance, minimum payment, credit
limit, days past due, status and paid-to-date totals (principal, interest,
fees, recoveries), through its mapping file
(``data_contracts/mappings/card_servicer.mapping.yaml``: its own column names,
status codes and ``YYYYMMDD`` dates, UTF-8). The deal takes the servicer's
balances (``balance_source: servicer``); the disclosure shows the revolving
sections and hides the instalment-only ones with their reason. The deal revolves
for :data:`REVOLVING_MONTHS` months after its cut-off: the accounts' new drawings
are paid for out of principal collections and the notes start to amortise only
after the revolving period.

The simulation is monthly and exact in fen. Each month an open account either
pays its statement in full (no interest: the interest-free period), pays the
minimum (10% of the balance, at least 100 yuan, plus the month's revolving
interest at 0.05% a day), or misses; a missed account cures (paying the
overdue minimums, the month's interest and a late fee) or falls further
behind; past 90 days it is defaulted and at 180 the servicer charges the
balance off and later recovers part of it. Accounts in good standing draw on
their remaining limit; an account that once defaulted never draws again (its line
is frozen), so what it pays afterwards is a recovery on its defaulted balance.
Everything comes from its own ``PCG64`` stream: the same arguments give the same
bytes.
"""

from __future__ import annotations

import calendar
from datetime import date
from functools import partial
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from flows.generator import writer

SOURCE: Final = "card_servicer"
MAPPING: Final = writer.servicer_mapping(SOURCE)

_STATUS: Final = ("N", "O", "D", "W")
"""The servicer's codes: normal, overdue, defaulted (90+), written off."""
CURRENT, LATE, DEFAULTED, CHARGED_OFF = range(4)

_LIMITS_YUAN: Final = (2_000, 5_000, 8_000, 10_000, 15_000, 20_000, 30_000)
_REGIONS: Final = ("CN-GD", "CN-ZJ", "CN-JS", "CN-SH", "CN-BJ", "CN-SC", "CN-HB", "CN-SD")
_FULL, _MINIMUM = 0.55, 0.435
"""Shares of performing accounts paying in full and paying the minimum (the rest miss)."""
_CURE, _DRAW, _RECOVER = 0.5, 0.65, 0.12
_DRAW_SHARE = 1.0
"""An account that draws takes a uniformly random share of its unused limit up to this one:
with it, the accounts draw about what they repay, so the pool's balance holds at its
cut-off level through the revolving period (as a card ABS's pool does)."""
_DAILY_RATE_PPM: Final = 500
"""Revolving interest: 0.05% a day (18.25% a year), in parts per million a day."""
_ANNUAL_RATE: Final = "0.1825"
_LATE_FEE: Final = 3_000
_MINIMUM_FLOOR: Final = 10_000
_CLOSING_LAG_DAYS: Final = 14
_DUE_DAY: Final = 10
"""Statements fall due on the 10th of the month after the statement."""
REVOLVING_MONTHS: Final = 12
"""The revolving period: a card ABS revolves 12 to 24 months after its cut-off, paying for
the accounts' new drawings out of principal collections while the notes do not amortise."""

_I64 = npt.NDArray[np.int64]


def _minimum(balance: _I64) -> _I64:
    """10% of the statement balance, at least 100 yuan, never more than the balance."""
    return np.minimum(np.maximum((balance + 5) // 10, _MINIMUM_FLOOR), balance)


def _interest(balance: _I64, days: int) -> _I64:
    """A month's revolving interest in whole fen, half-up."""
    return (balance * _DAILY_RATE_PPM * days + 500_000) // 1_000_000


def _advance(state: dict[str, Any], rng: np.random.Generator, as_of: date) -> None:
    """Move every account to the statement of ``as_of``."""
    days = calendar.monthrange(as_of.year, as_of.month)[1]
    balance: _I64 = state["balance"]
    status = state["status"]
    limit: _I64 = state["limit"]
    n = balance.size
    behaviour, cure_draw, draw_draw, recover_draw = (rng.random(n) for _ in range(4))
    share = rng.random(n)
    performing = status == CURRENT
    late = (status == LATE) | (status == DEFAULTED)
    owing = balance > 0
    full = performing & owing & (behaviour < _FULL)
    minimum = performing & owing & ~full & (behaviour < _FULL + _MINIMUM)
    missed = performing & owing & ~full & ~minimum
    cured = late & (cure_draw < _CURE)
    overdue_months = np.maximum((state["dpd"] + 29) // 30, 1)
    principal = np.where(full, balance, 0)
    principal = np.where(minimum, _minimum(balance), principal)
    overdue = np.minimum(_minimum(balance) * (overdue_months + 1), balance)
    principal = np.where(cured, overdue, principal)
    interest = np.where(minimum | cured, _interest(balance - principal, days), 0)
    fees = np.where(cured, _LATE_FEE, 0)
    balance = balance - principal
    # Accounts in good standing draw on what is left of their limit; an account that
    # once defaulted has its line frozen for good, even when it pays its arrears.
    good = ((performing & ~missed) | cured) & ~state["frozen"]
    drawing = np.where(
        good & (draw_draw < _DRAW), ((limit - balance) * share * _DRAW_SHARE).astype(np.int64), 0
    )
    balance = balance + np.maximum(drawing, 0)
    dpd = np.where(cured | full | minimum, 0, state["dpd"])
    dpd = np.where(missed, days - _DUE_DAY, dpd)
    dpd = np.where(late & ~cured, dpd + days, dpd)
    new_status = np.where(dpd > 90, DEFAULTED, np.where(dpd > 0, LATE, CURRENT))
    charge = (new_status == DEFAULTED) & (dpd >= 180)
    was_charged = status == CHARGED_OFF
    state["charged"] = np.where(charge, balance, state["charged"])
    balance = np.where(charge, 0, balance)
    new_status = np.where(charge | was_charged, CHARGED_OFF, new_status)
    recover = was_charged & (recover_draw < _RECOVER)
    state["recovered"] = state["recovered"] + np.where(recover, state["charged"] // 20, 0)
    dpd = np.where(was_charged, state["dpd"] + days, dpd)
    state["paid"] = state["paid"] + np.where(was_charged, 0, principal)
    state["interest"] = state["interest"] + np.where(was_charged, 0, interest)
    state["fees"] = state["fees"] + np.where(was_charged, 0, fees)
    frozen = state["frozen"] | (new_status == DEFAULTED) | (new_status == CHARGED_OFF)
    state.update(balance=balance, status=new_status, dpd=dpd, frozen=frozen)


_AMOUNTS: Final = ("STMT_BAL", "MIN_DUE", "CREDIT_LINE")
"""The tape's amounts besides its to-date totals; all are written as yuan with two decimals."""


def _tape(accounts: pl.DataFrame, state: dict[str, Any], as_of: date) -> pl.DataFrame:
    """The servicer's month-end rows: every account, open, closed or written off."""
    n = accounts.height
    balance = state["balance"]
    open_ = state["status"] != CHARGED_OFF
    totals = writer.tape_totals(SOURCE, state)
    frame = pl.DataFrame(
        {
            "STMT_DATE": [as_of.strftime("%Y%m%d")] * n,
            "ACCT_NO": accounts["loan_id"],
            "STMT_BAL": balance,
            "MIN_DUE": np.where(open_, _minimum(balance), 0),
            "CREDIT_LINE": state["limit"],
            "DPD": state["dpd"].astype(np.int64),
            "ACCT_STATUS": np.array(_STATUS)[state["status"]],
            **totals,
        }
    )
    return frame.with_columns(writer.yuan_text(column) for column in (*_AMOUNTS, *totals))


def write_revolving_pool(landing: writer.ServicerLanding, *, accounts: int) -> writer.ServicerPool:
    """Write the card servicer's accounts, pool, month-end statement tapes, mapping and deal.

    Args:
        landing: The main book's landing folder and window; the cut-off is its first month-end.
        accounts: Card accounts in the pool.
    """
    rng = landing.rng(3)
    cutoff = landing.cutoff
    pool_id = f"HB{cutoff.year}-R"
    limit = np.array(_LIMITS_YUAN, dtype=np.int64)[rng.integers(0, len(_LIMITS_YUAN), accounts)]
    limit = limit * 100
    used = rng.uniform(0.0, 0.85, accounts)
    opened = rng.integers(60, 1_500, accounts)
    regions = np.array(_REGIONS)[rng.integers(0, len(_REGIONS), accounts)]
    book = pl.DataFrame(
        {
            "loan_id": [f"HBR{cutoff.year}{i:07d}" for i in range(accounts)],
            "borrower_id": [f"HBC{cutoff.year}{i:07d}" for i in range(accounts)],
            "origination_date": [date.fromordinal(cutoff.toordinal() - int(d)) for d in opened],
            "province": regions,
        }
    )
    state: dict[str, Any] = {
        "balance": (limit * used).astype(np.int64),
        "limit": limit,
        "status": np.full(accounts, CURRENT),
        "frozen": np.zeros(accounts, dtype=np.bool_),
        **writer.zero_totals(accounts, "dpd", "paid", "interest", "fees", "charged", "recovered"),
    }
    return writer.write_servicer_delivery(
        landing,
        SOURCE,
        loans=book.with_columns(
            product=pl.lit("revolving_credit"), annual_rate=pl.lit(_ANNUAL_RATE)
        ),
        tape=partial(_tape, book, state),
        advance=partial(_advance, state, rng),
        deal=_deal(pool_id, cutoff, int(state["balance"].sum())),
    )


def _revolving_period_end(cutoff: date) -> date:
    """The last day of the month :data:`REVOLVING_MONTHS` after the cut-off month."""
    month = cutoff.year * 12 + cutoff.month - 1 + REVOLVING_MONTHS
    year, month = divmod(month, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def _deal(pool_id: str, cutoff: date, balance: int) -> dict[str, Any]:
    names = (
        f"Synthetic Huabei-style Revolving Card Receivables ABS {cutoff.year}-R",
        f"模拟花呗型循环信用账户资产支持专项计划{cutoff.year}年R期",
    )
    deal = writer.two_class_deal(
        pool_id,
        names,
        cutoff,
        balance,
        senior_percent=88,
        senior_coupon="0.0330",
        eligibility={"products": ["revolving_credit"]},
        short_name=f"花呗{cutoff.year % 100:02d}R",
        servicer={"name": "Demo Card Services Co., Ltd.", "name_zh": "模拟信用卡服务有限公司"},
        # A card plan's early amortisation events: obligors paying too little, or too
        # much of the pool past due.
        triggers=[
            writer.trigger(("Payment rate floor", "月还款率低于下限"), "payment_rate below 0.2000"),
            writer.trigger(
                ("Delinquency ratio (31 DPD to default)", "逾期率（逾期31天至违约）超标"),
                "delinquency_ratio above 0.0500",
            ),
        ],
        closing_lag_days=_CLOSING_LAG_DAYS,
    )
    deal["revolving_period_end"] = _revolving_period_end(cutoff)
    return deal
