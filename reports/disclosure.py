"""The monthly trustee disclosure (受托机构报告) of one pool and collection period.

:func:`build_context` turns a ``metrics.json`` document (DOMAIN.md) and the deal's
terms into a render-ready context: every figure is already a formatted string,
so the template only lays out text. Sections keep the numbers of DOMAIN.md
"What a disclosure contains"; a section whose inputs are absent is left out
rather than filled with invented values.

Every section is a list of generic tables (caption, columns, rows), so a new
section is a new builder here and needs no new template code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, TypedDict

from data_contracts.deal import DealTerms, Trigger
from reports.formatting import (
    Amount,
    Rate,
    check_locale,
    format_amount,
    format_count,
    format_long_date,
    format_number,
    format_rate,
    format_signed_amount,
    format_timestamp,
    half_up,
    html_lang,
    rate_to_decimal,
    to_decimal,
)
from transforms.schema import DPD_BUCKETS


class Column(TypedDict):
    """A table column; the first column holds the row headers."""

    label: str
    numeric: bool


class Row(TypedDict):
    """A table row: a header cell and one text cell per remaining column."""

    header: str
    cells: list[str]
    total: bool


class Table(TypedDict):
    """A captioned table of preformatted text."""

    caption: str
    columns: list[Column]
    rows: list[Row]


class Section(TypedDict):
    """One numbered section of the disclosure."""

    number: int
    key: str
    anchor: str
    title: str
    tables: list[Table]
    notes: list[str]


class DisclosureContext(TypedDict):
    """Everything ``disclosure.html.j2`` prints."""

    lang: str
    title: str
    sections: list[Section]


EN_LABELS: Final[Mapping[str, str]] = {
    "title": "Trustee report — {deal_name} — {period}",
    "not_available": "n/a",
    "col.item": "Item",
    "col.value": "Value",
    "col.amount": "Amount ({currency})",
    "period_range": "{start} – {end}",
    # 1
    "s1.title": "Deal and period",
    "s1.caption": "Deal and collection period",
    "s1.deal_name": "Deal",
    "s1.pool_id": "Pool",
    "s1.collection_period": "Collection period",
    "s1.payment_date": "Payment date",
    "s1.report_date": "Report date",
    "s1.period_number": "Period number",
    # 2
    "s2.title": "Tranche payments",
    "s2.caption": "Payments by class of notes",
    "s2.class": "Class",
    "s2.opening_balance": "Opening balance ({currency})",
    "s2.coupon": "Coupon",
    "s2.interest_paid": "Interest paid ({currency})",
    "s2.principal_paid": "Principal paid ({currency})",
    "s2.closing_balance": "Closing balance ({currency})",
    "s2.bond_factor": "Bond factor",
    "s2.interest_per_100": "Interest per 100 {currency} face value",
    "s2.principal_per_100": "Principal per 100 {currency} face value",
    # 3
    "s3.title": "Pool roll-forward",
    "s3.caption": "Pool balance roll-forward",
    "s3.opening_balance": "Opening pool balance",
    "s3.scheduled_principal": "Scheduled principal collected",
    "s3.unscheduled_principal": "Unscheduled principal (prepayments)",
    "s3.defaulted_principal": "Principal of loans defaulted in the period",
    "s3.removed_principal": "Principal of loans repurchased or removed",
    "s3.purchased_principal": "Principal of loans purchased",
    "s3.closing_balance": "Closing pool balance",
    "s3.summary_caption": "Pool factor and loan counts",
    "s3.cutoff_balance": "Cut-off pool balance ({currency})",
    "s3.pool_factor": "Pool factor",
    "s3.opening_count": "Loans at the start of the period",
    "s3.closing_count": "Loans at the end of the period",
    # 4
    "s4.title": "Collections",
    "s4.caption": "Collections in the period",
    "s4.principal": "Principal",
    "s4.interest": "Interest",
    "s4.fees": "Fees",
    "s4.recoveries": "Recoveries",
    "s4.total": "Total collections",
    # 5
    "s5.title": "Pool characteristics",
    "s5.caption": "Pool characteristics at the end of the period",
    "s5.wac": "Weighted average coupon (WAC)",
    "s5.wam_months": "Weighted average remaining term (WAM, months)",
    "s5.wala_months": "Weighted average loan age (WALA, months)",
    "s5.average_balance": "Average outstanding balance ({currency})",
    "s5.loan_count": "Loans",
    "s5.obligor_count": "Obligors",
    # 7
    "s7.title": "Delinquency",
    "s7.caption": "Delinquency by days past due at the end of the period",
    "s7.bucket": "Days past due",
    "s7.count": "Loans",
    "s7.balance": "Outstanding balance ({currency})",
    "s7.share": "Share of balance",
    "s7.total": "Total",
    "bucket.current": "Current",
    "bucket.1-30": "1–30 days (M1)",
    "bucket.31-60": "31–60 days (M2)",
    "bucket.61-90": "61–90 days (M3)",
    "bucket.91-120": "91–120 days (M3+)",
    "bucket.121-150": "121–150 days (M3+)",
    "bucket.151-180": "151–180 days (M3+)",
    "bucket.180+": "More than 180 days (M3+)",
    # 8
    "s8.title": "Default, loss and recovery",
    "s8.caption": "Defaults, losses and recoveries",
    "s8.defaulted_principal": "Defaulted principal in the period ({currency})",
    "s8.mdr": "Monthly default rate (MDR)",
    "s8.cdr": "Annualised default rate (CDR)",
    "s8.cumulative_default_rate": "Cumulative default rate",
    "s8.cumulative_net_loss_rate": "Cumulative net loss rate",
    "s8.recovery_rate": "Cumulative recovery rate",
    # 9
    "s9.title": "Prepayment",
    "s9.caption": "Prepayments in the period",
    "s9.unscheduled_principal": "Unscheduled principal ({currency})",
    "s9.smm": "Single monthly mortality (SMM)",
    "s9.cpr": "Conditional prepayment rate (CPR)",
    # 12
    "s12.title": "Triggers",
    "s12.caption": "Trigger tests for the period",
    "s12.name": "Trigger",
    "s12.test": "Test",
    "s12.threshold": "Threshold",
    "s12.actual": "Actual",
    "s12.status": "Status",
    "s12.consequence": "Consequence if breached",
    "s12.breached": "Breached",
    "s12.not_breached": "Not breached",
    "comparison.above": "{metric} above the threshold",
    "comparison.below": "{metric} below the threshold",
    "metric.cumulative_default_rate": "Cumulative default rate",
    "metric.cumulative_net_loss_rate": "Cumulative net loss rate",
    "metric.delinquency_90_plus_share": "Share of balance more than 90 days past due",
    "metric.delinquency_30_plus_share": "Share of balance more than 30 days past due",
    "metric.payment_rate": "Payment rate",
    "metric.excess_spread": "Excess spread",
    "consequence.early_amortisation": "Early amortisation",
    "consequence.sequential_pay": "Sequential payment",
    "consequence.report_only": "Reported only",
    # 15
    "s15.title": "Definitions used",
    "s15.caption": "Definitions applied in this report",
    "s15.term": "Term",
    "s15.definition": "Definition",
    "s15.default": "Default",
    "s15.default_text": "The first day a loan is more than {days} days past due",
    "s15.charge_off": "Charge-off",
    "s15.charge_off_text": "The first day a loan is more than {days} days past due",
    "s15.tolerance": "Days-past-due tolerance",
    "s15.tolerance_text": "A shortfall below {amount} {currency} counts as paid",
    "s15.denominator": "Cumulative default rate denominator",
    "denominator.initial": "Cut-off pool balance",
    "denominator.initial_plus_purchases": (
        "Cut-off pool balance plus cumulative principal of purchased loans"
    ),
    "s15.amounts": "Amounts",
    "s15.amounts_text": (
        "In {currency} with two decimals, rounded half-up; deductions carry a minus sign"
    ),
    "s15.smm": "SMM",
    "s15.smm_text": "Unscheduled principal / (opening pool balance − scheduled principal)",
    "s15.cpr": "CPR",
    "s15.cpr_text": "1 − (1 − SMM)^12",
    "s15.mdr": "MDR",
    "s15.mdr_text": "Defaulted principal in the period / opening performing pool balance",
    "s15.cdr": "CDR",
    "s15.cdr_text": "1 − (1 − MDR)^12",
    "s15.wac": "WAC",
    "s15.wac_text": ("Σ annual rate × closing balance / Σ closing balance, over performing loans"),
    "s15.repro_caption": "Reproducibility",
    "s15.run_id": "Run id",
    "s15.generated_at": "Generated at",
}
"""English texts; another locale passes a mapping with the same keys."""

_PERIOD: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

_ROLL_FORWARD: Final = (
    ("scheduled_principal", -1),
    ("unscheduled_principal", -1),
    ("defaulted_principal", -1),
    ("removed_principal", -1),
    ("purchased_principal", 1),
)
"""Roll-forward lines after the opening balance, with the sign each contributes."""

_DEFAULT_KEYS: Final = (
    ("mdr", 4),
    ("cdr", 2),
    ("cumulative_default_rate", 4),
    ("cumulative_net_loss_rate", 4),
    ("recovery_rate", 2),
)
_PREPAYMENT_KEYS: Final = (("smm", 4), ("cpr", 2))
"""Performance rates with the percent decimals shown (small monthly rates get four)."""


class _Texts:
    """Looks up report texts and fills their ``{placeholders}``."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        missing = sorted(set(EN_LABELS) - set(labels))
        if missing:
            raise ValueError(f"labels lack keys: {', '.join(missing)}")
        self._labels = labels

    def __call__(self, key: str, **values: str) -> str:
        return self._labels[key].format(**values) if values else self._labels[key]


