"""The render stage on a hand-made data root: every report, every link, byte-identical."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.metrics import PoolPeriod, load_metrics_book
from flows.render import render_disclosures, render_report_index
from tests.reports.samples import GENERATED_AT, make_deal, make_history

RUN_ID = "20250630-0123456789ab"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "data")
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


def render(catalog: Catalog) -> list[Path]:
    deals = {"HB-2025-1": make_deal()}
    periods = [PoolPeriod.read(p, period, path) for p, period, path in catalog.metrics_documents()]
    book = load_metrics_book(catalog, periods)
    written = render_disclosures(
        catalog, deals, book, periods, generated_at=GENERATED_AT, run_id=RUN_ID
    )
    render_report_index(catalog, deals, book, generated_at=GENERATED_AT)
    return written


def hrefs(html: str) -> list[str]:
    return [h for h in re.findall(r'href="([^"]+)"', html) if not h.startswith("#")]


def test_every_report_is_written_in_both_languages_with_working_links(catalog: Catalog) -> None:
    written = render(catalog)
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


def test_marts_and_partitions_feed_the_disclosure(catalog: Catalog) -> None:
    render(catalog)
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


def test_rendering_twice_gives_identical_bytes(catalog: Catalog) -> None:
    render(catalog)
    first = {p: p.read_bytes() for p in catalog.reports.rglob("*.*ml")}
    first |= {p: p.read_bytes() for p in catalog.reports.rglob("*.pdf")}
    assert catalog.reports / "HB-2025-1" / "2025-06" / "disclosure.zh-CN.pdf" in first
    render(catalog)
    again = {p: p.read_bytes() for p in catalog.reports.rglob("*.*ml")}
    again |= {p: p.read_bytes() for p in catalog.reports.rglob("*.pdf")}
    assert again == first


def test_missing_marts_leave_their_sections_not_computed(catalog: Catalog) -> None:
    catalog.mart("stratifications").unlink()
    catalog.mart("vintage_curves").unlink()
    render(catalog)
    html = catalog.disclosure("HB-2025-1", "2025-06", "en").read_text(encoding="utf-8")
    for anchor in ("s6-stratifications", "s14-static_pool"):
        part = html.split(f'id="{anchor}"')[1].split("</section>")[0]
        assert "Not computed for this period" in part
    static = catalog.static_pool_report("HB-2025-1", "en").read_text(encoding="utf-8")
    assert "Vintage curves have not been computed for this pool." in static
