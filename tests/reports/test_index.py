from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reports.index import IndexContext, IndexEntry, ReportLink, RunReport, build_context
from reports.render import render_index

GENERATED_AT = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)


def entry(
    pool_id: str,
    period: str,
    language: str = "en",
    *,
    deal_name: str | None = None,
    data_quality: tuple[ReportLink, ...] = (),
) -> IndexEntry:
    default_name = "花呗2025-1" if language == "zh_CN" else f"Deal {pool_id}"
    return IndexEntry(
        pool_id=pool_id,
        deal_name=default_name if deal_name is None else deal_name,
        period=period,
        href=f"{pool_id}/{period}/disclosure.{language.replace('_', '-')}.html",
        language=language,
        data_quality=data_quality,
    )


def sample() -> list[IndexEntry]:
    return [
        entry("HB-A", "2025-05"),
        entry("HB-B", "2025-04"),
        entry("HB-A", "2025-06", "zh_CN"),
        entry(
            "HB-A",
            "2025-06",
            data_quality=(
                ReportLink("Validation", "HB-A/2025-06/data_quality.html"),
                ReportLink("Quarantine", "HB-A/2025-06/quarantine.html"),
            ),
        ),
        entry("HB-C", "2025-06"),
    ]


def build(entries: list[IndexEntry]) -> IndexContext:
    return build_context(entries, generated_at=GENERATED_AT)


def test_pools_and_periods_are_listed_newest_first() -> None:
    context = build(sample())
    assert [pool["pool_id"] for pool in context["pools"]] == ["HB-A", "HB-C", "HB-B"]
    assert [p["period"] for p in context["pools"][0]["periods"]] == ["2025-06", "2025-05"]


def test_a_period_lists_languages_and_data_quality_links() -> None:
    latest = build(sample())["pools"][0]["periods"][0]
    assert latest["reports"] == [
        {"label": "English", "href": "HB-A/2025-06/disclosure.en.html", "lang": "en"},
        {"label": "中文", "href": "HB-A/2025-06/disclosure.zh-CN.html", "lang": "zh-CN"},
    ]
    assert [link["label"] for link in latest["data_quality"]] == ["Quarantine", "Validation"]


def test_pool_caption_names_the_deal_in_each_language() -> None:
    assert build(sample())["pools"][0]["caption"] == "Deal HB-A / 花呗2025-1 — pool HB-A"


def test_the_same_report_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="two index entries"):
        build([entry("HB-A", "2025-06"), entry("HB-A", "2025-06")])


@pytest.mark.parametrize(
    "href",
    [
        "https://example.org/x.html",
        "//example.org/x.html",
        "javascript:alert(1)",
        "/etc/passwd",
        "../other/x.html",
        "HB-A/../../x.html",
        "HB-A\\x.html",
        "HB-A/x .html",
        "",
    ],
)
def test_links_must_stay_relative_inside_the_reports_tree(href: str) -> None:
    with pytest.raises(ValueError, match="relative path"):
        IndexEntry("HB-A", "Deal", "2025-06", href, "en")
    with pytest.raises(ValueError, match="relative path"):
        ReportLink("Validation", href)


def test_entries_are_validated() -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        IndexEntry("HB-A", "Deal", "2025-13", "a.html", "en")
    with pytest.raises(ValueError, match="unsupported"):
        IndexEntry("HB-A", "Deal", "2025-06", "a.html", "fr")


def test_html_lists_links_and_generation_time() -> None:
    html = render_index(build(sample()))
    assert '<html lang="en">' in html
    assert (
        '<a href="HB-A/2025-06/disclosure.zh-CN.html" hreflang="zh-CN" lang="zh-CN">中文</a>'
        in html
    )
    assert '<th scope="row">2025-05</th>' in html
    assert html.index("Deal HB-C") < html.index("Deal HB-B")
    assert "July 1, 2025, 10:00 (Beijing time)" in html


def test_an_empty_index_says_so() -> None:
    assert "No reports have been rendered yet." in render_index(build([]))


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_deal_names_and_link_labels_are_escaped(name: str) -> None:
    html = render_index(
        build(
            [
                entry(
                    "HB-A",
                    "2025-06",
                    deal_name=name,
                    data_quality=(ReportLink(name, "HB-A/2025-06/dq.html"),),
                )
            ]
        )
    )
    assert "<script" not in html
    assert "<img" not in html
    assert html.count("&lt;") >= 2
    assert "alert(1)" in html


def test_rendering_is_byte_identical_and_self_contained() -> None:
    first = render_index(build(sample()))
    assert first.encode() == render_index(build(list(reversed(sample())))).encode()
    assert "http://" not in first
    assert "https://" not in first
    assert "<script" not in first


def test_static_pool_portfolio_and_data_quality_runs_are_linked_newest_first() -> None:
    context = build_context(
        sample(),
        generated_at=GENERATED_AT,
        static_pool={
            "HB-A": {"en": "HB-A/static_pool.en.html", "zh_CN": "HB-A/static_pool.zh-CN.html"}
        },
        portfolio={"en": "portfolio.en.html"},
        runs=[
            RunReport("r1", date(2025, 1, 1), date(2025, 5, 31), "data_quality/r1.html"),
            RunReport("r2", date(2025, 6, 1), date(2025, 6, 30), "data_quality/r2.html"),
        ],
        alternate=("zh_CN", "index.zh-CN.html"),
    )
    assert [link["href"] for link in context["pools"][0]["static_pool"]] == [
        "HB-A/static_pool.en.html",
        "HB-A/static_pool.zh-CN.html",
    ]
    assert [run["run_id"] for run in context["runs"]] == ["r2", "r1"]
    assert context["runs"][0]["dates"] == "June 1, 2025 – June 30, 2025"
    html = render_index(context)
    assert '<a href="portfolio.en.html" hreflang="en" lang="en">English</a>' in html
    assert '<a href="data_quality/r2.html">r2</a>' in html
    assert 'href="index.zh-CN.html"' in html


def test_the_chinese_index_uses_chinese_texts() -> None:
    html = render_index(build_context(sample(), generated_at=GENERATED_AT, locale="zh_CN"))
    assert '<html lang="zh-CN">' in html
    assert "<title>资产管理报告</title>" in html
    assert "尚未生成数据质量报告。" in html