class _Fmt:
    """The formatting functions bound to one locale, and the 'not available' text."""

    def __init__(self, locale: str, not_available: str) -> None:
        self.locale = locale
        self.na = not_available

    def amount(self, value: Amount | None) -> str:
        return self.na if value is None else format_amount(value, self.locale)

    def signed(self, value: Decimal) -> str:
        return format_signed_amount(value, self.locale)

    def count(self, value: int | None) -> str:
        return self.na if value is None else format_count(value, self.locale)

    def rate(self, value: Rate | None, places: int = 2, max_places: int | None = None) -> str:
        return self.na if value is None else format_rate(value, self.locale, places, max_places)

    def number(self, value: Rate | None, places: int) -> str:
        return self.na if value is None else format_number(value, self.locale, places)


def _parse_period(period: object) -> tuple[int, int]:
    match = _PERIOD.match(period) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"period must be 'YYYY-MM', got {period!r}")
    return int(match.group(1)), int(match.group(2))


def _month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = _month_index(year, month) + months
    return index // 12, index % 12 + 1


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] is None:
        raise ValueError(f"metrics {where} lacks {key!r}")
    return mapping[key]


def _table(caption: str, columns: Sequence[tuple[str, bool]], rows: list[Row]) -> Table:
    return {
        "caption": caption,
        "columns": [{"label": label, "numeric": numeric} for label, numeric in columns],
        "rows": rows,
    }


