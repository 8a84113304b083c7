"""Golden disclosures: one per language, rendered from the sample inputs.

Refresh after an intended change with ``make golden`` (which runs
``python -m tests.reports.golden``), then review the diff.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reports.disclosure import build_context
from reports.render import render_disclosure
from tests.reports.samples import (
    GENERATED_AT,
    PROVENANCE,
    make_data_quality,
    make_deal,
    make_history,
    make_metrics,
    make_stratifications,
    make_vintages,
)

FOLDER = Path(__file__).resolve().parent / "golden"
LOCALES = {"en": "en", "zh_CN": "zh-CN"}


def golden_path(locale: str) -> Path:
    return FOLDER / f"disclosure.{LOCALES[locale]}.html"


def render_sample(locale: str) -> str:
    """The sample disclosure in ``locale``, as the golden file holds it."""
    other = "zh-CN" if locale == "en" else "en"
    context = build_context(
        make_metrics(),
        make_deal(),
        generated_at=GENERATED_AT,
        provenance=PROVENANCE,
        locale=locale,
        history=make_history(),
        stratifications=make_stratifications(),
        vintages=make_vintages(),
        data_quality=make_data_quality(),
        alternate_href=f"disclosure.{other}.html",
        static_pool_href=f"../static_pool.{LOCALES[locale]}.html",
    )
    return render_disclosure(context)


def main() -> int:
    FOLDER.mkdir(exist_ok=True)
    for locale in LOCALES:
        golden_path(locale).write_text(render_sample(locale), encoding="utf-8")
        print(f"wrote {golden_path(locale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
