"""Pseudonymous keys: what a published report shows in place of a row or loan identifier."""

from __future__ import annotations

import hashlib


def pseudonymous_key(kind: str, text: str) -> str:
    """``<kind>-`` and the first 12 hex digits of ``text``'s sha256.

    The same text always gives the same key, so staff with access to the data find
    the row or loan by computing it; the report itself never prints the identifier.
    """
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
