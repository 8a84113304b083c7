"""Canonical column sets and Polars dtypes shared by every stage.

Money is held as integer fen (``pl.Int64``) from staging on: 1,234.50 yuan is
``123450``. Annual rates are exact decimals (``pl.Decimal(10, 6)``); for
integer arithmetic they are converted to parts-per-million (``RATE_SCALE``).
Dates are ``pl.Date``.
"""

from __future__ import annotations

from typing import Final

import polars as pl

Dtype = pl.DataType | type[pl.DataType]
"""A Polars dtype, as an instance or as a class."""

Columns = dict[str, Dtype]

MONEY: Final = pl.Int64
"""Money dtype: integer fen."""

RATE: Final = pl.Decimal(10, 6)
"""Annual rate dtype: 0.109500 is 10.95% a year."""

RATE_SCALE: Final = 1_000_000
"""An annual rate multiplied by this is its integer parts-per-million."""

FEN_PER_YUAN: Final = 100

PRODUCTS: Final = ("cash_loan", "consumer_instalment", "revolving_credit")
INSTALMENT_PRODUCTS: Final = ("cash_loan", "consumer_instalment")
"""Products with a contractual schedule."""
UNSCHEDULED_PRODUCTS: Final = ("revolving_credit",)
"""Products without one: a ``revolving_credit`` (Huabei-style card) account's balance and
DPD come from the servicer's loan_tape."""
SCHEDULE_TERMS: Final = (
    "first_due_date",
    "principal",
    "annual_rate",
    "term_months",
    "repayment_method",
)
"""Loan columns only instalment products need (a revolving account may leave them out)."""
REPAYMENT_METHODS: Final = ("equal_instalment", "equal_principal", "interest_only", "bullet")
REPAYMENT_KINDS: Final = (
    "scheduled",
    "partial_prepayment",
    "full_prepayment",
    "recovery",
    "reversal",
)
POOL_EVENTS: Final = ("added", "removed")
POOL_EVENT_REASONS: Final = ("cutoff", "revolving_purchase", "repurchase", "clean_up_call")

LOAN_STATUSES: Final = (
    "current",
    "delinquent",
    "defaulted",
    "charged_off",
    "prepaid",
    "matured",
    "repurchased",
)
PERFORMING_STATUSES: Final = ("current", "delinquent")

DPD_BUCKETS: Final = ("current", "1-30", "31-60", "61-90", "91-120", "121-150", "151-180", "180+")
"""Delinquency buckets by days past due, in order (DOMAIN.md)."""

LOANS: Final[Columns] = {
    "loan_id": pl.String,
    "borrower_id": pl.String,
    "product": pl.String,
    "origination_date": pl.Date,
    "first_due_date": pl.Date,
    "principal": MONEY,
    "annual_rate": RATE,
    "term_months": pl.Int32,
    "repayment_method": pl.String,
    "province": pl.String,
    "borrower_age": pl.Int32,
    "credit_score": pl.Int32,
    "channel": pl.String,
}
LOANS_OPTIONAL: Final = frozenset({"borrower_age", "credit_score", "channel", *SCHEDULE_TERMS})

REPAYMENTS: Final[Columns] = {
    "repayment_id": pl.String,
    "loan_id": pl.String,
    "value_date": pl.Date,
    "principal_paid": MONEY,
    "interest_paid": MONEY,
    "fee_paid": MONEY,
    "penalty_paid": MONEY,
    "kind": pl.String,
}
REPAYMENTS_OPTIONAL: Final = frozenset[str]()

POOL_ASSETS: Final[Columns] = {
    "pool_id": pl.String,
    "loan_id": pl.String,
    "event_date": pl.Date,
    "event": pl.String,
    "reason": pl.String,
    "purchase_price": MONEY,
}
POOL_ASSETS_OPTIONAL: Final = frozenset({"purchase_price"})

# --- servicer loan tape (monthly loan-level snapshots) ----------------------------------------

LOAN_TAPE: Final[Columns] = {
    "as_of_date": pl.Date,
    "loan_id": pl.String,
    "current_principal": MONEY,
    "dpd": pl.Int32,
    "status": pl.String,
    "principal_paid_to_date": MONEY,
    "interest_paid_to_date": MONEY,
    "fees_paid_to_date": MONEY,
    "charged_off_principal": MONEY,
    "recoveries_to_date": MONEY,
    "default_date": pl.Date,
    "charge_off_date": pl.Date,
    "amount_past_due": MONEY,
    "last_payment_date": pl.Date,
    "next_due_date": pl.Date,
    "credit_limit": MONEY,
    "minimum_payment": MONEY,
}
"""The servicer's own snapshot of a loan at ``as_of_date`` (DESIGN.md ``loan_tape``)."""
LOAN_TAPE_OPTIONAL: Final = frozenset(
    c for c in LOAN_TAPE if c not in {"as_of_date", "loan_id", "current_principal", "dpd", "status"}
)

