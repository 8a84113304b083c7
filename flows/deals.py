"""Deal terms from ``landing/deals/<pool_id>.yaml``.

Each file is read by the typed model (shape, types, identifiers), then the deals
are judged by their data contract (``deal.odcs.yaml``): a deal breaking an
``error`` rule is left out of the run with the rule named; ``warning`` rules
are reported and the deal is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from pydantic import ValidationError

from data_contracts.contract import load_contract
from data_contracts.deal import DealTerms
from data_contracts.deal_table import deal_frame
from data_contracts.validate import validate_frame
from flows.catalog import Catalog
from transforms.performance import PerformanceRules


@dataclass(frozen=True)
class DealBook:
    """The deals that loaded, and a clear error for each that did not."""

    deals: dict[str, DealTerms] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


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
    if not deals:
        return DealBook(deals, tuple(errors))
    ordered = sorted(deals)
    outcome = validate_frame(load_contract("deal"), deal_frame(deals[p] for p in ordered))
    warnings: list[str] = []
    for position, rule_id, severity, message in outcome.failures.select(
        "row_index", "rule_id", "severity", "message"
    ).iter_rows():
        pool_id = ordered[position]
        where = f"landing/deals/{pool_id}.yaml"
        if severity == "error":
            errors.append(f"{where}: breaks {rule_id}: {message}")
            deals.pop(pool_id, None)
        else:
            warnings.append(f"{where}: warning {rule_id}: {message}")
    return DealBook(deals, tuple(errors), tuple(warnings))


def performance_rules(deal: DealTerms) -> PerformanceRules:
    d = deal.definitions
    return PerformanceRules(
        default_dpd=d.default_dpd,
        charge_off_dpd=d.charge_off_dpd,
        tolerance_fen=d.dpd_tolerance,
        advance_payment_days=d.advance_payment_days,
    )
