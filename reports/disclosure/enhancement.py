"""Sections 11-13: credit enhancement, triggers and events, significant events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from reports.deal_view import DealView, TriggerView
from reports.disclosure import source
from reports.disclosure.base import (
    Inputs,
    Report,
    SectionSpec,
    ordered_tranches,
)
from reports.disclosure.performance import forecast_test, loss_test
from reports.formatting import (
    to_decimal,
)
from reports.layout import (
    Section,
    Table,
    present,
    require,
    row,
    section,
    table,
)


def _credit_enhancement(metrics: Mapping[str, Any], deal: DealView, r: Report) -> Section:
    t, f = r.t, r.f
    tranches: Any = metrics.get("tranches")
    excess_spread = (metrics.get("performance") or {}).get("excess_spread")
    balances_known = present(tranches) and all(
        item.get("closing_balance") is not None for item in tranches
    )
    recorded: Any = metrics.get("credit_enhancement")
    if present(recorded) and excess_spread is None:
        excess_spread = recorded.get("excess_spread")
    if not balances_known and excess_spread is None and not present(recorded):
        return r.missing(11, "credit_enhancement")
    tables = []
    notes: list[str] = []
    columns = [(t("col.item"), False), (t("col.value"), True)]
    pool_closing = to_decimal(
        require(require(metrics, "pool", "document"), "closing_balance", "pool")
    )
    if balances_known:
        ordered = ordered_tranches(tranches, deal)
        balances = [to_decimal(item["closing_balance"]) for item in ordered]
        notes_total = sum(balances, Decimal(0))
        rows = []
        senior = Decimal(0)
        for i, item in enumerate(ordered):
            senior += balances[i]
            junior = notes_total - senior
            subordination = item.get("subordination")
            if subordination is None and notes_total > 0:
                subordination = junior / notes_total
            enhancement = item.get("credit_enhancement")
            if enhancement is None and pool_closing > 0:
                enhancement = (pool_closing - senior) / pool_closing
            rows.append(
                row(
                    item["class"],
                    f.amount(balances[i]),
                    f.rate(subordination, 2),
                    f.rate(enhancement, 2),
                )
            )
        tables.append(
            table(
                t("s11.caption"),
                [
                    (t("s11.class"), False),
                    (r.c("s11.closing_balance"), True),
                    (t("s11.subordination"), True),
                    (t("s11.enhancement"), True),
                ],
                rows,
            )
        )
        overview = [
            row(r.c("s11.pool_balance"), f.amount(pool_closing)),
            row(r.c("s11.notes_balance"), f.amount(notes_total)),
            row(
                t("s11.overcollateralisation"),
                f.rate(
                    (pool_closing - notes_total) / pool_closing if pool_closing > 0 else None, 2
                ),
            ),
            row(t("s11.excess_spread"), f.rate(excess_spread, 2)),
        ]
    else:
        overview = [row(t("s11.excess_spread"), f.rate(excess_spread, 2))]
    if present(recorded):
        # The metrics stage's own collateral figures take the place of the ones derived here.
        overview = [
            row(r.c(label), f.amount(recorded.get(key)))
            for key, label in (
                ("collateral_balance", "s11.collateral_balance"),
                ("notes_balance", "s11.notes_balance"),
                ("overcollateralisation", "s11.oc_amount"),
                ("principal_account", "s11.principal_account"),
                ("principal_deficiency", "s11.principal_deficiency"),
            )
            if key in recorded
        ]
        overview.append(
            row(
                t("s11.overcollateralisation_ratio"),
                f.rate(recorded.get("overcollateralisation_ratio"), 2),
            )
        )
        overview.append(row(t("s11.excess_spread"), f.rate(excess_spread, 2)))
    tables.append(table(t("s11.overview_caption"), columns, overview))
    return section(11, "credit_enhancement", t("s11.title"), tables, notes=notes)


# -- 12 ------------------------------------------------------------------------------------
def _triggers(metrics: Mapping[str, Any], deal: DealView, period_number: int, r: Report) -> Section:
    t, f = r.t, r.f
    triggers: Any = metrics.get("triggers")
    if triggers == [] and not deal.triggers:
        # The plan's documents set no numeric test: nothing is missing.
        events = [events_table(deal, r)]
        return section(12, "triggers", t("s12.title"), events, notes=[t("s12.none")])
    if not present(triggers):
        missing = r.missing(12, "triggers")
        missing["tables"] = [events_table(deal, r)]
        return missing
    terms: dict[str, tuple[int, TriggerView]] = {
        trigger.name: (i, trigger) for i, trigger in enumerate(deal.triggers)
    }
    unmatched = len(terms)

    def order(item: Mapping[str, Any]) -> tuple[int, str]:
        name = str(item["name"])
        return (terms[name][0] if name in terms else unmatched, name)

    with_effect = any("in_effect" in item for item in triggers)
    rows = []
    for item in sorted(triggers, key=order):
        name = str(require(item, "name", "trigger"))
        breached = item.get("breached")
        if breached is not None and not isinstance(breached, bool):
            raise ValueError(f"trigger {name!r}: breached must be true, false or null")
        term = terms.get(name)
        metric_key = str(item.get("metric") or (term[1].metric if term else ""))
        comparison = str(item.get("comparison") or (term[1].comparison if term else ""))
        consequence_key = str(item.get("consequence") or (term[1].consequence if term else ""))
        test = (
            t(
                f"comparison.{comparison}",
                metric=t.get(f"metric.{metric_key}", metric_key),
            )
            if comparison in ("above", "below") and metric_key
            else f.na
        )
        consequence = (
            t.get(f"consequence.{consequence_key}", consequence_key) if consequence_key else f.na
        )
        status = (
            t("s12.unknown")
            if breached is None
            else t("s12.breached")
            if breached
            else t("s12.not_breached")
        )
        cells = [
            test,
            f.rate(item.get("threshold"), 2, 4),
            f.rate(item.get("actual"), 4),
            status,
            consequence,
        ]
        if with_effect:
            effect = item.get("in_effect")
            cells.append(f.na if effect is None else t("answer.yes") if effect else t("answer.no"))
        shown = name
        if r.locale.startswith("zh"):
            # The deal's trigger names are English unless it gives a Chinese one.
            shown = (
                term[1].name_zh if term and term[1].name_zh else (test if test != f.na else name)
            )
        rows.append(row(shown, *cells))
    columns = [
        *t.text_columns("s12.name", "s12.test"),
        *t.number_columns("s12.threshold", "s12.actual"),
        *t.text_columns("s12.status", "s12.consequence"),
    ]
    if with_effect:
        columns.append((t("s12.in_effect"), False))
    return section(
        12,
        "triggers",
        t("s12.title"),
        [table(t("s12.caption"), columns, rows), events_table(deal, r)],
    )


EVENT_KINDS: Final = ("event_of_default", "perfection_event", "servicer_termination")
"""The non-numeric events of DOMAIN.md section 12: 违约事件, 权利完善事件, 服务机构解任事件."""


def events_table(deal: DealView, r: Report) -> Table:
    """Every non-numeric event the deal lists, with its status; 无 for a kind it lists none of."""
    t = r.t
    rows = []
    for kind in EVENT_KINDS:
        listed = [event for event in deal.events if event.kind == kind]
        if not listed:
            rows.append(row(t(f"event.{kind}"), t("none"), "–", "–"))
        for event in listed:
            name = event.name_zh if r.locale.startswith("zh") and event.name_zh else event.name
            rows.append(
                row(
                    t(f"event.{kind}"),
                    name,
                    t(f"event_status.{event.status}"),
                    "–" if event.date is None else r.date(event.date),
                )
            )
    columns = [
        (t("s12.event_kind"), False),
        (t("s12.event"), False),
        (t("s12.status"), False),
        (t("s12.event_date"), False),
    ]
    return table(t("s12.events_caption"), columns, rows)


# -- 13 ------------------------------------------------------------------------------------
def significant_events(inputs: Inputs, r: Report) -> Section:
    """重大事项: repurchases, rating actions, trigger breaches, events, restatements and
    ad hoc test flags of the period; 无 when nothing happened."""
    t, f = r.t, r.f
    metrics, deal = inputs.metrics, inputs.deal
    start = date.fromisoformat(require(metrics, "period_start", "document"))
    end = date.fromisoformat(require(metrics, "period_end", "document"))
    items: list[tuple[str, str]] = []
    removed = (metrics.get("pool") or {}).get("removed_principal")
    if removed is not None and to_decimal(removed) > 0:
        items.append(
            (
                t("s13.repurchase"),
                t("s13.repurchase_text", amount=f.amount(removed), currency=r.unit),
            )
        )
    for tranche in deal.tranches:
        for action in tranche.ratings.actions if tranche.ratings else ():
            if start <= action.date <= end:
                items.append(
                    (
                        t("s13.rating_action"),
                        t(
                            "s13.rating_action_text",
                            cls=tranche.class_name,
                            agency=action.agency,
                            old=action.from_rating,
                            new=action.to_rating,
                            date=r.date(action.date),
                        ),
                    )
                )
    terms = {trigger.name: trigger for trigger in deal.triggers}
    for item in metrics.get("triggers") or []:
        if item.get("breached") is True:
            term = terms.get(str(item.get("name")))
            name = (
                term.name_zh
                if r.locale.startswith("zh") and term is not None and term.name_zh
                else t.get(f"metric.{term.metric}", str(item.get("name")))
                if r.locale.startswith("zh") and term is not None
                else str(item.get("name"))
            )
            items.append((t("s13.trigger"), t("s13.trigger_text", name=name)))
    for event in deal.events:
        if event.date is not None and start <= event.date <= end:
            name = event.name_zh if r.locale.startswith("zh") and event.name_zh else event.name
            items.append(
                (
                    t(f"event.{event.kind}"),
                    t(
                        "s13.event_text",
                        name=name,
                        status=t(f"event_status.{event.status}"),
                        date=r.date(event.date),
                    ),
                )
            )
    if inputs.restatement is not None:
        items.append(
            (
                t("s13.restatement"),
                t(
                    "s13.restatement_text",
                    date=r.date(inputs.restatement.restated_on),
                    reason=inputs.restatement.reason,
                ),
            )
        )
    outside = source.regions_not_allowed(metrics)
    if outside:
        items.append(
            (
                t("s13.regions"),
                t(
                    "s13.regions_text",
                    regions=t("s13.regions_separator").join(r.province(code) for code in outside),
                ),
            )
        )
    losses = loss_test(inputs.history)
    if losses is not None and losses.flagged:
        items.append((t("s13.adhoc"), t("s13.adhoc_losses")))
    forecast = forecast_test(metrics, deal)
    if forecast is not None and forecast.flagged:
        items.append((t("s13.adhoc"), t("s13.adhoc_forecast", share=f.rate(forecast.shortfall, 2))))
    rows = [row(kind, text) for kind, text in items] or [row(t("none"), t("s13.nothing"))]
    columns = [(t("s13.kind"), False), (t("s13.description"), False)]
    return section(
        13, "significant_events", t("s13.title"), [table(t("s13.caption"), columns, rows)]
    )


def credit_enhancement(inputs: Inputs, r: Report) -> Section:
    """Section 11: subordination, overcollateralisation, excess spread."""
    return _credit_enhancement(inputs.metrics, inputs.deal, r)


def triggers(inputs: Inputs, r: Report) -> Section:
    """Section 12: numeric triggers and the non-numeric events."""
    return _triggers(inputs.metrics, inputs.deal, inputs.period_number, r)


CREDIT_ENHANCEMENT: Final = SectionSpec(11, "credit_enhancement", credit_enhancement)
TRIGGERS: Final = SectionSpec(12, "triggers", triggers)
SIGNIFICANT_EVENTS: Final = SectionSpec(13, "significant_events", significant_events)