INPUT_DATASETS: Final[dict[str, Columns]] = {
    "loans": LOANS,
    "repayments": REPAYMENTS,
    "pool_assets": POOL_ASSETS,
    "loan_tape": LOAN_TAPE,
}
OPTIONAL_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "loans": LOANS_OPTIONAL,
    "repayments": REPAYMENTS_OPTIONAL,
    "pool_assets": POOL_ASSETS_OPTIONAL,
    "loan_tape": LOAN_TAPE_OPTIONAL,
}
MONEY_COLUMNS: Final = {
    name: tuple(c for c, t in cols.items() if t == MONEY) for name, cols in INPUT_DATASETS.items()
}

LINEAGE: Final[Columns] = {
    "business_date": pl.Date,
    "source_file": pl.String,
    "source_line": pl.Int64,
}
"""Lineage columns carried by every staged row: the delivery it came from."""

SCHEDULES: Final[Columns] = {
    "loan_id": pl.String,
    "instalment_no": pl.Int32,
    "due_date": pl.Date,
    "principal_due": MONEY,
    "interest_due": MONEY,
}

LOAN_SNAPSHOTS: Final[Columns] = {
    "as_of_date": pl.Date,
    "loan_id": pl.String,
    "pool_id": pl.String,
    "opening_principal": MONEY,
    "closing_principal": MONEY,
    "scheduled_principal_paid": MONEY,
    "unscheduled_principal_paid": MONEY,
    "interest_paid": MONEY,
    "fees_paid": MONEY,
    "dpd": pl.Int32,
    "bucket": pl.String,
    "status": pl.String,
    "default_date": pl.Date,
    "defaulted_principal": MONEY,
    "recoveries": MONEY,
    "purchased_principal": MONEY,
    "removed_principal": MONEY,
    "months_on_book": pl.Int32,
    "remaining_term": pl.Int32,
    "outside_scheduled_principal_paid": MONEY,
    "outside_unscheduled_principal_paid": MONEY,
    "outside_interest_paid": MONEY,
    "outside_fees_paid": MONEY,
    "outside_recoveries": MONEY,
    "outside_defaulted_principal": MONEY,
    "new_drawings": MONEY,
}
"""One row per loan and as-of date; flows are those since the previous as-of date.

The ``outside_*`` columns are the part of each flow (scheduled and
unscheduled principal, interest, fees, recoveries) that is not the pool's: in
a period with a purchase or removal, cash up to the end of the purchase day
and after the removal day (DOMAIN.md "Conventions"). The pool's flow is the
flow less its ``outside_`` part; the loan's own flows stay whole.

``outside_defaulted_principal`` is the row's ``defaulted_principal`` when the
loan defaulted while outside its pool within the row's period (after the end
of its removal day), else 0: such a default is the loan's, never the pool's,
and the pool's default is ``defaulted_principal`` less it
(:data:`OUTSIDE_POOL_DEFAULT`).

``purchased_principal`` and ``removed_principal`` carry the pool events of the
period (see ``transforms.performance``) so that the pool roll-forward closes
from this table alone.

``new_drawings`` is what a revolving account already in the pool drew in the
period (新增用款, DOMAIN.md roll-forward): the balance increase the servicer's
tape shows beyond the account's repayments and charge-offs. It is never a
purchase; the repayment engine has no drawings and gives 0.
"""

OUTSIDE_POOL_FLOWS: Final[dict[str, str]] = {
    "scheduled_principal_paid": "outside_scheduled_principal_paid",
    "unscheduled_principal_paid": "outside_unscheduled_principal_paid",
    "interest_paid": "outside_interest_paid",
    "fees_paid": "outside_fees_paid",
    "recoveries": "outside_recoveries",
}
"""Each snapshot flow and the column holding its part outside pool membership."""

OUTSIDE_POOL_DEFAULT: Final[dict[str, str]] = {
    "defaulted_principal": "outside_defaulted_principal",
}
"""The snapshot's defaulted principal and the column holding a default outside the pool.

Kept apart from :data:`OUTSIDE_POOL_FLOWS`: a default is a balance, not cash,
so it never moves into recoveries with the flows.
"""
