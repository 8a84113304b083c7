"""Sections 3-6 and 10: the pool, its cash, its characteristics, strata, purchases."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

from reports.charts import Chart, SeriesData
from reports.deal_view import DealView
from reports.disclosure import source
from reports.disclosure.base import (
    DIMENSIONS,
    ROLL_FORWARD,
    Inputs,
    Report,
    SectionSpec,
    decimals_shown,
    money_chart,
)
from reports.formatting import (
    format_long_date,
    format_number,
    rate_to_decimal,
    to_decimal,
)
from reports.layout import (
    UNAVAILABLE,
    Row,
    Section,
    Table,
    Unavailable,
    present,
    require,
    row,
    section,
    table,
)
from reports.sources import StratificationRow


def _pool_chart(pool: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: Report) -> Chart:
    periods = [str(doc["period"]) for doc in history]
    balances: list[Decimal | None] = []
    factors: list[str] = []
    for doc in history:
        item = doc.get("pool") or {}
        closing = item.get("closing_balance")
        balances.append(None if closing is None else to_decimal(closing))
        factors.append(r.f.number(item.get("pool_factor"), 6))
    title = r.t("s3.chart")
    rows = [row(period, r.f.amount(balances[i]), factors[i]) for i, period in enumerate(periods)]
    columns = [
        (r.t("col.period"), False),
        (r.c("s3.chart_balance"), True),
        (r.t("s3.pool_factor"), True),
    ]
    cutoff = pool.get("cutoff_balance")
    secondary = None
    if cutoff is not None and to_decimal(cutoff) > 0:
        base = to_decimal(cutoff)
        # The factor axis is the balance axis divided by the cut-off balance.
        secondary = (r.t("chart.unit_factor"), lambda v: r.f.number(v / base, 2))
    series = [SeriesData(r.t("key.closing_balance"), tuple(balances))]
    return money_chart(
        "chart-pool",
        title,
        periods=periods,
        series=series,
        rows=rows,
        columns=columns,
        r=r,
        secondary=secondary,
    )


def _pool_roll_forward(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: Report
) -> Section:
    t, f = r.t, r.f
    pool = require(metrics, "pool", "document")
    opening = to_decimal(require(pool, "opening_balance", "pool"))
    closing = to_decimal(require(pool, "closing_balance", "pool"))
    rows = [row(t("s3.opening_balance"), f.amount(opening))]
    running = opening
    # Card repayments have no schedule: principal collected is one line, not a split
    # into scheduled and unscheduled (the note says why).
    whole = PRINCIPAL_SPLIT in r.hidden
    collected = Decimal(0)
    for key, sign in ROLL_FORWARD:
        movement = sign * to_decimal(require(pool, key, "pool"))
        running += movement
        if whole and key in PRINCIPAL_PARTS:
            collected += movement
            if key == PRINCIPAL_PARTS[-1]:
                rows.append(row(t("s3.principal_collected"), f.signed(collected)))
            continue
        if key == "new_drawings" and not whole and movement == 0:
            # A pool without revolving accounts has no drawings: no line of zeros.
            continue
        rows.append(row(t(f"s3.{key}"), f.signed(movement)))
    if running != closing:
        raise ValueError(
            f"pool roll-forward does not close: lines give {running}, closing balance is {closing}"
        )
    rows.append(row(t("s3.closing_balance"), f.amount(closing), total=True))
    roll_forward = table(t("s3.caption"), [(t("col.item"), False), (r.c("col.amount"), True)], rows)
    summary = table(
        t("s3.summary_caption"),
        [(t("col.item"), False), (t("col.value"), True)],
        [
            row(r.c("s3.cutoff_balance"), f.amount(pool.get("cutoff_balance"))),
            row(t("s3.pool_factor"), f.number(pool.get("pool_factor"), 6)),
            row(t("s3.opening_count"), f.count(pool.get("opening_count"))),
            row(t("s3.closing_count"), f.count(pool.get("closing_count"))),
        ],
    )
    return section(
        3,
        "pool",
        t("s3.title"),
        [roll_forward, summary, _purchased_beside_pool(metrics, r)],
        notes=[*r.hidden_notes(PRINCIPAL_SPLIT), *_drawings_note(pool, r)],
        charts=[_pool_chart(pool, history, r)],
    )


PRINCIPAL_SPLIT: Final = "pool.scheduled_principal"
"""The hidden-figure key of a revolving pool's scheduled/unscheduled split."""
PRINCIPAL_PARTS: Final = ("scheduled_principal", "unscheduled_principal")


