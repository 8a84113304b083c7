"""What the pool's data source can give: figures it cannot are marked, never shown as 0.

A pool fed by a servicer loan tape carries a ``data_source`` object in its
metrics.json (flows/tape.py): ``not_available`` lists the document's keys
(``"collections.interest"``) the tape cannot give, ``hidden_sections`` the
figures that do not apply to revolving accounts, with the reason. The document
still holds a number there (0); this module replaces it before any section reads
it, so no section can print it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from reports.layout import UNAVAILABLE, Fmt, Texts

PERFORMANCE_RATES: Final = (
    ("performance.cpr", 2),
    ("performance.cdr", 2),
    ("performance.cumulative_default_rate", 4),
)
"""The rates the portfolio overview and the static-pool history print, with their decimals."""


def data_source(metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document's ``data_source`` object (empty for an engine-only pool)."""
    value = metrics.get("data_source")
    return value if isinstance(value, Mapping) else {}


def not_available(metrics: Mapping[str, Any]) -> frozenset[str]:
    """The keys (``section.figure``) the pool's data source cannot give."""
    return frozenset(str(key) for key in data_source(metrics).get("not_available") or ())


def hidden_figures(metrics: Mapping[str, Any]) -> dict[str, str]:
    """The figures (``section.figure``) not shown for this pool, with the stated reason."""
    hidden: dict[str, str] = {}
    for item in data_source(metrics).get("hidden_sections") or ():
        key = item.get("section") or item.get("key")
        if key is not None:
            hidden[str(key)] = str(item.get("reason") or "")
    return hidden


def regions_not_allowed(metrics: Mapping[str, Any]) -> list[str]:
    """ISO codes of the pool's regions outside the deal's allowed regions."""
    return sorted(str(code) for code in data_source(metrics).get("regions_not_allowed") or ())


def mask(metrics: Mapping[str, Any], *, shown_as: object = UNAVAILABLE) -> dict[str, Any]:
    """A copy of ``metrics`` whose figures in ``not_available`` are ``shown_as``.

    That is :data:`~reports.layout.UNAVAILABLE` for the period's own
    figures (printed as "not available from this source") and None for earlier
    documents feeding charts (a gap in the line, never a 0).
    """
    keys = not_available(metrics)
    masked = dict(metrics)
    for key in sorted(keys):
        group, _, figure = key.partition(".")
        container = masked.get(group)
        if not figure or not isinstance(container, Mapping) or figure not in container:
            continue
        copied = dict(container)
        copied[figure] = shown_as
        masked[group] = copied
    return masked


def mask_history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Earlier documents with the figures their own data source could not give set to None."""
    return [mask(document, shown_as=None) for document in history]


def rate_cells(
    metrics: Mapping[str, Any], figures: Sequence[tuple[str, int]], fmt: Fmt, not_applicable: str
) -> list[str]:
    """Table cells of the rates ``figures`` (``("performance.cpr", 2)``: key and decimals).

    A figure that does not apply to the pool prints ``not_applicable``, one its
    source cannot give the formatter's 'not available' mark: neither is a 0.
    """
    masked, hidden = mask(metrics), hidden_figures(metrics)
    cells = []
    for key, places in figures:
        group, _, figure = key.partition(".")
        value = (masked.get(group) or {}).get(figure)
        cells.append(not_applicable if key in hidden else fmt.rate(value, places))
    return cells


def not_applicable_reasons(
    metrics: Mapping[str, Any], figures: Sequence[tuple[str, int]], reasons: Texts
) -> dict[str, str]:
    """The ``figures`` that do not apply to the pool, each with its stated reason.

    The reason is the disclosure's own text for it in ``reasons`` (the
    disclosure's texts), else the one the document gives.
    """
    hidden = hidden_figures(metrics)
    return {key: reasons.get(f"hidden.{key}", hidden[key]) for key, _ in figures if key in hidden}
