"""The monthly trustee disclosure (受托机构报告) of one pool and collection period.

:func:`build_context` turns a ``metrics.json`` document (DOMAIN.md), the deal's
terms, the pool's earlier documents (for the charts) and the optional marts into
a render-ready context: every figure is already a formatted string, so the
template only lays out text. All fifteen sections of DOMAIN.md "What a
disclosure contains" are always printed, in order; a section whose inputs are
absent or null says that it was not computed for the period and shows no
figures, so nothing is ever filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from babel.numbers import format_currency

from data_contracts.deal import DealTerms, Trigger
from reports import labels as translations
from reports.charts import Chart, ChartTexts, SeriesData, line_chart
from reports.formatting import (
    Amount,
    check_locale,
    format_long_date,
    format_number,
    format_rate,
    format_timestamp,
    half_up,
    html_lang,
    rate_to_decimal,
    to_decimal,
)
from reports.layout import (
    DocumentContext,
    Fmt,
    KeyFigure,
    Link,
    Row,
    Section,
    Table,
    Texts,
    not_computed,
    present,
    require,
    row,
    section,
    table,
)
from reports.sources import (
    DataQuality,
    Provenance,
    StratificationRow,
    VintageCurves,
    VintagePoint,
    check_href,
)
from transforms.schema import DPD_BUCKETS

DisclosureContext = DocumentContext
"""Everything ``disclosure.html.j2`` prints."""


REPORT: Final = "disclosure"

_PERIOD: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

_ROLL_FORWARD: Final = (
    ("scheduled_principal", -1),
    ("unscheduled_principal", -1),
    ("defaulted_principal", -1),
    ("removed_principal", -1),
    ("purchased_principal", 1),
)
"""Roll-forward lines after the opening balance, with the sign each contributes."""

DEFAULT_RATES: Final = (
    ("mdr", 4),
    ("cdr", 2),
    ("cumulative_default_rate", 4),
    ("cumulative_net_loss_rate", 4),
    ("recovery_rate", 2),
)
PREPAYMENT_RATES: Final = (("smm", 4), ("cpr", 2))
"""Performance rates with the percent decimals shown (small monthly rates get four)."""

M_BUCKETS: Final = (
    ("m1", ("1-30",)),
    ("m2", ("31-60",)),
    ("m3", ("61-90",)),
    ("m3plus", ("91-120", "121-150", "151-180", "180+")),
)
"""The M-notation of Chinese reports over the DPD buckets."""
DPD30: Final = ("31-60", "61-90", "91-120", "121-150", "151-180", "180+")
DPD90: Final = ("91-120", "121-150", "151-180", "180+")


def _decimals_shown(value: Decimal, most: int) -> int:
    """Decimals an axis tick needs to show ``value`` without trailing zeros, at most ``most``."""
    exponent = value.normalize().as_tuple().exponent
    return min(max(0, -exponent) if isinstance(exponent, int) else 0, most)


def delinquency_share(document: Mapping[str, Any], buckets: Sequence[str]) -> Decimal | None:
    """The pool-balance share of ``buckets`` in a metrics document (null if any is missing)."""
    shares = {
        str(item.get("bucket")): item.get("balance_share")
        for item in document.get("delinquency") or []
    }
    if any(shares.get(bucket) is None for bucket in buckets):
        return None
    return sum((rate_to_decimal(shares[bucket]) for bucket in buckets), Decimal(0))


DIMENSIONS: Final = (
    "balance",
    "outstanding_balance",
    "rate",
    "annual_rate",
    "remaining_term",
    "months_on_book",
    "province",
    "age",
    "borrower_age",
    "credit_score",
    "product",
    "channel",
    "repayment_method",
)
"""Stratification dimensions in DOMAIN.md order; others follow alphabetically."""

ADHOC_LOSS_SHARE: Final = Decimal("0.10")
"""Net losses above this share of the outstanding principal within a year need an ad hoc
disclosure (DOMAIN.md, exchange rules)."""
ADHOC_WINDOW: Final = 12
MAX_VINTAGE_LINES: Final = 6

_TITLE_KEYS: Final = tuple(f"s{n}.title" for n in range(1, 16))


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


def _dec(value: Any) -> Decimal:
    return to_decimal(value) if isinstance(value, str) else rate_to_decimal(value)


class _Report:
    """Texts, formats and chart helpers of one rendering."""

    def __init__(self, locale: str, labels: Mapping[str, str], currency: str) -> None:
        self.t = Texts(labels, required=list(translations.labels("en", REPORT)))
        self.f = Fmt(locale, self.t("not_available"))
        self.locale = locale
        self.currency = currency
        self.provinces = translations.province_names(locale)
        self.chart_texts = ChartTexts(
            summary_range=self.t("chart.summary_range"),
            summary_single=self.t("chart.summary_single"),
            summary_max=self.t("chart.summary_max"),
            see_table=self.t("chart.see_table"),
        )

    def c(self, key: str) -> str:
        """A label with the currency filled in."""
        return self.t(key, currency=self.currency)

    def missing(self, number: int, key: str) -> Section:
        return not_computed(number, key, self.t(f"s{number}.title"), self.t("not_computed"))

    def percent_tick(self, value: Decimal, step_places: int) -> str:
        return format_rate(value, self.locale, step_places)

    def percent_chart(
        self,
        chart_id: str,
        title: str,
        x_labels: Sequence[str],
        series: Sequence[SeriesData],
        *,
        y_label: str,
        x_label: str,
        table_: Table,
        places: int,
    ) -> Chart:
        def tick(value: Decimal) -> str:
            return format_rate(value, self.locale, _decimals_shown(value * 100, 4))

        return line_chart(
            chart_id=chart_id,
            title=title,
            x_labels=x_labels,
            series=series,
            format_tick=tick,
            format_value=lambda v: format_rate(v, self.locale, places),
            texts=self.chart_texts,
            x_label=x_label,
            y_label=y_label,
            table=table_,
            min_span=Decimal("0.01"),
        )

    def province(self, code: str) -> str:
        return self.provinces.get(code) or self.t("province.unknown", code=code)


def _history(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The pool's documents up to this period, oldest first, this period's document last."""
    by_period: dict[str, Mapping[str, Any]] = {}
    current = str(metrics["period"])
    for document in history:
        period = document.get("period")
        if document.get("pool_id") != metrics["pool_id"] or not isinstance(period, str):
            continue
        _parse_period(period)
        if period < current:
            by_period[period] = document
    by_period[current] = metrics
    return [by_period[p] for p in sorted(by_period)]


