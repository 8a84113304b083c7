"""Sections 16-17: data quality, definitions and reproducibility."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from reports.deal_view import DealView, local_name
from reports.disclosure.base import (
    Inputs,
    Report,
    SectionSpec,
)
from reports.formatting import (
    format_beijing_time,
)
from reports.glossary import chinese_formula
from reports.layout import (
    Link,
    Section,
    row,
    section,
    table,
)
from reports.sources import DataQuality, Provenance
from transforms.metrics_document import PERFORMANCE_RATES
from transforms.triggers import TRIGGER_PREFIX


def _data_quality(quality: DataQuality | None, r: Report) -> Section:
    t, f = r.t, r.f
    if quality is None or not quality.datasets:
        return r.missing(16, "data_quality")

    def dataset(name: str) -> str:
        return t.get(f"dataset.{name}", name)

    rows = [
        row(
            dataset(item.dataset),
            f.count(item.received),
            f.count(item.accepted),
            f.count(item.quarantined),
        )
        for item in quality.datasets
    ]
    tables = [
        table(
            t("s16.caption"),
            [
                (t("s16.dataset"), False),
                (t("s16.received"), True),
                (t("s16.accepted"), True),
                (t("s16.quarantined"), True),
            ],
            rows,
        )
    ]
    notes: list[str] = []
    if quality.rules:
        tables.append(
            table(
                t("s16.rules_caption"),
                [(t("s16.rule"), False), (t("s16.dataset"), False), (t("s16.rows"), True)],
                [
                    row(item.rule_id, dataset(item.dataset), f.count(item.rows))
                    for item in sorted(quality.rules, key=lambda q: (q.dataset, q.rule_id))
                ],
            )
        )
    else:
        notes.append(t("s16.no_rejections"))
    if quality.contract_versions:
        tables.append(
            table(
                t("s16.contracts_caption"),
                [(t("s16.contract"), False), (t("s16.version"), False)],
                [row(dataset(name), version) for name, version in quality.contract_versions],
            )
        )
    links: list[Link] = [{"label": link.label, "href": link.href} for link in quality.reports]
    if links:
        notes.append(t("s16.reports"))
    return section(16, "data_quality", t("s16.title"), tables, notes=notes, links=links)


# -- 15 ------------------------------------------------------------------------------------
FORMULAS: Final = (
    "pool_factor",
    "wac",
    "wam",
    "wala",
    *PERFORMANCE_RATES,
    "delinquency",
    "subordination",
    "credit_enhancement",
    "overcollateralisation",
    "bond_factor",
    "hhi",
)
"""Every rate the report prints, each defined in words (numerator and denominator)."""
RECORDED_AS: Final = {"hhi": "hhi_obligor"}
"""Keys under which ``metrics.json`` records a formula, where they differ from ours."""


def _definitions(
    deal: DealView,
    recorded: Mapping[str, Any],
    provenance: Provenance,
    stamp: str,
    r: Report,
) -> Section:
    t, f = r.t, r.f
    terms = deal.definitions
    tolerance = f.amount(Decimal(terms.dpd_tolerance) / 100)
    rows = [
        row(t("s17.default"), t("s17.default_text", days=f.count(terms.default_dpd))),
        row(t("s17.charge_off"), t("s17.charge_off_text", days=f.count(terms.charge_off_dpd))),
        row(t("s17.tolerance"), t("s17.tolerance_text", amount=tolerance, currency=r.unit)),
        row(t("s17.denominator"), t(f"denominator.{terms.cumulative_default_denominator}")),
        row(t("s17.amounts"), r.c("s17.amounts_text")),
        row(t("s17.rollforward"), t("s17.rollforward_text")),
        row(t("s17.new_drawings"), t("s17.new_drawings_text")),
        # Each rate in words, in the report's language; a formula the metrics stage
        # recorded with the figures is the one it used, so it takes the default's place.
        *(
            row(
                t(f"s17.{key}"),
                _recorded_value(recorded[RECORDED_AS.get(key, key)], r)
                if RECORDED_AS.get(key, key) in recorded
                else t(f"s17.{key}_text"),
            )
            for key in FORMULAS
        ),
    ]
    definitions = table(
        t("s17.caption"), [(t("s17.term"), False), (t("s17.definition"), False)], rows
    )
    repro_rows = [
        row(t("s17.run_id"), provenance.run_id),
        row(t("s17.code_version"), provenance.code_version),
        row(t("s17.generated_at"), stamp),
        *(row(t("s17.input", name=name), digest) for name, digest in provenance.inputs),
    ]
    reproducibility = table(
        t("s17.repro_caption"), [(t("col.item"), False), (t("col.value"), False)], repro_rows
    )
    tables = [definitions]
    used = {RECORDED_AS.get(key, key) for key in FORMULAS}
    rest = {key: value for key, value in recorded.items() if key not in used}
    if rest:
        # Every other entry the metrics stage recorded, translated where the key is known.
        tables.append(
            table(
                t("s17.recorded_caption"),
                [(t("s17.term"), False), (t("col.value"), False)],
                [
                    row(_term(key, deal, r), _recorded_value(value, r))
                    for key, value in sorted(rest.items())
                ],
            )
        )
    tables.append(reproducibility)
    return section(17, "definitions", t("s17.title"), tables)


def _term(key: str, deal: DealView, r: Report) -> str:
    """A recorded convention's name in the report's language; a trigger by its own name."""
    if key.startswith(TRIGGER_PREFIX):
        name = key.removeprefix(TRIGGER_PREFIX)
        named = {trigger.name: trigger for trigger in deal.triggers}.get(name)
        return r.t("definition.trigger", name=local_name(named, r.locale) if named else name)
    return r.t.get(f"definition.{key}", key)


def _recorded_value(value: object, r: Report) -> str:
    if isinstance(value, bool) or value is None:
        return r.f.na
    if isinstance(value, int):
        return r.f.count(value)
    text = str(value)
    try:
        return r.date(date.fromisoformat(text))
    except ValueError:
        pass
    known = r.t.get(f"definition_value.{text}", r.t.get(f"day_count.{text}", ""))
    if known:
        return known
    if r.locale.startswith("zh"):
        # A formula the metrics stage recorded in English, printed in Chinese.
        return chinese_formula(text) or r.t("s17.untranslated")
    return text


def data_quality(inputs: Inputs, r: Report) -> Section:
    """Section 16: rows received, accepted and quarantined; contract versions."""
    return _data_quality(inputs.data_quality, r)


def definitions(inputs: Inputs, r: Report) -> Section:
    """Section 17: definitions in words and the reproducibility footer."""
    stamp = format_beijing_time(inputs.generated_at, r.locale)
    return _definitions(
        inputs.deal, inputs.metrics.get("definitions") or {}, inputs.provenance, stamp, r
    )


DATA_QUALITY: Final = SectionSpec(16, "data_quality", data_quality)
DEFINITIONS: Final = SectionSpec(17, "definitions", definitions)
