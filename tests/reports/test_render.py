from __future__ import annotations

from typing import Any

import pytest
from jinja2 import UndefinedError

from reports.render import environment, render_disclosure, render_index
from tests.reports.html_tables import table


def minimal_disclosure() -> dict[str, Any]:
    return {
        "lang": "en",
        "title": "Trustee report — Deal — 2025-06",
        "doc_kind": "Monthly trustee report",
        "texts": {"contents": "Contents", "key_figures": "Key figures", "generated_at": "At"},
        "rounding_note": "Rounded half-up.",
        "key_figures": [],
        "toc": [],
        "alternate": None,
        "generated_at": "2025-07-01T02:00:00+08:00",
        "sections": [
            {
                "number": 1,
                "key": "deal",
                "anchor": "s1-deal",
                "title": "Deal and period",
                "tables": [
                    {
                        "caption": "Deal",
                        "columns": [
                            {"label": "Item", "numeric": False},
                            {"label": "Value", "numeric": True},
                        ],
                        "rows": [{"header": "Closing", "cells": ["1,234,567.89"], "total": True}],
                    }
                ],
                "notes": ["Figures in CNY."],
                "computed": True,
                "charts": [],
                "links": [],
                "page_break": False,
            }
        ],
    }


def test_a_context_renders_with_numeric_cells_aligned() -> None:
    html = render_disclosure(minimal_disclosure())
    assert table(html, "Deal").cell("Closing", "Value") == "1,234,567.89"
    assert '<tr class="total">' in html
    assert '<td class="num">1,234,567.89</td>' in html
    assert '<p class="note">Figures in CNY.</p>' in html


@pytest.mark.parametrize("path", [("title",), ("sections", 0, "tables", 0, "rows", 0, "total")])
def test_a_missing_key_raises(path: tuple[str | int, ...]) -> None:
    context = minimal_disclosure()
    target: Any = context
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    with pytest.raises(UndefinedError):
        render_disclosure(context)


def test_every_report_template_extends_the_one_base() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "reports" / "templates"
    for path in folder.glob("*.html.j2"):
        text = path.read_text(encoding="utf-8")
        if path.name in {"base.html.j2", "_macros.html.j2"}:
            continue
        assert text.startswith(
            ('{% extends "base.html.j2" %}', '{% extends "_document.html.j2" %}')
        )


def test_a_missing_index_key_raises() -> None:
    with pytest.raises(UndefinedError):
        render_index({"lang": "en", "title": "Reports", "pools": [], "generated_at": "x"})


def test_printing_none_raises() -> None:
    context = minimal_disclosure()
    context["sections"][0]["tables"][0]["rows"][0]["cells"] = [None]
    with pytest.raises(ValueError, match="printed None"):
        render_disclosure(context)


def test_autoescape_is_on_for_templates_and_strings() -> None:
    env = environment()
    assert callable(env.autoescape)
    assert env.autoescape("disclosure.html.j2") is True
    assert env.autoescape("index.html.j2") is True
    assert env.autoescape("static_pool.html.j2") is True
    assert env.autoescape("portfolio.html.j2") is True
    assert env.autoescape("_macros.html.j2") is True
    assert env.autoescape(None) is True
    assert env.from_string("{{ value }}").render(value="<b>&") == "&lt;b&gt;&amp;"


def test_the_running_header_is_a_css_string_no_deal_name_can_break_out_of() -> None:
    from reports.render import css_string

    hostile = 'A"} body { display: none } </style><script>alert(1)</script>'
    literal = str(css_string(hostile))
    assert literal.startswith('"')
    assert literal.endswith('"')
    for forbidden in ('"', "}", "<", ">", "/"):
        assert forbidden not in literal[1:-1]
    assert str(css_string("示例花呗 2025")) == '"示例花呗 2025"'
