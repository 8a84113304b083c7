from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from reports.charts import (
    LABEL_GAP,
    ChartTexts,
    SeriesData,
    axis_range,
    line_chart,
    nice_step,
)
from reports.tables import row, table

TEXTS = ChartTexts(
    summary_range="{series}: {first} in {first_period}, {last} in {last_period}",
    summary_single="{series}: {value} in {period}",
    summary_max="highest {value} in {period}",
    see_table="See the table.",
)


def chart(series: list[SeriesData], labels: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    x_labels = labels or [f"2025-0{i + 1}" for i in range(len(series[0].values))]
    return dict(
        line_chart(
            chart_id="c",
            title="Rates",
            x_labels=x_labels,
            series=series,
            format_tick=str,
            format_value=lambda v: f"{v:.2f}",
            texts=TEXTS,
            x_label="Period",
            y_label="%",
            table=table("Data", [("Period", False)], [row(x) for x in x_labels]),
        )
    )


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (Decimal(10), Decimal("2.5")),
        (Decimal("0.03"), Decimal("0.01")),
        (Decimal(7), Decimal(2)),
        (Decimal(22_000_000), Decimal("1e7")),
        (Decimal("0.004"), Decimal("0.001")),
    ],
)
def test_steps_are_round_numbers(span: Decimal, step: Decimal) -> None:
    assert nice_step(span) == step


def test_the_axis_covers_zero_and_every_value_on_whole_steps() -> None:
    low, high, step = axis_range([Decimal("0.013"), Decimal("0.021")], Decimal("0.01"))
    assert (low, high, step) == (Decimal(0), Decimal("0.03"), Decimal("0.01"))
    low, high, _ = axis_range([Decimal(-3), Decimal(5)], Decimal(1))
    assert low <= -3
    assert high >= 5
    assert axis_range([Decimal(0)], Decimal("0.01"))[1] >= Decimal("0.01")


def test_series_are_told_apart_without_colour() -> None:
    series = [SeriesData(f"S{i}", (Decimal(i), Decimal(i + 1))) for i in range(4)]
    drawn = chart(series)["series"]
    assert len({(s["dash"], s["markers"][:1]) for s in drawn}) >= 1
    assert len({s["dash"] for s in drawn}) == 4
    assert [s["label"] for s in drawn] == ["S0", "S1", "S2", "S3"]


def test_a_gap_breaks_the_line_and_has_no_marker() -> None:
    drawn = chart([SeriesData("A", (Decimal(1), None, Decimal(2)))])["series"][0]
    assert drawn["path"].count("M") == 2
    assert drawn["path"].count("L") == 0


def test_end_labels_never_overlap() -> None:
    series = [SeriesData(f"V{i}", (Decimal(1), Decimal(1))) for i in range(6)]
    ys = sorted(float(s["label_y"]) for s in chart(series)["series"])
    assert all(b - a >= LABEL_GAP - 0.05 for a, b in itertools.pairwise(ys))


def test_the_text_alternative_summarises_each_series() -> None:
    described = chart([SeriesData("CPR", (Decimal("0.1"), Decimal("0.3"), Decimal("0.2")))])
    assert described["description"] == (
        "Rates. CPR: 0.10 in 2025-01, 0.20 in 2025-03; highest 0.30 in 2025-02. See the table."
    )


def test_coordinates_are_deterministic_text() -> None:
    series = [SeriesData("A", (Decimal("0.1"), Decimal("0.2")))]
    assert chart(series) == chart(series)
    assert all("." in tick["at"] for tick in chart(series)["y_ticks"])


def test_mismatched_or_empty_series_are_refused() -> None:
    with pytest.raises(ValueError, match="values for"):
        chart([SeriesData("A", (Decimal(1),))], labels=["a", "b"])
    with pytest.raises(ValueError, match="no values"):
        chart([SeriesData("A", (None, None))])
