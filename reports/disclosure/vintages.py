"""Section 14: the static pool (静态池)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from reports.charts import Chart, ChartTexts, SeriesData, line_chart
from reports.disclosure.base import (
    MAX_VINTAGE_LINES,
    Inputs,
    Report,
    SectionSpec,
)
from reports.formatting import (
    format_rate,
    rate_to_decimal,
)
from reports.layout import (
    Fmt,
    Link,
    Section,
    Table,
    Texts,
    row,
    section,
    table,
)
from reports.sources import VintageCurves, VintagePoint


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
    vintages: VintageCurves | None, static_pool_href: str | None, r: Report
) -> Section:
    t = r.t
    links: list[Link] = (
        [] if static_pool_href is None else [{"label": t("s14.link"), "href": static_pool_href}]
    )
    built = (
        vintage_curves(
            vintages.points,
            metric="cumulative_default_rate",
            chart_id="chart-vintage",
            title=t("s14.chart"),
            caption=t("s14.caption"),
            vintage_label=t("s14.vintage"),
            texts=t,
            fmt=r.f,
            chart_texts=r.chart_texts,
            locale=r.locale,
        )
        if vintages is not None and vintages.points
        else None
    )
    if built is None:
        missing = r.missing(14, "static_pool")
        missing["links"] = links
        return missing
    chart, _ = built
    return section(
        14,
        "static_pool",
        t("s14.title"),
        charts=[chart],
        notes=[t("s14.censored")]
        + ([t("s14.scope_book")] if vintages and vintages.book_wide else []),
        links=links,
    )


SHORT_HISTORY: Final = 12
"""A pool with fewer collection periods than this has a short history of its own."""


def static_pool(inputs: Inputs, r: Report) -> Section:
    """Section 14: vintage curves; a short pool history is said, with the book as context."""
    built = _static_pool(inputs.vintages, inputs.static_pool_href, r)
    if inputs.period_number < SHORT_HISTORY:
        built["notes"].append(
            r.t(
                "s14.short_history",
                periods=r.f.count(inputs.period_number),
                months=r.f.count(SHORT_HISTORY),
            )
        )
    return built


STATIC_POOL: Final = SectionSpec(14, "static_pool", static_pool)
