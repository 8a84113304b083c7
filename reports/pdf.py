"""The archive PDF of a disclosure (WeasyPrint), identical bytes for the same HTML.

The HTML carries its fixed creation time in ``dcterms.created``/``dcterms.modified``
meta tags, so the PDF's metadata dates come from the report's inputs, never the
clock; the fonts (Noto Sans CJK for Chinese, installed by ``make``) are subset
and embedded. Rendering reads nothing but the HTML string and the system fonts.

An archive PDF is a document on its own, read wherever it is filed: links to other
files (the other language, the static-pool and data-quality reports) only resolve
beside the HTML page, so they are left out; links within the document stay. The
same disclosure therefore gives the same PDF in every folder it is published to.
"""

from __future__ import annotations

import re

_LINK_TO_ANOTHER_FILE = re.compile(r'\shref="(?!#)[^"]*"')
"""An ``href`` attribute that does not point within the page (the report's own markup)."""


def render_pdf(html: str) -> bytes:
    """Lay out a report's HTML on A4 pages and return the PDF.

    Args:
        html: A self-contained report page (inline styles and SVG, no external resource).

    Returns:
        The PDF bytes, with every font used embedded.
    """
    # Imported here: WeasyPrint (Pango, fontconfig, its CSS engine) takes a second to
    # import, and a run that writes no PDF (a night inside a collection period) never
    # needs it. WeasyPrint ships no type information.
    from weasyprint import HTML  # type: ignore[import-untyped]  # noqa: PLC0415

    document = HTML(string=_LINK_TO_ANOTHER_FILE.sub("", html), base_url=None).render()
    # A fixed identifier: the default derives one from the content, which is what we want,
    # but pinning the version and option set keeps the bytes stable across runs.
    pdf = document.write_pdf(pdf_version="1.7", uncompressed_pdf=False, custom_metadata=False)
    if pdf is None:
        raise RuntimeError("WeasyPrint returned no PDF")
    return bytes(pdf)
