"""Golden outputs of the pipeline on a small generated book, and the sample disclosure.

The golden files are what the pipeline's stages (ingest, curate, snapshots, metrics,
render) write for a 200-loan book generated with a fixed seed: the last period's
metrics.json and its disclosure in each language. Refresh them after an intended
change with ``make golden`` (which runs ``python -m tests.reports.golden``), then
review the diff. ``render_sample`` renders the hand-written sample inputs, which the
layout, glossary and PDF tests read.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date, datetime
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

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

BOOK = {"loans": 200, "start": "2024-01", "months": 3, "seed": 7}
BOOK_END = date(2024, 3, 31)
BOOK_POOL, BOOK_PERIOD = "HB2024-1", "2024-03"
BOOK_GENERATED_AT = datetime(2024, 3, 31, tzinfo=ZoneInfo("Asia/Shanghai"))
BOOK_VERSION = "golden"
"""The code version the golden reports print (the real one changes with every commit)."""
GOLDEN_FILES = ("metrics.json", *(f"disclosure.{tag}.html" for tag in LOCALES.values()))


def golden_path(name: str) -> Path:
    """A golden file of the generated book's last period, by its name in the report folder."""
    return FOLDER / name


def pipeline_outputs(root: Path) -> dict[str, str]:
    """Run the pipeline's stages on the generated book under ``root``; the golden files' text."""
    from flows.catalog import Catalog
    from flows.curate import curate
    from flows.deals import load_deals
    from flows.generator import generate_landing
    from flows.ingest import ingest_dates
    from flows.metrics import compute_pool_metrics, load_metrics_book
    from flows.render import render_disclosures
    from flows.snapshots import build_loan_snapshots, snapshot_dates
    from flows.status import days_between, split_chunks
    from transforms.periods import month_ends_between

    generate_landing(root / "landing", **BOOK)  # type: ignore[arg-type]
    catalog = Catalog(root)
    first = date.fromisoformat(f"{BOOK['start']}-01")
    for days in split_chunks(days_between(first, BOOK_END), "month"):
        ingest_dates(catalog, days)
    book = load_deals(catalog)
    deals = book.deals
    curated = curate(catalog, BOOK_END)
    assert curated.first_origination is not None, "the generated book has no loans"
    as_of = snapshot_dates(curated.first_origination, BOOK_END, deals.values())
    build_loan_snapshots(catalog, as_of, deals)
    periods = compute_pool_metrics(catalog, deals, month_ends_between(first, BOOK_END))
    last = [p for p in periods if (p.pool_id, p.period) == (BOOK_POOL, BOOK_PERIOD)]
    with mock.patch("flows.render.code_version", return_value=BOOK_VERSION):
        render_disclosures(
            catalog,
            deals,
            load_metrics_book(catalog, periods),
            last,
            generated_at=BOOK_GENERATED_AT,
            run_id="golden",
            with_pdf=False,
            deal_sources=book.sources,
        )
    folder = catalog.report_dir(BOOK_POOL, BOOK_PERIOD)
    return {name: (folder / name).read_text(encoding="utf-8") for name in GOLDEN_FILES}


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
    with tempfile.TemporaryDirectory(prefix="abs-pipeline-golden-") as tmp:
        outputs = pipeline_outputs(Path(tmp))
    for name, text in outputs.items():
        golden_path(name).write_text(text, encoding="utf-8")
        print(f"wrote {golden_path(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
