"""Report texts per locale, from the packaged ``reports/translations/<locale>.yaml`` files.

Each file has a ``common`` group shared by every report, one group per report
(``disclosure``, ``index``, ``static_pool``, ``portfolio``) and ``provinces``
(ISO 3166-2:CN code to local name). Both locales carry the same keys and the
same ``{fields}`` to fill in; the files are read once and never change at run time,
so the report builders stay deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Final

import yaml

from reports.formatting import check_locale

REPORTS: Final = ("disclosure", "index", "static_pool", "portfolio", "data_quality")
"""The report groups of a translation file."""


@cache
def _document(locale: str) -> Mapping[str, Mapping[str, str]]:
    text = (files("reports") / "translations" / f"{check_locale(locale)}.yaml").read_text(
        encoding="utf-8"
    )
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise ValueError(f"translations for {locale} are not a mapping")
    groups: dict[str, Mapping[str, str]] = {}
    for group, entries in loaded.items():
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise ValueError(f"translations {locale}/{group} must map text keys to text")
        groups[str(group)] = MappingProxyType(dict(entries))
    return MappingProxyType(groups)


def labels(locale: str, report: str) -> Mapping[str, str]:
    """The texts of one report in one locale: its own group over the common group.

    Args:
        locale: ``"en"`` or ``"zh_CN"``.
        report: One of :data:`REPORTS`.

    Returns:
        A read-only mapping from label key to text.

    Raises:
        ValueError: If the locale or report is unknown.
    """
    if report not in REPORTS:
        raise ValueError(f"unknown report {report!r}; use one of {REPORTS}")
    document = _document(locale)
    return MappingProxyType({**document["common"], **document[report]})


def province_names(locale: str) -> Mapping[str, str]:
    """Local names of China's provincial divisions by ISO 3166-2 code (``CN-BJ`` -> 北京市)."""
    return _document(locale)["provinces"]


def groups(locale: str) -> Mapping[str, Mapping[str, str]]:
    """Every group of a locale's translation file (for consistency checks)."""
    return _document(locale)