def _row(header: str, *cells: str, total: bool = False) -> Row:
    return {"header": header, "cells": list(cells), "total": total}


def _section(number: int, key: str, title: str, tables: list[Table]) -> Section:
    return {
        "number": number,
        "key": key,
        "anchor": f"s{number}-{key}",
        "title": title,
        "tables": tables,
        "notes": [],
    }


def _deal_and_period(
    metrics: Mapping[str, Any],
    deal: DealTerms,
    t: _Texts,
    f: _Fmt,
    *,
    deal_name: str,
    generated_at: datetime,
) -> Section:
    year, month = _parse_period(metrics["period"])
    start = date.fromisoformat(_require(metrics, "period_start", "document"))
    end = date.fromisoformat(_require(metrics, "period_end", "document"))
    if (start.year, start.month) != (year, month) or start > end:
        raise ValueError(
            f"period_start {start} and period_end {end} do not fit {metrics['period']}"
        )
    period_number = _month_index(year, month) - _month_index(
        deal.cutoff_date.year, deal.cutoff_date.month
    )
    if period_number < 1:
        raise ValueError(
            f"period {metrics['period']} is not after the cut-off month of {deal.cutoff_date}"
        )
    pay_year, pay_month = _add_months(year, month, 1)
    payment_date = date(pay_year, pay_month, deal.payment_day)
    period_range = t(
        "period_range",
        start=format_long_date(start, f.locale),
        end=format_long_date(end, f.locale),
    )
    rows = [
        _row(t("s1.deal_name"), deal_name),
        _row(t("s1.pool_id"), deal.pool_id),
        _row(t("s1.collection_period"), period_range),
        _row(t("s1.payment_date"), format_long_date(payment_date, f.locale)),
        _row(t("s1.report_date"), format_long_date(generated_at.date(), f.locale)),
        _row(t("s1.period_number"), f.count(period_number)),
    ]
    columns = [(t("col.item"), False), (t("col.value"), False)]
    return _section(1, "deal", t("s1.title"), [_table(t("s1.caption"), columns, rows)])


