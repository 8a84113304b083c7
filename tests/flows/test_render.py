"""The render stage on a hand-made data root: every report, every link, byte-identical."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.metrics import PoolPeriod, load_metrics_book
from flows.render import render_disclosures, render_report_index
from reports.pdf import render_pdf
from tests.reports.samples import GENERATED_AT, make_deal, make_history

RUN_ID = "20250630-0123456789ab"
POOL = "HB-2025-1"


def make_root(root: Path) -> Catalog:
    """A hand-made data root: three periods of metrics, marts and partitions."""
    catalog = Catalog(root)
    deal = make_deal()
    catalog.deals_dir.mkdir(parents=True)
    (catalog.deals_dir / "HB-2025-1.yaml").write_text("pool_id: HB-2025-1\n", encoding="utf-8")
    for document in make_history():
        catalog.write_text(
            json.dumps(document, sort_keys=True, indent=2),
            catalog.metrics_json(deal.pool_id, document["period"]),
        )
    catalog.write_frame(
        pl.DataFrame(
            {
                "period_end": [date(2025, 6, 30)] * 3 + [date(2025, 5, 31)],
                "scope": ["pool", "pool", "book", "pool"],
                "pool_id": ["HB-2025-1"] * 4,
                "dimension": ["province", "province", "province", "province"],
                "dimension_order": [4, 4, 4, 4],
                "band": ["CN-GD", "CN-BJ", "CN-SH", "CN-GD"],
                "band_order": [1, 0, 0, 0],
                "count": [600, 634, 1, 9],
                "balance": [61728394, 61728395, 100, 900],
                "balance_share": [0.5, 0.5, 1.0, 1.0],
                "wac": [0.15, 0.154, 0.1, 0.1],
            }
        ),
        catalog.mart("stratifications"),
    )
    catalog.write_frame(
        pl.DataFrame(
            {
                "vintage": [date(2025, 1, 1)] * 3,
                "months_on_book": pl.Series([0, 1, 6], dtype=pl.Int32),
                "as_of_date": [date(2025, 1, 31), date(2025, 2, 28), date(2025, 7, 31)],
                "cumulative_default_rate": [0.0, 0.001, 0.777],
                "cumulative_net_loss_rate": [0.0, 0.0008, 0.4],
            }
        ),
        catalog.mart("vintage_curves"),
    )
    for day, rows in ((date(2025, 6, 3), 5), (date(2025, 5, 30), 7)):
        catalog.write_frame(
            pl.DataFrame({"loan_id": [f"L{i}" for i in range(rows)]}),
            catalog.staged_partition("loans", day),
        )
    catalog.write_frame(
        pl.DataFrame({"loan_id": ["BAD"], "rule_ids": [["loans.principal.positive"]]}),
        catalog.quarantine_partition("loans", date(2025, 6, 4)),
    )
    catalog.write_text(
        json.dumps({"run_id": RUN_ID, "start": "2025-06-01", "end": "2025-06-30"}),
        catalog.data_quality_summary(RUN_ID),
    )
    catalog.write_text("<!DOCTYPE html><title>dq</title>", catalog.data_quality_report(RUN_ID))
    return catalog


def render(catalog: Catalog, *, with_pdf: bool = True) -> list[Path]:
    deals = {"HB-2025-1": make_deal()}
    periods = [PoolPeriod.read(p, period, path) for p, period, path in catalog.metrics_documents()]
    book = load_metrics_book(catalog, periods)
    written = render_disclosures(
        catalog, deals, book, periods, generated_at=GENERATED_AT, run_id=RUN_ID, with_pdf=with_pdf
    )
    render_report_index(catalog, deals, book, generated_at=GENERATED_AT)
    return written


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, list[Path]]:
    """The hand-made root rendered once, archive PDFs included; copy it before changing it."""
    catalog = make_root(tmp_path_factory.mktemp("rendered") / "data")
    return catalog, render(catalog)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """The hand-made root, not rendered yet."""
    return make_root(tmp_path / "data")


def hrefs(html: str) -> list[str]:
    return [h for h in re.findall(r'href="([^"]+)"', html) if not h.startswith("#")]


def test_every_report_is_written_in_both_languages_with_working_links(
    rendered: tuple[Catalog, list[Path]],
) -> None:
    catalog, written = rendered
    assert catalog.disclosure("HB-2025-1", "2025-06", "zh-CN") in written
    assert catalog.static_pool_report("HB-2025-1", "en") in written
    pages = sorted(catalog.reports.rglob("*.html"))
    names = {p.relative_to(catalog.reports).as_posix() for p in pages}
    assert {
        "index.html",
        "index.zh-CN.html",
        "portfolio.en.html",
        "portfolio.zh-CN.html",
        "HB-2025-1/static_pool.en.html",
        "HB-2025-1/static_pool.zh-CN.html",
        "HB-2025-1/2025-06/disclosure.en.html",
        "HB-2025-1/2025-06/disclosure.zh-CN.html",
    } <= names
    for page in pages:
        for href in hrefs(page.read_text(encoding="utf-8")):
            assert (page.parent / href).resolve().is_file(), (page, href)
    index = catalog.index_html.read_text(encoding="utf-8")
    assert index.index("2025-06") < index.index("2025-05") < index.index("2025-04")
    assert f'href="data_quality/{RUN_ID}.html"' in index


def test_marts_and_partitions_feed_the_disclosure(rendered: tuple[Catalog, list[Path]]) -> None:
    catalog, _ = rendered
    html = catalog.disclosure("HB-2025-1", "2025-06", "zh-CN").read_text(encoding="utf-8")
    # Pool-scope stratification of the period only, in band order, with local names.
    assert html.index("北京市") < html.index("广东省")
    assert "上海市" not in html.split('id="s6-stratifications"')[1].split("</section>")[0]
    # Vintage points observed after the period are not shown.
    assert "77.70%" not in html
    assert "0.10%" in html
    assert "发放月份批次为资产服务机构全部贷款" in html
    english = catalog.disclosure("HB-2025-1", "2025-06", "en").read_text(encoding="utf-8")
    quality = english.split('id="s16-data_quality"')[1].split("</section>")[0]
    assert '<th scope="row">Loans</th>\n<td class="num">6</td>\n<td class="num">5</td>' in quality
    assert "loans.principal.positive" in quality
    assert f'href="../../data_quality/{RUN_ID}.html"' in quality


def _report_bytes(catalog: Catalog) -> dict[str, bytes]:
    found = [*catalog.reports.rglob("*.*ml"), *catalog.reports.rglob("*.pdf")]
    return {p.relative_to(catalog.root).as_posix(): p.read_bytes() for p in found}


def test_rendering_twice_gives_identical_bytes(
    rendered: tuple[Catalog, list[Path]], tmp_path: Path
) -> None:
    first = _report_bytes(rendered[0])
    assert "reports/HB-2025-1/2025-06/disclosure.zh-CN.pdf" in first
    catalog = Catalog(tmp_path / "data")
    shutil.copytree(rendered[0].root, catalog.root)
    render(catalog)
    assert _report_bytes(catalog) == first


def test_a_published_version_lays_out_its_pdf_once_and_the_latest_copy_takes_it(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    laid_out: list[str] = []

    def counting(html: str) -> bytes:
        laid_out.append(html)
        return render_pdf(html)

    monkeypatch.setattr("flows.render.render_pdf", counting)
    deals = {POOL: make_deal()}
    june = [PoolPeriod.read(POOL, "2025-06", catalog.metrics_json(POOL, "2025-06"))]
    book = load_metrics_book(catalog, june)
    versions = {(POOL, "2025-06"): 1}
    frozen = render_disclosures(
        catalog, deals, book, june, generated_at=GENERATED_AT, run_id=RUN_ID, versions=versions
    )
    latest = render_disclosures(
        catalog,
        deals,
        book,
        june,
        generated_at=GENERATED_AT,
        run_id=RUN_ID,
        archive_versions=versions,
    )
    assert len(laid_out) == 1
    [frozen_pdf] = [p for p in frozen if p.suffix == ".pdf"]
    [latest_pdf] = [p for p in latest if p.suffix == ".pdf"]
    assert frozen_pdf == catalog.report_version_dir(POOL, "2025-06", 1) / "disclosure.zh-CN.pdf"
    assert latest_pdf == catalog.report_dir(POOL, "2025-06") / "disclosure.zh-CN.pdf"
    assert latest_pdf.read_bytes() == frozen_pdf.read_bytes()
    assert latest_pdf.read_bytes().startswith(b"%PDF-1.7")
    # The HTML pages still differ by their folder's relative links; only the PDF is shared.
    pages = [pdf.with_suffix(".html").read_text("utf-8") for pdf in (latest_pdf, frozen_pdf)]
    assert pages[0] != pages[1]


def test_missing_marts_leave_their_sections_not_computed(catalog: Catalog) -> None:
    catalog.mart("stratifications").unlink()
    catalog.mart("vintage_curves").unlink()
    render(catalog, with_pdf=False)
    html = catalog.disclosure("HB-2025-1", "2025-06", "en").read_text(encoding="utf-8")
    for anchor in ("s6-stratifications", "s14-static_pool"):
        part = html.split(f'id="{anchor}"')[1].split("</section>")[0]
        assert "Not computed for this period" in part
    static = catalog.static_pool_report("HB-2025-1", "en").read_text(encoding="utf-8")
    assert "Vintage curves have not been computed for this pool." in static