# -- 1 -------------------------------------------------------------------------------------
def _deal_and_period(
    metrics: Mapping[str, Any],
    deal: DealTerms,
    r: _Report,
    *,
    deal_name: str,
    generated_at: datetime,
    period_number: int,
) -> Section:
    t, f = r.t, r.f
    year, month = _parse_period(metrics["period"])
    start = date.fromisoformat(require(metrics, "period_start", "document"))
    end = date.fromisoformat(require(metrics, "period_end", "document"))
    pay_year, pay_month = _add_months(year, month, 1)
    payment_date = date(pay_year, pay_month, deal.payment_day)
    period_range = t(
        "period_range",
        start=format_long_date(start, r.locale),
        end=format_long_date(end, r.locale),
    )

    def optional_date(value: date | None) -> str:
        return t("s1.none") if value is None else format_long_date(value, r.locale)

    rows = [
        row(t("s1.deal_name"), deal_name),
        row(t("s1.pool_id"), deal.pool_id),
        row(t("s1.currency"), r.currency),
        row(t("s1.collection_period"), period_range),
        row(t("s1.period_number"), f.count(period_number)),
        row(t("s1.payment_date"), format_long_date(payment_date, r.locale)),
        row(t("s1.report_date"), format_long_date(generated_at.date(), r.locale)),
        row(t("s1.cutoff_date"), format_long_date(deal.cutoff_date, r.locale)),
        row(t("s1.closing_date"), format_long_date(deal.closing_date, r.locale)),
        row(t("s1.revolving_period_end"), optional_date(deal.revolving_period_end)),
    ]
    if deal.legal_final_date is not None:
        rows.append(
            row(t("s1.legal_final_date"), format_long_date(deal.legal_final_date, r.locale))
        )
    columns = [(t("col.item"), False), (t("col.value"), False)]
    return section(1, "deal", t("s1.title"), [table(t("s1.caption"), columns, rows)])


# -- 2 -------------------------------------------------------------------------------------
def _notes_issued(deal: DealTerms, r: _Report) -> Table:
    t, f = r.t, r.f
    rows = [
        row(
            tranche.class_name,
            tranche.code or f.na,
            t(f"kind.{tranche.kind}"),
            tranche.rating or "–",
            f.rate(tranche.coupon, 2, 4),
            f.amount(Decimal(tranche.original_balance) / 100),
        )
        for tranche in deal.tranches
    ]
    columns = [
        (t("s2.class"), False),
        (t("s2.code"), False),
        (t("s2.kind"), False),
        (t("s2.rating"), False),
        (t("s2.coupon"), True),
        (r.c("s2.original_balance"), True),
    ]
    return table(t("s2.notes_caption"), columns, rows)


def _ordered_tranches(
    tranches: Sequence[Mapping[str, Any]], deal: DealTerms
) -> list[Mapping[str, Any]]:
    order = {tranche.class_name: i for i, tranche in enumerate(deal.tranches)}
    unknown = sorted(str(item.get("class")) for item in tranches if item.get("class") not in order)
    if unknown:
        raise ValueError(f"tranches not in the deal terms: {', '.join(unknown)}")
    return sorted(tranches, key=lambda item: order[item["class"]])


def _tranche_chart(deal: DealTerms, history: Sequence[Mapping[str, Any]], r: _Report) -> Chart:
    periods = [str(doc["period"]) for doc in history]
    series = []
    for tranche in deal.tranches:
        values: list[Decimal | None] = []
        for doc in history:
            found = [
                item.get("closing_balance")
                for item in doc.get("tranches") or []
                if item.get("class") == tranche.class_name
            ]
            values.append(to_decimal(found[0]) if found and found[0] is not None else None)
        if any(v is not None for v in values):
            series.append(SeriesData(tranche.class_name, tuple(values)))
    title = r.t("s2.chart")
    rows = [
        row(
            period,
            *(r.f.amount(s.values[i]) if s.values[i] is not None else r.f.na for s in series),
        )
        for i, period in enumerate(periods)
    ]
    columns = [(r.t("col.period"), False)] + [
        (f"{s.label} — {r.c('s2.closing_balance')}", True) for s in series
    ]
    return _money_chart(
        "chart-tranches", title, periods=periods, series=series, rows=rows, columns=columns, r=r
    )


def _money_chart(
    chart_id: str,
    title: str,
    *,
    periods: Sequence[str],
    series: Sequence[SeriesData],
    rows: list[Row],
    columns: Sequence[tuple[str, bool]],
    r: _Report,
    secondary: tuple[str, Callable[[Decimal], str]] | None = None,
) -> Chart:
    def tick(value: Decimal) -> str:
        millions = value / 1_000_000
        return format_number(millions, r.locale, _decimals_shown(millions, 3))

    return line_chart(
        chart_id=chart_id,
        title=title,
        x_labels=periods,
        series=series,
        format_tick=tick,
        format_value=r.f.amount,
        texts=r.chart_texts,
        x_label=r.t("chart.axis_period"),
        y_label=r.c("chart.unit_million"),
        table=table(r.t("chart.data_table", title=title), columns, rows),
        min_span=Decimal(100),
        secondary=secondary,
    )