def _drawings_note(pool: Mapping[str, Any], r: Report) -> list[str]:
    """What new drawings are, when the period has any (they are never purchases)."""
    drawn = pool.get("new_drawings")
    if drawn is None or to_decimal(drawn) == 0:
        return []
    return [r.t("s3.new_drawings_note")]


def _purchased_beside_pool(metrics: Mapping[str, Any], r: Report) -> Table:
    """The period's purchased loans' own characteristics beside the whole pool's."""
    t, f = r.t, r.f
    pool = metrics.get("pool") or {}
    chars = metrics.get("characteristics") or {}
    bought = metrics.get("revolving") or {}
    rows = [
        row(
            t("s3.count"), f.count(chars.get("loan_count")), f.count(bought.get("purchased_count"))
        ),
        row(
            r.c("s3.balance"),
            f.amount(pool.get("closing_balance")),
            f.amount(bought.get("purchased_principal")),
        ),
        row(t("s3.wac"), f.rate(chars.get("wac"), 2), f.rate(bought.get("purchased_wac"), 2)),
        row(
            t("s3.wam"),
            f.number(chars.get("wam_months"), 1),
            f.number(bought.get("purchased_wam_months"), 1),
        ),
        row(
            r.c("s3.average_balance"),
            f.amount(chars.get("average_balance")),
            f.amount(bought.get("purchased_average_balance")),
        ),
    ]
    if "characteristics.wam_months" in r.hidden:
        # Revolving accounts have no remaining term; section 5 states why.
        rows = [item for item in rows if item["header"] != t("s3.wam")]
    columns = [(t("col.item"), False), (t("s3.whole_pool"), True), (t("s3.purchased"), True)]
    return table(t("s3.purchased_caption"), columns, rows)


# -- 4 -------------------------------------------------------------------------------------
def _collections(collections: Any, metrics: Mapping[str, Any], r: Report) -> Section:
    t, f = r.t, r.f
    amounts: dict[str, Decimal | Unavailable] = {
        key: _collected(collections, key)
        for key in ("principal", "interest", "fees", "recoveries", "total")
    }
    if any(isinstance(amounts[key], Unavailable) for key in ("interest", "fees", "recoveries")):
        # A total without a part the source cannot give would be a partial sum.
        amounts["total"] = UNAVAILABLE
    rows = [
        row(t(f"s4.{key}"), f.amount(amounts[key]))
        for key in ("principal", "interest", "fees", "recoveries")
    ]
    rows.append(row(t("s4.total"), f.amount(amounts["total"]), total=True))
    columns = [(t("col.item"), False), (r.c("col.amount"), True)]
    income = _sum(amounts["interest"], amounts["fees"], amounts["recoveries"])
    accounts = table(
        t("s4.accounts_caption"),
        columns,
        [
            row(t("s4.principal_account"), f.amount(amounts["principal"])),
            row(t("s4.income_account"), f.amount(income)),
            row(t("s4.total"), f.amount(_sum(amounts["principal"], income)), total=True),
        ],
    )
    tables = [table(t("s4.caption"), columns, rows), accounts, _expenses(metrics, r)]
    notes = [t("s4.accounts_note")]
    partial_income = WATERFALL_INCOME in source.not_available(metrics)
    if partial_income:
        missing = [
            t(f"s4.{key}")
            for key in ("interest", "fees", "recoveries")
            if isinstance(amounts[key], Unavailable)
        ]
        notes.append(t("s4.income_basis", parts=", ".join(missing)))
    ledger: Any = metrics.get("accounts")
    if present(ledger):
        tables.append(_account_ledger(ledger, r, partial_income=partial_income))
    else:
        notes.append(t("s4.ledger_missing"))
    steps: Any = metrics.get("waterfall")
    if present(steps):
        tables.append(_waterfall(steps, r))
    return section(4, "collections", t("s4.title"), tables, notes=notes)


