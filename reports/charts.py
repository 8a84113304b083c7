"""Line charts as inline SVG geometry: no script, no external resource, readable in print.

:func:`line_chart` turns series of values into coordinates, ticks and labels;
the template ``_macros.html.j2`` writes the ``<svg>`` elements, so every text
in a chart goes through the template's autoescaping. Series are told apart
without colour: each has its own dash pattern and marker shape (filled or
open), and its label is written at the end of its line. Every chart carries a
text alternative (``<title>`` and ``<desc>``) and the table of its data.

Coordinates are printed with one decimal, so the same values always give the
same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final, TypedDict

from reports.tables import Table

WIDTH: Final = 640
HEIGHT: Final = 270
LEFT: Final = 70
RIGHT_PLAIN: Final = 84
TOP: Final = 14
BOTTOM: Final = 44
LABEL_GAP: Final = 11.0
"""Least vertical distance between two end-of-line labels, in SVG units."""
LABEL_WIDTH: Final = 48.0
"""End labels closer than this along x are spread apart vertically."""

PALETTE: Final = ("#1f4e9c", "#a33a00", "#1d6b2a", "#6a1b9a", "#333333", "#006064", "#8a5300")
"""Line colours, each with at least 4.5:1 contrast on white."""
DASHES: Final = ("", "6 3", "2 3", "8 3 2 3")
MARKERS: Final = ("circle", "square", "triangle", "diamond")
MARKER_SIZE: Final = 3.0
MAX_X_LABELS: Final = 9
FONT_SIZE: Final = 10.0
"""The charts' font size in SVG units (the template sets it on each ``<svg>``)."""
Y_TITLE_BAND: Final = 20.0
"""Room at the left (and right) edge for a rotated axis title."""


def text_width(text: str) -> float:
    """A generous estimate of a label's width: CJK glyphs one em, others 0.62 em."""
    return sum(FONT_SIZE if ord(ch) >= 0x2E80 else 0.62 * FONT_SIZE for ch in text)


@dataclass(frozen=True, slots=True)
class SeriesData:
    """One line: a short label written at its end, and a value per x position (None = gap)."""

    label: str
    values: tuple[Decimal | None, ...]


@dataclass(frozen=True, slots=True)
class ChartTexts:
    """Templates of a chart's text alternative (see the ``chart.*`` labels)."""

    summary_range: str
    summary_single: str
    summary_max: str
    see_table: str


class Tick(TypedDict):
    """An axis tick: its coordinate along the axis and its label."""

    at: str
    label: str


class Series(TypedDict):
    """A drawn line: path, markers and end label."""

    label: str
    path: str
    markers: str
    filled: bool
    dash: str
    colour: str
    label_x: str
    label_y: str


class Chart(TypedDict):
    """Everything the chart macro draws, and the chart's data table."""

    id: str
    title: str
    description: str
    width: int
    height: int
    left: str
    right: str
    top: str
    bottom: str
    x_label: str
    y_label: str
    y2_label: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    y2_ticks: list[Tick]
    series: list[Series]
    table: Table


def _c(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def nice_step(span: Decimal, intervals: int = 4) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) dividing ``span`` into at most
    ``intervals`` intervals.

    Raises:
        ValueError: If ``span`` is not positive.
    """
    if span <= 0:
        raise ValueError("span must be positive")
    raw = span / intervals
    magnitude = Decimal(1).scaleb(raw.adjusted())
    for multiple in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        step = multiple * magnitude
        if step >= raw:
            return step.normalize()
    return (10 * magnitude).normalize()


def axis_range(values: Sequence[Decimal], min_span: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Axis bounds and step covering ``values`` and zero, on round steps.

    Args:
        values: The values to show (not empty).
        min_span: The least span of the axis (so an all-zero series still has an axis).

    Returns:
        (low, high, step) with low <= min(values, 0) and high >= max(values, 0).
    """
    low = min(*values, Decimal(0))
    high = max(*values, Decimal(0))
    span = max(high - low, min_span)
    step = nice_step(span)
    low = (low / step).to_integral_value(rounding=ROUND_FLOOR) * step
    high = (high / step).to_integral_value(rounding=ROUND_CEILING) * step
    if high - low < min_span:
        high = low + (min_span / step).to_integral_value(rounding=ROUND_CEILING) * step
    return low, high, step


