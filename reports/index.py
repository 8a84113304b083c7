"""The index page listing every rendered disclosure, newest first.

:func:`build_context` is pure: the flows gather :class:`IndexEntry` values
from the reports they wrote and pass them in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypedDict
from urllib.parse import urlsplit

from babel import Locale

from reports.formatting import check_locale, format_timestamp, html_lang

_PERIOD: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_UNSAFE_HREF: Final = re.compile(r"[\s\\\x00-\x1f\x7f]")


def _check_href(href: str) -> None:
    """Only relative links inside the reports tree: no scheme, host, root or '..'."""
    parts = urlsplit(href)
    if (
        not href
        or _UNSAFE_HREF.search(href)
        or parts.scheme
        or parts.netloc
        or href.startswith("/")
        or ".." in parts.path.split("/")
    ):
        raise ValueError(f"href must be a relative path inside the reports tree: {href!r}")


@dataclass(frozen=True, slots=True)
class ReportLink:
    """A link to a companion report, such as a data-quality report."""

    label: str
    href: str

    def __post_init__(self) -> None:
        _check_href(self.href)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One rendered disclosure: a pool, a period and a language.

    Attributes:
        pool_id: The pool.
        deal_name: The deal's name as printed in that disclosure.
        period: The collection period, ``YYYY-MM``.
        href: Path of the disclosure relative to the index page.
        language: The disclosure's locale (``en`` or ``zh_CN``).
        data_quality: Links to the period's data-quality reports.
    """

    pool_id: str
    deal_name: str
    period: str
    href: str
    language: str
    data_quality: tuple[ReportLink, ...] = ()

    def __post_init__(self) -> None:
        if not _PERIOD.match(self.period):
            raise ValueError(f"period must be 'YYYY-MM', got {self.period!r}")
        check_locale(self.language)
        _check_href(self.href)


class LinkContext(TypedDict):
    """A link as the template prints it."""

    label: str
    href: str


class ReportLinkContext(LinkContext):
    """A disclosure link, with the language of the page it leads to."""

    lang: str


class PeriodContext(TypedDict):
    """One period of a pool: its disclosures by language and its data-quality reports."""

    period: str
    reports: list[ReportLinkContext]
    data_quality: list[LinkContext]


class PoolContext(TypedDict):
    """One pool and its periods, newest first."""

    pool_id: str
    caption: str
    periods: list[PeriodContext]


class IndexContext(TypedDict):
    """Everything ``index.html.j2`` prints."""

    lang: str
    title: str
    texts: dict[str, str]
    generated_at: str
    pools: list[PoolContext]


EN_LABELS: Final[Mapping[str, str]] = {
    "title": "Trustee reports",
    "pool_caption": "{deal_names} — pool {pool_id}",
    "period": "Collection period",
    "reports": "Disclosure",
    "data_quality": "Data quality",
    "none": "—",
    "empty": "No reports have been rendered yet.",
    "generated_at": "Generated at",
}
"""English texts; another locale passes a mapping with the same keys."""


def _language_name(language: str) -> str:
    # Each disclosure link is named in its own language (English, 中文).
    name = Locale.parse(language).get_language_name(language)
    return name if name is not None else language


def build_context(
    entries: Sequence[IndexEntry],
    *,
    generated_at: datetime,
    locale: str = "en",
    labels: Mapping[str, str] | None = None,
) -> IndexContext:
    """Build the index context: pools and periods newest first.

    Pools are ordered by their latest period (newest first, then pool id);
    each pool's periods newest first; a period's disclosures by language.

    Args:
        entries: The rendered disclosures.
        generated_at: Timezone-aware generation time of the index.
        locale: The index page's locale.
        labels: The page texts for ``locale`` (same keys as :data:`EN_LABELS`);
            required for any locale other than ``"en"``.

    Returns:
        The context for ``render_index``.

    Raises:
        ValueError: If two entries name the same pool, period and language, or
            labels are missing.
    """
    check_locale(locale)
    if labels is None:
        if locale != "en":
            raise ValueError(f"labels are required for locale {locale!r}")
        labels = EN_LABELS
    missing = sorted(set(EN_LABELS) - set(labels))
    if missing:
        raise ValueError(f"labels lack keys: {', '.join(missing)}")

    by_pool: dict[str, dict[str, dict[str, IndexEntry]]] = {}
    for entry in entries:
        languages = by_pool.setdefault(entry.pool_id, {}).setdefault(entry.period, {})
        if entry.language in languages:
            raise ValueError(
                f"two index entries for pool {entry.pool_id!r}, period {entry.period}, "
                f"language {entry.language}"
            )
        languages[entry.language] = entry

    pools: list[PoolContext] = []
    for pool_id, periods in by_pool.items():
        names: list[str] = []
        period_contexts: list[PeriodContext] = []
        for period in sorted(periods, reverse=True):
            languages = periods[period]
            reports: list[ReportLinkContext] = []
            quality: dict[tuple[str, str], LinkContext] = {}
            for language in sorted(languages):
                entry = languages[language]
                if entry.deal_name not in names:
                    names.append(entry.deal_name)
                reports.append(
                    {
                        "label": _language_name(language),
                        "href": entry.href,
                        "lang": html_lang(language),
                    }
                )
                for link in entry.data_quality:
                    quality[(link.label, link.href)] = {"label": link.label, "href": link.href}
            period_contexts.append(
                {
                    "period": period,
                    "reports": reports,
                    "data_quality": [quality[key] for key in sorted(quality)],
                }
            )
        caption = labels["pool_caption"].format(deal_names=" / ".join(names), pool_id=pool_id)
        pools.append({"pool_id": pool_id, "caption": caption, "periods": period_contexts})
    pools.sort(key=lambda pool: pool["pool_id"])
    pools.sort(key=lambda pool: pool["periods"][0]["period"], reverse=True)

    return {
        "lang": html_lang(locale),
        "title": labels["title"],
        "texts": {
            key: labels[key] for key in sorted(EN_LABELS) if key not in {"title", "pool_caption"}
        },
        "generated_at": format_timestamp(generated_at),
        "pools": pools,
    }