def _tranche_payments(
    tranches: Sequence[Mapping[str, Any]], deal: DealTerms, currency: str, t: _Texts, f: _Fmt
) -> Section:
    order = {tranche.class_name: i for i, tranche in enumerate(deal.tranches)}
    original_fen = {tranche.class_name: tranche.original_balance for tranche in deal.tranches}
    unknown = sorted(str(row.get("class")) for row in tranches if row.get("class") not in order)
    if unknown:
        raise ValueError(f"tranches not in the deal terms: {', '.join(unknown)}")

    def per_100(amount: Amount | None, class_name: str) -> str:
        if amount is None:
            return f.na
        # Per 100 yuan of face value: amount / (original fen / 100) * 100.
        value = to_decimal(amount) * 10_000 / original_fen[class_name]
        return f.number(half_up(value, 4), 4)

    rows = []
    for item in sorted(tranches, key=lambda row: order[row["class"]]):
        name = item["class"]
        rows.append(
            _row(
                name,
                f.amount(item.get("opening_balance")),
                f.rate(item.get("coupon"), 2, 4),
                f.amount(item.get("interest_paid")),
                f.amount(item.get("principal_paid")),
                f.amount(item.get("closing_balance")),
                f.number(item.get("bond_factor"), 6),
                per_100(item.get("interest_paid"), name),
                per_100(item.get("principal_paid"), name),
            )
        )
    columns = [
        (t("s2.class"), False),
        (t("s2.opening_balance", currency=currency), True),
        (t("s2.coupon"), True),
        (t("s2.interest_paid", currency=currency), True),
        (t("s2.principal_paid", currency=currency), True),
        (t("s2.closing_balance", currency=currency), True),
        (t("s2.bond_factor"), True),
        (t("s2.interest_per_100", currency=currency), True),
        (t("s2.principal_per_100", currency=currency), True),
    ]
    return _section(2, "tranches", t("s2.title"), [_table(t("s2.caption"), columns, rows)])


