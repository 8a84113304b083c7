from __future__ import annotations

import pytest

from tests.reports.golden import LOCALES, golden_path, render_sample


@pytest.mark.parametrize("locale", LOCALES)
def test_the_disclosure_matches_its_golden_file(locale: str) -> None:
    expected = golden_path(locale).read_text(encoding="utf-8")
    assert render_sample(locale) == expected, (
        f"{golden_path(locale).name} differs from the rendered disclosure; if the change is "
        "intended, run `make golden` and review the diff"
    )
