"""The monthly asset-management report (资产管理报告) of one pool and collection period.

:func:`build_context` turns a ``metrics.json`` document (DOMAIN.md), the deal's
terms, the pool's earlier documents (for the charts) and the optional marts into
a render-ready context: every figure is already a formatted string, so the
template only lays out text. The eighteen sections of DOMAIN.md "What a
disclosure contains" (0-17) are always printed, in order, each built by its own
module listed in :data:`REGISTRY`; a section whose inputs are absent or null
says so and shows no figures, so nothing is ever filled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from reports import labels as translations
from reports.deal_view import DealView
from reports.disclosure import (
    concentration,
    enhancement,
    overview,
    performance,
    pool,
    provenance,
    securities,
    vintages,
)
from reports.disclosure import source as data_source
from reports.disclosure.base import (
    DPD30,
    DPD90,
    REPORT,
    Inputs,
    Report,
    SectionSpec,
    bucket_shares,
    delinquency_share,
    month_index,
    parse_period,
    period_dates,
    pool_history,
)
from reports.disclosure.vintages import vintage_curves
from reports.formatting import check_locale, format_beijing_time, html_lang
from reports.layout import DocumentContext, KeyFigure, require
from reports.sources import (
    DataQuality,
    Provenance,
    Restatement,
    StratificationRow,
    VintageCurves,
    check_href,
)

DisclosureContext = DocumentContext
"""Everything ``disclosure.html.j2`` prints."""

__all__ = [
    "DPD30",
    "DPD90",
    "REGISTRY",
    "DisclosureContext",
    "build_context",
    "delinquency_share",
    "vintage_curves",
]


REGISTRY: Final[tuple[SectionSpec, ...]] = (
    overview.NOTICE,
    overview.DEAL,
    securities.SECURITIES,
    pool.POOL,
    pool.COLLECTIONS,
    pool.CHARACTERISTICS,
    pool.STRATIFICATIONS,
    performance.DELINQUENCY,
    performance.DEFAULT,
    performance.PREPAYMENT,
    pool.REVOLVING,
    enhancement.CREDIT_ENHANCEMENT,
    enhancement.TRIGGERS,
    enhancement.SIGNIFICANT_EVENTS,
    vintages.STATIC_POOL,
    concentration.CONCENTRATION,
    provenance.DATA_QUALITY,
    provenance.DEFINITIONS,
)
"""The sections of DOMAIN.md "What a disclosure contains", numbered 0 to 17 in order."""

if [spec.number for spec in REGISTRY] != list(range(len(REGISTRY))):
    raise RuntimeError("the disclosure registry must list sections 0..17 in order")


# -- headline ------------------------------------------------------------------------------
def _key_figures(metrics: Mapping[str, Any], r: Report) -> list[KeyFigure]:
    t, f = r.t, r.f
    pool_ = metrics.get("pool") or {}
    performance_ = metrics.get("performance") or {}
    shares = bucket_shares(metrics)
    dpd30 = sum((shares[b] for b in DPD30), Decimal(0)) if all(b in shares for b in DPD30) else None
    triggers = metrics.get("triggers") or []
    tested = [item for item in triggers if isinstance(item.get("breached"), bool)]
    cpr: list[KeyFigure] = (
        []
        if "performance.cpr" in r.hidden
        else [{"label": t("key.cpr"), "value": f.rate(performance_.get("cpr"), 2)}]
    )
    return [
        {
            "label": t("key.closing_balance"),
            "value": r.summary_amount(pool_.get("closing_balance")),
        },
        {"label": t("key.pool_factor"), "value": f.number(pool_.get("pool_factor"), 6)},
        {"label": t("key.delinquency_30"), "value": f.rate(dpd30, 2)},
        {"label": t("key.cdr"), "value": f.rate(performance_.get("cdr"), 2)},
        *cpr,
        {
            "label": t("key.triggers"),
            "value": t(
                "key.triggers_value",
                breached=f.count(sum(1 for item in tested if item["breached"])),
                total=f.count(len(tested)),
            )
            if tested
            else f.na,
        },
    ]


def _period_number(metrics: Mapping[str, Any], deal: DealView) -> int:
    year, month = parse_period(metrics["period"])
    start = date.fromisoformat(require(metrics, "period_start", "document"))
    end = date.fromisoformat(require(metrics, "period_end", "document"))
    if (start.year, start.month) != (year, month) or start > end:
        raise ValueError(
            f"period_start {start} and period_end {end} do not fit {metrics['period']}"
        )
    number = month_index(year, month) - month_index(deal.cutoff_date.year, deal.cutoff_date.month)
    if number < 1:
        raise ValueError(
            f"period {metrics['period']} is not after the cut-off month of {deal.cutoff_date}"
        )
    recorded = metrics.get("period_number")
    if recorded is not None and recorded != number:
        raise ValueError(
            f"period_number {recorded} differs from the {number} counted from the cut-off month"
        )
    return number


def build_context(
    metrics: Mapping[str, Any],
    deal: DealView,
    *,
    generated_at: datetime,
    provenance: Provenance,
    locale: str = "en",
    history: Sequence[Mapping[str, Any]] = (),
    stratifications: Sequence[StratificationRow] | None = None,
    vintages: VintageCurves | None = None,
    data_quality: DataQuality | None = None,
    alternate_href: str | None = None,
    static_pool_href: str | None = None,
    restatement: Restatement | None = None,
    labels: Mapping[str, str] | None = None,
) -> DisclosureContext:
    """Build the disclosure context for one pool and collection period.

    Pure: no I/O and no clock; the generation time is passed in so that the same
    inputs give the same report.

    Args:
        metrics: A ``metrics.json`` document (DOMAIN.md): money as decimal
            strings, rates as numbers. Objects and lists other than ``pool``
            may be absent, empty or null; their sections then say they were
            not computed. Payment date, report date and interest period are
            read from it (top level, ``period_dates`` or ``definitions``).
        deal: The deal's terms (names, participants, classes, ratings, dates,
            trigger terms, events, definitions).
        generated_at: Timezone-aware time the data is prepared as of (printed in
            Beijing time in the footer); it never sets the report date.
        provenance: The run id, code version and input hashes for the footer.
        locale: ``"en"`` or ``"zh_CN"``: texts, number and date formats, and the
            names (``name_zh`` in Chinese where the deal gives one).
        history: The pool's earlier ``metrics.json`` documents, for the charts;
            documents of other pools or later periods are ignored.
        stratifications: This pool's and period's stratification bands, if computed.
        vintages: The vintage-curve points up to this period, if computed.
        data_quality: Rows received and quarantined over the period, if known.
        alternate_href: Link to the same report in the other language.
        static_pool_href: Link to the pool's static-pool report.
        restatement: When this is a restated version: its date, reason and changes.
        labels: Texts overriding the packaged ones for ``locale`` (same keys).

    Returns:
        The context for ``render_disclosure``: title, language, running header,
        key figures and the eighteen sections in DOMAIN.md order.

    Raises:
        ValueError: If the document contradicts the deal (pool, currency,
            classes), the roll-forward does not close to the fen, the period is
            malformed or not after the cut-off month, or labels lack keys.
    """
    check_locale(locale)
    for href in (alternate_href, static_pool_href):
        if href is not None:
            check_href(href)
    if metrics.get("pool_id") != deal.pool_id:
        raise ValueError(
            f"metrics are for pool {metrics.get('pool_id')!r}, deal is {deal.pool_id!r}"
        )
    currency = str(require(metrics, "currency", "document"))
    if currency != deal.currency:
        raise ValueError(f"metrics currency {currency!r} differs from the deal's {deal.currency!r}")
    r = Report(locale, translations.labels(locale, REPORT) if labels is None else labels, currency)
    r.hide(data_source.hidden_figures(metrics))
    t = r.t
    # Figures the pool's data source cannot give are marked before any section reads them.
    shown = data_source.mask(metrics)
    charted = data_source.mask_history([*history, metrics])
    period_number = _period_number(metrics, deal)
    deal_name = deal.name_zh if locale.startswith("zh") and deal.name_zh else deal.name
    inputs = Inputs(
        metrics=shown,
        deal=deal,
        history=pool_history(charted[-1], charted[:-1]),
        period_number=period_number,
        deal_name=deal_name,
        dates=period_dates(metrics, deal),
        generated_at=generated_at,
        provenance=provenance,
        stratifications=stratifications,
        vintages=vintages,
        data_quality=data_quality,
        static_pool_href=static_pool_href,
        restatement=restatement,
    )
    sections = [spec.build(inputs, r) for spec in REGISTRY]
    other = "zh-CN" if locale == "en" else "en"
    return {
        "lang": html_lang(locale),
        "title": t("title", deal_name=deal_name, period=metrics["period"]),
        "doc_kind": t("doc_kind"),
        "running_header": t(
            "running_header",
            deal_name=deal_name,
            period=str(metrics["period"]),
            number=r.f.count(period_number),
        ),
        "texts": {key: t(key) for key in ("contents", "key_figures", "generated_at")},
        "rounding_note": r.c("rounding_note"),
        "key_figures": _key_figures(shown, r),
        "toc": [{"anchor": s["anchor"], "title": f"{s['number']}. {s['title']}"} for s in sections],
        "sections": sections,
        "alternate": None
        if alternate_href is None
        else {"label": t(f"language.{other}"), "href": alternate_href, "lang": other},
        "generated_at": format_beijing_time(generated_at, locale),
        "created": generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
