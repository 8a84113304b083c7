"""Early amortisation end to end on a generated tape with a breach forced in period 3.

The tape's deal (cut-off in June 2024, periods July to December) gets a
trigger that cannot breach before period 3 and always breaches from it: the
payment rate "below" a threshold of 0 until period 3 and of 10 from it.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.catalog import Catalog
from transforms.waterfall import PURCHASE_AFTER_EARLY_AMORTISATION

BREACH_END = date(2024, 9, 30)


@pytest.fixture(scope="module")
def root(amortising_book: Path) -> Path:
    """The shared early-amortisation book (tests/flows/books.py), read only."""
    return amortising_book


def _documents(root: Path) -> list[dict[str, Any]]:
    paths = [p for _, _, p in Catalog(root).metrics_documents()]
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    return sorted(docs, key=lambda d: d["period"])


def _landing_purchases(root: Path) -> pl.DataFrame:
    files = sorted((root / "landing").glob("*/pool_assets*.csv"))
    frame = pl.concat([pl.read_csv(f, infer_schema=False) for f in files])
    return frame.filter(
        (pl.col("event") == "added") & (pl.col("reason") == "revolving_purchase")
    ).with_columns(pl.col("event_date").str.to_date())


def test_the_breach_falls_in_period_3_and_binds_from_it(root: Path) -> None:
    docs = _documents(root)
    assert [d["period"] for d in docs] == [f"2024-{m:02d}" for m in range(7, 13)]
    assert [d["period_number"] for d in docs] == [1, 2, 3, 4, 5, 6]
    assert [t["breached"] for d in docs for t in d["triggers"]] == [False, False] + [True] * 4
    assert [d["revolving"]["revolving_period"] for d in docs] == [True, True] + [False] * 4
    # From period 3 the notes amortise sequentially: class A is paid first.
    class_a = [next(t for t in d["tranches"] if t["class"] == "A") for d in docs]
    assert [Decimal(t["principal_paid"]) > 0 for t in class_a] == [False, False] + [True] * 4


def test_purchases_after_the_breach_period_are_quarantined_with_the_reason(root: Path) -> None:
    catalog = Catalog(root)
    late = _landing_purchases(root).filter(pl.col("event_date") > BREACH_END)
    assert late.height > 0
    parts = sorted((root / "quarantine" / "pool_assets").rglob("*.parquet"))
    reason = pl.col("rule_ids").list.contains(PURCHASE_AFTER_EARLY_AMORTISATION)
    quarantined = pl.concat([pl.read_parquet(p) for p in parts]).filter(reason)
    assert quarantined.height == late.height
    assert sorted(json.loads(o)["loan_id"] for o in quarantined["original"]) == sorted(
        late["loan_id"]
    )
    curated = pl.read_parquet(catalog.curated("pool_assets"))
    assert curated.filter(
        (pl.col("reason") == "revolving_purchase") & (pl.col("event_date") > BREACH_END)
    ).is_empty()
    # Purchases made within the breach period were the trust's and stay.
    assert not curated.filter(
        (pl.col("reason") == "revolving_purchase") & (pl.col("event_date") > date(2024, 8, 31))
    ).is_empty()


def test_no_purchase_follows_the_breach_and_none_is_left_unfunded(root: Path) -> None:
    docs = _documents(root)
    later = [d for d in docs if d["period_number"] > 3]
    assert all(Decimal(d["pool"]["purchased_principal"]) == 0 for d in later)
    assert all(Decimal(d["revolving"]["purchases_unfunded"]) == 0 for d in docs)
    # The cash that would have bought receivables amortises the notes instead.
    assert all(Decimal(d["revolving"]["purchases_paid"]) == 0 for d in later)


def test_class_balances_are_continuous_across_every_published_period(root: Path) -> None:
    docs = _documents(root)
    for before, after in itertools.pairwise(docs):
        closing = {t["class"]: t["closing_balance"] for t in before["tranches"]}
        assert {t["class"]: t["opening_balance"] for t in after["tranches"]} == closing
        assert after["pool"]["opening_balance"] == before["pool"]["closing_balance"]
