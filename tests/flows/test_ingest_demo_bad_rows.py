"""The demo tape's bad rows: a few per cent of the cut-off date's files, several kinds,
each quarantined row by row (never a whole file), every real row untouched."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.generator import generate_landing
from flows.ingest import IngestOutcome, ingest_dates
from flows.limits import DEFAULT_LIMITS


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def spoiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, date, IngestOutcome]:
    root = tmp_path_factory.mktemp("demo") / "data"
    generate_landing(root / "landing", loans=600, start="2024-01", months=4, seed=7, bad_rows=True)
    catalog = Catalog(root)
    (deal,) = catalog.deal_files()
    cutoff = date.fromisoformat(str(_cutoff(deal)))
    days = [d for d in catalog.landing_dates() if d <= cutoff]
    return root, cutoff, ingest_dates(catalog, days, limits=DEFAULT_LIMITS)


def _cutoff(deal: Path) -> str:
    for line in deal.read_text(encoding="utf-8").splitlines():
        if line.startswith("cutoff_date:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise AssertionError("no cutoff_date")


def test_only_the_cut_off_date_carries_bad_rows_and_each_is_quarantined(
    spoiled: tuple[Path, date, IngestOutcome],
) -> None:
    _, cutoff, outcome = spoiled
    assert outcome.rejections() == []
    assert all(f.rejected is None for f in outcome.files)
    for f in outcome.files:
        assert f.rows_read == f.rows_accepted + f.rows_quarantined, f.path
        if f.business_date != cutoff:
            assert f.rows_quarantined == 0, f.path
    on_cutoff = [f for f in outcome.files if f.business_date == cutoff]
    assert {f.dataset for f in on_cutoff} == {"loans", "repayments", "pool_assets"}
    for f in on_cutoff:
        assert f.rows_quarantined >= 1, f.path
        if f.rows_read >= 20:  # a few per cent: never enough to reject the file whole
            assert f.rows_quarantined <= f.rows_read * 4 // 100, f.path


def test_the_bad_rows_break_several_rules_and_no_real_row(
    spoiled: tuple[Path, date, IngestOutcome],
) -> None:
    root, cutoff, _ = spoiled
    catalog = Catalog(root)
    rules: Counter[str] = Counter()
    for dataset in ("loans", "repayments", "pool_assets"):
        bad = pl.read_parquet(catalog.quarantine_partition(dataset, cutoff))
        rules.update(r for ids in bad["rule_ids"] for r in ids)
        originals = bad["original"].to_list()
        assert all("-BAD" in o or "-OLD" in o or "2024-13-01" in o for o in originals)
    assert {
        "loans.origination_date.date_window",
        "loans.principal.type",
        "loans.annual_rate.range",
        "repayments.loan_id.known_loan",
        "repayments.fee_paid.non_negative",
        "pool_assets.pool_id.known_deal",
    } <= set(rules)


def test_without_bad_rows_the_same_seed_gives_the_same_files_but_the_spoiled_ones(
    spoiled: tuple[Path, date, IngestOutcome], tmp_path: Path
) -> None:
    root, cutoff, _ = spoiled
    clean = tmp_path / "landing"
    generate_landing(clean, loans=600, start="2024-01", months=4, seed=7)
    with_bad, without = _tree(root / "landing"), _tree(clean)
    assert with_bad.keys() == without.keys()
    differ = sorted(name for name in with_bad if with_bad[name] != without[name])
    assert [Path(name).parent.name for name in differ] == [cutoff.isoformat()] * len(differ)
    # The delivery's control file describes the spoiled files too, so it differs with them.
    for name in (n for n in differ if not n.endswith("manifest.json")):
        spoiled_rows = pl.read_csv(root / "landing" / name, infer_schema=False)
        clean_rows = pl.read_csv(clean / name, infer_schema=False)
        assert spoiled_rows.head(clean_rows.height).equals(clean_rows)