def _collected(collections: Mapping[str, Any], key: str) -> Decimal | Unavailable:
    value = require(collections, key, "collections")
    return value if isinstance(value, Unavailable) else to_decimal(value)


def _sum(*values: Decimal | Unavailable) -> Decimal | Unavailable:
    """The sum, or unavailable when any part is (a partial sum is never printed)."""
    total = Decimal(0)
    for value in values:
        if isinstance(value, Unavailable):
            return UNAVAILABLE
        total += value
    return total


EXPENSES: Final = (
    ("taxes", ("taxes",)),
    ("management_fee", ("management_fee", "manager_fee", "trustee_fee")),
    ("custody_fee", ("custody_fee", "custodian_fee")),
    ("servicer_fee", ("servicer_fee",)),
)
"""The plan's expenses and the keys they may carry in ``expenses`` or the waterfall."""


def _expenses(metrics: Mapping[str, Any], r: Report) -> Table:
    """Taxes, 管理人报酬, 托管费 and the servicer fee paid in the period, as the document
    gives them (its ``expenses`` object, else the waterfall's lines); absent is not zero."""
    t, f = r.t, r.f
    given: Mapping[str, Any] = metrics.get("expenses") or {}
    paid = {str(step.get("item")): step.get("paid") for step in metrics.get("waterfall") or []}
    rows = []
    for key, aliases in EXPENSES:
        value = next((given[a] for a in aliases if given.get(a) is not None), None)
        if value is None:
            value = next((paid[a] for a in aliases if paid.get(a) is not None), None)
        rows.append(row(t(f"s4.{key}"), f.amount(value)))
    return table(
        t("s4.expenses_caption"), [(t("col.item"), False), (r.c("col.amount"), True)], rows
    )


WATERFALL_INCOME: Final = "waterfall.income"
"""The ``not_available`` key saying the waterfall's income lacks a part the source cannot give."""


def _account_ledger(
    accounts: Sequence[Mapping[str, Any]], r: Report, *, partial_income: bool = False
) -> Table:
    """Each account: opening + in - out = closing, refused when it does not reconcile.

    When the source cannot give every part of the income (``partial_income``), the
    income and collection accounts' flows are not available: a sum over the parts
    there is no total.
    """
    t, f = r.t, r.f
    rows = []
    for item in accounts:
        name = str(require(item, "account", "account"))
        opening, inflow, outflow, closing = (
            to_decimal(require(item, key, f"account {name}"))
            for key in ("opening", "inflow", "outflow", "closing")
        )
        if opening + inflow - outflow != closing:
            raise ValueError(
                f"account {name} does not reconcile: {opening} + {inflow} - {outflow} != {closing}"
            )
        if partial_income and name in ("income", "collection"):
            rows.append(row(t.get(f"account.{name}", name), *[f.amount(UNAVAILABLE)] * 4))
            continue
        rows.append(
            row(
                t.get(f"account.{name}", name),
                f.amount(opening),
                f.amount(inflow),
                f.amount(outflow),
                f.amount(closing),
            )
        )
    columns = [
        (t("s4.account"), False),
        (r.c("s4.opening"), True),
        (r.c("s4.inflow"), True),
        (r.c("s4.outflow"), True),
        (r.c("s4.closing"), True),
    ]
    return table(t("s4.ledger_caption"), columns, rows)


_CLASS_ITEM: Final = re.compile(r"^class_(.+)_(interest|principal|residual)$")


def _waterfall_item(item: str, r: Report) -> str:
    match = _CLASS_ITEM.match(item)
    if match is not None:
        return r.t(f"waterfall.class_{match.group(2)}", cls=match.group(1))
    return r.t.get(f"waterfall.{item}", item)


