"""The report vocabulary (``reports/glossary.yaml``) and the Chinese form of recorded formulas."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Final

import yaml

_LATIN: Final = re.compile(r"[A-Za-z][A-Za-z0-9+/\-]*")


@cache
def glossary() -> Mapping[str, Any]:
    """The glossary document: ``terms``, ``abbreviations`` and ``formula_phrases``."""
    text = (files("reports") / "glossary.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError("reports/glossary.yaml is not a mapping")
    return MappingProxyType(document)


def chinese_formula(text: str) -> str | None:
    """A recorded formula in Chinese, phrase by phrase (longest first).

    Returns:
        The Chinese text, or None when a word is left that is neither translated
        nor a standard abbreviation of the glossary (the caller then says so).
    """
    phrases: Mapping[str, str] = glossary()["formula_phrases"]
    result = text
    for english in sorted(phrases, key=len, reverse=True):
        result = result.replace(english, phrases[english])
    allowed = set(glossary()["abbreviations"])
    if any(word not in allowed for word in _LATIN.findall(result)):
        return None
    return result
