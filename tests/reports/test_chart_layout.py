"""Chart labels never overlap: every text box of a chart, computed from its SVG, is
disjoint from every other."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal
from itertools import combinations

import pytest

from reports.charts import ChartTexts, SeriesData, line_chart
from reports.render import environment
from reports.tables import table
from tests.reports.golden import render_sample

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"
FONT = 10.0
"""The charts' font size in SVG units (set on each <svg>)."""
TEXTS = ChartTexts(
    "{series}: {first_period} {first}, {last_period} {last}", "{series}", "{value}", ""
)


@dataclass(frozen=True)
class Box:
    text: str
    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box) -> bool:
        return (
            self.left < other.right
            and other.left < self.right
            and self.top < other.bottom
            and other.top < self.bottom
        )


def advance(text: str) -> float:
    """A generous width estimate: CJK glyphs are one em wide, others at most 0.62 em."""
    return sum(FONT if ord(ch) >= 0x2E80 else 0.62 * FONT for ch in text)


def box(element: ET.Element, font: float) -> Box:
    text = "".join(element.itertext())
    width = advance(text) * font / FONT
    anchor = element.get("text-anchor", "start")
    transform = element.get("transform")
    if transform is not None:
        match = re.match(r"translate\(([\d.]+) ([\d.]+)\) rotate\((-?90)\)", transform)
        assert match, transform
        x, y, angle = float(match[1]), float(match[2]), int(match[3])
        # Rotated a quarter turn: the run is vertical, centred when anchored in the middle.
        start = {"start": 0.0, "middle": -width / 2, "end": -width}[anchor]
        ascent = 0.8 * font if angle == -90 else 0.2 * font
        return Box(text, x - ascent, y + start, x + (font - ascent), y + start + width)
    x, y = float(element.get("x", "0")), float(element.get("y", "0"))
    start = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return Box(text, start, y - 0.8 * font, start + width, y + 0.2 * font)


def text_boxes(svg: str) -> tuple[list[Box], tuple[float, float]]:
    root = ET.fromstring(svg)
    font = float(root.get("font-size", FONT))
    width, height = (float(v) for v in root.get("viewBox", "0 0 0 0").split()[2:])
    texts = [e for e in root.iter() if e.tag in ("text", f"{NS}text")]
    return [box(e, font) for e in texts], (width, height)


def assert_no_overlap(html: str) -> int:
    charts = SVG.findall(html)
    for svg in charts:
        boxes, (width, height) = text_boxes(svg)
        assert len(boxes) >= 6
        for a, b in combinations(boxes, 2):
            assert not a.overlaps(b), (a, b)
        for item in boxes:
            assert item.left >= 0, item
            assert item.top >= 0, item
            assert item.right <= width, item
            assert item.bottom <= height, item
    return len(charts)


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_no_two_text_boxes_of_a_disclosure_chart_intersect(locale: str) -> None:
    assert assert_no_overlap(render_sample(locale)) >= 5


def chart_html(labels: list[str], series: list[SeriesData], y_label: str) -> str:
    chart = line_chart(
        chart_id="stress",
        title="stress",
        x_labels=labels,
        series=series,
        format_tick=lambda v: f"{v:,.2f}",
        format_value=str,
        texts=TEXTS,
        x_label="收款期间",
        y_label=y_label,
        table=table("t", [("a", False)], []),
    )
    template = environment().from_string('{% import "_macros.html.j2" as m %}{{ m.chart(c) }}')
    return template.render(c=chart)


def test_crowded_lines_and_long_axes_keep_their_labels_apart() -> None:
    periods = [f"{2024 + (m // 12)}-{m % 12 + 1:02d}" for m in range(18)]
    close = [
        SeriesData(name, tuple(Decimal(1000 + i) + Decimal(k) / 10 for i in range(18)))
        for k, name in enumerate(["M1", "M2", "M3", "M3+", "2025-01", "2025-02"])
    ]
    html = chart_html(periods, close, "占资产池余额比例（%）")
    assert assert_no_overlap(html) == 1
    big = [SeriesData("A", tuple(Decimal(123_456_789 + 1_000_000 * i) for i in range(18)))]
    assert assert_no_overlap(chart_html(periods, big, "期末资产池余额（万元）")) == 1
