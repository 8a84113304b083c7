"""The index page: every pool and period, newest first, with links to each report.

:func:`build_context` is pure: the flows gather :class:`IndexEntry` values
(disclosures), the pools' static-pool reports, the portfolio overview and the
data-quality reports of each run from what is on disk, and pass them in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Final, TypedDict

from babel import Locale

from reports import labels as translations
from reports.formatting import check_locale, format_beijing_time, format_long_date, html_lang
from reports.sources import RelativeLink, check_href

_PERIOD: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

REPORT: Final = "index"


def _check_href(href: str) -> None:
    """Only relative links below the index: no scheme, host, root or '..'."""
    check_href(href, allow_parent=False)


@dataclass(frozen=True, slots=True)
class ReportLink(RelativeLink):
    """A link from the index to a report below it."""

    allow_parent: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One rendered disclosure: a pool, a period and a language.

    Attributes:
        pool_id: The pool.
        deal_name: The deal's name as printed in that disclosure.
        period: The collection period, ``YYYY-MM``.
        href: Path of the disclosure relative to the index page.
        language: The disclosure's locale (``en`` or ``zh_CN``).
        data_quality: Links to the data-quality reports of the runs that loaded the period.
        history: Every published version of the disclosure in this language, oldest
            first, labelled ``v1``, ``v2``...; ``href`` is the latest.
    """

    pool_id: str
    deal_name: str
    period: str
    href: str
    language: str
    data_quality: tuple[ReportLink, ...] = ()
    history: tuple[ReportLink, ...] = ()

    def __post_init__(self) -> None:
        if not _PERIOD.match(self.period):
            raise ValueError(f"period must be 'YYYY-MM', got {self.period!r}")
        check_locale(self.language)
        _check_href(self.href)


@dataclass(frozen=True, slots=True)
class RunReport:
    """The data-quality report of one run and the business dates it loaded."""

    run_id: str
    start: date
    end: date
    href: str

    def __post_init__(self) -> None:
        _check_href(self.href)
        if self.end < self.start:
            raise ValueError(f"run {self.run_id}: end {self.end} is before start {self.start}")


class LinkContext(TypedDict):
    """A link as the template prints it."""

    label: str
    href: str


class ReportLinkContext(LinkContext):
    """A link to a page in a given language."""

    lang: str


class PeriodContext(TypedDict):
    """One period of a pool: its disclosures by language and its data-quality reports."""

    period: str
    reports: list[ReportLinkContext]
    data_quality: list[LinkContext]


class PoolContext(TypedDict):
    """One pool, its static-pool reports and its periods, newest first."""

    pool_id: str
    caption: str
    static_pool: list[ReportLinkContext]
    periods: list[PeriodContext]


class RunContext(TypedDict):
    """A run's data-quality report."""

    run_id: str
    dates: str
    href: str


class IndexContext(TypedDict):
    """Everything ``index.html.j2`` prints."""

    lang: str
    title: str
    texts: dict[str, str]
    generated_at: str
    portfolio: list[ReportLinkContext]
    pools: list[PoolContext]
    runs: list[RunContext]
    alternate: ReportLinkContext | None


def _language_name(language: str) -> str:
    # Each language link is named in its own language (English, 中文).
    name = Locale.parse(language).get_language_name(language)
    return name if name is not None else language


def _language_links(links: Mapping[str, str]) -> list[ReportLinkContext]:
    """Links by locale, as (name in its own language, href, BCP 47 tag), in locale order."""
    out: list[ReportLinkContext] = []
    for language in sorted(links):
        check_locale(language)
        _check_href(links[language])
        out.append(
            {
                "label": _language_name(language),
                "href": links[language],
                "lang": html_lang(language),
            }
        )
    return out


def build_context(
    entries: Sequence[IndexEntry],
    *,
    generated_at: datetime,
    locale: str = "en",
    static_pool: Mapping[str, Mapping[str, str]] | None = None,
    portfolio: Mapping[str, str] | None = None,
    runs: Sequence[RunReport] = (),
    alternate: tuple[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> IndexContext:
    """Build the index context: pools and periods newest first.

    Pools are ordered by their latest period (newest first, then pool id);
    each pool's periods newest first; a period's disclosures by language; runs
    newest first.

    Args:
        entries: The rendered disclosures.
        generated_at: Timezone-aware generation time of the index.
        locale: The index page's locale.
        static_pool: Per pool, its static-pool report by locale.
        portfolio: The portfolio overview by locale.
        runs: The data-quality reports written so far.
        alternate: (locale, href) of this index in the other language.
        labels: Texts overriding the packaged ones for ``locale`` (same keys).

    Returns:
        The context for ``render_index``.

    Raises:
        ValueError: If two entries name the same pool, period and language, a
            link leaves the reports tree, or labels lack keys.
    """
    check_locale(locale)
    texts = translations.labels(locale, REPORT) if labels is None else labels
    required = translations.labels("en", REPORT)
    missing = sorted(set(required) - set(texts))
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
                # The published versions, after the latest: the history of restatements.
                if len(entry.history) > 1:
                    reports += [
                        {
                            "label": f"{_language_name(language)} {link.label}",
                            "href": link.href,
                            "lang": html_lang(language),
                        }
                        for link in entry.history
                    ]
                for link in entry.data_quality:
                    quality[(link.label, link.href)] = {"label": link.label, "href": link.href}
            period_contexts.append(
                {
                    "period": period,
                    "reports": reports,
                    "data_quality": [quality[key] for key in sorted(quality)],
                }
            )
        caption = texts["pool_caption"].format(deal_names=" / ".join(names), pool_id=pool_id)
        pools.append(
            {
                "pool_id": pool_id,
                "caption": caption,
                "static_pool": _language_links((static_pool or {}).get(pool_id, {})),
                "periods": period_contexts,
            }
        )
    pools.sort(key=lambda pool: pool["pool_id"])
    pools.sort(key=lambda pool: pool["periods"][0]["period"], reverse=True)

    run_contexts: list[RunContext] = [
        {
            "run_id": run.run_id,
            "dates": texts["run_dates"].format(
                start=format_long_date(run.start, locale), end=format_long_date(run.end, locale)
            ),
            "href": run.href,
        }
        for run in sorted(runs, key=lambda run: (run.end, run.start, run.run_id), reverse=True)
    ]
    other: ReportLinkContext | None = None
    if alternate is not None:
        (other,) = _language_links({alternate[0]: alternate[1]})

    return {
        "lang": html_lang(locale),
        "title": texts["title"],
        "texts": {key: texts[key] for key in sorted(required)},
        "generated_at": format_beijing_time(generated_at, locale),
        "portfolio": _language_links(portfolio or {}),
        "pools": pools,
        "runs": run_contexts,
        "alternate": other,
    }