def _waterfall(steps: Sequence[Mapping[str, Any]], r: Report) -> Table:
    t, f = r.t, r.f
    rows = [
        row(
            f.count(step.get("order")),
            t.get(f"account.{step.get('account')}", str(step.get("account"))),
            _waterfall_item(str(step.get("item")), r),
            f.amount(step.get("available")),
            f.amount(step.get("due")),
            f.amount(step.get("paid")),
        )
        for step in sorted(steps, key=lambda step: int(step.get("order") or 0))
    ]
    columns = [
        (t("s4.order"), False),
        (t("s4.account"), False),
        (t("s4.item"), False),
        (r.c("s4.available"), True),
        (r.c("s4.due"), True),
        (r.c("s4.paid"), True),
    ]
    return table(t("s4.waterfall_caption"), columns, rows)


# -- 5 -------------------------------------------------------------------------------------
def _characteristics(characteristics: Any, metrics: Mapping[str, Any], r: Report) -> Section:
    t, f = r.t, r.f
    formatters: tuple[tuple[str, Callable[[Any], str]], ...] = (
        ("wac", lambda v: f.rate(v, 2)),
        ("wam_months", lambda v: f.number(v, 1)),
        ("wala_months", lambda v: f.number(v, 1)),
        ("average_balance", f.amount),
        ("loan_count", f.count),
        ("obligor_count", f.count),
    )
    rows = [
        row(r.c(f"s5.{key}"), fmt(characteristics.get(key)))
        for key, fmt in formatters
        if f"characteristics.{key}" not in r.hidden
    ]
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables = [table(t("s5.caption"), columns, rows)]
    notes = r.hidden_notes(*(f"characteristics.{key}" for key, _ in formatters))
    return section(5, "characteristics", t("s5.title"), tables, notes=notes)


# -- 6 -------------------------------------------------------------------------------------
_BELOW: Final = re.compile(r"^<\s*(?P<x>[0-9.]+%?)$")
_BETWEEN: Final = re.compile(r"^\[(?P<a>[0-9.]+%?),\s*(?P<b>[0-9.]+%?)\)$")
_AT_LEAST: Final = re.compile(r"^>=\s*(?P<x>[0-9.]+%?)$")
BAND_UNITS: Final = {
    "balance": "money",
    "outstanding_balance": "money",
    "remaining_term": "months",
    "months_on_book": "months",
    "age": "years",
    "borrower_age": "years",
    "credit_score": "points",
}
"""The unit a numeric band's edges are in (rates carry their own percent sign)."""


def _edge(text: str, money: bool, r: Report) -> str:
    if text.endswith("%"):
        return (
            format_number(Decimal(text[:-1]), r.locale, decimals_shown(Decimal(text[:-1]), 2)) + "%"
        )
    value = Decimal(text)
    if money and r.locale.startswith("zh") and value >= 10_000 and value % 10_000 == 0:
        return r.t("band.wan", n=format_number(value / 10_000, r.locale, 0))
    return format_number(value, r.locale, decimals_shown(value, 2))


def band_words(dimension: str, band: str, r: Report) -> str:
    """A band label in words: ``[10000, 50000)`` -> 1万–5万元 / 10,000–50,000.

    Bands include their lower edge and exclude their upper one (the section says so).
    """
    unit_key = BAND_UNITS.get(dimension)
    money = unit_key == "money" and r.currency == "CNY"
    # Bands of another currency carry no unit: the column names the currency.
    unit = (
        ""
        if unit_key is None or (unit_key == "money" and not money)
        else r.t(f"band.unit.{unit_key}")
    )
    for pattern, key in ((_BELOW, "below"), (_AT_LEAST, "at_least")):
        match = pattern.match(band)
        if match is not None:
            return r.t(f"band.{key}", x=_edge(match["x"], money, r), unit=unit)
    match = _BETWEEN.match(band)
    if match is not None:
        return r.t(
            "band.between", a=_edge(match["a"], money, r), b=_edge(match["b"], money, r), unit=unit
        )
    return band