def _pool_roll_forward(pool: Mapping[str, Any], currency: str, t: _Texts, f: _Fmt) -> Section:
    opening = to_decimal(_require(pool, "opening_balance", "pool"))
    closing = to_decimal(_require(pool, "closing_balance", "pool"))
    rows = [_row(t("s3.opening_balance"), f.amount(opening))]
    running = opening
    for key, sign in _ROLL_FORWARD:
        movement = sign * to_decimal(_require(pool, key, "pool"))
        running += movement
        rows.append(_row(t(f"s3.{key}"), f.signed(movement)))
    if running != closing:
        raise ValueError(
            f"pool roll-forward does not close: lines give {running}, closing balance is {closing}"
        )
    rows.append(_row(t("s3.closing_balance"), f.amount(closing), total=True))
    roll_forward = _table(
        t("s3.caption"), [(t("col.item"), False), (t("col.amount", currency=currency), True)], rows
    )
    summary_rows = [
        _row(t("s3.cutoff_balance", currency=currency), f.amount(pool.get("cutoff_balance"))),
        _row(t("s3.pool_factor"), f.number(pool.get("pool_factor"), 6)),
        _row(t("s3.opening_count"), f.count(pool.get("opening_count"))),
        _row(t("s3.closing_count"), f.count(pool.get("closing_count"))),
    ]
    summary = _table(
        t("s3.summary_caption"), [(t("col.item"), False), (t("col.value"), True)], summary_rows
    )
    return _section(3, "pool", t("s3.title"), [roll_forward, summary])


def _collections(collections: Mapping[str, Any], currency: str, t: _Texts, f: _Fmt) -> Section:
    rows = [
        _row(t(f"s4.{key}"), f.amount(_require(collections, key, "collections")))
        for key in ("principal", "interest", "fees", "recoveries")
    ]
    rows.append(
        _row(t("s4.total"), f.amount(_require(collections, "total", "collections")), total=True)
    )
    columns = [(t("col.item"), False), (t("col.amount", currency=currency), True)]
    return _section(4, "collections", t("s4.title"), [_table(t("s4.caption"), columns, rows)])


def _characteristics(
    characteristics: Mapping[str, Any], currency: str, t: _Texts, f: _Fmt
) -> Section | None:
    formatters: tuple[tuple[str, Callable[[Any], str]], ...] = (
        ("wac", lambda v: f.rate(v, 2)),
        ("wam_months", lambda v: f.number(v, 1)),
        ("wala_months", lambda v: f.number(v, 1)),
        ("average_balance", f.amount),
        ("loan_count", f.count),
        ("obligor_count", f.count),
    )
    rows = [
        _row(t(f"s5.{key}", currency=currency), fmt(characteristics[key]))
        for key, fmt in formatters
        if key in characteristics
    ]
    if not rows:
        return None
    columns = [(t("col.item"), False), (t("col.value"), True)]
    return _section(5, "characteristics", t("s5.title"), [_table(t("s5.caption"), columns, rows)])


def _delinquency(
    buckets: Sequence[Mapping[str, Any]], currency: str, t: _Texts, f: _Fmt
) -> Section | None:
    if not buckets:
        return None
    order = {name: i for i, name in enumerate(DPD_BUCKETS)}
    names = [row.get("bucket") for row in buckets]
    unknown = sorted(str(name) for name in names if name not in order)
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"delinquency buckets are unknown or repeated: {names}")
    rows = []
    count_total = 0
    balance_total = Decimal(0)
    share_total = Decimal(0)
    for item in sorted(buckets, key=lambda row: order[row["bucket"]]):
        count = _require(item, "count", "delinquency bucket")
        balance = to_decimal(_require(item, "balance", "delinquency bucket"))
        share = _require(item, "balance_share", "delinquency bucket")
        count_total += count
        balance_total += balance
        share_total += rate_to_decimal(share)
        rows.append(
            _row(
                t(f"bucket.{item['bucket']}"),
                f.count(count),
                f.amount(balance),
                f.rate(share, 2),
            )
        )
    rows.append(
        _row(
            t("s7.total"),
            f.count(count_total),
            f.amount(balance_total),
            f.rate(share_total, 2),
            total=True,
        )
    )
    columns = [
        (t("s7.bucket"), False),
        (t("s7.count"), True),
        (t("s7.balance", currency=currency), True),
        (t("s7.share"), True),
    ]
    return _section(7, "delinquency", t("s7.title"), [_table(t("s7.caption"), columns, rows)])