def _marker(shape: str, x: float, y: float) -> str:
    r = MARKER_SIZE
    if shape == "circle":
        return f"M{_c(x - r)} {_c(y)}a{r} {r} 0 1 0 {2 * r} 0a{r} {r} 0 1 0 {-2 * r} 0Z"
    if shape == "square":
        return f"M{_c(x - r)} {_c(y - r)}h{2 * r}v{2 * r}h{-2 * r}Z"
    k = r + 0.5
    points: tuple[tuple[float, float], ...]
    if shape == "triangle":
        points = ((x, y - k), (x + k, y + r), (x - k, y + r))
    else:
        points = ((x, y - k), (x + k, y), (x, y + k), (x - k, y))
    return "M" + "L".join(f"{_c(px)} {_c(py)}" for px, py in points) + "Z"


def _spread(positions: list[tuple[float, float, int]], low: float, high: float) -> dict[int, float]:
    """Move end labels apart vertically (keeping their order) so that labels ending at
    about the same x never overlap; labels far apart along x keep their place."""
    placed: dict[int, float] = {}
    clusters: list[list[tuple[float, float, int]]] = []
    for item in sorted(positions):
        if clusters and item[0] - clusters[-1][-1][0] < LABEL_WIDTH:
            clusters[-1].append(item)
        else:
            clusters.append([item])
    for cluster in clusters:
        ordered = sorted((y, index) for _, y, index in cluster)
        ys: list[float] = []
        current = low - LABEL_GAP
        for y, _ in ordered:
            current = max(y, current + LABEL_GAP)
            ys.append(current)
        overflow = ys[-1] - high
        if overflow > 0:
            ys = [y - overflow for y in ys]
            for i in range(len(ys) - 2, -1, -1):
                ys[i] = min(ys[i], ys[i + 1] - LABEL_GAP)
        for (_, index), y in zip(ordered, ys, strict=True):
            placed[index] = y
    return placed


def _describe(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[SeriesData],
    format_value: Callable[[Decimal], str],
    texts: ChartTexts,
) -> str:
    parts = [title + "."]
    for item in series:
        points = [(x_labels[i], v) for i, v in enumerate(item.values) if v is not None]
        if not points:
            continue
        if len(points) == 1:
            text = texts.summary_single.format(
                series=item.label, value=format_value(points[0][1]), period=points[0][0]
            )
        else:
            text = texts.summary_range.format(
                series=item.label,
                first=format_value(points[0][1]),
                first_period=points[0][0],
                last=format_value(points[-1][1]),
                last_period=points[-1][0],
            )
            top = max(points, key=lambda point: point[1])
            text += "; " + texts.summary_max.format(value=format_value(top[1]), period=top[0])
        parts.append(text + ".")
    parts.append(texts.see_table)
    return " ".join(parts)


