"""The static-pool report of one pool: vintage curves and the pool's performance history.

:func:`build_context` is pure; the flows read the ``vintage_curves`` mart and the
pool's ``metrics.json`` documents and pass them in. Vintages are right-censored:
a vintage's curve stops at its latest month on book and vintages of unequal age
are never averaged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from reports.charts import ChartTexts
from reports.deal_view import DealView, local_name
from reports.disclosure import DPD30, delinquency_share, vintage_curves
from reports.disclosure.source import PERFORMANCE_RATES, not_applicable_reasons, rate_cells
from reports.formatting import NOT_AVAILABLE, check_locale, format_beijing_time, html_lang
from reports.layout import (
    DocumentContext,
    Fmt,
    Section,
    report_texts,
    row,
    section,
    table,
)
from reports.sources import Provenance, VintageCurves, check_href

REPORT: Final = "static_pool"


StaticPoolContext = DocumentContext
"""Everything ``static_pool.html.j2`` prints."""


def build_context(
    deal: DealView,
    *,
    vintages: VintageCurves,
    history: Sequence[Mapping[str, Any]],
    generated_at: datetime,
    provenance: Provenance,
    locale: str = "en",
    alternate_href: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> StaticPoolContext:
    """Build the static-pool report of one pool.

    Args:
        deal: The deal's terms.
        vintages: The vintage-curve points (may be empty: the report then says the
            curves were not computed).
        history: The pool's ``metrics.json`` documents (any order; other pools
            are ignored).
        generated_at: Timezone-aware generation time.
        provenance: Run id and code version for the footer.
        locale: ``"en"`` or ``"zh_CN"``.
        alternate_href: Link to the same report in the other language.
        labels: Texts overriding the packaged ones for ``locale``.

    Returns:
        The context for ``render_static_pool``.
    """
    check_locale(locale)
    if alternate_href is not None:
        check_href(alternate_href)
    t = report_texts(REPORT, locale, labels)
    f = Fmt(locale, t("not_available"), NOT_AVAILABLE[locale])
    currency = deal.currency
    documents = sorted(
        (doc for doc in history if doc.get("pool_id") == deal.pool_id),
        key=lambda doc: str(doc.get("period")),
    )
    chart_texts = ChartTexts(
        summary_range=t("chart.summary_range"),
        summary_single=t("chart.summary_single"),
        summary_max=t("chart.summary_max"),
        see_table=t("chart.see_table"),
    )
    curves_section: Section
    charts = []
    tables = []
    for metric, key in (
        ("cumulative_default_rate", "default"),
        ("cumulative_net_loss_rate", "loss"),
    ):
        built = vintage_curves(
            vintages.points,
            metric=metric,
            chart_id=f"chart-vintage-{key}",
            title=t(f"{key}_chart"),
            caption=t(f"{key}_caption"),
            vintage_label=t("vintage"),
            texts=t,
            fmt=f,
            chart_texts=chart_texts,
            locale=locale,
        )
        if built is not None:
            charts.append(built[0])
            tables.append(built[1])
    if charts:
        curves_section = section(
            1,
            "vintages",
            t("vintages_title"),
            charts=charts,
            notes=[t("censored"), t("definition")]
            + ([t("scope_book")] if vintages.book_wide else []),
        )
    else:
        curves_section = section(
            1, "vintages", t("vintages_title"), notes=[t("no_vintages")], computed=False
        )

    rows = []
    # A figure that does not apply to the pool keeps the reason its disclosure states.
    reasons = report_texts("disclosure", locale)
    not_applicable: dict[str, str] = {}
    for doc in documents:
        pool = doc.get("pool") or {}
        rows.append(
            row(
                str(doc["period"]),
                f.amount(pool.get("closing_balance")),
                f.number(pool.get("pool_factor"), 6),
                f.rate(delinquency_share(doc, DPD30), 2),
                *rate_cells(doc, PERFORMANCE_RATES, f, t("not_applicable")),
            )
        )
        not_applicable |= not_applicable_reasons(doc, PERFORMANCE_RATES, reasons)
    columns = [
        *t.text_columns("col.period"),
        (t("closing_balance", currency=t.get(f"unit.{currency}", currency)), True),
        *t.number_columns("pool_factor", "dpd30", "cpr", "cdr", "cumulative_default_rate"),
    ]
    history_section = (
        section(
            2,
            "history",
            t("history_title"),
            [table(t("history_caption"), columns, rows)],
            notes=[
                t("not_applicable_note", figure=t(key.removeprefix("performance.")), reason=reason)
                for key, reason in sorted(not_applicable.items())
            ],
        )
        if rows
        else section(2, "history", t("history_title"), notes=[t("not_computed")], computed=False)
    )
    sections = [curves_section, history_section]
    deal_name = local_name(deal, locale)
    latest = str(documents[-1]["period"]) if documents else None
    other = "zh-CN" if locale == "en" else "en"
    stamp = format_beijing_time(generated_at, locale)
    return {
        "lang": html_lang(locale),
        "title": t("title", deal_name=deal_name),
        "doc_kind": t("doc_kind") + ("" if latest is None else " — " + t("as_of", period=latest)),
        "texts": {key: t(key) for key in ("contents", "generated_at")} | {"key_figures": ""},
        "rounding_note": t("rounding_note", currency=t.get(f"unit.{currency}", currency)),
        "key_figures": [],
        "toc": [{"anchor": s["anchor"], "title": f"{s['number']}. {s['title']}"} for s in sections],
        "sections": sections,
        "alternate": None
        if alternate_href is None
        else {"label": t(f"language.{other}"), "href": alternate_href, "lang": other},
        "generated_at": f"{stamp} · {provenance.run_id} · {provenance.code_version}",
    }
