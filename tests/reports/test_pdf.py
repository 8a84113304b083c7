"""The archive PDF: A4 pages with a running header and page numbers, fonts embedded,
identical bytes for the same inputs."""

from __future__ import annotations

import io
import re
from datetime import UTC
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from reports.pdf import render_pdf
from tests.reports.golden import render_sample
from tests.reports.samples import GENERATED_AT

A4_POINTS = (595, 842)


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(render_sample("zh_CN"))


def fonts(reader: PdfReader) -> dict[str, DictionaryObject]:
    found: dict[str, DictionaryObject] = {}
    for page in reader.pages:
        resources: Any = page["/Resources"].get_object()
        for reference in resources.get("/Font", {}).values():
            font: Any = reference.get_object()
            descendants = font.get("/DescendantFonts")
            described = descendants[0].get_object() if descendants else font
            found[str(font["/BaseFont"])] = described["/FontDescriptor"].get_object()
    return found


def test_the_monthly_report_fits_on_a_few_a4_pages_without_empty_ones(pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    assert 4 <= len(reader.pages) <= 10
    for page in reader.pages:
        box = page.mediabox
        assert (round(float(box.width)), round(float(box.height))) == A4_POINTS
        # Every page carries content beyond its header and page number.
        assert len(page.extract_text().strip()) > 200


def test_every_page_after_the_first_has_the_running_header_and_every_page_a_number(
    pdf: bytes,
) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    total = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"{number} / {total}" in text
        assert "示例花呗2025-1 · 第3期（2025-06）" in text


def test_fonts_are_embedded_and_chinese_text_uses_a_cjk_font(pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(pdf))
    found = fonts(reader)
    assert any("CJK" in name for name in found), sorted(found)
    for name, descriptor in found.items():
        assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), name
        # A subset (six-letter tag): only the glyphs used are embedded.
        assert re.match(r"^/[A-Z]{6}\+", name), name


def test_the_same_html_gives_identical_bytes_with_fixed_metadata_dates(pdf: bytes) -> None:
    assert render_pdf(render_sample("zh_CN")) == pdf
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None
    created = reader.metadata.creation_date
    assert created is not None
    assert created.astimezone(UTC) == GENERATED_AT.astimezone(UTC)


def test_links_to_other_files_are_left_out_and_links_within_the_document_kept() -> None:
    html = (
        '<html><body><a href="../2025-05/disclosure.en.html">May</a> '
        '<a href="#pool">Pool</a><h2 id="pool">Pool</h2></body></html>'
    )
    annotations = [
        annotation.get_object()
        for page in PdfReader(io.BytesIO(render_pdf(html))).pages
        for annotation in page.get("/Annots") or []
    ]
    assert [a["/Dest"] for a in annotations if "/Dest" in a] == ["pool"]
    assert not [a for a in annotations if "/A" in a and "/URI" in a["/A"]]
