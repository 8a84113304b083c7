"""The main pool's servicer also reports a month-end loan tape (for reconciliation).

Besides its cash events the servicer of the revolving trust delivers, from the
cut-off on, a canonical ``loan_tape.csv`` at every month-end for the loans in
the pool: outstanding principal, days past due, status and paid-to-date
totals, as its own books show them. Its books post cash received on the last
day of a month on the next day, so a loan that paid on a month-end shows a
higher balance (and possibly DPD) than the engine computes from the same
repayments: the differences the reconciliation lists.

DPD follows DOMAIN.md on the servicer's posted cash (principal and interest
against the cumulative amounts due, oldest instalment first, a shortfall under
1 yuan counted as paid); above 90 DPD the loan is ``defaulted``, from 180 it is
``charged_off`` with its balance written off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from flows.generator.behaviour import Events
from flows.generator.book import Book, loan_ids
from flows.generator.calendar import I64, to_date
from flows.generator.writer import _write_text, yuan_text

TOLERANCE_FEN = 100
DEFAULT_DPD, CHARGE_OFF_DPD = 90, 180
ADVANCE_DAYS = 7


def _posted(book: Book, written: Events, month_end: int) -> tuple[I64, I64]:
    """Principal and interest the servicer has posted by ``month_end`` (a day's lag)."""
    principal = book.written_principal.copy()
    interest = book.written_interest.copy()
    last_day = written.value_date == month_end
    sign = written.cash_sign()[last_day]
    np.subtract.at(principal, written.loan[last_day], written.principal[last_day] * sign)
    np.subtract.at(interest, written.loan[last_day], written.interest[last_day] * sign)
    return principal, interest


def _days_past_due(book: Book, loan: I64, cash: I64, month_end: int) -> I64:
    """Days since the oldest instalment the posted cash does not cover (0 when none)."""
    dpd = np.zeros(loan.size, dtype=np.int64)
    open_ = np.ones(loan.size, dtype=np.bool_)
    for k in range(1, int(book.term[loan].max(initial=0)) + 1):
        has = open_ & (book.term[loan] >= k)
        if not has.any():
            break
        position = book.schedule_position(loan[has], np.full(int(has.sum()), k))
        due = book.due_date.data[position]
        owed = book.cum_principal_due.data[position] + book.cum_interest_due.data[position]
        short = (owed > cash[has] + TOLERANCE_FEN) & (due <= month_end)
        index = np.flatnonzero(has)[short]
        dpd[index] = month_end - due[short]
        open_[np.flatnonzero(has)[short | (due > month_end)]] = False
    return dpd


def write_servicer_tape(out: Path, book: Book, written: Events, month_end: int) -> set[str]:
    """``out/<month_end>/loan_tape.csv`` for the loans in the pool; the folder written."""
    loan = np.flatnonzero(book.in_pool[: book.count])
    if loan.size == 0:
        return set()
    principal_paid, interest_paid = _posted(book, written, month_end)
    principal_paid = np.clip(principal_paid[loan], 0, book.principal[loan])
    balance = book.principal[loan] - principal_paid
    dpd = np.where(
        balance > 0, _days_past_due(book, loan, principal_paid + interest_paid[loan], month_end), 0
    )
    final = book.due_date.data[book.schedule_position(loan, book.term[loan])]
    charged = (balance > 0) & (dpd >= CHARGE_OFF_DPD)
    status = np.select(
        [
            charged,
            (balance > 0) & (dpd > DEFAULT_DPD),
            (balance > 0) & (dpd > 0),
            (balance == 0) & (month_end + ADVANCE_DAYS < final),
            balance == 0,
        ],
        ["charged_off", "defaulted", "delinquent", "prepaid", "matured"],
        "current",
    )
    day = to_date(month_end)
    frame = pl.DataFrame(
        {
            "as_of_date": [day.isoformat()] * loan.size,
            "loan_id": loan_ids(loan),
            "current_principal": np.where(charged, 0, balance),
            "dpd": dpd,
            "status": status,
            "principal_paid_to_date": principal_paid,
            "interest_paid_to_date": interest_paid[loan],
            "charged_off_principal": np.where(charged, balance, 0),
        }
    ).with_columns(
        yuan_text(c)
        for c in (
            "current_principal",
            "principal_paid_to_date",
            "interest_paid_to_date",
            "charged_off_principal",
        )
    )
    _write_text(out / day.isoformat() / "loan_tape.csv", frame.sort("loan_id").write_csv())
    return {day.isoformat()}
