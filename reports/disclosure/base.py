"""What every section of the disclosure shares: inputs, texts and formats, helpers.

A section is a :class:`SectionSpec`: its DOMAIN.md number, a key, and a pure
``build(inputs, report) -> Section``. The registry in ``reports.disclosure``
lists them in order; adding a section is one module and one registry line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from reports import labels as translations
from reports.charts import Chart, ChartTexts, SeriesData, line_chart
from reports.deal_view import DealView
from reports.formatting import (
    NOT_AVAILABLE,
    Amount,
    currency_symbol,
    format_long_date,
    format_money,
    format_number,
    format_rate,
    half_up,
    rate_to_decimal,
    region_name,
    to_decimal,
)
from reports.layout import (
    Fmt,
    Row,
    Section,
    Table,
    not_computed,
    present,
    report_texts,
    table,
)
from reports.sources import (
    DataQuality,
    Provenance,
    Restatement,
    StratificationRow,
    VintageCurves,
)

REPORT: Final = "disclosure"

_PERIOD: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

ROLL_FORWARD: Final = (
    ("scheduled_principal", -1),
    ("unscheduled_principal", -1),
    ("defaulted_principal", -1),
    ("removed_principal", -1),
    ("purchased_principal", 1),
    ("new_drawings", 1),
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


def decimals_shown(value: Decimal, most: int) -> int:
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
ADHOC_FORECAST_SHORTFALL: Final = Decimal("0.20")
"""Collections this far or further below the forecast need an ad hoc disclosure."""
MAX_VINTAGE_LINES: Final = 6


def parse_period(period: object) -> tuple[int, int]:
    match = _PERIOD.match(period) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"period must be 'YYYY-MM', got {period!r}")
    return int(match.group(1)), int(match.group(2))


def month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = month_index(year, month) + months
    return index // 12, index % 12 + 1


class Report:
    """Texts, formats and chart helpers of one rendering."""

    def __init__(self, locale: str, labels: Mapping[str, str], currency: str) -> None:
        self.t = report_texts(REPORT, locale, labels)
        self.f = Fmt(locale, self.t("not_available"), NOT_AVAILABLE[locale])
        self.locale = locale
        self.hidden: dict[str, str] = {}
        """Figures not shown for this pool (``section.figure``), with the reason in words."""
        self.currency = currency
        self.provinces = translations.province_names(locale)
        self.chart_texts = ChartTexts(
            summary_range=self.t("chart.summary_range"),
            summary_single=self.t("chart.summary_single"),
            summary_max=self.t("chart.summary_max"),
            see_table=self.t("chart.see_table"),
        )

    @property
    def unit(self) -> str:
        """The currency unit of detail tables: 元 in Chinese, the ISO code in English for
        CNY; any other currency by its symbol (US$, NT$), never 元."""
        if self.currency != "CNY":
            return currency_symbol(self.currency, self.locale)
        return self.t.get(f"unit.{self.currency}", self.currency)

    def c(self, key: str) -> str:
        """A label with the currency unit filled in; a currency other than CNY takes the
        label's ``_foreign`` wording where one exists (no 元, 万元 or fen)."""
        if self.currency != "CNY":
            foreign = self.t.get(f"{key}_foreign", "", currency=self.unit)
            if foreign:
                return foreign
        return self.t(key, currency=self.unit)

    def summary_amount(self, value: Amount | None) -> str:
        """A headline amount: 万元 with two decimals in Chinese, currency units in English."""
        if value is None:
            return self.f.na
        amount = to_decimal(value)
        if self.currency != "CNY":
            return format_money(amount, self.currency, self.locale)
        if self.locale.startswith("zh"):
            return self.t(
                "wan_amount", amount=format_number(half_up(amount / 10_000, 2), self.locale, 2)
            )
        return self.t("summary_amount", amount=self.f.amount(amount), currency=self.unit)

    def date(self, value: date | None) -> str:
        """A long date (2025年6月30日 / June 30, 2025), or 'not computed'."""
        return self.f.na if value is None else format_long_date(value, self.locale)

    def missing(self, number: int, key: str) -> Section:
        return not_computed(number, key, self.t(f"s{number}.title"), self.t("not_computed"))

    def built_from(
        self, metrics: Mapping[str, Any], number: int, key: str, build: Callable[[Any], Section]
    ) -> Section:
        """Section ``number`` built from ``metrics[key]``, 'not computed' where that is absent."""
        part = metrics.get(key)
        return build(part) if present(part) else self.missing(number, key)

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
            return format_rate(value, self.locale, decimals_shown(value * 100, 4))

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
        """A region's name: the report's own names of China's provinces, any other ISO
        3166 code from maintained data."""
        if code in self.provinces:
            return self.provinces[code]
        if code.startswith("CN-") or code == "unknown":
            return self.t("province.unknown", code=code)
        return region_name(code, self.locale)

    def hide(self, hidden: Mapping[str, str]) -> None:
        """Record the figures not shown for this pool, the reasons in the report's language."""
        self.hidden = {
            key: self.t.get(f"hidden.{key}", reason) for key, reason in sorted(hidden.items())
        }

    def hidden_notes(self, *keys: str) -> list[str]:
        """One line per hidden figure among ``keys``: what is not shown and why."""
        return [
            self.t("hidden_figure", figure=self.t(f"hidden_name.{key}"), reason=self.hidden[key])
            for key in keys
            if key in self.hidden
        ]