def _rate_rows(
    performance: Mapping[str, Any], keys: Sequence[tuple[str, int]], prefix: str, t: _Texts, f: _Fmt
) -> list[Row]:
    return [
        _row(t(f"{prefix}.{key}"), f.rate(performance[key], places))
        for key, places in keys
        if key in performance
    ]


def _default_loss_recovery(
    performance: Mapping[str, Any], pool: Mapping[str, Any], currency: str, t: _Texts, f: _Fmt
) -> Section | None:
    rates = _rate_rows(performance, _DEFAULT_KEYS, "s8", t, f)
    if not rates:
        return None
    defaulted = _row(
        t("s8.defaulted_principal", currency=currency),
        f.amount(_require(pool, "defaulted_principal", "pool")),
    )
    columns = [(t("col.item"), False), (t("col.value"), True)]
    return _section(
        8, "default", t("s8.title"), [_table(t("s8.caption"), columns, [defaulted, *rates])]
    )


def _prepayment(
    performance: Mapping[str, Any], pool: Mapping[str, Any], currency: str, t: _Texts, f: _Fmt
) -> Section | None:
    rates = _rate_rows(performance, _PREPAYMENT_KEYS, "s9", t, f)
    if not rates:
        return None
    unscheduled = _row(
        t("s9.unscheduled_principal", currency=currency),
        f.amount(_require(pool, "unscheduled_principal", "pool")),
    )
    columns = [(t("col.item"), False), (t("col.value"), True)]
    return _section(
        9, "prepayment", t("s9.title"), [_table(t("s9.caption"), columns, [unscheduled, *rates])]
    )


def _triggers(
    triggers: Sequence[Mapping[str, Any]], deal: DealTerms, t: _Texts, f: _Fmt
) -> Section | None:
    if not triggers:
        return None
    terms: dict[str, tuple[int, Trigger]] = {
        trigger.name: (i, trigger) for i, trigger in enumerate(deal.triggers)
    }
    unmatched = len(terms)

    def order(row: Mapping[str, Any]) -> tuple[int, str]:
        name = str(row["name"])
        return (terms[name][0] if name in terms else unmatched, name)

    rows = []
    for item in sorted(triggers, key=order):
        name = str(_require(item, "name", "trigger"))
        breached = item.get("breached")
        if not isinstance(breached, bool):
            raise ValueError(f"trigger {name!r}: breached must be true or false")
        term = terms.get(name)
        if term is None:
            test = consequence = f.na
        else:
            trigger = term[1]
            metric = t(f"metric.{trigger.metric}")
            test = t(f"comparison.{trigger.comparison}", metric=metric)
            consequence = t(f"consequence.{trigger.consequence}")
        rows.append(
            _row(
                name,
                test,
                f.rate(item.get("threshold"), 2, 4),
                f.rate(item.get("actual"), 4),
                t("s12.breached") if breached else t("s12.not_breached"),
                consequence,
            )
        )
    columns = [
        (t("s12.name"), False),
        (t("s12.test"), False),
        (t("s12.threshold"), True),
        (t("s12.actual"), True),
        (t("s12.status"), False),
        (t("s12.consequence"), False),
    ]
    return _section(12, "triggers", t("s12.title"), [_table(t("s12.caption"), columns, rows)])


def _definitions(
    deal: DealTerms, currency: str, t: _Texts, f: _Fmt, *, run_id: str, generated_at: str
) -> Section:
    terms = deal.definitions
    tolerance = f.amount(Decimal(terms.dpd_tolerance) / 100)
    rows = [
        _row(t("s15.default"), t("s15.default_text", days=f.count(terms.default_dpd))),
        _row(t("s15.charge_off"), t("s15.charge_off_text", days=f.count(terms.charge_off_dpd))),
        _row(t("s15.tolerance"), t("s15.tolerance_text", amount=tolerance, currency=currency)),
        _row(t("s15.denominator"), t(f"denominator.{terms.cumulative_default_denominator}")),
        _row(t("s15.amounts"), t("s15.amounts_text", currency=currency)),
        *(
            _row(t(f"s15.{key}"), t(f"s15.{key}_text"))
            for key in ("smm", "cpr", "mdr", "cdr", "wac")
        ),
    ]
    definitions = _table(
        t("s15.caption"), [(t("s15.term"), False), (t("s15.definition"), False)], rows
    )
    reproducibility = _table(
        t("s15.repro_caption"),
        [(t("col.item"), False), (t("col.value"), False)],
        [_row(t("s15.run_id"), run_id), _row(t("s15.generated_at"), generated_at)],
    )
    return _section(15, "definitions", t("s15.title"), [definitions, reproducibility])


