"""Contractual repayment schedules, exact to the fen.

One row per loan and instalment (``schema.SCHEDULES``). The conventions are
those of DOMAIN.md "Loan mechanics" and the team rules:

- monthly rate ``r = annual_rate / 12``; every amount is rounded half-up to the
  fen and interest is computed in integers from the rate in parts-per-million;
- ``equal_instalment``: payment ``A = round(P r (1+r)^n / ((1+r)^n - 1))``
  (``round(P / n)`` when ``r = 0``), ``interest_k = round(balance_{k-1} r)``,
  ``principal_k = A - interest_k``;
- ``equal_principal``: ``principal_k = round(P / n)``, interest on the balance;
- ``interest_only``: interest on ``P`` every month, ``P`` at instalment ``n``;
- ``bullet``: ``P`` and ``round(P r n)`` at instalment ``n``;
- the last instalment takes the remaining balance so ``principal_due`` sums to
  ``P`` exactly, and no instalment takes more principal than is still owed
  (which matters only for loans of a few fen, where ``round(P / n) * (n - 1)``
  could exceed ``P``);
- instalment ``k`` falls due ``k - 1`` calendar months after
  ``first_due_date``, on the same day of the month clamped to the month's end;
- a product without a schedule (``revolving_credit``) gets no rows.

The equal-instalment recurrence is sequential within a loan, so the engine
iterates over the instalment number (at most 60 steps) with every loan in one
vector, instead of iterating over loans.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from transforms import schema

MONTHS_PER_YEAR = 12
RATE_DENOMINATOR = MONTHS_PER_YEAR * schema.RATE_SCALE
"""Monthly interest is ``balance * rate_ppm / RATE_DENOMINATOR``."""

_I64 = npt.NDArray[np.int64]


def round_half_up_div(numer: pl.Expr | int, denom: pl.Expr | int) -> pl.Expr:
    """Integer division rounded half-up, for non-negative numerators.

    Args:
        numer: Non-negative integer expression (or literal).
        denom: Positive integer expression (or literal).

    Returns:
        ``round_half_up(numer / denom)`` as an integer expression, computed as
        ``(2 * numer + denom) // (2 * denom)`` without floating point.
    """
    n = numer if isinstance(numer, pl.Expr) else pl.lit(numer, dtype=pl.Int64)
    d = denom if isinstance(denom, pl.Expr) else pl.lit(denom, dtype=pl.Int64)
    return (2 * n + d) // (2 * d)


def rate_ppm(annual_rate: pl.Expr) -> pl.Expr:
    """Convert a decimal annual rate to integer parts-per-million.

    Args:
        annual_rate: Expression of dtype ``Decimal`` with at most 6 decimals.

    Returns:
        ``Int64`` expression: ``0.109500`` becomes ``109500``.
    """
    return annual_rate.cast(pl.Decimal(18, 6)).to_physical().cast(pl.Int64)


def add_months(date: pl.Expr, months: pl.Expr | int) -> pl.Expr:
    """Add calendar months, keeping the day of month clamped to the month-end.

    ``2024-01-31`` plus 1 is ``2024-02-29``, plus 2 is ``2024-03-31``: the day
    is always taken from ``date``, never from the previous result.

    Args:
        date: ``Date`` expression.
        months: Number of months to add (literal or integer expression).

    Returns:
        ``Date`` expression.
    """
    if isinstance(months, int):
        return date.dt.offset_by(f"{months}mo")
    return date.dt.offset_by(pl.format("{}mo", months))


def _interest(balance: _I64, ppm: _I64) -> _I64:
    """``round_half_up(balance * ppm / RATE_DENOMINATOR)`` without int64 overflow."""
    whole, part = np.divmod(balance, RATE_DENOMINATOR)
    return whole * ppm + (2 * part * ppm + RATE_DENOMINATOR) // (2 * RATE_DENOMINATOR)


def _exact_payment(principal: int, ppm: int, term: int) -> int:
    """Equal-instalment payment from exact rational arithmetic.

    With ``D = RATE_DENOMINATOR`` and ``R = D + ppm``,
    ``A = P * ppm * R^n / (D * (R^n - D^n))`` rounded half-up.
    """
    if ppm == 0:
        return (2 * principal + term) // (2 * term)
    big_r: int = (RATE_DENOMINATOR + ppm) ** term
    numer = principal * ppm * big_r
    big_d: int = RATE_DENOMINATOR**term
    denom = RATE_DENOMINATOR * (big_r - big_d)
    return (2 * numer + denom) // (2 * denom)


def _equal_instalment_payment(principal: _I64, ppm: _I64, term: _I64) -> _I64:
    """Rounded equal-instalment payment per loan, exact to the fen.

    The annuity factor is evaluated in floating point (``log1p``/``expm1`` keep
    it accurate for tiny rates); only results within a hair of a half-fen
    boundary, where floating point could round the wrong way, are recomputed
    exactly with Python integers.
    """
    r = ppm.astype(np.float64) / RATE_DENOMINATOR
    n = term.astype(np.float64)
    p = principal.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(ppm > 0, r / -np.expm1(-n * np.log1p(r)), 1.0 / n)
    raw = p * factor
    payment = np.floor(raw + 0.5).astype(np.int64)
    distance = np.abs(raw - np.floor(raw) - 0.5)
    doubtful = np.flatnonzero(distance <= 1e-9 * np.maximum(raw, 1.0))
    for i in doubtful.tolist():
        payment[i] = _exact_payment(int(principal[i]), int(ppm[i]), int(term[i]))
    return payment


def _due_dates(first_due_days: _I64, loan_index: _I64, offset: _I64) -> _I64:
    """Days since 1970-01-01 of each row's due date.

    Row ``j`` belongs to loan ``loan_index[j]`` and falls ``offset[j]`` months
    after that loan's first due date, on the same day clamped to the month-end.
    The calendar work is done once per loan and once per month in a small
    table, so each row costs only integer indexing.
    """
    if first_due_days.size == 0:
        return np.empty(0, dtype=np.int64)
    first_month = first_due_days.astype("datetime64[D]").astype("datetime64[M]")
    day = first_due_days - first_month.astype("datetime64[D]").astype(np.int64)
    month = first_month.astype(np.int64)
    lo = int(month.min())
    months = np.arange(lo, int(month.max()) + int(offset.max()) + 2).astype("datetime64[M]")
    start = months.astype("datetime64[D]").astype(np.int64)
    length = np.diff(start)
    target = (month - lo)[loan_index] + offset
    due: _I64 = start[target] + np.minimum(day[loan_index], length[target] - 1)
    return due


def build_schedules(loans: pl.LazyFrame) -> pl.LazyFrame:
    """Build the contractual schedule of every loan.

    Args:
        loans: Loans with at least ``loan_id``, ``first_due_date``,
            ``principal`` (fen), ``annual_rate``, ``term_months`` and
            ``repayment_method``; ``loan_id`` is unique. With a ``product``
            column, products without a schedule
            (``schema.UNSCHEDULED_PRODUCTS``) get no rows.

    Returns:
        ``schema.SCHEDULES`` columns, sorted by ``loan_id`` and
        ``instalment_no``. The frame is computed eagerly (the recurrence runs
        in numpy) and returned lazy.

    Raises:
        ValueError: If a repayment method is unknown or a term is not positive.
    """
    if "product" in loans.collect_schema().names():
        # Revolving accounts have no contractual schedule (their terms may be null).
        loans = loans.filter(~pl.col("product").is_in(schema.UNSCHEDULED_PRODUCTS).fill_null(False))
    terms = (
        loans.select(
            pl.col("loan_id").cast(pl.String),
            pl.col("first_due_date").cast(pl.Date),
            pl.col("principal").cast(pl.Int64),
            rate_ppm(pl.col("annual_rate")).alias("ppm"),
            pl.col("term_months").cast(pl.Int64),
            pl.col("repayment_method").cast(pl.String),
        )
        .sort("loan_id")
        .collect()
    )
    unknown = set(terms["repayment_method"].unique().to_list()) - set(schema.REPAYMENT_METHODS)
    if unknown:
        raise ValueError(f"unknown repayment_method: {sorted(map(str, unknown))}")
    if terms.height and int(terms["term_months"].min() or 0) < 1:  # type: ignore[arg-type]
        raise ValueError("term_months must be at least 1")

    principal = terms["principal"].to_numpy().astype(np.int64)
    ppm = terms["ppm"].to_numpy().astype(np.int64)
    term = terms["term_months"].to_numpy().astype(np.int64)
    method = terms["repayment_method"].to_numpy()
    annuity = method == "equal_instalment"
    linear = method == "equal_principal"
    bullet = method == "bullet"

    # Principal due each month before the cap and the final remainder.
    level = np.zeros(terms.height, dtype=np.int64)
    if annuity.any():
        level[annuity] = _equal_instalment_payment(principal[annuity], ppm[annuity], term[annuity])
    level[linear] = (2 * principal[linear] + term[linear]) // (2 * term[linear])

    starts = np.zeros(terms.height + 1, dtype=np.int64)
    np.cumsum(term, out=starts[1:])
    rows = int(starts[-1])
    principal_due = np.empty(rows, dtype=np.int64)
    interest_due = np.empty(rows, dtype=np.int64)

    balance = principal.copy()
    active = np.arange(terms.height)
    for k in range(1, int(term.max()) + 1 if terms.height else 1):
        active = active[term[active] >= k]
        bal = balance[active]
        last = term[active] == k
        interest = _interest(bal, ppm[active])
        on_bullet = bullet[active]
        interest = np.where(on_bullet, 0, interest)
        pay = level[active] - np.where(annuity[active], interest, 0)
        pay = np.minimum(np.maximum(pay, 0), bal)
        pay = np.where(last, bal, pay)
        if on_bullet.any():
            bullet_last = active[on_bullet & last]
            interest[on_bullet & last] = _interest(
                principal[bullet_last], ppm[bullet_last] * term[bullet_last]
            )
        position = starts[active] + (k - 1)
        principal_due[position] = pay
        interest_due[position] = interest
        balance[active] = bal - pay

    loan_index = np.repeat(np.arange(terms.height), term)
    instalment_no = np.arange(rows, dtype=np.int64) - starts[loan_index] + 1
    first_due = terms["first_due_date"].to_physical().to_numpy().astype(np.int64)
    due_date = _due_dates(first_due, loan_index, instalment_no - 1)

    return pl.DataFrame(
        {
            "loan_id": terms["loan_id"].gather(loan_index),
            "instalment_no": pl.Series(instalment_no, dtype=pl.Int32),
            "due_date": pl.Series(due_date.astype(np.int32)).cast(pl.Date),
            "principal_due": pl.Series(principal_due, dtype=pl.Int64),
            "interest_due": pl.Series(interest_due, dtype=pl.Int64),
        },
        schema=schema.SCHEDULES,
    ).lazy()
