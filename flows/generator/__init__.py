"""Synthetic loan tapes: a Huabei/Jiebei-style book and its revolving trust.

``generate_landing`` writes a landing zone as DESIGN.md describes it: one
folder per business date holding the day's ``loans.csv``, ``repayments.csv``
and ``pool_assets.csv`` (only those with rows), and ``deals/<pool_id>.yaml``.

The book is simulated month by month. Each month the new loans are drawn and
their schedules built with ``transforms.schedules.build_schedules``; then
every live loan behaves (pays on time, late, not at all, ahead, or in full;
defaulted loans recover), and the events dated in that month are written out
and dropped, so memory holds only per-loan state in numpy arrays. Everything
comes from one ``numpy.random.Generator(PCG64(seed))`` drawn in a fixed
order: the same arguments give byte-identical files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from flows.generator.behaviour import Events, simulate_month
from flows.generator.book import Book, Borrowers, monthly_counts, originate
from flows.generator.calendar import Months, to_date
from flows.generator.pool import (
    PoolEvents,
    deal_document,
    plan_deal,
    pool_principal_collections,
    repurchase,
    revolve,
    select_cutoff,
)
from flows.generator.revolving_pool import write_revolving_pool
from flows.generator.second_servicer import write_second_servicer
from flows.generator.servicer_tape import write_servicer_tape
from flows.generator.writer import (
    ServicerLanding,
    write_deal,
    write_loans,
    write_manifests,
    write_pool_assets,
    write_repayments,
)

__all__ = ["GenerationSummary", "generate_landing"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_CALENDAR_MARGIN = 48
"""Months of calendar kept past the window: deal dates reach 36 months past cut-off."""


@dataclass(frozen=True)
class GenerationSummary:
    """What a generation run wrote."""

    loans: int
    repayments: int
    pool_assets: int
    """Pool membership events."""
    business_dates: int
    """Date folders written."""
    pools: int
    pool_ids: tuple[str, ...]


def _record_written(book: Book, events: Events) -> None:
    sign = events.cash_sign()
    np.add.at(book.written_principal, events.loan, events.principal * sign)
    np.add.at(book.written_interest, events.loan, events.interest * sign)


def _dates_of(table: Months, months: int) -> list[date]:
    """Every calendar day of the window: each gets a delivery control file."""
    first = to_date(int(table.first_day[0]))
    last = to_date(table.last_day(months - 1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def generate_landing(
    out: Path,
    *,
    loans: int,
    start: str,
    months: int,
    seed: int,
    bad_rows: bool = False,
    second_servicer_loans: int = 0,
    servicer_tape: bool = False,
    revolving_accounts: int = 0,
) -> GenerationSummary:
    """Write a synthetic landing zone.

    Args:
        out: Landing folder; created if missing, and it must be empty.
        loans: Number of loans originated over the window.
        start: First origination month, ``YYYY-MM``.
        months: Length of the window in calendar months; cash is generated up
            to the last day of the last month.
        seed: Seed of the random generator.
        bad_rows: Put a realistic handful of bad rows (about 3% of each file) into
            the delivery of the pool's cut-off date (``flows.generator.bad_rows``).
        second_servicer_loans: When positive, a second pool of this many seasoned loans
            delivered by another servicer as a month-end loan tape through its mapping
            (``flows.generator.second_servicer``).
        servicer_tape: The main pool's servicer also delivers a month-end loan tape of
            the pool's loans from the cut-off on (``flows.generator.servicer_tape``), which
            the pipeline reconciles with the engine.
        revolving_accounts: When positive, a revolving pool of this many Huabei-style card
            accounts (no schedule) delivered by a card servicer as a month-end loan tape
            through its mapping (``flows.generator.revolving_pool``).

    Returns:
        Counts of what was written.

    Raises:
        ValueError: If an argument is out of range.
        FileExistsError: If ``out`` already holds files.
    """
    if loans < 1 or months < 1:
        raise ValueError("loans and months must be positive")
    if not _MONTH.match(start):
        raise ValueError(f"start must be a month YYYY-MM, not {start!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; generate into an empty folder")
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.Generator(np.random.PCG64(seed))
    table = Months.starting(start, months + _CALENDAR_MARGIN)
    counts = monthly_counts(loans, start, months)
    borrowers = Borrowers.draw(rng, loans)
    book = Book(loans)
    deal = plan_deal(start, months, table)

    # The cut-off date's files (loans, repayments and the initial pool) carry the bad rows.
    spoiled = to_date(deal.cutoff_date) if bad_rows else None
    pending = Events.empty()
    folders: set[str] = set()
    repayments = 0
    pool_events = 0
    cutoff_balance = 0
    for i in range(months):
        first_of_month = book.count
        folders |= write_loans(
            out, originate(book, borrowers, rng, table, i=i, n=int(counts[i])), spoiled
        )

        pending = Events.concat([pending, simulate_month(book, table, rng, i)])
        in_month = pending.value_date <= table.last_day(i)
        written = pending.take(in_month)
        pending = pending.take(~in_month)
        _record_written(book, written)
        folders |= write_repayments(out, written, repayments + 1, spoiled)
        repayments += written.size

        parts: list[PoolEvents] = []
        if i == deal.cutoff_month:
            added = select_cutoff(book, rng, deal)
            cutoff_balance = int(added.price.sum())
            parts.append(added)
        elif i > deal.cutoff_month and cutoff_balance > 0:
            target = pool_principal_collections(book, written)
            # Buy-backs (mid-month) come from loans already in the pool.
            parts.append(repurchase(book, rng, table, i, first=i == deal.cutoff_month + 1))
            if i <= deal.revolving_end_month:
                parts.append(
                    revolve(book, rng, table, i=i, first_of_month=first_of_month, target=target)
                )
        month_events = PoolEvents.concat(parts)
        folders |= write_pool_assets(out, deal.pool_id, month_events, spoiled)
        pool_events += month_events.size
        if servicer_tape and i >= deal.cutoff_month and cutoff_balance > 0:
            folders |= write_servicer_tape(out, book, written, table.last_day(i))

    pool_ids: tuple[str, ...] = ()
    if cutoff_balance > 0:
        write_deal(out, deal.pool_id, deal_document(deal, cutoff_balance))
        pool_ids = (deal.pool_id,)
    landing = ServicerLanding(out, start, months, seed)
    if second_servicer_loans > 0:
        second = write_second_servicer(landing, loans=second_servicer_loans)
        pool_ids = (*pool_ids, second.pool_id)
    if revolving_accounts > 0:
        cards = write_revolving_pool(landing, accounts=revolving_accounts)
        pool_ids = (*pool_ids, cards.pool_id)
    # Last: every file of a day, the second servicer's tape included, is in its manifest.
    write_manifests(out, _dates_of(table, months))
    return GenerationSummary(
        loans=loans,
        repayments=repayments,
        pool_assets=pool_events,
        business_dates=len(folders),
        pools=len(pool_ids),
        pool_ids=pool_ids,
    )
