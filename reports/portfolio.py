"""The portfolio overview: the latest collection period of every pool, side by side.

:func:`build_context` is pure; the flows pass each pool's latest ``metrics.json``
and its deal terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from reports.deal_view import DealView, local_name
from reports.disclosure import DPD30, DPD90, delinquency_share
from reports.disclosure.source import (
    PERFORMANCE_RATES,
    mask,
    not_applicable_reasons,
    rate_cells,
)
from reports.formatting import (
    NOT_AVAILABLE,
    check_locale,
    format_beijing_time,
    html_lang,
    rate_to_decimal,
    to_decimal,
)
from reports.layout import (
    DocumentContext,
    Fmt,
    Link,
    Row,
    Unavailable,
    report_texts,
    row,
    section,
    table,
)
from reports.sources import check_href

REPORT: Final = "portfolio"


@dataclass(frozen=True, slots=True)
class PoolLatest:
    """A pool's latest metrics document, its deal and the link to its disclosure."""

    deal: DealView
    metrics: Mapping[str, Any]
    href: str

    def __post_init__(self) -> None:
        check_href(self.href)
        if self.metrics.get("pool_id") != self.deal.pool_id:
            raise ValueError(
                f"metrics of pool {self.metrics.get('pool_id')!r} given for {self.deal.pool_id!r}"
            )


PortfolioContext = DocumentContext
"""Everything ``portfolio.html.j2`` prints."""


def build_context(
    pools: Sequence[PoolLatest],
    *,
    generated_at: datetime,
    code_version: str,
    currency: str = "CNY",
    locale: str = "en",
    alternate_href: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> PortfolioContext:
    """Build the portfolio overview.

    Args:
        pools: Each pool's latest document (one per pool).
        generated_at: Timezone-aware generation time.
        code_version: The code version for the footer.
        currency: The currency of the totals row; pools in other currencies are
            listed but not added up.
        locale: ``"en"`` or ``"zh_CN"``.
        alternate_href: Link to the same report in the other language.
        labels: Texts overriding the packaged ones for ``locale``.

    Returns:
        The context for ``render_portfolio``.

    Raises:
        ValueError: If a pool is listed twice.
    """
    check_locale(locale)
    if alternate_href is not None:
        check_href(alternate_href)
    t = report_texts(REPORT, locale, labels)
    f = Fmt(locale, t("not_available"), NOT_AVAILABLE[locale])
    # A figure that does not apply to a pool keeps the reason its disclosure states.
    reasons = report_texts("disclosure", locale)
    ids = [item.deal.pool_id for item in pools]
    if len(set(ids)) != len(ids):
        raise ValueError("a pool is listed twice in the portfolio overview")
    ordered = sorted(pools, key=lambda item: item.deal.pool_id)
    rows: list[Row] = []
    total_balance = Decimal(0)
    total_loans = 0
    weighted: dict[str, Decimal] = {"wac": Decimal(0), "dpd30": Decimal(0), "dpd90": Decimal(0)}
    complete = dict.fromkeys(weighted, True)
    not_applicable: list[str] = []
    for item in ordered:
        # A figure the pool's source cannot give, or that does not apply to it, is no 0.
        doc = mask(item.metrics)
        pool = doc.get("pool") or {}
        characteristics = doc.get("characteristics") or {}
        name = local_name(item.deal, locale)
        closing = pool.get("closing_balance")
        shares = {
            "wac": characteristics.get("wac"),
            "dpd30": delinquency_share(doc, DPD30),
            "dpd90": delinquency_share(doc, DPD90),
        }
        rows.append(
            row(
                name,
                item.deal.pool_id,
                str(doc.get("period")),
                f.amount(closing),
                f.number(pool.get("pool_factor"), 6),
                f.count(pool.get("closing_count")),
                f.rate(shares["wac"], 2),
                f.rate(shares["dpd30"], 2),
                f.rate(shares["dpd90"], 2),
                *rate_cells(doc, PERFORMANCE_RATES, f, t("not_applicable")),
            )
        )
        not_applicable.extend(
            t(
                "not_applicable_note",
                pool=item.deal.pool_id,
                figure=t(key.removeprefix("performance.")),
                reason=reason,
            )
            for key, reason in not_applicable_reasons(doc, PERFORMANCE_RATES, reasons).items()
        )
        if doc.get("currency") != currency or closing is None:
            continue
        balance = to_decimal(closing)
        total_balance += balance
        total_loans += int(pool.get("closing_count") or 0)
        for key, value in shares.items():
            if value is None or isinstance(value, Unavailable):
                complete[key] = False
            else:
                weighted[key] += rate_to_decimal(value) * balance

    def average(key: str) -> str:
        if not complete[key] or total_balance == 0:
            return f.na
        return f.rate(weighted[key] / total_balance, 2)

    notes = [t("total_note", currency=t.get(f"unit.{currency}", currency)), *not_applicable]
    if rows:
        rows.append(
            row(
                t("total", currency=t.get(f"unit.{currency}", currency)),
                "",
                "",
                f.amount(total_balance),
                "",
                f.count(total_loans),
                average("wac"),
                average("dpd30"),
                average("dpd90"),
                "",
                "",
                "",
                total=True,
            )
        )
    columns = [
        *t.text_columns("deal", "pool", "period"),
        (t("closing_balance", currency=t.get(f"unit.{currency}", currency)), True),
        *t.number_columns(
            "pool_factor", "loans", "wac", "dpd30", "dpd90", "cpr", "cdr", "cumulative_default_rate"
        ),
    ]
    links: list[Link] = [
        {
            "label": f"{t('links')}: {item.deal.pool_id} {item.metrics.get('period')}",
            "href": item.href,
        }
        for item in ordered
    ]
    overview = (
        section(
            1, "pools", t("caption"), [table(t("caption"), columns, rows)], notes=notes, links=links
        )
        if rows
        else section(1, "pools", t("caption"), notes=[t("empty")], computed=False)
    )
    other = "zh-CN" if locale == "en" else "en"
    stamp = format_beijing_time(generated_at, locale)
    return {
        "lang": html_lang(locale),
        "title": t("title"),
        "doc_kind": t("doc_kind"),
        "texts": {key: t(key) for key in ("contents", "generated_at")} | {"key_figures": ""},
        "rounding_note": t("rounding_note", currency=t.get(f"unit.{currency}", currency)),
        "key_figures": [],
        "toc": [],
        "sections": [overview],
        "alternate": None
        if alternate_href is None
        else {"label": t(f"language.{other}"), "href": alternate_href, "lang": other},
        "generated_at": f"{stamp} · {code_version}",
    }
