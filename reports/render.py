"""Rendering of report contexts to HTML with one hardened Jinja environment.

Autoescaping is on for ``.html``/``.j2`` templates and for templates built from
strings; ``select_autoescape("html")`` would iterate the string as single
characters and silently turn escaping off. Undefined names raise instead of
printing nothing, and ``None`` raises instead of printing ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def _render(template: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(template).render(context)


def render_disclosure(context: Mapping[str, Any]) -> str:
    """Render a disclosure context (``reports.disclosure.build_context``) to HTML.

    Raises:
        jinja2.UndefinedError: If the context lacks a value the template prints.
    """
    return _render("disclosure.html.j2", context)


def render_index(context: Mapping[str, Any]) -> str:
    """Render an index context (``reports.index.build_context``) to HTML.

    Raises:
        jinja2.UndefinedError: If the context lacks a value the template prints.
    """
    return _render("index.html.j2", context)


def render_static_pool(context: Mapping[str, Any]) -> str:
    """Render a static-pool context (``reports.static_pool.build_context``) to HTML.

    Raises:
        jinja2.UndefinedError: If the context lacks a value the template prints.
    """
    return _render("static_pool.html.j2", context)


def render_portfolio(context: Mapping[str, Any]) -> str:
    """Render a portfolio context (``reports.portfolio.build_context``) to HTML.

    Raises:
        jinja2.UndefinedError: If the context lacks a value the template prints.
    """
    return _render("portfolio.html.j2", context)


def render_data_quality(context: Mapping[str, Any]) -> str:
    """Render a data-quality context (``reports.data_quality.build_context``) to HTML.

    Raises:
        jinja2.UndefinedError: If the context lacks a value the template prints.
    """
    return _render("data_quality.html.j2", context)
