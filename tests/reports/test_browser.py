"""The reports as a real browser shows them: headless Chromium, offline.

Run by ``make test-browser`` (which installs Debian's ``chromium`` when it is
missing); skipped in the ordinary suite. A small synthetic book goes through the
pipeline; every report page is loaded, and the test fails on a console error
or on any request for a non-local URL. Full-page screenshots (and print PDFs)
of the latest disclosure in both languages, with a screenshot of its print
preview (``*.print.png``), go to ``$ABS_PIPELINE_BROWSER_OUT``
(default: the test's temporary folder) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from flows.catalog import Catalog
from tests.reports.browser import Page, chromium

pytestmark = [
    pytest.mark.flow,
    pytest.mark.skipif(
        os.environ.get("ABS_PIPELINE_BROWSER_TEST") != "1",
        reason="browser test: run `make test-browser`",
    ),
]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium() as tab:
        yield tab


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from prefect.testing.utilities import prefect_test_harness

    from flows.generator import generate_landing
    from flows.pipeline import backfill_flow

    root = tmp_path_factory.mktemp("browser") / "data"
    generate_landing(root / "landing", loans=1500, start="2024-01", months=12, seed=11)
    with prefect_test_harness(server_startup_timeout=120):
        summary = backfill_flow(start=date(2024, 1, 1), end=date(2024, 12, 31), data_root=str(root))
    assert not summary.failed
    return root


def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("ABS_PIPELINE_BROWSER_OUT")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")


def test_the_checker_catches_console_errors_and_remote_requests(page: Page, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html lang="en"><title>x</title>'
        '<img src="https://example.invalid/pixel.png" alt="">'
        "<script>console.error('boom')</script></html>",
        encoding="utf-8",
    )
    report = page.inspect(bad)
    assert any("boom" in error for error in report.console_errors)
    assert report.remote_requests == ["https://example.invalid/pixel.png"]


def test_every_report_page_loads_offline_without_errors(page: Page, reports: Path) -> None:
    catalog = Catalog(reports)
    pages = sorted(catalog.reports.glob("*.html")) + sorted(catalog.reports.glob("*/*.html"))
    pages += sorted(catalog.reports.glob("*/*/disclosure.*.html"))
    assert len(pages) >= 8
    for path in pages:
        report = page.inspect(path)
        assert report.console_errors == [], (path, report.console_errors)
        assert report.remote_requests == [], (path, report.remote_requests)
        assert report.height > 200, path


def test_the_latest_disclosure_screenshots_in_both_languages(
    page: Page, reports: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    catalog = Catalog(reports)
    pool_id, period, _ = max(catalog.metrics_documents(), key=lambda item: item[1])
    folder = out_dir(tmp_path_factory)
    for language in ("en", "zh-CN"):
        source = catalog.disclosure(pool_id, period, language)
        shot = folder / f"disclosure.{language}.png"
        report = page.inspect(source, screenshot=shot, width=1600)
        assert report.console_errors == []
        assert report.remote_requests == []
        assert shot.read_bytes().startswith(PNG)
        # The print preview is screenshot beside the screen view.
        assert report.print_screenshot is not None
        assert report.print_screenshot.read_bytes().startswith(PNG)
        # On a wide screen the report uses the width (no fixed 720 px column).
        assert report.main_width > 1000
        # A full page, not the first screen: the report runs over several A4 pages.
        assert report.height > 5000
        assert 4 <= report.pdf_pages <= 12
        shutil.copyfile(source, folder / source.name)
    print(f"screenshots in {folder}")