def _tranche_payments(
    metrics: Mapping[str, Any], deal: DealTerms, history: Sequence[Mapping[str, Any]], r: _Report
) -> Section:
    t, f = r.t, r.f
    tables = [_notes_issued(deal, r)]
    notes: list[str] = []
    charts: list[Chart] = []
    tranches: Any = metrics.get("tranches")
    original_fen = {tranche.class_name: tranche.original_balance for tranche in deal.tranches}

    def per_100(amount: Amount | None, class_name: str) -> str:
        if amount is None:
            return f.na
        # Per 100 yuan of face value: amount / (original fen / 100) * 100.
        return f.number(half_up(to_decimal(amount) * 10_000 / original_fen[class_name], 4), 4)

    if present(tranches):
        ordered = _ordered_tranches(tranches, deal)

        def has(key: str) -> bool:
            return any(key in item for item in ordered)

        def money(key: str) -> Callable[[Mapping[str, Any]], str]:
            return lambda item: f.amount(item.get(key))

        def per_100_of(key: str, paid: str) -> Callable[[Mapping[str, Any]], str]:
            # The document's own figure when it has one, else computed from the payment.
            return lambda item: (
                f.number(item[key], 4)
                if item.get(key) is not None
                else per_100(item.get(paid), item["class"])
            )

        spec: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
            (r.c("s2.opening_balance"), money("opening_balance")),
            (t("s2.coupon"), lambda item: f.rate(item.get("coupon"), 2, 4)),
        ]
        if has("interest_due"):
            spec.append((r.c("s2.interest_due"), money("interest_due")))
        spec.append((r.c("s2.interest_paid"), money("interest_paid")))
        if has("interest_shortfall"):
            spec.append((r.c("s2.interest_shortfall"), money("interest_shortfall")))
        spec += [
            (r.c("s2.principal_paid"), money("principal_paid")),
            (r.c("s2.closing_balance"), money("closing_balance")),
            (t("s2.bond_factor"), lambda item: f.number(item.get("bond_factor"), 6)),
        ]
        per_100_spec: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
            (r.c("s2.interest_per_100"), per_100_of("interest_per_100", "interest_paid")),
            (r.c("s2.principal_per_100"), per_100_of("principal_per_100", "principal_paid")),
        ]
        if has("payment_per_100"):
            per_100_spec.append(
                (r.c("s2.payment_per_100"), lambda item: f.number(item.get("payment_per_100"), 4))
            )
        rows = [row(item["class"], *(cell(item) for _, cell in spec)) for item in ordered]
        columns = [(t("s2.class"), False)] + [(label, True) for label, _ in spec]
        per_100_rows = [
            row(item["class"], *(cell(item) for _, cell in per_100_spec)) for item in ordered
        ]
        per_100_columns = [(t("s2.class"), False)] + [(label, True) for label, _ in per_100_spec]
        tables.append(table(t("s2.caption"), columns, rows))
        tables.append(table(r.c("s2.per_100_caption"), per_100_columns, per_100_rows))
        charts.append(_tranche_chart(deal, history, r))
    else:
        notes.append(t("not_computed"))
    return section(
        2,
        "tranches",
        t("s2.title"),
        tables,
        charts=charts,
        notes=notes,
        computed=present(tranches),
        page_break=True,
    )


# -- 3 -------------------------------------------------------------------------------------
def _pool_chart(pool: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: _Report) -> Chart:
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
    return _money_chart(
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
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: _Report
) -> Section:
    t, f = r.t, r.f
    pool = require(metrics, "pool", "document")
    opening = to_decimal(require(pool, "opening_balance", "pool"))
    closing = to_decimal(require(pool, "closing_balance", "pool"))
    rows = [row(t("s3.opening_balance"), f.amount(opening))]
    running = opening
    for key, sign in _ROLL_FORWARD:
        movement = sign * to_decimal(require(pool, key, "pool"))
        running += movement
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
        3, "pool", t("s3.title"), [roll_forward, summary], charts=[_pool_chart(pool, history, r)]
    )


# -- 4 -------------------------------------------------------------------------------------
def _collections(metrics: Mapping[str, Any], r: _Report) -> Section:
    t, f = r.t, r.f
    collections: Any = metrics.get("collections")
    if not present(collections):
        return r.missing(4, "collections")
    amounts = {
        key: to_decimal(require(collections, key, "collections"))
        for key in ("principal", "interest", "fees", "recoveries", "total")
    }
    rows = [
        row(t(f"s4.{key}"), f.amount(amounts[key]))
        for key in ("principal", "interest", "fees", "recoveries")
    ]
    rows.append(row(t("s4.total"), f.amount(amounts["total"]), total=True))
    columns = [(t("col.item"), False), (r.c("col.amount"), True)]
    income = amounts["interest"] + amounts["fees"] + amounts["recoveries"]
    accounts = table(
        t("s4.accounts_caption"),
        columns,
        [
            row(t("s4.principal_account"), f.amount(amounts["principal"])),
            row(t("s4.income_account"), f.amount(income)),
            row(t("s4.total"), f.amount(amounts["principal"] + income), total=True),
        ],
    )
    tables = [table(t("s4.caption"), columns, rows), accounts]
    steps: Any = metrics.get("waterfall")
    if present(steps):
        tables.append(_waterfall(steps, r))
    return section(4, "collections", t("s4.title"), tables, notes=[t("s4.accounts_note")])


_CLASS_ITEM: Final = re.compile(r"^class_(.+)_(interest|principal|residual)$")


def _waterfall_item(item: str, r: _Report) -> str:
    match = _CLASS_ITEM.match(item)
    if match is not None:
        return r.t(f"waterfall.class_{match.group(2)}", cls=match.group(1))
    return r.t.get(f"waterfall.{item}", item)


def _waterfall(steps: Sequence[Mapping[str, Any]], r: _Report) -> Table:
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
def _characteristics(metrics: Mapping[str, Any], r: _Report) -> Section:
    t, f = r.t, r.f
    characteristics: Any = metrics.get("characteristics")
    if not present(characteristics):
        return r.missing(5, "characteristics")
    formatters: tuple[tuple[str, Callable[[Any], str]], ...] = (
        ("wac", lambda v: f.rate(v, 2)),
        ("wam_months", lambda v: f.number(v, 1)),
        ("wala_months", lambda v: f.number(v, 1)),
        ("average_balance", f.amount),
        ("loan_count", f.count),
        ("obligor_count", f.count),
    )
    rows = [row(r.c(f"s5.{key}"), fmt(characteristics.get(key))) for key, fmt in formatters]
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables = [table(t("s5.caption"), columns, rows)]
    notes: list[str] = []
    concentration: Mapping[str, Any] = metrics.get("concentration") or {}
    shares = {
        k: concentration.get(k)
        for k in ("top1_obligor_share", "top10_obligor_share", "hhi_obligor")
    }
    if present(shares):
        tables.append(
            table(
                t("s5.concentration_caption"),
                columns,
                [
                    row(t("s5.top1_obligor_share"), f.rate(shares["top1_obligor_share"], 4)),
                    row(t("s5.top10_obligor_share"), f.rate(shares["top10_obligor_share"], 2)),
                    row(t("s5.hhi_obligor"), f.number(shares["hhi_obligor"], 6)),
                ],
            )
        )
    else:
        notes.append(t("s5.concentration_missing"))
    provinces: Any = concentration.get("province_shares")
    if present(provinces):
        ordered = sorted(
            provinces.items(), key=lambda item: (-rate_to_decimal(item[1] or 0), str(item[0]))
        )
        tables.append(
            table(
                t("s5.province_caption"),
                [(t("s5.province"), False), (t("s5.share"), True)],
                [row(r.province(str(code)), f.rate(share, 2)) for code, share in ordered],
            )
        )
    return section(5, "characteristics", t("s5.title"), tables, notes=notes)


