"""Render stage: disclosures, static-pool reports, the portfolio overview and the index.

Each report's context is built by a pure ``build_context`` in ``reports/``; this
module only gathers its inputs through the catalog (metrics.json documents,
marts, staged and quarantine partitions, run manifests) and writes the HTML.
Inputs that another stage has not produced yet (a mart, a data-quality report)
are simply absent, and the report says the section was not computed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final

import polars as pl

from data_contracts.contract import load_contract
from data_contracts.deal import DealTerms
from flows.catalog import LANDING_DATASETS, Catalog, atomic_write
from flows.metrics import MetricsBook, PoolPeriod
from flows.version import code_version
from reports import disclosure, index, portfolio, static_pool
from reports.deal_view import local_name
from reports.formatting import html_lang
from reports.pdf import render_pdf
from reports.render import (
    render_disclosure,
    render_index,
    render_portfolio,
    render_static_pool,
)
from reports.sources import (
    DataQuality,
    DatasetQuality,
    Provenance,
    RelativeLink,
    Restatement,
    RuleCount,
    StratificationRow,
    VintageCurves,
    VintagePoint,
    restatement_reason,
)
from transforms.metrics_document import fen_to_yuan_str

REPORT_LANGUAGES: Final = ("zh_CN", "en")
"""Report locales; output files carry the BCP 47 tag (``disclosure.zh-CN.html``)."""

ARCHIVE_LANGUAGES: Final = ("zh_CN",)
"""Locales whose disclosure is also archived as a PDF beside the HTML."""


def archive_pdf(html_path: Path) -> Path:
    """The archive PDF beside a disclosure (``disclosure.zh-CN.pdf``)."""
    return html_path.with_suffix(".pdf")


STRATIFICATION_COLUMNS: Final = {"pool_id", "period_end", "dimension", "band", "count", "balance"}
VINTAGE_COLUMNS: Final = {"vintage", "months_on_book", "cumulative_default_rate"}


def _tag(locale: str) -> str:
    return html_lang(locale)


def _other(locale: str) -> str:
    return next(other for other in REPORT_LANGUAGES if other != locale)


def _each_language(
    catalog: Catalog, path_of: Callable[[str], Path], page: Callable[[str, str], str]
) -> list[Path]:
    """Write a page in every report language, each linking the other language's copy.

    Args:
        catalog: Where the pages are written.
        path_of: The page's path for a language tag.
        page: The page's HTML for a locale and the file name of its other-language copy.

    Returns:
        The pages written.
    """
    written = []
    for locale in REPORT_LANGUAGES:
        path = path_of(_tag(locale))
        catalog.write_text(page(locale, path_of(_tag(_other(locale))).name), path)
        written.append(path)
    return written


def _href(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _read_json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a JSON object")
    return document


def _mart(
    catalog: Catalog, name: str, required: Iterable[str]
) -> tuple[pl.LazyFrame, set[str]] | None:
    """The mart ``name`` and its column names; None when it is absent or lacks ``required``."""
    path = catalog.mart(name)
    if not path.is_file():
        return None
    frame = catalog.scan(path)
    names = set(frame.collect_schema().names())
    if not names.issuperset(required):
        return None
    return frame, names


def stratifications(
    catalog: Catalog, pool_id: str, period_end: date
) -> list[StratificationRow] | None:
    """The pool's stratification bands at ``period_end`` from the ``stratifications`` mart.

    Returns:
        The bands in report order, or None when the mart is absent, lacks the
        expected columns or has no rows for the pool and period.
    """
    found = _mart(catalog, "stratifications", STRATIFICATION_COLUMNS)
    if found is None:
        return None
    frame, names = found
    selected = frame.filter((pl.col("pool_id") == pool_id) & (pl.col("period_end") == period_end))
    if "scope" in names:
        selected = selected.filter(pl.col("scope") == "pool")
    order = [c for c in ("dimension_order", "dimension", "band_order", "band") if c in names]
    rows = selected.sort(order).collect().to_dicts()
    if not rows:
        return None
    return [
        StratificationRow(
            dimension=str(item["dimension"]),
            band=str(item["band"]),
            count=int(item["count"]),
            balance=fen_to_yuan_str(int(item["balance"])),
            balance_share=item.get("balance_share"),
            wac=item.get("wac"),
        )
        for item in rows
    ]


def vintage_points(catalog: Catalog, pool_id: str, period_end: date) -> VintageCurves | None:
    """Vintage-curve points observed up to ``period_end`` from the ``vintage_curves`` mart.

    A mart without ``pool_id`` holds the servicer's whole book (its static pool);
    one with ``pool_id`` is filtered to the pool.
    """
    found = _mart(catalog, "vintage_curves", VINTAGE_COLUMNS)
    if found is None:
        return None
    frame, names = found
    if "pool_id" in names:
        frame = frame.filter(pl.col("pool_id") == pool_id)
    if "as_of_date" in names:
        # Right-censored at the report's period: a re-rendered old report shows what was known.
        frame = frame.filter(pl.col("as_of_date") <= period_end)
    columns = ["vintage", "months_on_book", "cumulative_default_rate"]
    if "cumulative_net_loss_rate" in names:
        columns.append("cumulative_net_loss_rate")
    rows = frame.select(columns).sort("vintage", "months_on_book").collect().to_dicts()
    if not rows:
        return None
    points = tuple(
        VintagePoint(
            vintage=item["vintage"].strftime("%Y-%m")
            if isinstance(item["vintage"], date)
            else str(item["vintage"])[:7],
            months_on_book=int(item["months_on_book"]),
            cumulative_default_rate=item["cumulative_default_rate"],
            cumulative_net_loss_rate=item.get("cumulative_net_loss_rate"),
        )
        for item in rows
    )
    return VintageCurves(points, book_wide="pool_id" not in names)


def _rows(catalog: Catalog, path: Path) -> int:
    return int(catalog.scan(path).select(pl.len()).collect().item())


def _runs(catalog: Catalog) -> list[tuple[str, date, date]]:
    """(run_id, first, last business date) of every run with a data-quality report.

    Read from the reports' JSON summaries, written right after ingest, so the index
    links the current run's report too (its manifest is written last).
    """
    runs = []
    for path in catalog.data_quality_summaries():
        try:
            summary = _read_json(path)
            run_id = str(summary["run_id"])
            start = date.fromisoformat(str(summary["start"]))
            end = date.fromisoformat(str(summary["end"]))
        except (KeyError, ValueError, json.JSONDecodeError):
            continue
        if catalog.data_quality_report(run_id).is_file():
            runs.append((run_id, start, end))
    return sorted(runs)


def data_quality(
    catalog: Catalog, start: date, end: date, *, links_from: Path
) -> DataQuality | None:
    """Rows accepted and quarantined for the business dates of [start, end], per dataset
    and rule, with the contract versions and the overlapping runs' data-quality reports.

    Returns:
        The summary, or None when nothing was staged or quarantined in the range.
    """
    datasets = []
    rules: dict[tuple[str, str], int] = {}
    for name in LANDING_DATASETS:
        accepted = quarantined = 0
        for day, path in catalog.staged_by_date(name, end).items():
            if day >= start:
                accepted += _rows(catalog, path)
        day = start
        while day <= end:
            path = catalog.quarantine_partition(name, day)
            if path.is_file():
                frame = catalog.scan(path)
                quarantined += _rows(catalog, path)
                if "rule_ids" in frame.collect_schema().names():
                    counts = (
                        frame.select(pl.col("rule_ids").explode().alias("rule_id"))
                        .drop_nulls()
                        .group_by("rule_id")
                        .len()
                        .collect()
                    )
                    for rule_id, count in counts.iter_rows():
                        rules[(name, str(rule_id))] = rules.get((name, str(rule_id)), 0) + count
            day = date.fromordinal(day.toordinal() + 1)
        datasets.append(DatasetQuality(name, accepted, quarantined))
    if not any(item.received for item in datasets):
        return None
    versions = tuple((name, load_contract(name).version) for name in LANDING_DATASETS)
    links = tuple(
        RelativeLink(run_id, _href(catalog.data_quality_report(run_id), links_from))
        for run_id, first, last in _runs(catalog)
        if first <= end and last >= start
    )
    return DataQuality(
        datasets=tuple(datasets),
        rules=tuple(RuleCount(d, r, n) for (d, r), n in sorted(rules.items())),
        contract_versions=versions,
        reports=links,
    )


def _chinese_run(catalog: Catalog, run: index.RunReport) -> index.RunReport:
    """The same run's data-quality report in Chinese, written beside the English one
    (runs of earlier versions have only the English page, which is then linked)."""
    chinese = catalog.data_quality_report(run.run_id, "zh_CN")
    if not chinese.is_file():
        return run
    href = chinese.relative_to(catalog.reports).as_posix()
    return index.RunReport(run.run_id, run.start, run.end, href)


def _write_pdf(document: bytes, path: Path) -> None:
    def write(tmp: Path) -> None:
        tmp.write_bytes(document)

    atomic_write(path, write)


def _published_pdf(
    catalog: Catalog,
    item: PoolPeriod,
    name: str,
    archive_versions: Mapping[tuple[str, str], int] | None,
) -> Path | None:
    """The archive PDF already rendered into the published version a latest copy shows."""
    number = (archive_versions or {}).get((item.pool_id, item.period))
    if number is None:
        return None
    source = archive_pdf(catalog.report_version_dir(item.pool_id, item.period, number) / name)
    return source if source.is_file() else None


def _archive(html: str, pdf: Path, *, unchanged: bool, source: Path | None) -> None:
    """Write a disclosure's archive PDF: a copy of ``source`` when given, else rendered.

    The PDF is a function of the HTML: an unchanged page keeps its PDF.
    """
    if source is None:
        if not (unchanged and pdf.is_file()):
            _write_pdf(render_pdf(html), pdf)
        return
    document = source.read_bytes()
    if not (pdf.is_file() and pdf.read_bytes() == document):
        _write_pdf(document, pdf)


def render_disclosures(
    catalog: Catalog,
    deals: Mapping[str, DealTerms],
    metrics_book: MetricsBook,
    periods: Sequence[PoolPeriod],
    *,
    generated_at: datetime,
    run_id: str,
    versions: Mapping[tuple[str, str], int] | None = None,
    restated: Mapping[tuple[str, str], int] | None = None,
    with_pdf: bool = True,
    deal_sources: Mapping[str, tuple[str, str]] | None = None,
    archive_versions: Mapping[tuple[str, str], int] | None = None,
) -> list[Path]:
    """Render the disclosures of ``periods`` in every language, and the static-pool report
    of each pool concerned.

    Args:
        versions: When given, (pool_id, period) to the published version each period is
            rendered as, into ``reports/<pool>/<period>/v<N>/`` (immutable once written);
            the static-pool reports are then left alone.
        restated: (pool_id, period) of the periods re-published because published
            figures changed, with how many; their disclosures carry the restatement,
            dated by the business date of ``generated_at`` (the original report date stays).
        with_pdf: Write the archive PDF beside each disclosure of
            :data:`ARCHIVE_LANGUAGES` (setting ``ABS_PIPELINE_ARCHIVE_PDF``).
        deal_sources: Each pool's deal file and its sha256 as loaded
            (:attr:`flows.deals.DealBook.sources`), listed among the report's inputs.
        archive_versions: For the latest copy (``versions`` not given): (pool_id, period)
            to the version published in the same run, already rendered. Its archive PDF
            is copied byte for byte instead of laid out a second time (seconds per
            report); an archive PDF has no links to other files, so the copy is the same.

    Returns:
        The paths written.
    """
    written: list[Path] = []
    version = code_version()
    deal_sources = deal_sources or {}
    histories: dict[str, list[dict[str, Any]]] = {}
    for item in periods:
        deal = deals[item.pool_id]
        history = histories.setdefault(item.pool_id, metrics_book.history(item.pool_id))
        metrics = item.metrics
        period_start = date.fromisoformat(metrics["period_start"])
        period_end = date.fromisoformat(metrics["period_end"])
        inputs = [("metrics.json", item.metrics_sha256)]
        if item.pool_id in deal_sources:
            inputs.append(deal_sources[item.pool_id])
        provenance = Provenance(run_id, version, tuple(inputs))
        number = None if versions is None else versions[(item.pool_id, item.period)]
        folder = catalog.report_dir(item.pool_id, item.period, number)
        strata = stratifications(catalog, item.pool_id, period_end)
        vintages = vintage_points(catalog, item.pool_id, period_end)
        quality = data_quality(catalog, period_start, period_end, links_from=folder)
        changed = (restated or {}).get((item.pool_id, item.period))
        for locale in REPORT_LANGUAGES:
            path = catalog.disclosure(item.pool_id, item.period, _tag(locale), number)
            restatement = (
                None
                if changed is None
                else Restatement(
                    restated_on=generated_at.date(),
                    reason=restatement_reason(changed, locale),
                )
            )
            context = disclosure.build_context(
                metrics,
                deal,
                locale=locale,
                generated_at=generated_at,
                provenance=provenance,
                history=history,
                stratifications=strata,
                vintages=vintages,
                data_quality=quality,
                alternate_href=catalog.disclosure(
                    item.pool_id, item.period, _tag(_other(locale))
                ).name,
                static_pool_href=_href(
                    catalog.static_pool_report(item.pool_id, _tag(locale)), folder
                ),
                restatement=restatement,
            )
            html = render_disclosure(context)
            unchanged = path.is_file() and path.read_text(encoding="utf-8") == html
            catalog.write_text(html, path)
            written.append(path)
            if with_pdf and locale in ARCHIVE_LANGUAGES:
                pdf = archive_pdf(path)
                source = (
                    None
                    if versions is not None
                    else _published_pdf(catalog, item, path.name, archive_versions)
                )
                _archive(html, pdf, unchanged=unchanged, source=source)
                written.append(pdf)
    if versions is not None:
        return written
    for pool_id, history in sorted(histories.items()):
        written += _render_static_pool(
            catalog, deals[pool_id], history, generated_at=generated_at, run_id=run_id
        )
    return written


def _render_static_pool(
    catalog: Catalog,
    deal: DealTerms,
    history: Sequence[Mapping[str, Any]],
    *,
    generated_at: datetime,
    run_id: str,
) -> list[Path]:
    if not history:
        return []
    latest_end = date.fromisoformat(str(history[-1]["period_end"]))
    vintages = vintage_points(catalog, deal.pool_id, latest_end) or VintageCurves(())
    provenance = Provenance(run_id, code_version())

    def page(locale: str, alternate: str) -> str:
        context = static_pool.build_context(
            deal,
            vintages=vintages,
            history=history,
            generated_at=generated_at,
            provenance=provenance,
            locale=locale,
            alternate_href=alternate,
        )
        return render_static_pool(context)

    return _each_language(catalog, partial(catalog.static_pool_report, deal.pool_id), page)


def render_report_index(
    catalog: Catalog,
    deals: Mapping[str, DealTerms],
    metrics_book: MetricsBook,
    *,
    generated_at: datetime,
) -> Path:
    """Rewrite the portfolio overview and the index (one per language) from the reports
    on disk.

    Returns:
        The English index, ``reports/index.html``.
    """
    runs = _runs(catalog)
    entries = []
    latest: dict[str, str] = {}
    for (pool_id, period), document in metrics_book.documents.items():
        deal = deals.get(pool_id)
        start = date.fromisoformat(f"{period}-01")
        end = date.fromisoformat(str(document["period_end"]))
        quality = tuple(
            index.ReportLink(
                run_id,
                catalog.data_quality_report(run_id).relative_to(catalog.reports).as_posix(),
            )
            for run_id, first, last in runs
            if first <= end and last >= start
        )
        for locale in REPORT_LANGUAGES:
            report = catalog.disclosure(pool_id, period, _tag(locale))
            if not report.is_file():
                continue
            name = pool_id if deal is None else local_name(deal, locale)
            published = (
                (number, catalog.disclosure(pool_id, period, _tag(locale), number))
                for number, _ in catalog.report_versions(pool_id, period)
            )
            history = tuple(
                index.ReportLink(f"v{number}", path.relative_to(catalog.reports).as_posix())
                for number, path in published
                if path.is_file()
            )
            entries.append(
                index.IndexEntry(
                    pool_id=pool_id,
                    deal_name=name,
                    period=period,
                    href=report.relative_to(catalog.reports).as_posix(),
                    language=locale,
                    data_quality=quality,
                    history=history,
                )
            )
            if deal is not None:
                latest[pool_id] = period

    version = code_version()

    def overview_page(locale: str, alternate: str) -> str:
        pools = [
            portfolio.PoolLatest(
                deal=deals[pool_id],
                metrics=metrics_book.documents[(pool_id, period)],
                href=catalog.disclosure(pool_id, period, _tag(locale))
                .relative_to(catalog.reports)
                .as_posix(),
            )
            for pool_id, period in sorted(latest.items())
        ]
        overview_context = portfolio.build_context(
            pools,
            generated_at=generated_at,
            code_version=version,
            locale=locale,
            alternate_href=alternate,
        )
        return render_portfolio(overview_context)

    _each_language(catalog, catalog.portfolio_report, overview_page)

    def links(paths: Mapping[str, Path]) -> dict[str, str]:
        return {
            locale: path.relative_to(catalog.reports).as_posix()
            for locale, path in paths.items()
            if path.is_file()
        }

    static = {
        pool_id: links(
            {
                locale: catalog.static_pool_report(pool_id, _tag(locale))
                for locale in REPORT_LANGUAGES
            }
        )
        for pool_id in sorted({pool_id for pool_id, _ in metrics_book.documents})
    }
    overview = links(
        {locale: catalog.portfolio_report(_tag(locale)) for locale in REPORT_LANGUAGES}
    )
    run_reports = [
        index.RunReport(
            run_id,
            start,
            end,
            catalog.data_quality_report(run_id).relative_to(catalog.reports).as_posix(),
        )
        for run_id, start, end in runs
    ]
    chinese_runs = [_chinese_run(catalog, run) for run in run_reports]

    def index_page(locale: str, alternate: str) -> str:
        context = index.build_context(
            entries,
            generated_at=generated_at,
            locale=locale,
            static_pool=static,
            portfolio=overview,
            runs=run_reports if locale == "en" else chinese_runs,
            alternate=(_other(locale), alternate),
        )
        return render_index(context)

    _each_language(catalog, catalog.index_page, index_page)
    return catalog.index_html