@dataclass(frozen=True, slots=True)
class PeriodDates:
    """The dates of a collection period's disclosure, as the deal's rules set them.

    Read from ``metrics.json`` (the metrics stage applies the deal's payment-date,
    business-day and report-date rules); a date the document does not carry is None
    and printed as not computed, never replaced by the day the pipeline ran.
    """

    payment_date: date | None
    report_date: date | None
    interest_start: date | None
    interest_end: date | None
    day_count: str | None


def _date_of(value: object) -> date | None:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"metrics date {value!r} is not YYYY-MM-DD") from None
    return None


def period_dates(metrics: Mapping[str, Any], deal: DealView) -> PeriodDates:
    """The period's payment date, report date, interest period and day count.

    Looked up at the document's top level, then in its ``period_dates`` and
    ``definitions`` objects; the day count falls back to the deal's.
    """
    places: list[Mapping[str, Any]] = [metrics]
    for key in ("period_dates", "dates", "definitions"):
        value = metrics.get(key)
        if isinstance(value, Mapping):
            places.append(value)

    def find(*keys: str) -> object:
        for place in places:
            for key in keys:
                if place.get(key) is not None:
                    return place[key]
        return None

    interest = find("interest_period")
    start = _date_of(find("interest_period_start", "interest_start"))
    end = _date_of(find("interest_period_end", "interest_end"))
    if isinstance(interest, Mapping):
        start = start or _date_of(interest.get("start"))
        end = end or _date_of(interest.get("end"))
    day_count = find("day_count")
    if day_count is None:
        day_count = getattr(deal, "day_count", None)
    return PeriodDates(
        payment_date=_date_of(find("payment_date")),
        report_date=_date_of(find("report_date")),
        interest_start=start,
        interest_end=end,
        day_count=None if day_count is None else str(day_count),
    )


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the sections of one disclosure are built from (plain values only)."""

    metrics: Mapping[str, Any]
    deal: DealView
    history: Sequence[Mapping[str, Any]]
    """The pool's documents up to this period, oldest first, this one last."""
    period_number: int
    deal_name: str
    dates: PeriodDates
    generated_at: datetime
    provenance: Provenance
    stratifications: Sequence[StratificationRow] | None = None
    vintages: VintageCurves | None = None
    data_quality: DataQuality | None = None
    static_pool_href: str | None = None
    restatement: Restatement | None = None


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A section of the disclosure: its DOMAIN.md number, key and pure builder."""

    number: int
    key: str
    build: Callable[[Inputs, Report], Section]


def pool_history(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The pool's documents up to this period, oldest first, this period's document last."""
    by_period: dict[str, Mapping[str, Any]] = {}
    current = str(metrics["period"])
    for document in history:
        period = document.get("period")
        if document.get("pool_id") != metrics["pool_id"] or not isinstance(period, str):
            continue
        parse_period(period)
        if period < current:
            by_period[period] = document
    by_period[current] = metrics
    return [by_period[p] for p in sorted(by_period)]


def ordered_tranches(
    tranches: Sequence[Mapping[str, Any]], deal: DealView
) -> list[Mapping[str, Any]]:
    order = {tranche.class_name: i for i, tranche in enumerate(deal.tranches)}
    unknown = sorted(str(item.get("class")) for item in tranches if item.get("class") not in order)
    if unknown:
        raise ValueError(f"tranches not in the deal terms: {', '.join(unknown)}")
    return sorted(tranches, key=lambda item: order[item["class"]])


def money_chart(
    chart_id: str,
    title: str,
    *,
    periods: Sequence[str],
    series: Sequence[SeriesData],
    rows: list[Row],
    columns: Sequence[tuple[str, bool]],
    r: Report,
    secondary: tuple[str, Callable[[Decimal], str]] | None = None,
) -> Chart:
    # Chinese axes count in 万元, English ones in millions.
    divisor = 10_000 if r.locale.startswith("zh") else 1_000_000

    def tick(value: Decimal) -> str:
        scaled = value / divisor
        return format_number(scaled, r.locale, decimals_shown(scaled, 3))

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


def bucket_shares(doc: Mapping[str, Any]) -> dict[str, Decimal]:
    shares: dict[str, Decimal] = {}
    for item in doc.get("delinquency") or []:
        if item.get("balance_share") is not None:
            shares[str(item.get("bucket"))] = rate_to_decimal(item["balance_share"])
    return shares
