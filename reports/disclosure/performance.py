"""Sections 7-9: delinquency, default and loss, prepayment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from reports.charts import Chart, SeriesData
from reports.deal_view import DealView
from reports.disclosure.base import (
    ADHOC_FORECAST_SHORTFALL,
    ADHOC_LOSS_SHARE,
    ADHOC_WINDOW,
    DEFAULT_RATES,
    DPD30,
    DPD90,
    M_BUCKETS,
    PREPAYMENT_RATES,
    Inputs,
    Report,
    SectionSpec,
    bucket_shares,
)
from reports.formatting import rate_to_decimal, to_decimal
from reports.layout import Row, Section, Table, Unavailable, present, require, row, section, table
from transforms.schema import DPD_BUCKETS


def _delinquency_chart(history: Sequence[Mapping[str, Any]], r: Report) -> Chart:
    periods = [str(doc["period"]) for doc in history]
    series = []
    for key, buckets in M_BUCKETS:
        values: list[Decimal | None] = []
        for doc in history:
            shares = bucket_shares(doc)
            values.append(
                sum((shares[b] for b in buckets), Decimal(0))
                if all(b in shares for b in buckets)
                else None
            )
        series.append(SeriesData(r.t(f"s7.{key}").split(" ")[0].split("（")[0], tuple(values)))
    columns = [r.t(f"s7.{key}") for key, _ in M_BUCKETS]
    keys = ("s7.chart", "chart.unit_percent")
    return _percent_by_period(r, "chart-delinquency", periods, series, columns, keys=keys)


def _percent_by_period(
    r: Report,
    chart_id: str,
    periods: Sequence[str],
    series: Sequence[SeriesData],
    columns: Sequence[str],
    *,
    keys: tuple[str, str],
) -> Chart:
    """A chart of rates by collection period with its data table (two decimals).

    ``keys`` are the labels' keys of the chart's title and of its y axis's unit.
    """
    title_key, unit_key = keys
    title = r.t(title_key)
    rows = [
        row(period, *(r.f.rate(s.values[i], 2) for s in series)) for i, period in enumerate(periods)
    ]
    headers = [(r.t("col.period"), False), *((column, True) for column in columns)]
    return r.percent_chart(
        chart_id,
        title,
        periods,
        series,
        y_label=r.t(unit_key),
        x_label=r.t("chart.axis_period"),
        table_=table(r.t("chart.data_table", title=title), headers, rows),
        places=2,
    )


def _delinquency(
    buckets: Any, metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: Report
) -> Section:
    t, f = r.t, r.f
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
@dataclass(frozen=True, slots=True)
class LossTest:
    """The ad hoc disclosure test on losses over the trailing twelve periods."""

    periods: int
    net_losses: Decimal
    notes_at_start: Decimal | None
    """The notes' outstanding principal at the window's start (None when not known)."""

    @property
    def share(self) -> Decimal | None:
        if self.notes_at_start is None or self.notes_at_start <= 0:
            return None
        return self.net_losses / self.notes_at_start

    @property
    def flagged(self) -> bool | None:
        share = self.share
        return None if share is None else share > ADHOC_LOSS_SHARE


def loss_test(history: Sequence[Mapping[str, Any]]) -> LossTest | None:
    """Net losses (defaults less recoveries) over the latest twelve periods against the
    notes' outstanding principal at the window's start; None when a period lacks a figure."""
    window = history[-ADHOC_WINDOW:]
    losses = Decimal(0)
    for doc in window:
        pool = doc.get("pool") or {}
        recoveries = (doc.get("collections") or {}).get("recoveries")
        defaulted = pool.get("defaulted_principal")
        if defaulted is None or recoveries is None:
            return None
        losses += to_decimal(defaulted) - to_decimal(recoveries)
    first = window[0].get("tranches") or []
    balances = [item.get("opening_balance") for item in first]
    notes = (
        sum((to_decimal(b) for b in balances), Decimal(0))
        if balances and all(b is not None for b in balances)
        else None
    )
    return LossTest(len(window), losses, notes)


@dataclass(frozen=True, slots=True)
class ForecastTest:
    """Collections against the deal's forecast for the period."""

    forecast: Decimal
    actual: Decimal

    @property
    def shortfall(self) -> Decimal:
        return (self.forecast - self.actual) / self.forecast if self.forecast > 0 else Decimal(0)

    @property
    def flagged(self) -> bool:
        return self.shortfall >= ADHOC_FORECAST_SHORTFALL


def forecast_test(metrics: Mapping[str, Any], deal: DealView) -> ForecastTest | None:
    """The period's collections against the deal's forecast (None without a forecast or
    without collections)."""
    forecast = next(
        (item.amount for item in deal.forecast_collections if item.period == metrics["period"]),
        None,
    )
    total = (metrics.get("collections") or {}).get("total")
    if forecast is None or total is None or isinstance(total, Unavailable):
        return None
    return ForecastTest(Decimal(forecast) / 100, to_decimal(total))


