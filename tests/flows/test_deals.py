"""Deal files: the typed model reads them, the deal contract judges them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows import deals as deals_module
from flows.catalog import Catalog
from flows.deals import load_deals


def _deal(pool_id: str, **overrides: object) -> dict[str, object]:
    deal: dict[str, object] = {
        "pool_id": pool_id,
        "name": f"Deal {pool_id}",
        "cutoff_date": "2024-06-28",
        "closing_date": "2024-07-08",
        "revolving_period_end": "2025-06-30",
        "tranches": [
            {"class": "A", "kind": "senior", "original_balance": "890000.00", "coupon": "0.039"},
            {"class": "C", "kind": "subordinated", "original_balance": "110000.00", "coupon": "0"},
        ],
    }
    deal.update(overrides)
    return deal


def _write(root: Path, deal: dict[str, object]) -> None:
    folder = Catalog(root).deals_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{deal['pool_id']}.yaml").write_text(yaml.safe_dump(deal), encoding="utf-8")


def test_a_deal_breaking_an_error_rule_is_left_out_and_named(tmp_path: Path) -> None:
    _write(tmp_path, _deal("GOOD-1"))
    _write(tmp_path, _deal("LATE-1", revolving_period_end="2024-07-01"))
    book = load_deals(Catalog(tmp_path))
    assert sorted(book.deals) == ["GOOD-1"]
    assert len(book.errors) == 1
    assert book.errors[0].startswith("landing/deals/LATE-1.yaml: breaks ")
    assert "deal.revolving_period_end.after_closing" in book.errors[0]


def test_a_warning_rule_keeps_the_deal_and_reports_it(tmp_path: Path) -> None:
    _write(tmp_path, _deal("SLOW-1", definitions={"default_dpd": 400, "charge_off_dpd": 500}))
    book = load_deals(Catalog(tmp_path))
    assert sorted(book.deals) == ["SLOW-1"]
    assert book.errors == ()
    assert any("deal.default_dpd.usual_range" in w for w in book.warnings)


def test_a_file_the_model_refuses_is_named_with_its_reason(tmp_path: Path) -> None:
    _write(tmp_path, _deal("BAD-1", tranches=[]))
    _write(tmp_path, _deal("GOOD-2"))
    book = load_deals(Catalog(tmp_path))
    assert sorted(book.deals) == ["GOOD-2"]
    assert book.errors[0].startswith("landing/deals/BAD-1.yaml: field tranches: ")
    assert book.errors[0].endswith("(got a list of 0)")


@pytest.mark.usefixtures("deal_checks_every_time")
def test_the_same_terms_are_checked_once_and_the_kept_result_judges_them_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, _deal("GOOD-1"))
    _write(tmp_path, _deal("LATE-1", revolving_period_end="2024-07-01"))
    first = load_deals(Catalog(tmp_path))
    kept = list((tmp_path / "state" / "deal_checks").glob("*.parquet"))
    assert len(kept) == 1

    def no_check(*args: object) -> None:
        raise AssertionError("the deal contract ran again")

    monkeypatch.setattr(deals_module, "validate_frame", no_check)
    again = load_deals(Catalog(tmp_path))
    assert (sorted(again.deals), again.errors) == (sorted(first.deals), first.errors)
    assert len(again.errors) == 1
    assert "after_closing" in again.errors[0]

    # Other terms are other rows: checked afresh.
    monkeypatch.undo()
    _write(tmp_path, _deal("GOOD-2"))
    assert sorted(load_deals(Catalog(tmp_path)).deals) == ["GOOD-1", "GOOD-2"]
    assert len(list((tmp_path / "state" / "deal_checks").glob("*.parquet"))) == 2