def line_chart(
    *,
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[SeriesData],
    format_tick: Callable[[Decimal], str],
    format_value: Callable[[Decimal], str],
    texts: ChartTexts,
    x_label: str,
    y_label: str,
    table: Table,
    min_span: Decimal = Decimal(1),
    secondary: tuple[str, Callable[[Decimal], str]] | None = None,
) -> Chart:
    """Lay out a line chart over categorical x positions (periods or months on book).

    Args:
        chart_id: A document-unique id (used for ``aria-labelledby``).
        title: The chart's title (its caption and the start of its text alternative).
        x_labels: One label per x position, in order.
        series: The lines; each has one value per x position.
        format_tick: Formats a y-axis tick value.
        format_value: Formats a value for the text alternative.
        texts: Templates of the text alternative.
        x_label: The x-axis title.
        y_label: The y-axis title (with its unit).
        table: The data table shown next to the chart.
        min_span: The least y-axis span.
        secondary: A right-hand axis as (title, tick formatter): the formatter gets the
            left-axis value of each tick (for a factor axis that is the balance divided
            by a constant).

    Returns:
        The chart geometry.

    Raises:
        ValueError: If a series does not have one value per x position, or no value
            is present at all.
    """
    count = len(x_labels)
    for item in series:
        if len(item.values) != count:
            raise ValueError(f"series {item.label!r} has {len(item.values)} values for {count}")
    values = [v for item in series for v in item.values if v is not None]
    if not values:
        raise ValueError(f"chart {chart_id!r} has no values")
    low, high, step = axis_range(values, min_span)
    tick_values: list[Decimal] = []
    tick = low
    while tick <= high:
        tick_values.append(tick)
        tick += step
    # Margins wide enough for the widest tick label and the series labels at the line ends,
    # so that no two labels of the chart overlap.
    widest_tick = max(text_width(format_tick(v)) for v in tick_values)
    left = max(float(LEFT), Y_TITLE_BAND + widest_tick + 6)
    if secondary is not None:
        widest_right = max(text_width(secondary[1](v)) for v in tick_values) + Y_TITLE_BAND
    else:
        widest_right = max((text_width(item.label) for item in series), default=0.0)
    right = WIDTH - max(float(RIGHT_PLAIN), widest_right + 9)
    bottom = HEIGHT - BOTTOM
    plot_w = right - left
    plot_h = bottom - TOP

    def x_at(i: int) -> float:
        return left + plot_w / 2 if count == 1 else left + plot_w * i / (count - 1)

    def y_at(value: Decimal) -> float:
        return bottom - plot_h * float((value - low) / (high - low))

    y_ticks: list[Tick] = []
    y2_ticks: list[Tick] = []
    for tick in tick_values:
        y_ticks.append({"at": _c(y_at(tick)), "label": format_tick(tick)})
        if secondary is not None:
            y2_ticks.append({"at": _c(y_at(tick)), "label": secondary[1](tick)})
    widest_x = max((text_width(label) for label in x_labels), default=0.0) + 6
    spacing = plot_w / (count - 1) if count > 1 else plot_w
    every = max(1, math.ceil(count / MAX_X_LABELS), math.ceil(widest_x / spacing))
    x_ticks: list[Tick] = [
        {"at": _c(x_at(i)), "label": label}
        for i, label in enumerate(x_labels)
        if i % every == 0 or i == count - 1
    ]
    if len(x_ticks) >= 2 and (count - 1) % every != 0:
        # The last label would crowd the regular one before it.
        del x_ticks[-2]

    drawn: list[Series] = []
    ends: list[tuple[float, float, int]] = []
    for index, item in enumerate(series):
        path: list[str] = []
        markers: list[str] = []
        shape = MARKERS[index % len(MARKERS)]
        pen_up = True
        last: tuple[float, float] | None = None
        for i, value in enumerate(item.values):
            if value is None:
                pen_up = True
                continue
            x, y = x_at(i), y_at(value)
            path.append(f"{'M' if pen_up else 'L'}{_c(x)} {_c(y)}")
            markers.append(_marker(shape, x, y))
            pen_up = False
            last = (x, y)
        if last is None:
            continue
        ends.append((last[0], last[1], len(drawn)))
        drawn.append(
            {
                "label": item.label,
                "path": "".join(path),
                "markers": "".join(markers),
                "filled": (index // len(MARKERS)) % 2 == 0,
                "dash": DASHES[index % len(DASHES)],
                "colour": PALETTE[index % len(PALETTE)],
                "label_x": _c(last[0] + 7),
                "label_y": "",
            }
        )
    for index, y in _spread(ends, TOP + 4, bottom).items():
        drawn[index]["label_y"] = _c(y + 3.5)

    return {
        "id": chart_id,
        "title": title,
        "description": _describe(title, x_labels, series, format_value, texts),
        "width": WIDTH,
        "height": HEIGHT,
        "left": _c(left),
        "right": _c(right),
        "top": _c(TOP),
        "bottom": _c(bottom),
        "x_label": x_label,
        "y_label": y_label,
        "y2_label": secondary[0] if secondary is not None else "",
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "y2_ticks": y2_ticks,
        "series": drawn,
        "table": table,
    }
