"""The pipeline's metrics.json figures agree with a plain-Python recomputation.

A small generated tape runs through ingest, curation, the engine and the
metrics stage; :mod:`tests.reference.pool_reference` recomputes the pool
figures from the same curated inputs with loops over loans and days, sharing no
code with ``transforms/``, and runs the waterfall over them. Money must agree
to the fen and rates to 1e-9.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.curate import curate
from flows.deals import load_deals
from flows.generator import generate_landing
from flows.generator.revolving_pool import write_revolving_pool
from flows.generator.writer import ServicerLanding
from flows.ingest import ingest_dates
from flows.metrics import compute_pool_metrics
from flows.snapshots import build_loan_snapshots, snapshot_dates
from tests.reference.pool_reference import (
    Rules,
    add_waterfall,
    card_pool_rollforward,
    pool_figures,
)
from transforms.periods import month_ends_between

START, END = date(2024, 1, 1), date(2024, 12, 31)
RATE_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference") / "data"
    generate_landing(root / "landing", loans=600, start="2024-01", months=12, seed=11)
    _with_plan_fees_and_a_class_c_coupon(root / "landing" / "deals")
    catalog = Catalog(root)
    ingest_dates(catalog, catalog.landing_dates())
    curate(catalog, END)
    deals = load_deals(catalog).deals
    _stop_paying(catalog, next(iter(deals.values())).cutoff_date)
    curated = curate(catalog, END)
    assert curated.first_origination is not None
    build_loan_snapshots(
        catalog, snapshot_dates(curated.first_origination, END, deals.values()), deals
    )
    compute_pool_metrics(catalog, deals, month_ends_between(START, END))
    return root


def _with_plan_fees_and_a_class_c_coupon(deals: Path) -> None:
    """Taxes, 管理人报酬, 托管费 and a coupon on class C, so the reference checks them too."""
    [path] = sorted(deals.glob("*.yaml"))
    text = path.read_text(encoding="utf-8")
    fees = "fees:\n  trustee: '0.0005'\n  servicer: '0.0050'\n"
    assert fees in text
    assert text.count("coupon: '0'\n") == 1
    text = text.replace(
        fees, fees + "  management: '0.0004'\n  custody: '0.0001'\n  tax_on_interest: '0.0326'\n"
    ).replace("coupon: '0'\n", "coupon: '0.0100'\n")
    path.write_text(text, encoding="utf-8")


def _stop_paying(catalog: Catalog, cutoff: date) -> None:
    """Five cut-off loans stop paying a month after the cut-off, so the tape has defaults."""
    pool = pl.read_parquet(catalog.curated("pool_assets"))
    chosen = (
        pool.filter(pl.col("reason") == "cutoff")
        .join(pl.read_parquet(catalog.curated("loans")), on="loan_id")
        .filter(pl.col("term_months") >= 9)
        .sort("loan_id")
        .head(5)["loan_id"]
    )
    stopped = pl.col("loan_id").is_in(chosen.implode()) & (
        pl.col("value_date") > pl.lit(cutoff) + pl.duration(days=30)
    )
    # The staged deliveries lose the cash, so every later curation agrees.
    for path in catalog.staged_partitions("repayments"):
        pl.read_parquet(path).filter(~stopped).write_parquet(path)


def _rows(path: Path) -> list[dict[str, Any]]:
    return pl.read_parquet(path).to_dicts()


def _compare(path: str, ours: Any, theirs: Any, failures: list[str]) -> None:
    if isinstance(ours, dict):
        for key, value in ours.items():
            _compare(f"{path}.{key}", value, theirs.get(key), failures)
    elif isinstance(ours, list):
        if len(ours) != len(theirs):
            failures.append(f"{path}: {len(ours)} items, metrics.json has {len(theirs)}")
            return
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _compare(f"{path}[{i}]", a, b, failures)
    elif isinstance(ours, float) or isinstance(theirs, float):
        if ours is None or theirs is None:
            if ours is not theirs:
                failures.append(f"{path}: reference {ours}, metrics.json {theirs}")
        elif abs(ours - theirs) > RATE_TOLERANCE:
            failures.append(f"{path}: reference {ours!r}, metrics.json {theirs!r}")
    elif ours != theirs:
        failures.append(f"{path}: reference {ours!r}, metrics.json {theirs!r}")


def test_every_pool_figure_agrees_with_the_independent_recomputation(tape: Path) -> None:
    catalog = Catalog(tape)
    deals = load_deals(catalog).deals
    [(pool_id, deal)] = deals.items()
    loans = [
        {**row, "rate_ppm": int(Decimal(str(row["annual_rate"])) * 1_000_000)}
        for row in _rows(catalog.curated("loans"))
    ]
    documents = {
        period: json.loads(path.read_text(encoding="utf-8"))
        for pid, period, path in catalog.metrics_documents()
        if pid == pool_id
    }
    assert len(documents) >= 3
    terms = deal.definitions
    events = _rows(catalog.curated("pool_assets"))
    figures = pool_figures(
        loans=loans,
        repayments=_rows(catalog.curated("repayments")),
        pool_events=events,
        pool_id=pool_id,
        cutoff=deal.cutoff_date,
        grid=sorted(catalog.snapshot_dates()),
        periods=[date.fromisoformat(d["period_end"]) for d in documents.values()],
        rules=Rules(
            default_dpd=terms.default_dpd,
            charge_off_dpd=terms.charge_off_dpd,
            tolerance=terms.dpd_tolerance,
            advance_days=terms.advance_payment_days,
        ),
        denominator=terms.cumulative_default_denominator,
    )
    assert sorted(d.isoformat()[:7] for d in figures) == sorted(documents)
    ratios = {t: f.pop("delinquency_ratio") for t, f in figures.items()}
    add_waterfall(figures, deal=deal, pool_events=events, delinquency_ratio=ratios)
    failures: list[str] = []
    compared = 0
    for period_end, ours in sorted(figures.items()):
        document = documents[period_end.isoformat()[:7]]
        _compare(period_end.isoformat()[:7], ours, document, failures)
        compared += 1
    assert not failures, "\n".join(failures[:40])
    # The tape exercises what the figures rest on.
    pools = [documents[p]["pool"] for p in sorted(documents)]
    assert any(Decimal(p["unscheduled_principal"]) > 0 for p in pools)
    assert any(Decimal(p["defaulted_principal"]) > 0 for p in pools)
    assert any(Decimal(p["purchased_principal"]) > 0 for p in pools)
    # The defaults breach the cumulative default trigger: the notes amortise early.
    assert any(t["breached"] for d in documents.values() for t in d["triggers"])
    assert any(Decimal(t["principal_paid"]) > 0 for d in documents.values() for t in d["tranches"])
    assert compared == len(documents)
    # The plan fees, the tax and class C's coupon were paid, so they were compared.
    expenses = [d["expenses"] for d in documents.values()]
    assert any(Decimal(e["taxes"]) > 0 and Decimal(e["custody_fee"]) > 0 for e in expenses)
    class_c = [d["tranches"][-1] for d in documents.values()]
    assert any(Decimal(c["interest_paid"]) > 0 for c in class_c)
    assert any(Decimal(c["residual_paid"]) > 0 for c in class_c)
    assert all(len(d["accounts"]) == 3 for d in documents.values())


CARD_MONTH_ENDS = [date(2024, m, d) for m, d in ((1, 31), (2, 29), (3, 31), (4, 30), (5, 31))]


@pytest.fixture(scope="module")
def card_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("card_reference") / "data"
    write_revolving_pool(ServicerLanding(root / "landing", "2024-01", 5, 11), accounts=80)
    catalog = Catalog(root)
    ingest_dates(catalog, CARD_MONTH_ENDS)
    curated = curate(catalog, CARD_MONTH_ENDS[-1])
    assert curated.first_origination is not None
    deals = load_deals(catalog).deals
    build_loan_snapshots(
        catalog,
        snapshot_dates(curated.first_origination, CARD_MONTH_ENDS[-1], deals.values()),
        deals,
    )
    compute_pool_metrics(catalog, deals, CARD_MONTH_ENDS[1:])
    return root


def test_a_card_pools_roll_forward_with_its_new_drawings_agrees_with_the_recomputation(
    card_tape: Path,
) -> None:
    catalog = Catalog(card_tape)
    [(pool_id, deal)] = load_deals(catalog).deals.items()
    documents = {
        period: json.loads(path.read_text(encoding="utf-8"))
        for pid, period, path in catalog.metrics_documents()
        if pid == pool_id
    }
    ours = card_pool_rollforward(
        _rows(catalog.curated("loan_tape")),
        _rows(catalog.curated("pool_assets")),
        pool_id=pool_id,
        periods=CARD_MONTH_ENDS[1:],
        default_dpd=deal.definitions.default_dpd,
        charge_off_dpd=deal.definitions.charge_off_dpd,
    )
    failures: list[str] = []
    for period_end, pool in ours.items():
        _compare(
            period_end.isoformat()[:7],
            pool,
            documents[period_end.isoformat()[:7]]["pool"],
            failures,
        )
    assert not failures, "\n".join(failures[:40])
    assert all(Decimal(ours[t]["new_drawings"]) > 0 for t in ours)
    # In the revolving period the principal collections pay for the drawings first; what
    # they cannot cover the seller funds, and no class amortises.
    for document in documents.values():
        revolving = document["revolving"]
        assert revolving["revolving_period"] is True
        assert Decimal(revolving["drawings_paid"]) + Decimal(
            revolving["drawings_seller_funded"]
        ) == Decimal(document["pool"]["new_drawings"])
        assert all(Decimal(t["principal_paid"]) == 0 for t in document["tranches"])
