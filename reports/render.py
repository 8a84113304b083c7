"""Rendering of report contexts to HTML with one hardened Jinja environment.

Autoescaping is on for ``.html``/``.j2`` templates and for templates built from
strings; ``select_autoescape("html")`` would iterate the string as single
characters and silently turn escaping off. Undefined names raise instead of
printing nothing, and ``None`` raises instead of printing ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup


def _refuse_none(value: object) -> object:
    if value is None:
        raise ValueError("a template printed None: the context lacks a value")
    return value


def css_string(value: object) -> Markup:
    """A CSS string literal of ``value`` (for ``content:`` in ``@page`` margin boxes).

    Every ASCII character but letters, digits and spaces is written as a CSS escape,
    so no quote, backslash, brace or angle bracket of a deal name can end the string,
    the rule or the ``<style>`` element.
    """
    text = str(value)
    escaped = "".join(
        ch if ch.isalnum() or ch == " " or ord(ch) > 0x7F else f"\\{ord(ch):x} " for ch in text
    )
    # Safe: every character that HTML or CSS could read as syntax is escaped above.
    return Markup(f'"{escaped}"')  # noqa: S704


@cache
def environment() -> Environment:
    """The Jinja environment every report is rendered with (created once, on first use)."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True),
        undefined=StrictUndefined,
        finalize=_refuse_none,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["css_string"] = css_string
    return env


def _renderer(report: str) -> Callable[[Mapping[str, Any]], str]:
    """The function rendering a context of ``reports.<report>.build_context`` with the
    template ``<report>.html.j2``."""
    template = f"{report}.html.j2"

    def render(context: Mapping[str, Any]) -> str:
        return environment().get_template(template).render(context)

    render.__name__ = render.__qualname__ = f"render_{report}"
    render.__doc__ = (
        f"Render a context of ``reports.{report}.build_context`` to HTML.\n\n"
        "Raises:\n    jinja2.UndefinedError: If the context lacks a value the template prints.\n"
    )
    return render


render_disclosure = _renderer("disclosure")
render_index = _renderer("index")
render_static_pool = _renderer("static_pool")
render_portfolio = _renderer("portfolio")
render_data_quality = _renderer("data_quality")
