"""Plot the engine benchmark's results: time and peak memory against the book size.

Reads the JSON lines that ``benchmarks/engine.py --json FILE`` appends (one per
book size and month count) and writes a self-contained SVG: log-log panels
(wall time, CPU time where recorded, peak resident memory) with the engine
and, where it ran, the DuckDB reference. Same input, same bytes.

    .venv/bin/python benchmarks/plot_scaling.py benchmarks/results/engine.jsonl docs/scaling.svg
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

PANEL_W, PANEL_H, MARGIN = 300, 220, 52
SERIES = (("engine", "engine (batched Polars)", "none"), ("duckdb", "DuckDB reference", "6 4"))


def _log_ticks(low: float, high: float) -> list[float]:
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**e for e in range(first, last + 1)]


def _label(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def _panel(results: list[dict[str, Any]], key: str, title: str, unit: float, x0: int) -> list[str]:
    points = {
        name: [(r["loans"], r[name][key] / unit) for r in results if key in r.get(name, {})]
        for name, _, _ in SERIES
    }
    xs = [x for series in points.values() for x, _ in series]
    ys = [y for series in points.values() for _, y in series]
    x_ticks, y_ticks = _log_ticks(min(xs), max(xs)), _log_ticks(min(ys), max(ys))

    def px(x: float) -> float:
        span = math.log10(x_ticks[-1]) - math.log10(x_ticks[0]) or 1
        return x0 + MARGIN + (math.log10(x) - math.log10(x_ticks[0])) / span * PANEL_W

    def py(y: float) -> float:
        span = math.log10(y_ticks[-1]) - math.log10(y_ticks[0]) or 1
        return 20 + PANEL_H - (math.log10(y) - math.log10(y_ticks[0])) / span * PANEL_H

    out = [f'<text x="{x0 + MARGIN}" y="12" font-weight="bold">{escape(title)}</text>']
    for t in x_ticks:
        out.append(
            f'<line x1="{px(t):.1f}" y1="20" x2="{px(t):.1f}" y2="{20 + PANEL_H}" stroke="#ddd"/>'
            f'<text x="{px(t):.1f}" y="{36 + PANEL_H}" text-anchor="middle">{_label(t)}</text>'
        )
    for t in y_ticks:
        out.append(
            f'<line x1="{x0 + MARGIN}" y1="{py(t):.1f}" x2="{x0 + MARGIN + PANEL_W}" '
            f'y2="{py(t):.1f}" stroke="#ddd"/>'
            f'<text x="{x0 + MARGIN - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    out.append(
        f'<text x="{x0 + MARGIN + PANEL_W / 2}" y="{54 + PANEL_H}" text-anchor="middle">loans '
        f"(12 month-ends)</text>"
    )
    for name, _, dash in SERIES:
        series = sorted(points[name])
        if not series:
            continue
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in series)
        out.append(
            f'<polyline points="{path}" fill="none" stroke="black" stroke-dasharray="{dash}"/>'
        )
        marker = "rect" if name == "duckdb" else "circle"
        for x, y in series:
            if marker == "circle":
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5"/>')
            else:
                out.append(
                    f'<rect x="{px(x) - 3.5:.1f}" y="{py(y) - 3.5:.1f}" width="7" height="7" '
                    f'fill="white" stroke="black"/>'
                )
    return out


def plot(results: list[dict[str, Any]]) -> str:
    """The SVG text for ``results`` (12-month runs only, the latest per book size)."""
    latest = {r["loans"]: r for r in results if r.get("months", 12) == 12}
    rows = [latest[n] for n in sorted(latest)]
    panels = [
        ("seconds", "wall time (s)", 1.0),
        # CPU time is comparable between runs on a shared machine; wall time is not.
        ("cpu", "CPU time (s)", 1.0),
        ("peak_bytes", "peak resident memory (GiB)", 2.0**30),
    ]
    shown = [
        (key, title, unit)
        for key, title, unit in panels
        if any(key in r.get(name, {}) for r in rows for name, _, _ in SERIES)
    ]
    step = PANEL_W + MARGIN + 30
    width, height = len(shown) * step, PANEL_H + 100
    body = [
        line
        for i, (key, title, unit) in enumerate(shown)
        for line in _panel(rows, key, title, unit, i * step)
    ]
    legend_y = PANEL_H + 84
    for i, (_, label, dash) in enumerate(SERIES):
        x = MARGIN + i * 240
        body.append(
            f'<line x1="{x}" y1="{legend_y}" x2="{x + 30}" y2="{legend_y}" stroke="black" '
            f'stroke-dasharray="{dash}"/>'
            f'<text x="{x + 36}" y="{legend_y + 4}">{escape(label)}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">'
        "<title>Engine and DuckDB reference: time and memory against loans</title>"
        + "".join(body)
        + "</svg>\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON lines from benchmarks/engine.py --json")
    parser.add_argument("svg", type=Path, help="SVG file to write")
    args = parser.parse_args()
    lines = args.results.read_text(encoding="utf-8").splitlines()
    args.svg.write_text(plot([json.loads(line) for line in lines if line]), encoding="utf-8")


if __name__ == "__main__":
    main()
