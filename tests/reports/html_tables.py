"""Read the tables of a rendered report: a figure is found by its table, row and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser


@dataclass
class Table:
    """One ``<table>``: its caption, column headers and rows (row header, data cells)."""

    caption: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    """Each row's cells in order, its row header (``th``) first when it has one."""

    def cell(self, row: str, column: str) -> str:
        """The text of the cell in the row whose first cell is ``row``, under ``column``.

        Raises:
            KeyError: No such row or column, naming what the table has.
        """
        if column not in self.columns:
            raise KeyError(f"{self.caption!r}: no column {column!r} (columns: {self.columns})")
        index = self.columns.index(column)
        matches = [r for r in self.rows if r and r[0] == row]
        if len(matches) != 1:
            labels = [r[0] for r in self.rows if r]
            raise KeyError(f"{self.caption!r}: {len(matches)} rows {row!r} (rows: {labels})")
        return matches[0][index]


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self._open: list[Table] = []
        self._row: list[str] | None = None
        self._in_head = False
        self._text: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._open.append(Table())
        elif not self._open:
            return
        elif tag == "caption":
            self._in_caption = True
            self._text = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        table = self._open[-1]
        if tag == "table":
            self.tables.append(self._open.pop())
        elif tag == "caption" and self._text is not None:
            table.caption = _clean(self._text)
            self._in_caption, self._text = False, None
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._text is not None and self._row is not None:
            self._row.append(_clean(self._text))
            self._text = None
        elif tag == "tr" and self._row is not None:
            if self._in_head:
                table.columns = self._row
            else:
                table.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def _clean(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def tables(html: str) -> list[Table]:
    """Every table of ``html``, in document order."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    return parser.tables


def table(html: str, caption: str) -> Table:
    """The one table with this caption.

    Raises:
        KeyError: None or several, naming the captions there are.
    """
    found = [t for t in tables(html) if t.caption == caption]
    if len(found) != 1:
        raise KeyError(
            f"{len(found)} tables {caption!r} (captions: {[t.caption for t in tables(html)]})"
        )
    return found[0]


def cell_texts(html: str) -> list[str]:
    """The text of every cell of every table (headers included)."""
    return [text for t in tables(html) for row in [t.columns, *t.rows] for text in row]


def number(text: str) -> Decimal:
    """A formatted figure as a number: ``1,234.50`` → 1234.50, ``12.5%`` → 0.125, ``–1.0`` → -1.0.

    Raises:
        ValueError: The text is not a single figure.
    """
    cleaned = text.replace(",", "").replace("\u2212", "-").replace("\u2013", "-").strip()
    percent = cleaned.endswith("%")
    value = Decimal(cleaned.removesuffix("%").strip())
    return value / 100 if percent else value
