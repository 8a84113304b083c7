"""Render stage: disclosures from metrics.json, and the index of every report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from data_contracts.deal import DealTerms
from flows.catalog import Catalog
from flows.metrics import PoolPeriod
from reports import disclosure, index
from reports.render import render_disclosure, render_index

REPORT_LANGUAGES = ("en",)


def render_disclosures(
    catalog: Catalog,
    deals: Mapping[str, DealTerms],
    periods: Sequence[PoolPeriod],
    *,
    generated_at: datetime,
    run_id: str,
) -> list[Path]:
    """Render every disclosure of ``periods`` from its metrics.json."""
    written = []
    for item in periods:
        metrics = json.loads(item.metrics_path.read_text(encoding="utf-8"))
        for language in REPORT_LANGUAGES:
            context = disclosure.build_context(
                metrics,
                deals[item.pool_id],
                locale=language,
                generated_at=generated_at,
                run_id=run_id,
            )
            path = catalog.disclosure(item.pool_id, item.period, language)
            catalog.write_text(render_disclosure(context), path)
            written.append(path)
    return written


def render_report_index(
    catalog: Catalog, deals: Mapping[str, DealTerms], *, generated_at: datetime
) -> Path:
    """Rewrite reports/index.html from every disclosure on disk."""
    entries = []
    for pool_id, period, _ in catalog.metrics_documents():
        deal = deals.get(pool_id)
        for language in REPORT_LANGUAGES:
            path = catalog.disclosure(pool_id, period, language)
            if path.is_file():
                entries.append(
                    index.IndexEntry(
                        pool_id=pool_id,
                        deal_name=deal.name if deal else pool_id,
                        period=period,
                        href=path.relative_to(catalog.reports).as_posix(),
                        language=language,
                    )
                )
    context = index.build_context(entries, generated_at=generated_at)
    catalog.write_text(render_index(context), catalog.index_html)
    return catalog.index_html
