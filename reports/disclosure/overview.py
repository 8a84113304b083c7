"""Sections 0-1: the notice and participants, then the plan and the period."""

from __future__ import annotations

from datetime import date
from typing import Final

from reports.deal_view import ParticipantView
from reports.disclosure import source
from reports.disclosure.base import Inputs, Report, SectionSpec
from reports.layout import Row, Section, row, section, table
from reports.layout import require as required

PARTICIPANT_ROLES: Final = ("manager", "custodian", "servicer", "originator", "rating_agency")
"""The participants of DOMAIN.md section 0, in the order the exchange reports list them."""


def participant_name(participant: ParticipantView | None, r: Report) -> str:
    """The institution's name in the report's language ('none named' when the deal has none)."""
    if participant is None:
        return r.t("s0.not_named")
    if r.locale.startswith("zh") and participant.name_zh:
        return participant.name_zh
    return participant.name


def notice(inputs: Inputs, r: Report) -> Section:
    """重要提示 and 参与机构: the responsibility statement and who does what."""
    t = r.t
    participants = inputs.deal.participants
    manager = participant_name(participants.manager, r)
    rows = [
        row(t(f"s0.role.{role}"), participant_name(getattr(participants, role), r))
        for role in PARTICIPANT_ROLES
    ]
    notes = [
        t("s0.statement", manager=manager),
        t("s0.basis"),
        t("s0.risk"),
    ]
    return section(
        0,
        "notice",
        t("s0.title"),
        [table(t("s0.caption"), [(t("s0.role"), False), (t("s0.institution"), False)], rows)],
        notes=notes,
    )


def _data_source_rows(inputs: Inputs, r: Report) -> list[Row]:
    """What the pool's figures rest on: the servicer's tape, the engine, or both (counts)."""
    given = source.data_source(inputs.metrics)
    kind = given.get("balance_source")
    if kind is None:
        return []
    t, f = r.t, r.f
    shown = t(
        f"s1.source.{kind}",
        servicer=f.count(given.get("servicer_loans")),
        engine=f.count(given.get("engine_loans")),
    )
    rows = [row(t("s1.data_source"), shown)]
    requested = given.get("requested_balance_source")
    if requested is not None and requested != kind:
        rows.append(row(t("s1.requested_source"), t(f"s1.requested.{requested}")))
    return rows


def deal_and_period(inputs: Inputs, r: Report) -> Section:
    """The plan, the collection period and the dates the deal's rules set."""
    t, f = r.t, r.f
    deal, dates = inputs.deal, inputs.dates
    start = date.fromisoformat(required(inputs.metrics, "period_start", "document"))
    end = date.fromisoformat(required(inputs.metrics, "period_end", "document"))
    period_range = t("period_range", start=r.date(start), end=r.date(end))
    interest = (
        t("period_range", start=r.date(dates.interest_start), end=r.date(dates.interest_end))
        if dates.interest_start is not None and dates.interest_end is not None
        else f.na
    )
    expected = [c.expected_maturity_date for c in deal.tranches if c.expected_maturity_date]
    legal = [c.legal_maturity_date for c in deal.tranches if c.legal_maturity_date]
    if deal.legal_final_date is not None:
        legal.append(deal.legal_final_date)
    rows = [
        row(t("s1.deal_name"), inputs.deal_name),
        row(t("s1.pool_id"), deal.pool_id),
        row(t("s1.currency"), t.get(f"currency.{r.currency}", r.currency)),
        row(t("s1.period_number"), f.count(inputs.period_number)),
        row(t("s1.collection_period"), period_range),
        row(t("s1.interest_period"), interest),
        row(t("s1.payment_date"), r.date(dates.payment_date)),
        row(t("s1.report_date"), r.date(dates.report_date)),
        *_data_source_rows(inputs, r),
    ]
    if inputs.restatement is not None:
        rows.append(row(t("s1.restated_on"), r.date(inputs.restatement.restated_on)))
    rows += [
        row(t("s1.cutoff_date"), r.date(deal.cutoff_date)),
        row(t("s1.interest_start"), r.date(deal.closing_date)),
        row(
            t("s1.revolving_period_end"),
            t("s1.none")
            if deal.revolving_period_end is None
            else r.date(deal.revolving_period_end),
        ),
        row(t("s1.expected_maturity"), r.date(max(expected)) if expected else t("s0.not_named")),
        row(t("s1.legal_maturity"), r.date(max(legal)) if legal else t("s0.not_named")),
        row(
            t("s1.day_count"),
            f.na
            if dates.day_count is None
            else t.get(f"day_count.{dates.day_count}", dates.day_count),
        ),
    ]
    columns = [(t("col.item"), False), (t("col.value"), False)]
    notes = [t("s1.dates_note")]
    if inputs.restatement is not None:
        notes.append(
            t(
                "s1.restated_note",
                date=r.date(inputs.restatement.restated_on),
                reason=inputs.restatement.reason,
            )
        )
    return section(1, "deal", t("s1.title"), [table(t("s1.caption"), columns, rows)], notes=notes)


NOTICE: Final = SectionSpec(0, "notice", notice)
DEAL: Final = SectionSpec(1, "deal", deal_and_period)
