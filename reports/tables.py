"""Captioned tables of preformatted text, the unit every report section is made of."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict


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


def table(caption: str, columns: Sequence[tuple[str, bool]], rows: list[Row]) -> Table:
    """A table from (label, numeric) column pairs and rows.

    Raises:
        ValueError: If a row's cell count does not fit the columns.
    """
    for item in rows:
        if len(item["cells"]) != len(columns) - 1:
            raise ValueError(
                f"row {item['header']!r} has {len(item['cells'])} cells for {len(columns)} columns"
            )
    return {
        "caption": caption,
        "columns": [{"label": label, "numeric": numeric} for label, numeric in columns],
        "rows": rows,
    }


def row(header: str, *cells: str, total: bool = False) -> Row:
    """A table row."""
    return {"header": header, "cells": list(cells), "total": total}