def _band_label(dimension: str, band: str, r: Report) -> str:
    if band == "unknown":
        return r.t("band.unknown")
    if dimension == "province":
        return r.province(band)
    if dimension in ("product", "repayment_method", "channel"):
        return r.t.get(f"{dimension}.{band}", band)
    return band_words(dimension, band, r)


def _stratifications(rows_in: Sequence[StratificationRow] | None, r: Report) -> Section:
    t, f = r.t, r.f
    if not rows_in:
        return r.missing(6, "stratifications")
    by_dimension: dict[str, list[StratificationRow]] = {}
    for item in rows_in:
        by_dimension.setdefault(item.dimension, []).append(item)
    known = {name: i for i, name in enumerate(DIMENSIONS)}
    tables = []
    for dimension in sorted(by_dimension, key=lambda d: (known.get(d, len(known)), d)):
        rows = []
        count = 0
        balance = Decimal(0)
        share = Decimal(0)
        shares_complete = True
        for item in by_dimension[dimension]:
            count += item.count
            balance += to_decimal(item.balance)
            if item.balance_share is None:
                shares_complete = False
            else:
                share += rate_to_decimal(item.balance_share)
            rows.append(
                row(
                    _band_label(dimension, item.band, r),
                    f.count(item.count),
                    f.amount(item.balance),
                    f.rate(item.balance_share, 2),
                    f.rate(item.wac, 2),
                )
            )
        rows.append(
            row(
                t("s6.total"),
                f.count(count),
                f.amount(balance),
                f.rate(share, 2) if shares_complete else f.na,
                "",
                total=True,
            )
        )
        name = r.t.get(f"dimension.{dimension}", dimension, currency=r.unit)
        columns = [
            (t("s6.band"), False),
            (t("s6.count"), True),
            (r.c("s6.balance"), True),
            (t("s6.share"), True),
            (t("s6.wac"), True),
        ]
        tables.append(table(t("s6.caption", dimension=name), columns, rows))
    return section(6, "stratifications", t("s6.title"), tables, notes=[t("s6.bands_note")])


def _revolving(metrics: Mapping[str, Any], deal: DealView, r: Report) -> Section:
    t, f = r.t, r.f
    revolving: Any = metrics.get("revolving")
    payment_rate = (metrics.get("performance") or {}).get("payment_rate")
    accounts: Any = metrics.get("revolving_accounts")
    if not present(revolving) and payment_rate is None and not present(accounts):
        return r.missing(10, "revolving")
    revolving = revolving or {}
    end = date.fromisoformat(require(metrics, "period_end", "document"))
    flag = revolving.get("revolving_period")
    if isinstance(flag, bool):
        status = t("s10.in_revolving") if flag else t("s10.amortising")
    elif deal.revolving_period_end is None:
        status = t("s10.not_revolving")
    elif end <= deal.revolving_period_end:
        status = t(
            "s10.revolving_until", date=format_long_date(deal.revolving_period_end, r.locale)
        )
    else:
        status = t(
            "s10.revolving_ended", date=format_long_date(deal.revolving_period_end, r.locale)
        )
    rows = [
        row(t("s10.revolving_status"), status),
        row(t("s10.purchased_count"), f.count(revolving.get("purchased_count"))),
        row(r.c("s10.purchased_principal"), f.amount(revolving.get("purchased_principal"))),
    ]
    for key in ("purchase_price", "purchases_paid", "purchases_unfunded"):
        if key in revolving:
            rows.append(row(r.c(f"s10.{key}"), f.amount(revolving.get(key))))
    drawn = (metrics.get("pool") or {}).get("new_drawings")
    notes = []
    if drawn is not None and (to_decimal(drawn) != 0 or present(accounts)):
        rows.extend(_drawings_rows(drawn, revolving, r))
        notes.append(t("s10.drawings_rule"))
    rows.append(row(t("s10.payment_rate"), f.rate(payment_rate, 2)))
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables = [table(t("s10.caption"), columns, rows)]
    if present(accounts):
        tables.append(_revolving_accounts(accounts, r))
        notes.append(t("s10.accounts_basis"))
    return section(10, "revolving", t("s10.title"), tables, notes=notes)