# -- 6 -------------------------------------------------------------------------------------
def _band_label(dimension: str, band: str, r: _Report) -> str:
    if band == "unknown":
        return r.t("band.unknown")
    if dimension == "province":
        return r.province(band)
    if dimension == "product":
        return r.t.get(f"product.{band}", band)
    return band


def _stratifications(rows_in: Sequence[StratificationRow] | None, r: _Report) -> Section:
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
        name = r.t.get(f"dimension.{dimension}", dimension, currency=r.currency)
        columns = [
            (t("s6.band"), False),
            (t("s6.count"), True),
            (r.c("s6.balance"), True),
            (t("s6.share"), True),
            (t("s6.wac"), True),
        ]
        tables.append(table(t("s6.caption", dimension=name), columns, rows))
    return section(6, "stratifications", t("s6.title"), tables, page_break=True)


# -- 7 -------------------------------------------------------------------------------------
def _bucket_shares(doc: Mapping[str, Any]) -> dict[str, Decimal]:
    shares: dict[str, Decimal] = {}
    for item in doc.get("delinquency") or []:
        if item.get("balance_share") is not None:
            shares[str(item.get("bucket"))] = rate_to_decimal(item["balance_share"])
    return shares


def _delinquency_chart(history: Sequence[Mapping[str, Any]], r: _Report) -> Chart:
    periods = [str(doc["period"]) for doc in history]
    series = []
    for key, buckets in M_BUCKETS:
        values: list[Decimal | None] = []
        for doc in history:
            shares = _bucket_shares(doc)
            values.append(
                sum((shares[b] for b in buckets), Decimal(0))
                if all(b in shares for b in buckets)
                else None
            )
        series.append(SeriesData(r.t(f"s7.{key}").split(" ")[0].split("（")[0], tuple(values)))
    title = r.t("s7.chart")
    rows = [
        row(period, *(r.f.rate(s.values[i], 2) for s in series)) for i, period in enumerate(periods)
    ]
    columns = [(r.t("col.period"), False)] + [(r.t(f"s7.{key}"), True) for key, _ in M_BUCKETS]
    return r.percent_chart(
        "chart-delinquency",
        title,
        periods,
        series,
        y_label=r.t("chart.unit_percent"),
        x_label=r.t("chart.axis_period"),
        table_=table(r.t("chart.data_table", title=title), columns, rows),
        places=2,
    )