def _adhoc_tables(inputs: Inputs, r: Report) -> tuple[list[Table], list[str]]:
    t, f = r.t, r.f
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables: list[Table] = []
    notes: list[str] = []

    def status(flag: bool | None) -> str:
        return f.na if flag is None else t("s8.adhoc_yes") if flag else t("s8.adhoc_no")

    losses = loss_test(inputs.history)
    if losses is not None:
        rows = [
            row(t("s8.adhoc_periods"), f.count(losses.periods)),
            row(r.c("s8.adhoc_losses"), f.amount(losses.net_losses)),
            row(r.c("s8.adhoc_notes"), f.amount(losses.notes_at_start)),
            row(t("s8.adhoc_share"), f.rate(losses.share, 2)),
            row(t("s8.adhoc_status"), status(losses.flagged)),
        ]
        tables.append(table(t("s8.adhoc_caption"), columns, rows))
        notes.append(t("s8.adhoc_note"))
    forecast = forecast_test(inputs.metrics, inputs.deal)
    if forecast is None:
        notes.append(t("s8.forecast_note"))
    else:
        rows = [
            row(r.c("s8.forecast"), f.amount(forecast.forecast)),
            row(r.c("s8.actual"), f.amount(forecast.actual)),
            row(t("s8.shortfall"), f.rate(forecast.shortfall, 2)),
            row(t("s8.forecast_status"), status(forecast.flagged)),
        ]
        tables.append(table(t("s8.forecast_caption"), columns, rows))
    return tables, notes


def _default_loss_recovery(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: Report
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
            f.rate(
                recovery
                if recovery is None or isinstance(recovery, Unavailable)
                else 1 - rate_to_decimal(recovery),
                2,
            ),
        )
    )
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables = [table(t("s8.caption"), columns, rows)]
    return section(8, "default", t("s8.title"), tables)


# -- 9 -------------------------------------------------------------------------------------
def _rates_chart(history: Sequence[Mapping[str, Any]], r: Report) -> Chart | None:
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
    columns = [r.t("s9.cpr"), r.t("s8.cdr")]
    keys = ("s9.chart", "chart.unit_rate")
    return _percent_by_period(r, "chart-rates", periods, series, columns, keys=keys)


def _prepayment(
    metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]], r: Report
) -> Section:
    t, f = r.t, r.f
    performance = metrics.get("performance") or {}
    rates = {key: performance.get(key) for key, _ in PREPAYMENT_RATES}
    if not present(rates):
        return r.missing(9, "prepayment")
    pool = metrics.get("pool") or {}
    keys = [f"performance.{key}" for key, _ in PREPAYMENT_RATES]
    notes = r.hidden_notes(*keys)
    if all(key in r.hidden for key in keys):
        # Nothing schedule-based applies: the section states why instead of any figure.
        return section(9, "prepayment", t("s9.title"), notes=notes, computed=False)
    rows = [
        row(r.c("s9.unscheduled_principal"), f.amount(pool.get("unscheduled_principal"))),
        *(
            row(t(f"s9.{key}"), f.rate(rates[key], places))
            for key, places in PREPAYMENT_RATES
            if f"performance.{key}" not in r.hidden
        ),
    ]
    columns = [(t("col.item"), False), (t("col.value"), True)]
    chart = None if "performance.cpr" in r.hidden else _rates_chart(history, r)
    return section(
        9,
        "prepayment",
        t("s9.title"),
        [table(t("s9.caption"), columns, rows)],
        charts=[chart] if chart is not None else [],
        notes=notes,
    )


def delinquency(inputs: Inputs, r: Report) -> Section:
    """Section 7: delinquency by bucket and in M-notation."""
    return r.built_from(
        inputs.metrics,
        7,
        "delinquency",
        lambda buckets: _delinquency(buckets, inputs.metrics, inputs.history, r),
    )


def default_loss_recovery(inputs: Inputs, r: Report) -> Section:
    """Section 8: defaults, losses and recoveries, and the ad hoc disclosure tests."""
    built = _default_loss_recovery(inputs.metrics, inputs.history, r)
    if built["computed"]:
        tables, notes = _adhoc_tables(inputs, r)
        built["tables"] += tables
        built["notes"] += notes
    return built


def prepayment(inputs: Inputs, r: Report) -> Section:
    """Section 9: SMM and CPR."""
    return _prepayment(inputs.metrics, inputs.history, r)


DELINQUENCY: Final = SectionSpec(7, "delinquency", delinquency)
DEFAULT: Final = SectionSpec(8, "default", default_loss_recovery)
PREPAYMENT: Final = SectionSpec(9, "prepayment", prepayment)