def _drawings_rows(drawn: Any, revolving: Mapping[str, Any], r: Report) -> list[Row]:
    """New drawings, who funded them, and the principal collections used for receivables."""
    f = r.f
    rows = [row(r.c("s10.new_drawings"), f.amount(drawn))]
    paid, seller = revolving.get("drawings_paid"), revolving.get("drawings_seller_funded")
    if paid is None or seller is None:
        return rows
    rows.append(row(r.c("s10.drawings_paid"), f.amount(paid)))
    rows.append(row(r.c("s10.drawings_seller_funded"), f.amount(seller)))
    purchases = revolving.get("purchases_paid")
    if purchases is not None:
        used = to_decimal(paid) + to_decimal(purchases)
        rows.append(row(r.c("s10.principal_used"), f.amount(used)))
    return rows


REVOLVING_AMOUNTS: Final = (
    "opening_balance",
    "principal_collections",
    "interest_collections",
    "fee_collections",
    "new_drawings",
    "charged_off_principal",
    "recoveries",
    "closing_balance",
    "credit_limit",
    "thirty_plus_balance",
)
REVOLVING_RATES: Final = (
    "payment_rate",
    "utilisation",
    "thirty_plus_share",
    "charge_off_rate_annualised",
    "yield_annualised",
)
REVOLVING_COUNTS: Final = ("account_count", "thirty_plus_count", "over_limit_count")
"""The figures of ``revolving_accounts`` (card-ABS conventions), in the order printed."""


def _revolving_accounts(accounts: Mapping[str, Any], r: Report) -> Table:
    """The revolving accounts' month: rates named with their numerator and denominator."""
    t, f = r.t, r.f
    rows = [
        *(row(t(f"s10.accounts.{key}"), f.rate(accounts.get(key), 2)) for key in REVOLVING_RATES),
        *(row(t(f"s10.accounts.{key}"), f.count(accounts.get(key))) for key in REVOLVING_COUNTS),
        *(
            row(r.c(f"s10.accounts.{key}"), f.amount(accounts.get(key)))
            for key in REVOLVING_AMOUNTS
        ),
    ]
    columns = [(t("col.item"), False), (t("col.value"), True)]
    return table(t("s10.accounts_caption"), columns, rows)


def pool_section(inputs: Inputs, r: Report) -> Section:
    """Section 3: the pool's roll-forward, counts and the period's purchases beside it."""
    return _pool_roll_forward(inputs.metrics, inputs.history, r)


def collections(inputs: Inputs, r: Report) -> Section:
    """Section 4: collections, expenses and accounts."""
    return r.built_from(
        inputs.metrics, 4, "collections", lambda part: _collections(part, inputs.metrics, r)
    )


def characteristics(inputs: Inputs, r: Report) -> Section:
    """Section 5: pool characteristics."""
    return r.built_from(
        inputs.metrics, 5, "characteristics", lambda part: _characteristics(part, inputs.metrics, r)
    )


def stratifications(inputs: Inputs, r: Report) -> Section:
    """Section 6: stratification tables."""
    return _stratifications(inputs.stratifications, r)


def revolving(inputs: Inputs, r: Report) -> Section:
    """Section 10: revolving purchases and the payment rate."""
    return _revolving(inputs.metrics, inputs.deal, r)


POOL: Final = SectionSpec(3, "pool", pool_section)
COLLECTIONS: Final = SectionSpec(4, "collections", collections)
CHARACTERISTICS: Final = SectionSpec(5, "characteristics", characteristics)
STRATIFICATIONS: Final = SectionSpec(6, "stratifications", stratifications)
REVOLVING: Final = SectionSpec(10, "revolving", revolving)