def build_context(
    metrics: Mapping[str, Any],
    deal: DealTerms,
    *,
    generated_at: datetime,
    run_id: str,
    locale: str = "en",
    labels: Mapping[str, str] | None = None,
) -> DisclosureContext:
    """Build the disclosure context for one pool and collection period.

    Pure: no I/O and no clock; the generation time is passed in so that the same
    inputs give the same report.

    Args:
        metrics: A ``metrics.json`` document (DOMAIN.md): money as decimal
            strings, rates as numbers. ``performance``, ``characteristics``,
            ``delinquency``, ``tranches`` and ``triggers`` may be absent or
            partial; only what is present is shown.
        deal: The deal's terms (names, payment day, cut-off date, tranche face
            values, trigger terms, definitions).
        generated_at: Timezone-aware generation time; its date is the report date.
        run_id: The pipeline run that produced the report.
        locale: ``"en"`` or ``"zh_CN"``: number and date formats, and the deal
            name (``name_zh`` when the locale is Chinese and the deal has one).
        labels: The report texts for ``locale`` (same keys as
            :data:`EN_LABELS`); required for any locale other than ``"en"``.

    Returns:
        The context for ``render_disclosure``: title, language and the sections
        present, in DOMAIN.md order.

    Raises:
        ValueError: If the document contradicts the deal (pool, currency,
            classes), the roll-forward does not close to the fen, the period is
            malformed or not after the cut-off month, or labels are missing.
    """
    check_locale(locale)
    if labels is None:
        if locale != "en":
            raise ValueError(f"labels are required for locale {locale!r}")
        labels = EN_LABELS
    t = _Texts(labels)
    f = _Fmt(locale, t("not_available"))
    stamp = format_timestamp(generated_at)

    if metrics.get("pool_id") != deal.pool_id:
        raise ValueError(
            f"metrics are for pool {metrics.get('pool_id')!r}, deal is {deal.pool_id!r}"
        )
    currency = str(_require(metrics, "currency", "document"))
    if currency != deal.currency:
        raise ValueError(f"metrics currency {currency!r} differs from the deal's {deal.currency!r}")
    deal_name = deal.name_zh if locale.startswith("zh") and deal.name_zh else deal.name
    pool = _require(metrics, "pool", "document")
    performance: Mapping[str, Any] = metrics.get("performance") or {}

    candidates = [
        _deal_and_period(metrics, deal, t, f, deal_name=deal_name, generated_at=generated_at),
        _tranche_payments(metrics["tranches"], deal, currency, t, f)
        if metrics.get("tranches")
        else None,
        _pool_roll_forward(pool, currency, t, f),
        _collections(_require(metrics, "collections", "document"), currency, t, f),
        _characteristics(metrics.get("characteristics") or {}, currency, t, f),
        _delinquency(metrics.get("delinquency") or [], currency, t, f),
        _default_loss_recovery(performance, pool, currency, t, f),
        _prepayment(performance, pool, currency, t, f),
        _triggers(metrics.get("triggers") or [], deal, t, f),
        _definitions(deal, currency, t, f, run_id=run_id, generated_at=stamp),
    ]
    sections = sorted(
        (section for section in candidates if section is not None), key=lambda s: s["number"]
    )
    title = t("title", deal_name=deal_name, period=metrics["period"])
    return {"lang": html_lang(locale), "title": title, "sections": sections}
