"""Building blocks every report context is made of: captioned tables, sections, texts.

A report builder turns its inputs into these plain structures, with every figure
already formatted; the templates only lay out text (``_macros.html.j2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from reports import labels as translations
from reports.charts import Chart
from reports.formatting import (
    Amount,
    Rate,
    format_amount,
    format_count,
    format_number,
    format_rate,
    format_signed_amount,
)
from reports.tables import Column, Row, Table, row, table

__all__ = [
    "Column",
    "Fmt",
    "LanguageLink",
    "Link",
    "Row",
    "Section",
    "Table",
    "Texts",
    "not_computed",
    "present",
    "require",
    "row",
    "section",
    "table",
]


class Link(TypedDict):
    """A relative link inside the reports tree."""

    label: str
    href: str


class LanguageLink(Link):
    """A link to the same page in another language (``lang`` is its BCP 47 tag)."""

    lang: str


class Section(TypedDict):
    """One numbered section of a report.

    ``computed`` is false when the section's inputs are absent: the section is
    still printed, with a note saying so, and carries no figures.
    """

    number: int
    key: str
    anchor: str
    title: str
    computed: bool
    tables: list[Table]
    charts: list[Chart]
    notes: list[str]
    links: list[Link]
    page_break: bool


class KeyFigure(TypedDict):
    """A headline figure printed above the sections."""

    label: str
    value: str


class TocEntry(TypedDict):
    """A line of the table of contents."""

    anchor: str
    title: str


class DocumentContext(TypedDict):
    """Everything a sectioned report template (``_document.html.j2``) prints."""

    lang: str
    title: str
    doc_kind: str
    texts: dict[str, str]
    rounding_note: str
    key_figures: list[KeyFigure]
    toc: list[TocEntry]
    sections: list[Section]
    alternate: LanguageLink | None
    generated_at: str
    running_header: NotRequired[str]
    """Printed at the top of every page (plan name, period)."""
    created: NotRequired[str]
    """The document's fixed creation time (UTC, ISO 8601), for the PDF's metadata."""


class Texts:
    """Looks up report texts and fills in their ``{fields}``."""

    def __init__(self, labels: Mapping[str, str], required: Sequence[str] = ()) -> None:
        missing = sorted(set(required) - set(labels))
        if missing:
            raise ValueError(f"labels lack keys: {', '.join(missing)}")
        self._labels = labels

    def __call__(self, key: str, **values: str) -> str:
        return self._labels[key].format(**values) if values else self._labels[key]

    def text_columns(self, *keys: str) -> list[tuple[str, bool]]:
        """Table columns of text, headed by the texts of ``keys``."""
        return [(self(key), False) for key in keys]

    def number_columns(self, *keys: str) -> list[tuple[str, bool]]:
        """Table columns of figures (aligned right), headed by the texts of ``keys``."""
        return [(self(key), True) for key in keys]

    def get(self, key: str, default: str, **values: str) -> str:
        """The text of ``key``, or ``default`` when there is none."""
        return self(key, **values) if key in self._labels else default


def report_texts(report: str, locale: str, labels: Mapping[str, str] | None = None) -> Texts:
    """The texts of one report: ``labels``, or the packaged ones for ``locale``.

    Raises:
        ValueError: If the texts lack a key the packaged English texts have.
    """
    return Texts(
        translations.labels(locale, report) if labels is None else labels,
        required=list(translations.labels("en", report)),
    )


class Unavailable:
    """A figure the pool's data source cannot give: printed as a stated mark, never 0."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable()
"""The one :class:`Unavailable` value put in place of such a figure."""


class Fmt:
    """The formatting functions bound to one locale; ``None`` prints the 'not computed' text
    and :data:`UNAVAILABLE` the 'not available from this source' text."""

    def __init__(self, locale: str, not_available: str, unavailable: str | None = None) -> None:
        self.locale = locale
        self.na = not_available
        self.unavailable = not_available if unavailable is None else unavailable

    def amount(self, value: Amount | Unavailable | None) -> str:
        if value is None or isinstance(value, Unavailable):
            return self.unavailable if value is not None else self.na
        return format_amount(value, self.locale)

    def signed(self, value: Decimal) -> str:
        return format_signed_amount(value, self.locale)

    def count(self, value: int | Unavailable | None) -> str:
        if value is None or isinstance(value, Unavailable):
            return self.unavailable if value is not None else self.na
        return format_count(value, self.locale)

    def rate(
        self, value: Rate | Unavailable | None, places: int = 2, max_places: int | None = None
    ) -> str:
        if value is None or isinstance(value, Unavailable):
            return self.unavailable if value is not None else self.na
        return format_rate(value, self.locale, places, max_places)

    def number(self, value: Rate | Unavailable | None, places: int) -> str:
        if value is None or isinstance(value, Unavailable):
            return self.unavailable if value is not None else self.na
        return format_number(value, self.locale, places)


def section(
    number: int,
    key: str,
    title: str,
    tables: list[Table] | None = None,
    *,
    charts: list[Chart] | None = None,
    notes: list[str] | None = None,
    links: list[Link] | None = None,
    computed: bool = True,
    page_break: bool = False,
) -> Section:
    """A numbered section; its anchor is ``s<number>-<key>``.

    ``page_break`` starts the section on a new page when printed.
    """
    return {
        "number": number,
        "key": key,
        "anchor": f"s{number}-{key}",
        "title": title,
        "computed": computed,
        "tables": tables or [],
        "charts": charts or [],
        "notes": notes or [],
        "links": links or [],
        "page_break": page_break,
    }


def not_computed(number: int, key: str, title: str, note: str) -> Section:
    """A section whose inputs are absent: the title and an explicit note, no figures."""
    return section(number, key, title, notes=[note], computed=False)


def require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    """``mapping[key]``, refusing an absent or null value."""
    if key not in mapping or mapping[key] is None:
        raise ValueError(f"metrics {where} lacks {key!r}")
    return mapping[key]


def present(value: object) -> bool:
    """Whether a metrics value carries data: not null, not an empty list or object,
    and (for an object) at least one non-null member."""
    if value is None:
        return False
    if isinstance(value, Mapping):
        return any(present(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return True
