"""Deal terms from ``landing/deals/<pool_id>.yaml``, validated by the typed model."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from pydantic import ValidationError

from data_contracts.deal import DealTerms
from flows.catalog import Catalog
from transforms.performance import PerformanceRules


@dataclass(frozen=True)
class DealBook:
    """The deals that loaded, and a clear error for each that did not."""

    deals: dict[str, DealTerms] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


def load_deals(catalog: Catalog) -> DealBook:
    """Load and validate every deal YAML; a bad one is reported, the others go on."""
    deals: dict[str, DealTerms] = {}
    errors: list[str] = []
    for path in catalog.deal_files():
        where = path.relative_to(catalog.root).as_posix()
        try:
            deal = DealTerms.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as exc:
            errors.append(f"{where}: invalid deal terms: {exc}")
            continue
        if deal.pool_id != path.stem:
            errors.append(f"{where}: pool_id {deal.pool_id!r} does not match the file name")
            continue
        deals[deal.pool_id] = deal
    return DealBook(deals, tuple(errors))


def performance_rules(deal: DealTerms) -> PerformanceRules:
    d = deal.definitions
    return PerformanceRules(
        default_dpd=d.default_dpd, charge_off_dpd=d.charge_off_dpd, tolerance_fen=d.dpd_tolerance
    )
