"""What the reports read from a deal: read-only views, owned by the reports.

The reports never import the deal model (``data_contracts.deal``); they state here,
as structural types, the few terms they print. The flows hand them the validated
deal, which mypy checks against these views where the reports are called, so a
change to the deal model that a report depends on fails the type check there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol


class NamedView(Protocol):
    """Something the deal names in English and (optionally) Chinese."""

    @property
    def name(self) -> str: ...
    @property
    def name_zh(self) -> str | None: ...


def local_name(named: NamedView, locale: str) -> str:
    """The Chinese name in a Chinese report where the deal gives one, else the English."""
    return named.name_zh if locale.startswith("zh") and named.name_zh else named.name


class ParticipantView(NamedView, Protocol):
    """A party to the plan."""


class ParticipantsView(Protocol):
    """Who does what: manager, custodian, servicer, originator, rating agency."""

    @property
    def manager(self) -> ParticipantView | None: ...
    @property
    def custodian(self) -> ParticipantView | None: ...
    @property
    def servicer(self) -> ParticipantView | None: ...
    @property
    def originator(self) -> ParticipantView | None: ...
    @property
    def rating_agency(self) -> ParticipantView | None: ...


class RatingActionView(Protocol):
    """One agency's rating change of a class."""

    @property
    def date(self) -> date: ...
    @property
    def agency(self) -> str: ...
    @property
    def from_rating(self) -> str: ...
    @property
    def to_rating(self) -> str: ...


class RatingsView(Protocol):
    """A class's rating agency and its rating actions."""

    @property
    def agency(self) -> str | None: ...
    @property
    def actions(self) -> Sequence[RatingActionView]: ...


class TrancheView(Protocol):
    """A class of notes as the securities sections print it (amounts in fen)."""

    @property
    def class_name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def original_balance(self) -> int: ...
    @property
    def coupon(self) -> Decimal: ...
    @property
    def code(self) -> str | None: ...
    @property
    def short_name(self) -> str | None: ...
    @property
    def ratings(self) -> RatingsView | None: ...
    @property
    def initial_rating(self) -> str | None: ...
    @property
    def current_rating(self) -> str | None: ...
    @property
    def expected_maturity_date(self) -> date | None: ...
    @property
    def legal_maturity_date(self) -> date | None: ...


class TriggerView(NamedView, Protocol):
    """A performance trigger's terms (its test results come with the metrics)."""

    @property
    def metric(self) -> str: ...
    @property
    def comparison(self) -> str: ...
    @property
    def consequence(self) -> str: ...


class EventView(NamedView, Protocol):
    """A non-numeric event (event of default, perfection event, servicer termination)."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def date(self) -> date | None: ...


class ForecastView(Protocol):
    """The collections the deal forecast for a period (``YYYY-MM``), in fen."""

    @property
    def period(self) -> str: ...
    @property
    def amount(self) -> int: ...


class DefinitionsView(Protocol):
    """The deal's definitions the disclosure prints in its methods section."""

    @property
    def default_dpd(self) -> int: ...
    @property
    def charge_off_dpd(self) -> int: ...
    @property
    def dpd_tolerance(self) -> int: ...
    @property
    def cumulative_default_denominator(self) -> str: ...


class DealView(NamedView, Protocol):
    """A deal as the reports read it."""

    @property
    def pool_id(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def cutoff_date(self) -> date: ...
    @property
    def closing_date(self) -> date: ...
    @property
    def revolving_period_end(self) -> date | None: ...
    @property
    def legal_final_date(self) -> date | None: ...
    @property
    def tranches(self) -> Sequence[TrancheView]: ...
    @property
    def triggers(self) -> Sequence[TriggerView]: ...
    @property
    def events(self) -> Sequence[EventView]: ...
    @property
    def participants(self) -> ParticipantsView: ...
    @property
    def definitions(self) -> DefinitionsView: ...
    @property
    def forecast_collections(self) -> Sequence[ForecastView]: ...
