"""The demo's second pool: a seasoned cash-loan book delivered by another servicer.

Unlike the main book, this servicer sends no cash events: it delivers its loans
once (at the pool's cut-off) and then a month-end ``loan_tape`` — balance,
days past due, status, paid-to-date totals, charged-off principal, recoveries
— through its mapping file (``data_contracts/mappings/second_servicer.mapping.yaml``):
GBK text, Chinese column names, its own status codes, ``YYYY/MM/DD`` dates,
amounts with thousands separators and rates as percentages. The deal takes
the servicer's balances (``balance_source: servicer``).

The simulation is monthly and exact in fen: a performing loan pays its
equal-principal schedule (and the month's interest) or, now and then, misses
a month or repays in full; a delinquent loan cures or falls further behind;
past 90 days it is defaulted, at 180 the servicer charges the balance off and
later recovers part of it. Closed loans are reported in the month they close.
Everything comes from its own ``PCG64`` stream: the same arguments give the
same bytes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any, Final

import numpy as np
import polars as pl
import yaml

from flows.generator import writer
from transforms.schedules import build_schedules

SOURCE: Final = "second_servicer"
MAPPING: Final = writer.servicer_mapping(SOURCE)
ENCODING: Final = "gbk"

_STATUS: Final = ("正常", "逾期", "违约", "核销", "提前结清", "正常结清")
CURRENT, LATE, DEFAULTED, CHARGED_OFF, PREPAID, MATURED = range(6)
_PREPAY, _MISS, _CURE, _RECOVER = 0.012, 0.03, 0.35, 0.15
_TERMS: Final = (6, 12, 24)
_CLOSING_LAG_DAYS: Final = 14


def _amount(column: str) -> pl.Expr:
    """Yuan with thousands separators and two decimals, as this servicer writes them."""
    fen = pl.col(column)
    whole = (fen // 100).cast(pl.String)
    grouped = (
        whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse().str.strip_prefix(",")
    )
    return pl.concat_str(grouped, pl.lit("."), (fen % 100).cast(pl.String).str.zfill(2)).alias(
        column
    )


def _percent(column: str) -> pl.Expr:
    """A rate as this servicer writes it: a percentage with no trailing zeros (10.95%)."""
    return pl.concat_str(
        (pl.col(column) * 100).cast(pl.String).str.strip_chars_end("0").str.strip_suffix("."),
        pl.lit("%"),
    ).alias(column)


def _draw_loans(rng: np.random.Generator, n: int, cutoff: date, year: int) -> pl.DataFrame:
    mapping = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    codes = mapping["datasets"]["loans"]["values"]["province"]
    provinces = sorted(codes)
    seasoning = rng.integers(35, 200, n)
    principal = rng.integers(10, 300, n) * 10_000
    rate_bp = rng.integers(700, 1800, n)
    term = np.array(_TERMS)[rng.integers(0, len(_TERMS), n)]
    region = np.array(provinces)[rng.integers(0, len(provinces), n)]
    origination = pl.Series([cutoff.toordinal() - int(d) for d in seasoning]).map_elements(
        date.fromordinal, return_dtype=pl.Date
    )
    return pl.DataFrame(
        {
            "loan_id": [f"JB{year}{i:07d}" for i in range(n)],
            "borrower_id": [f"K{year}{i:07d}" for i in range(n)],
            "product": ["cash_loan"] * n,
            "origination_date": origination,
            "principal": principal,
            "annual_rate": [Decimal(int(b)) / Decimal(10_000) for b in rate_bp],
            "term_months": term.astype(np.int32),
            "repayment_method": ["equal_principal"] * n,
            "province": [codes[name] for name in region],
        }
    ).with_columns(pl.col("origination_date").dt.offset_by("1mo").alias("first_due_date"))


def _advance(
    loans: pl.DataFrame,
    schedules: pl.DataFrame,
    state: dict[str, Any],
    rng: np.random.Generator,
    as_of: date,
) -> None:
    """Advance every loan to ``as_of`` and mark the loans that month-end's tape reports."""
    n = loans.height
    due = (
        schedules.filter(pl.col("due_date") <= as_of)
        .group_by("loan_id")
        .agg(pl.col("principal_due").sum().alias("due"))
    )
    due_to_date = loans.select("loan_id").join(due, on="loan_id", how="left")["due"].fill_null(0)
    scheduled_balance = loans["principal"].to_numpy() - due_to_date.to_numpy()
    balance, status = state["balance"], state["status"]
    opening = balance.copy()
    draw = rng.random(n)
    open_ = (status == CURRENT) | (status == LATE) | (status == DEFAULTED)
    performing = (status == CURRENT) | (status == LATE)
    prepay = performing & (draw < _PREPAY)
    miss = performing & ~prepay & (draw < _PREPAY + _MISS)
    cured = (status == LATE) & (draw > 1 - _CURE)
    pays = performing & ~prepay & ~miss & ((status == CURRENT) | cured)
    balance = np.where(prepay, 0, balance)
    balance = np.where(pays, np.minimum(balance, scheduled_balance), balance)
    # A month's interest in whole fen, half-up: balance x rate (basis points) / 12.
    rate_bp = (loans["annual_rate"] * 10_000).cast(pl.Int64).to_numpy()
    interest = np.where(prepay | pays, (opening * rate_bp + 60_000) // 120_000, 0)
    state["paid"] = state["paid"] + (opening - balance)
    state["interest"] = state["interest"] + interest
    # DPD: days since the oldest instalment not covered by the principal paid.
    paid = pl.DataFrame({"loan_id": loans["loan_id"], "_paid": state["paid"]})
    oldest = (
        schedules.with_columns(pl.col("principal_due").cum_sum().over("loan_id").alias("_cum"))
        .join(paid, on="loan_id")
        .filter((pl.col("_cum") > pl.col("_paid")) & (pl.col("due_date") <= as_of))
        .group_by("loan_id")
        .agg(pl.col("due_date").min().alias("_oldest"))
    )
    oldest_due = loans.select("loan_id").join(oldest, on="loan_id", how="left")["_oldest"]
    age = np.datetime64(as_of, "D") - oldest_due.to_numpy().astype("datetime64[D]")
    dpd = np.where(oldest_due.is_null().to_numpy() | (balance == 0), 0, age.astype(np.int64))
    dpd = np.where(open_, dpd, 0)
    new_status = np.where(balance == 0, np.where(prepay, PREPAID, MATURED), CURRENT)
    new_status = np.where((balance > 0) & (dpd > 0), LATE, new_status)
    new_status = np.where((balance > 0) & (dpd > 90), DEFAULTED, new_status)
    charge = (balance > 0) & (dpd >= 180)
    state["charged"] = np.where(charge, balance, state["charged"])
    new_status = np.where(charge, CHARGED_OFF, new_status)
    balance = np.where(charge, 0, balance)
    was_charged = status == CHARGED_OFF
    recover = was_charged & (rng.random(n) < _RECOVER)
    state["recovered"] = state["recovered"] + np.where(recover, state["charged"] // 20, 0)
    new_status = np.where(was_charged, CHARGED_OFF, new_status)
    dpd = np.where(was_charged, state["dpd"] + 30, dpd)
    reported = open_ | was_charged | charge
    state.update(balance=balance, status=new_status, dpd=dpd, reported=reported)


_AMOUNTS: Final = ("本金余额",)
"""The tape's amounts besides its to-date totals; all are written as :func:`_amount` text."""


def _tape_rows(loans: pl.DataFrame, state: dict[str, Any], as_of: date) -> pl.DataFrame:
    """The servicer's tape rows of ``as_of`` for the loans it reports."""
    totals = writer.tape_totals(SOURCE, state)
    rows = pl.DataFrame(
        {
            "数据日期": [as_of.strftime("%Y/%m/%d")] * loans.height,
            "借据号": loans["loan_id"],
            "本金余额": state["balance"],
            "逾期天数": state["dpd"].astype(np.int64),
            "贷款状态": np.array(_STATUS)[state["status"]],
            **totals,
        }
    ).filter(pl.Series(state["reported"]))
    return rows.with_columns(_amount(column) for column in (*_AMOUNTS, *totals))


def write_second_servicer(landing: writer.ServicerLanding, *, loans: int) -> writer.ServicerPool:
    """Write the second servicer's loans, pool, month-end tapes, mapping and deal.

    Args:
        landing: Where and over which months the pool is delivered.
        loans: Loans in the seasoned pool.
    """
    rng = landing.rng(2)
    cutoff = landing.cutoff
    year = cutoff.year
    pool_id = f"JB{year}-2"
    book = _draw_loans(rng, loans, cutoff, year)
    schedules = build_schedules(book.lazy()).collect()
    n = book.height
    state: dict[str, Any] = {
        "balance": book["principal"].to_numpy().copy(),
        "status": np.full(n, CURRENT),
        "reported": np.ones(n, dtype=np.bool_),
        **writer.zero_totals(n, "paid", "interest", "charged", "recovered", "dpd"),
    }
    # Seasoning: the loans have paid their schedule up to the cut-off.
    due = (
        schedules.filter(pl.col("due_date") <= cutoff)
        .group_by("loan_id")
        .agg(pl.col("principal_due").sum().alias("due"))
    )
    paid = book.select("loan_id").join(due, on="loan_id", how="left")["due"].fill_null(0).to_numpy()
    state["paid"] = paid.astype(np.int64)
    state["balance"] = state["balance"] - state["paid"]
    return writer.write_servicer_delivery(
        landing,
        SOURCE,
        loans=book.with_columns(_amount("principal"), _percent("annual_rate")),
        tape=partial(_tape_rows, book, state),
        advance=partial(_advance, book, schedules, state, rng),
        deal=_deal(pool_id, cutoff, int(state["balance"].sum())),
        encoding=ENCODING,
    )


def _deal(pool_id: str, cutoff: date, balance: int) -> dict[str, Any]:
    names = (
        f"Synthetic Jiebei-style Seasoned Cash Loan ABS {cutoff.year}-2",
        f"模拟借呗型现金贷资产支持专项计划{cutoff.year}年第2期",
    )
    return writer.two_class_deal(
        pool_id,
        names,
        cutoff,
        balance,
        senior_percent=85,
        senior_coupon="0.0350",
        eligibility={"products": ["cash_loan"], "max_term_months": 24},
        short_name=f"借呗{cutoff.year % 100:02d}2",
        servicer={"name": "Demo Consumer Finance Co., Ltd.", "name_zh": "模拟消费金融有限公司"},
        triggers=[
            writer.trigger(
                ("Cumulative default rate", "累计违约率超标"),
                "cumulative_default_rate above 0.0800",
                consequence="report_only",
            ),
        ],
        closing_lag_days=_CLOSING_LAG_DAYS,
    )