def _delinquency(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: _Report
) -> Section:
    t, f = r.t, r.f
    buckets: Any = metrics.get("delinquency")
    if not present(buckets):
        return r.missing(7, "delinquency")
    order = {name: i for i, name in enumerate(DPD_BUCKETS)}
    names = [item.get("bucket") for item in buckets]
    unknown = sorted(str(name) for name in names if name not in order)
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"delinquency buckets are unknown or repeated: {names}")
    rows = []
    count_total = 0
    balance_total = Decimal(0)
    share_total = Decimal(0)
    by_bucket: dict[str, tuple[int, Decimal, Decimal]] = {}
    for item in sorted(buckets, key=lambda entry: order[entry["bucket"]]):
        count = require(item, "count", "delinquency bucket")
        balance = to_decimal(require(item, "balance", "delinquency bucket"))
        share = rate_to_decimal(require(item, "balance_share", "delinquency bucket"))
        by_bucket[item["bucket"]] = (count, balance, share)
        count_total += count
        balance_total += balance
        share_total += share
        rows.append(
            row(t(f"bucket.{item['bucket']}"), f.count(count), f.amount(balance), f.rate(share, 2))
        )
    rows.append(
        row(
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
        (r.c("s7.balance"), True),
        (t("s7.share"), True),
    ]

    def group(key: str, members: Sequence[str]) -> Row:
        present_members = [by_bucket[b] for b in members if b in by_bucket]
        return row(
            t(key),
            f.count(sum(m[0] for m in present_members)),
            f.amount(sum((m[1] for m in present_members), Decimal(0))),
            f.rate(sum((m[2] for m in present_members), Decimal(0)), 2),
        )

    m_document: Any = metrics.get("delinquency_m")
    if present(m_document):
        keys = {"M1": "m1", "M2": "m2", "M3": "m3", "M3+": "m3plus"}
        m_rows = [
            row(
                t(f"s7.{keys[str(item['bucket'])]}")
                if item.get("bucket") in keys
                else str(item.get("bucket")),
                f.count(item.get("count")),
                f.amount(item.get("balance")),
                f.rate(item.get("balance_share"), 2),
            )
            for item in m_document
        ]
    else:
        m_rows = [group(f"s7.{key}", members) for key, members in M_BUCKETS]
    m_rows += [group("s7.dpd30", DPD30), group("s7.dpd90", DPD90)]
    return section(
        7,
        "delinquency",
        t("s7.title"),
        [table(t("s7.caption"), columns, rows), table(t("s7.m_caption"), columns, m_rows)],
        charts=[_delinquency_chart(history, r)],
    )


# -- 8 -------------------------------------------------------------------------------------
def _adhoc_losses(
    history: Sequence[Mapping[str, Any]], r: _Report
) -> tuple[Table, list[str]] | None:
    window = history[-ADHOC_WINDOW:]
    losses = Decimal(0)
    for doc in window:
        pool = doc.get("pool") or {}
        recoveries = (doc.get("collections") or {}).get("recoveries")
        defaulted = pool.get("defaulted_principal")
        if defaulted is None or recoveries is None:
            return None
        losses += to_decimal(defaulted) - to_decimal(recoveries)
    closing = to_decimal((history[-1].get("pool") or {}).get("closing_balance") or "0")
    t, f = r.t, r.f
    share = losses / closing if closing > 0 else None
    breached = share is not None and share > ADHOC_LOSS_SHARE
    rows = [
        row(t("s8.adhoc_periods"), f.count(len(window))),
        row(r.c("s8.adhoc_losses"), f.amount(losses)),
        row(t("s8.adhoc_share"), f.rate(share, 2)),
        row(t("s8.adhoc_status"), t("s8.adhoc_yes") if breached else t("s8.adhoc_no")),
    ]
    columns = [(t("col.item"), False), (t("col.value"), True)]
    return table(t("s8.adhoc_caption"), columns, rows), [t("s8.adhoc_note"), t("s8.forecast_note")]


def _default_loss_recovery(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: _Report
) -> Section:
    t, f = r.t, r.f
    performance = metrics.get("performance") or {}
    pool = metrics.get("pool") or {}
    collections = metrics.get("collections") or {}
    rates = {key: performance.get(key) for key, _ in DEFAULT_RATES}
    if not present(rates):
        return r.missing(8, "default")
    rows = [
        row(r.c("s8.defaulted_principal"), f.amount(pool.get("defaulted_principal"))),
        row(r.c("s8.recoveries"), f.amount(collections.get("recoveries"))),
        *(row(t(f"s8.{key}"), f.rate(rates[key], places)) for key, places in DEFAULT_RATES),
    ]
    recovery = rates["recovery_rate"]
    rows.append(
        row(
            t("s8.severity"),
            f.rate(None if recovery is None else 1 - rate_to_decimal(recovery), 2),
        )
    )
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables = [table(t("s8.caption"), columns, rows)]
    notes: list[str] = []
    adhoc = _adhoc_losses(history, r)
    if adhoc is not None:
        tables.append(adhoc[0])
        notes += adhoc[1]
    return section(8, "default", t("s8.title"), tables, notes=notes)


# -- 9 -------------------------------------------------------------------------------------
def _rates_chart(history: Sequence[Mapping[str, Any]], r: _Report) -> Chart | None:
    periods = [str(doc["period"]) for doc in history]
    series = []
    for key in ("cpr", "cdr"):
        values = tuple(
            None
            if (doc.get("performance") or {}).get(key) is None
            else rate_to_decimal(doc["performance"][key])
            for doc in history
        )
        series.append(SeriesData(r.t(f"s9.series_{key}"), values))
    if not any(v is not None for s in series for v in s.values):
        return None
    title = r.t("s9.chart")
    rows = [
        row(period, *(r.f.rate(s.values[i], 2) for s in series)) for i, period in enumerate(periods)
    ]
    columns = [(r.t("col.period"), False), (r.t("s9.cpr"), True), (r.t("s8.cdr"), True)]
    return r.percent_chart(
        "chart-rates",
        title,
        periods,
        series,
        y_label=r.t("chart.unit_rate"),
        x_label=r.t("chart.axis_period"),
        table_=table(r.t("chart.data_table", title=title), columns, rows),
        places=2,
    )


def _prepayment(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: _Report
) -> Section:
    t, f = r.t, r.f
    performance = metrics.get("performance") or {}
    rates = {key: performance.get(key) for key, _ in PREPAYMENT_RATES}
    if not present(rates):
        return r.missing(9, "prepayment")
    pool = metrics.get("pool") or {}
    rows = [
        row(r.c("s9.unscheduled_principal"), f.amount(pool.get("unscheduled_principal"))),
        *(row(t(f"s9.{key}"), f.rate(rates[key], places)) for key, places in PREPAYMENT_RATES),
    ]
    columns = [(t("col.item"), False), (t("col.value"), True)]
    chart = _rates_chart(history, r)
    return section(
        9,
        "prepayment",
        t("s9.title"),
        [table(t("s9.caption"), columns, rows)],
        charts=[chart] if chart is not None else [],
    )


# -- 10 ------------------------------------------------------------------------------------
def _revolving(metrics: Mapping[str, Any], deal: DealTerms, r: _Report) -> Section:
    t, f = r.t, r.f
    revolving: Any = metrics.get("revolving")
    payment_rate = (metrics.get("performance") or {}).get("payment_rate")
    if not present(revolving) and payment_rate is None:
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
    rows.append(row(t("s10.payment_rate"), f.rate(payment_rate, 2)))
    columns = [(t("col.item"), False), (t("col.value"), True)]
    return section(10, "revolving", t("s10.title"), [table(t("s10.caption"), columns, rows)])


# -- 11 ------------------------------------------------------------------------------------
def _credit_enhancement(metrics: Mapping[str, Any], deal: DealTerms, r: _Report) -> Section:
    t, f = r.t, r.f
    tranches: Any = metrics.get("tranches")
    excess_spread = (metrics.get("performance") or {}).get("excess_spread")
    balances_known = present(tranches) and all(
        item.get("closing_balance") is not None for item in tranches
    )
    recorded: Any = metrics.get("credit_enhancement")
    if present(recorded) and excess_spread is None:
        excess_spread = recorded.get("excess_spread")
    if not balances_known and excess_spread is None and not present(recorded):
        return r.missing(11, "credit_enhancement")
    tables = []
    notes: list[str] = []
    columns = [(t("col.item"), False), (t("col.value"), True)]
    pool_closing = to_decimal(
        require(require(metrics, "pool", "document"), "closing_balance", "pool")
    )
    if balances_known:
        ordered = _ordered_tranches(tranches, deal)
        balances = [to_decimal(item["closing_balance"]) for item in ordered]
        notes_total = sum(balances, Decimal(0))
        rows = []
        senior = Decimal(0)
        for i, item in enumerate(ordered):
            senior += balances[i]
            junior = notes_total - senior
            subordination = item.get("subordination")
            if subordination is None and notes_total > 0:
                subordination = junior / notes_total
            enhancement = item.get("credit_enhancement")
            if enhancement is None and pool_closing > 0:
                enhancement = (pool_closing - senior) / pool_closing
            rows.append(
                row(
                    item["class"],
                    f.amount(balances[i]),
                    f.rate(subordination, 2),
                    f.rate(enhancement, 2),
                )
            )
        tables.append(
            table(
                t("s11.caption"),
                [
                    (t("s11.class"), False),
                    (r.c("s11.closing_balance"), True),
                    (t("s11.subordination"), True),
                    (t("s11.enhancement"), True),
                ],
                rows,
            )
        )
        overview = [
            row(r.c("s11.pool_balance"), f.amount(pool_closing)),
            row(r.c("s11.notes_balance"), f.amount(notes_total)),
            row(
                t("s11.overcollateralisation"),
                f.rate(
                    (pool_closing - notes_total) / pool_closing if pool_closing > 0 else None, 2
                ),
            ),
            row(t("s11.excess_spread"), f.rate(excess_spread, 2)),
        ]
    else:
        overview = [row(t("s11.excess_spread"), f.rate(excess_spread, 2))]
    if present(recorded):
        # The metrics stage's own collateral figures take the place of the ones derived here.
        overview = [
            row(r.c(label), f.amount(recorded.get(key)))
            for key, label in (
                ("collateral_balance", "s11.collateral_balance"),
                ("notes_balance", "s11.notes_balance"),
                ("overcollateralisation", "s11.oc_amount"),
                ("principal_account", "s11.principal_account"),
                ("principal_deficiency", "s11.principal_deficiency"),
            )
            if key in recorded
        ]
        overview.append(
            row(
                t("s11.overcollateralisation_ratio"),
                f.rate(recorded.get("overcollateralisation_ratio"), 2),
            )
        )
        overview.append(row(t("s11.excess_spread"), f.rate(excess_spread, 2)))
    tables.append(table(t("s11.overview_caption"), columns, overview))
    return section(11, "credit_enhancement", t("s11.title"), tables, notes=notes)


# -- 12 ------------------------------------------------------------------------------------
def _triggers(
    metrics: Mapping[str, Any], deal: DealTerms, period_number: int, r: _Report
) -> Section:
    t, f = r.t, r.f
    triggers: Any = metrics.get("triggers")
    if not present(triggers):
        return r.missing(12, "triggers")
    terms: dict[str, tuple[int, Trigger]] = {
        trigger.name: (i, trigger) for i, trigger in enumerate(deal.triggers)
    }
    unmatched = len(terms)

    def order(item: Mapping[str, Any]) -> tuple[int, str]:
        name = str(item["name"])
        return (terms[name][0] if name in terms else unmatched, name)

    with_effect = any("in_effect" in item for item in triggers)
    rows = []
    for item in sorted(triggers, key=order):
        name = str(require(item, "name", "trigger"))
        breached = item.get("breached")
        if breached is not None and not isinstance(breached, bool):
            raise ValueError(f"trigger {name!r}: breached must be true, false or null")
        term = terms.get(name)
        metric_key = str(item.get("metric") or (term[1].metric if term else ""))
        comparison = str(item.get("comparison") or (term[1].comparison if term else ""))
        consequence_key = str(item.get("consequence") or (term[1].consequence if term else ""))
        test = (
            t(
                f"comparison.{comparison}",
                metric=t.get(f"metric.{metric_key}", metric_key),
            )
            if comparison in ("above", "below") and metric_key
            else f.na
        )
        consequence = (
            t.get(f"consequence.{consequence_key}", consequence_key) if consequence_key else f.na
        )
        status = (
            t("s12.unknown")
            if breached is None
            else t("s12.breached")
            if breached
            else t("s12.not_breached")
        )
        cells = [
            test,
            f.rate(item.get("threshold"), 2, 4),
            f.rate(item.get("actual"), 4),
            status,
            consequence,
        ]
        if with_effect:
            effect = item.get("in_effect")
            cells.append(f.na if effect is None else t("answer.yes") if effect else t("answer.no"))
        rows.append(row(name, *cells))
    columns = [
        (t("s12.name"), False),
        (t("s12.test"), False),
        (t("s12.threshold"), True),
        (t("s12.actual"), True),
        (t("s12.status"), False),
        (t("s12.consequence"), False),
    ]
    if with_effect:
        columns.append((t("s12.in_effect"), False))
    return section(12, "triggers", t("s12.title"), [table(t("s12.caption"), columns, rows)])


# -- 13 ------------------------------------------------------------------------------------
def vintage_curves(
    points: Sequence[VintagePoint],
    *,
    metric: str,
    chart_id: str,
    title: str,
    caption: str,
    vintage_label: str,
    texts: Texts,
    fmt: Fmt,
    chart_texts: ChartTexts,
    locale: str,
) -> tuple[Chart, Table] | None:
    """A vintage chart (one line per origination month) and its matrix table.

    Args:
        points: Vintage points; those whose ``metric`` is null are left out.
        metric: ``cumulative_default_rate`` or ``cumulative_net_loss_rate``.
        chart_id: The chart's id.
        title: The chart's title.
        caption: The matrix table's caption.
        vintage_label: Header of the vintage column.
        texts: Report texts (for the axis titles).
        fmt: Formatters of the report's locale.
        chart_texts: Templates of the chart's text alternative.
        locale: The report's locale.

    Returns:
        The chart and the table (vintages as rows, months on book as columns; a
        vintage's cells after its latest month on book are blank, never averaged),
        or None when no point carries ``metric``.
    """
    values: dict[str, dict[int, Decimal]] = {}
    for point in points:
        value = getattr(point, metric)
        if value is not None:
            values.setdefault(point.vintage, {})[point.months_on_book] = rate_to_decimal(value)
    if not values:
        return None
    months = sorted({m for curve in values.values() for m in curve})
    vintages = sorted(values)
    # More than a handful of lines cannot be told apart in print: the chart shows every
    # k-th vintage counted back from the newest, the table all of them.
    every = max(1, -(-len(vintages) // MAX_VINTAGE_LINES))
    drawn = vintages[::-1][::every][::-1]
    series = [
        SeriesData(vintage, tuple(values[vintage].get(m) for m in months)) for vintage in drawn
    ]
    rows = [
        row(
            vintage,
            *(fmt.rate(values[vintage][m], 2) if m in values[vintage] else "–" for m in months),
        )
        for vintage in vintages
    ]
    columns = [(vintage_label, False)] + [(fmt.count(m), True) for m in months]

    def tick(value: Decimal) -> str:
        exponent = (value * 100).normalize().as_tuple().exponent
        shown = max(0, -exponent) if isinstance(exponent, int) else 0
        return format_rate(value, locale, min(shown, 4))

    if every > 1:
        title = f"{title} ({texts('chart.vintage_subset', every=fmt.count(every))})"
    chart = line_chart(
        chart_id=chart_id,
        title=title,
        x_labels=[fmt.count(m) for m in months],
        series=series,
        format_tick=tick,
        format_value=lambda v: format_rate(v, locale, 2),
        texts=chart_texts,
        x_label=texts("chart.axis_mob"),
        y_label=texts("chart.unit_cumulative"),
        table=table(texts("chart.data_table", title=title), columns, rows),
        min_span=Decimal("0.01"),
    )
    return chart, table(caption, columns, rows)


def _static_pool(
    vintages: VintageCurves | None, static_pool_href: str | None, r: _Report
) -> Section:
    t = r.t
    links: list[Link] = (
        [] if static_pool_href is None else [{"label": t("s13.link"), "href": static_pool_href}]
    )
    built = (
        vintage_curves(
            vintages.points,
            metric="cumulative_default_rate",
            chart_id="chart-vintage",
            title=t("s13.chart"),
            caption=t("s13.caption"),
            vintage_label=t("s13.vintage"),
            texts=t,
            fmt=r.f,
            chart_texts=r.chart_texts,
            locale=r.locale,
        )
        if vintages is not None and vintages.points
        else None
    )
    if built is None:
        missing = r.missing(13, "static_pool")
        missing["links"] = links
        return missing
    chart, _ = built
    return section(
        13,
        "static_pool",
        t("s13.title"),
        charts=[chart],
        notes=[t("s13.censored")]
        + ([t("s13.scope_book")] if vintages and vintages.book_wide else []),
        links=links,
        page_break=True,
    )


# -- 14 ------------------------------------------------------------------------------------
def _data_quality(quality: DataQuality | None, r: _Report) -> Section:
    t, f = r.t, r.f
    if quality is None or not quality.datasets:
        return r.missing(14, "data_quality")

    def dataset(name: str) -> str:
        return t.get(f"dataset.{name}", name)

    rows = [
        row(
            dataset(item.dataset),
            f.count(item.received),
            f.count(item.accepted),
            f.count(item.quarantined),
        )
        for item in quality.datasets
    ]
    tables = [
        table(
            t("s14.caption"),
            [
                (t("s14.dataset"), False),
                (t("s14.received"), True),
                (t("s14.accepted"), True),
                (t("s14.quarantined"), True),
            ],
            rows,
        )
    ]
    notes: list[str] = []
    if quality.rules:
        tables.append(
            table(
                t("s14.rules_caption"),
                [(t("s14.rule"), False), (t("s14.dataset"), False), (t("s14.rows"), True)],
                [
                    row(item.rule_id, dataset(item.dataset), f.count(item.rows))
                    for item in sorted(quality.rules, key=lambda q: (q.dataset, q.rule_id))
                ],
            )
        )
    else:
        notes.append(t("s14.no_rejections"))
    if quality.contract_versions:
        tables.append(
            table(
                t("s14.contracts_caption"),
                [(t("s14.contract"), False), (t("s14.version"), False)],
                [row(name, version) for name, version in quality.contract_versions],
            )
        )
    links: list[Link] = [{"label": link.label, "href": link.href} for link in quality.reports]
    if links:
        notes.append(t("s14.reports"))
    return section(14, "data_quality", t("s14.title"), tables, notes=notes, links=links)


# -- 15 ------------------------------------------------------------------------------------
def _definitions(
    deal: DealTerms,
    recorded: Mapping[str, Any],
    provenance: Provenance,
    stamp: str,
    r: _Report,
) -> Section:
    t, f = r.t, r.f
    terms = deal.definitions
    tolerance = f.amount(Decimal(terms.dpd_tolerance) / 100)
    # A formula recorded with the figures is the one the metrics stage used: it wins.
    formulas = ("smm", "cpr", "mdr", "cdr", "wac", "pool_factor", "bond_factor")
    rows = [
        row(t("s15.default"), t("s15.default_text", days=f.count(terms.default_dpd))),
        row(t("s15.charge_off"), t("s15.charge_off_text", days=f.count(terms.charge_off_dpd))),
        row(t("s15.tolerance"), t("s15.tolerance_text", amount=tolerance, currency=r.currency)),
        row(t("s15.denominator"), t(f"denominator.{terms.cumulative_default_denominator}")),
        row(t("s15.amounts"), r.c("s15.amounts_text")),
        *(
            row(t(f"s15.{key}"), str(recorded[key]) if key in recorded else t(f"s15.{key}_text"))
            for key in formulas
        ),
    ]
    definitions = table(
        t("s15.caption"), [(t("s15.term"), False), (t("s15.definition"), False)], rows
    )
    repro_rows = [
        row(t("s15.run_id"), provenance.run_id),
        row(t("s15.code_version"), provenance.code_version),
        row(t("generated_at"), stamp),
        *(row(t("s15.input", name=name), digest) for name, digest in provenance.inputs),
    ]
    reproducibility = table(
        t("s15.repro_caption"), [(t("col.item"), False), (t("col.value"), False)], repro_rows
    )
    tables = [definitions]
    if any(key not in formulas for key in recorded):
        tables.append(
            table(
                t("s15.recorded_caption"),
                [(t("s15.term"), False), (t("col.value"), False)],
                [
                    row(
                        t.get(f"definition.{key}", key),
                        f.count(value)
                        if isinstance(value, int)
                        else t.get(f"denominator.{value}", str(value)),
                    )
                    for key, value in sorted(recorded.items())
                    if key not in formulas
                ],
            )
        )
    tables.append(reproducibility)
    return section(15, "definitions", t("s15.title"), tables)


# -- headline ------------------------------------------------------------------------------
def _key_figures(metrics: Mapping[str, Any], r: _Report) -> list[KeyFigure]:
    t, f = r.t, r.f
    pool = metrics.get("pool") or {}
    performance = metrics.get("performance") or {}
    closing = pool.get("closing_balance")
    shares = _bucket_shares(metrics)
    dpd30 = sum((shares[b] for b in DPD30), Decimal(0)) if all(b in shares for b in DPD30) else None
    triggers = metrics.get("triggers") or []
    tested = [item for item in triggers if isinstance(item.get("breached"), bool)]
    figures: list[KeyFigure] = [
        {
            "label": t("key.closing_balance"),
            "value": f.na
            if closing is None
            else format_currency(
                half_up(to_decimal(closing), 2),
                r.currency,
                locale=r.locale,
                format_type="standard",
                currency_digits=True,
            ),
        },
        {"label": t("key.pool_factor"), "value": f.number(pool.get("pool_factor"), 6)},
        {"label": t("key.delinquency_30"), "value": f.rate(dpd30, 2)},
        {"label": t("key.cdr"), "value": f.rate(performance.get("cdr"), 2)},
        {"label": t("key.cpr"), "value": f.rate(performance.get("cpr"), 2)},
        {
            "label": t("key.triggers"),
            "value": t(
                "key.triggers_value",
                breached=f.count(sum(1 for item in tested if item["breached"])),
                total=f.count(len(tested)),
            )
            if tested
            else f.na,
        },
    ]
    return figures


def build_context(
    metrics: Mapping[str, Any],
    deal: DealTerms,
    *,
    generated_at: datetime,
    provenance: Provenance,
    locale: str = "en",
    history: Sequence[Mapping[str, Any]] = (),
    stratifications: Sequence[StratificationRow] | None = None,
    vintages: VintageCurves | None = None,
    data_quality: DataQuality | None = None,
    alternate_href: str | None = None,
    static_pool_href: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> DisclosureContext:
    """Build the disclosure context for one pool and collection period.

    Pure: no I/O and no clock; the generation time is passed in so that the same
    inputs give the same report.

    Args:
        metrics: A ``metrics.json`` document (DOMAIN.md): money as decimal
            strings, rates as numbers. Objects and lists other than ``pool``
            may be absent, empty or null; their sections then say they were
            not computed.
        deal: The deal's terms (names, dates, tranche face values, trigger
            terms, definitions).
        generated_at: Timezone-aware generation time; its date is the report date.
        provenance: The run id, code version and input hashes for the footer.
        locale: ``"en"`` or ``"zh_CN"``: texts, number and date formats, and the
            deal name (``name_zh`` in Chinese when the deal has one).
        history: The pool's earlier ``metrics.json`` documents, for the charts;
            documents of other pools or later periods are ignored.
        stratifications: This pool's and period's stratification bands, if computed.
        vintages: The vintage-curve points up to this period, if computed.
        data_quality: Rows received and quarantined over the period, if known.
        alternate_href: Link to the same report in the other language.
        static_pool_href: Link to the pool's static-pool report.
        labels: Texts overriding the packaged ones for ``locale`` (same keys).

    Returns:
        The context for ``render_disclosure``: title, language, key figures and
        the fifteen sections in DOMAIN.md order.

    Raises:
        ValueError: If the document contradicts the deal (pool, currency,
            classes), the roll-forward does not close to the fen, the period is
            malformed or not after the cut-off month, or labels lack keys.
    """
    check_locale(locale)
    for href in (alternate_href, static_pool_href):
        if href is not None:
            check_href(href)
    if metrics.get("pool_id") != deal.pool_id:
        raise ValueError(
            f"metrics are for pool {metrics.get('pool_id')!r}, deal is {deal.pool_id!r}"
        )
    currency = str(require(metrics, "currency", "document"))
    if currency != deal.currency:
        raise ValueError(f"metrics currency {currency!r} differs from the deal's {deal.currency!r}")
    r = _Report(locale, translations.labels(locale, REPORT) if labels is None else labels, currency)
    t = r.t
    year, month = _parse_period(metrics["period"])
    start = date.fromisoformat(require(metrics, "period_start", "document"))
    end = date.fromisoformat(require(metrics, "period_end", "document"))
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
    recorded_number = metrics.get("period_number")
    if recorded_number is not None and recorded_number != period_number:
        raise ValueError(
            f"period_number {recorded_number} differs from the {period_number} counted "
            f"from the cut-off month"
        )
    deal_name = deal.name_zh if locale.startswith("zh") and deal.name_zh else deal.name
    stamp = format_timestamp(generated_at)
    past = _history(metrics, history)

    sections = [
        _deal_and_period(
            metrics,
            deal,
            r,
            deal_name=deal_name,
            generated_at=generated_at,
            period_number=period_number,
        ),
        _tranche_payments(metrics, deal, past, r),
        _pool_roll_forward(metrics, past, r),
        _collections(metrics, r),
        _characteristics(metrics, r),
        _stratifications(stratifications, r),
        _delinquency(metrics, past, r),
        _default_loss_recovery(metrics, past, r),
        _prepayment(metrics, past, r),
        _revolving(metrics, deal, r),
        _credit_enhancement(metrics, deal, r),
        _triggers(metrics, deal, period_number, r),
        _static_pool(vintages, static_pool_href, r),
        _data_quality(data_quality, r),
        _definitions(deal, metrics.get("definitions") or {}, provenance, stamp, r),
    ]
    other = "zh-CN" if locale == "en" else "en"
    return {
        "lang": html_lang(locale),
        "title": t("title", deal_name=deal_name, period=metrics["period"]),
        "doc_kind": t("doc_kind"),
        "texts": {key: t(key) for key in ("contents", "key_figures", "generated_at")},
        "rounding_note": r.c("rounding_note"),
        "key_figures": _key_figures(metrics, r),
        "toc": [{"anchor": s["anchor"], "title": f"{s['number']}. {s['title']}"} for s in sections],
        "sections": sections,
        "alternate": None
        if alternate_href is None
        else {"label": t(f"language.{other}"), "href": alternate_href, "lang": other},
        "generated_at": stamp,
    }
