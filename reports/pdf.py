"""The archive PDF of a disclosure (WeasyPrint), identical bytes for the same HTML.

The HTML carries its fixed creation time in ``dcterms.created``/``dcterms.modified``
meta tags, so the PDF's metadata dates come from the report's inputs, never the
clock; the fonts (Noto Sans CJK for Chinese, installed by ``make``) are subset
and embedded. Rendering reads nothing but the HTML string and the system fonts.
"""

from __future__ import annotations

# WeasyPrint ships no type information.
from weasyprint import HTML  # type: ignore[import-untyped]


def render_pdf(html: str) -> bytes:
    """Lay out a report's HTML on A4 pages and return the PDF.

    Args:
        html: A self-contained report page (inline styles and SVG, no external resource).

    Returns:
        The PDF bytes, with every font used embedded.
    """
    document = HTML(string=html, base_url=None).render()
    # A fixed identifier: the default derives one from the content, which is what we want,
    # but pinning the version and option set keeps the bytes stable across runs.
    pdf = document.write_pdf(pdf_version="1.7", uncompressed_pdf=False, custom_metadata=False)
    if pdf is None:
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(pdf)
