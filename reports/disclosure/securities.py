"""Section 2: the securities (证券兑付)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from reports.charts import Chart, SeriesData
from reports.deal_view import DealView, TrancheView
from reports.disclosure.base import (
    Inputs,
    Report,
    SectionSpec,
    money_chart,
    ordered_tranches,
)
from reports.disclosure.overview import participant_name
from reports.formatting import (
    Amount,
    half_up,
    to_decimal,
)
from reports.layout import (
    Section,
    Table,
    present,
    row,
    section,
    table,
)


def _agency(tranche: TrancheView, deal: DealView, r: Report) -> str:
    """The class's rating agency, else the deal's; an unrated class has none."""
    if tranche.initial_rating is None:
        return "–"
    if tranche.ratings is not None and tranche.ratings.agency:
        return tranche.ratings.agency
    return participant_name(deal.participants.rating_agency, r)


def _notes_issued(deal: DealView, r: Report) -> Table:
    t, f = r.t, r.f
    unrated = t("s2.unrated")
    rows = [
        row(
            tranche.class_name,
            tranche.code or f.na,
            tranche.short_name or f.na,
            t(f"kind.{tranche.kind}"),
            tranche.initial_rating or unrated,
            tranche.current_rating or unrated,
            _agency(tranche, deal, r),
            t("s2.residual")
            if tranche.kind == "subordinated" and tranche.coupon == 0
            else f.rate(tranche.coupon, 2, 4),
            r.date(deal.closing_date),
            r.date(tranche.expected_maturity_date),
            f.amount(Decimal(tranche.original_balance) / 100),
        )
        for tranche in deal.tranches
    ]
    columns = [
        *t.text_columns(
            "s2.class",
            "s2.code",
            "s2.short_name",
            "s2.kind",
            "s2.rating_initial",
            "s2.rating_current",
            "s2.rating_agency",
        ),
        *t.number_columns("s2.coupon"),
        *t.text_columns("s2.interest_start", "s2.expected_maturity"),
        (r.c("s2.original_balance"), True),
    ]
    return table(t("s2.notes_caption"), columns, rows)


def _tranche_chart(deal: DealView, history: Sequence[Mapping[str, Any]], r: Report) -> Chart:
    periods = [str(doc["period"]) for doc in history]
    series = []
    for tranche in deal.tranches:
        values: list[Decimal | None] = []
        for doc in history:
            found = [
                item.get("closing_balance")
                for item in doc.get("tranches") or []
                if item.get("class") == tranche.class_name
            ]
            values.append(to_decimal(found[0]) if found and found[0] is not None else None)
        if any(v is not None for v in values):
            series.append(SeriesData(tranche.class_name, tuple(values)))
    title = r.t("s2.chart")
    rows = [
        row(
            period,
            *(r.f.amount(s.values[i]) if s.values[i] is not None else r.f.na for s in series),
        )
        for i, period in enumerate(periods)
    ]
    columns = [(r.t("col.period"), False)] + [
        (f"{s.label} — {r.c('s2.closing_balance')}", True) for s in series
    ]
    return money_chart(
        "chart-tranches", title, periods=periods, series=series, rows=rows, columns=columns, r=r
    )


def _tranche_payments(
    metrics: Mapping[str, Any], deal: DealView, history: Sequence[Mapping[str, Any]], r: Report
) -> Section:
    t, f = r.t, r.f
    tables = [_notes_issued(deal, r)]
    notes: list[str] = []
    charts: list[Chart] = []
    tranches: Any = metrics.get("tranches")
    original_fen = {tranche.class_name: tranche.original_balance for tranche in deal.tranches}

    def per_100(amount: Amount | None, class_name: str) -> str:
        if amount is None:
            return f.na
        # Per 100 yuan of face value: amount / (original fen / 100) * 100.
        return f.number(half_up(to_decimal(amount) * 10_000 / original_fen[class_name], 4), 4)

    if present(tranches):
        ordered = ordered_tranches(tranches, deal)

        def has(key: str) -> bool:
            return any(key in item for item in ordered)

        def money(key: str) -> Callable[[Mapping[str, Any]], str]:
            return lambda item: f.amount(item.get(key))

        def per_100_of(key: str, paid: str) -> Callable[[Mapping[str, Any]], str]:
            # The document's own figure when it has one, else computed from the payment.
            return lambda item: (
                f.number(item[key], 4)
                if item.get(key) is not None
                else per_100(item.get(paid), item["class"])
            )

        spec: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
            (r.c("s2.opening_balance"), money("opening_balance")),
            (t("s2.coupon"), lambda item: f.rate(item.get("coupon"), 2, 4)),
        ]
        if has("interest_due"):
            spec.append((r.c("s2.interest_due"), money("interest_due")))
        spec.append((r.c("s2.interest_paid"), money("interest_paid")))
        if has("interest_shortfall"):
            spec.append((r.c("s2.interest_shortfall"), money("interest_shortfall")))
        if has("residual_paid"):
            # The subordinated class's residual is its own column, never counted as interest.
            spec.append((r.c("s2.residual_paid"), money("residual_paid")))
        spec += [
            (r.c("s2.principal_paid"), money("principal_paid")),
            (r.c("s2.closing_balance"), money("closing_balance")),
            (t("s2.bond_factor"), lambda item: f.number(item.get("bond_factor"), 6)),
        ]
        per_100_spec: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
            (r.c("s2.interest_per_100"), per_100_of("interest_per_100", "interest_paid")),
            (r.c("s2.principal_per_100"), per_100_of("principal_per_100", "principal_paid")),
        ]
        if has("payment_per_100"):
            per_100_spec.append(
                (r.c("s2.payment_per_100"), lambda item: f.number(item.get("payment_per_100"), 4))
            )
        kinds = {tranche.class_name: tranche.kind for tranche in deal.tranches}

        def label(item: Mapping[str, Any]) -> str:
            # The subordinated class earns what is left, not a coupon: its "interest" is a residual.
            if kinds.get(item["class"]) == "subordinated":
                return t("s2.residual_class", cls=item["class"])
            return str(item["class"])

        rows = [row(label(item), *(cell(item) for _, cell in spec)) for item in ordered]
        columns = [(t("s2.class"), False)] + [(label, True) for label, _ in spec]
        per_100_rows = [
            row(item["class"], *(cell(item) for _, cell in per_100_spec)) for item in ordered
        ]
        per_100_columns = [(t("s2.class"), False)] + [(label, True) for label, _ in per_100_spec]
        tables.append(table(t("s2.caption"), columns, rows))
        tables.append(table(r.c("s2.per_100_caption"), per_100_columns, per_100_rows))
        charts.append(_tranche_chart(deal, history, r))
        # The note says the class has no coupon: only true of a zero-coupon subordinated class.
        if any(tranche.kind == "subordinated" and tranche.coupon == 0 for tranche in deal.tranches):
            notes.append(t("s2.residual_note"))
    else:
        notes.append(t("not_computed"))
    return section(
        2,
        "tranches",
        t("s2.title"),
        tables,
        charts=charts,
        notes=notes,
        computed=present(tranches),
    )


def securities(inputs: Inputs, r: Report) -> Section:
    """Section 2: each class's terms, ratings and payments of the period."""
    return _tranche_payments(inputs.metrics, inputs.deal, inputs.history, r)


SECURITIES: Final = SectionSpec(2, "tranches", securities)
