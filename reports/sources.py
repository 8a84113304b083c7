"""Plain inputs the report builders take besides ``metrics.json``.

The flows read marts, run manifests and staged partitions and hand the reports
these frozen values, so that every ``build_context`` stays pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Final
from urllib.parse import urlsplit

_UNSAFE_HREF: Final = re.compile(r"[\s\\\x00-\x1f\x7f]")
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
_MONTH: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def check_href(href: str, *, allow_parent: bool = True) -> None:
    """Refuse anything but a relative path inside the reports tree (no scheme, host or root).

    ``..`` segments are allowed unless ``allow_parent`` is false: a disclosure links
    up to a pool's static-pool report, while the index only links down.

    Raises:
        ValueError: If ``href`` is empty, absolute, has a scheme or host, contains
            whitespace, backslashes or control characters, or (when not allowed)
            a ``..`` segment.
    """
    parts = urlsplit(href)
    if (
        not href
        or _UNSAFE_HREF.search(href)
        or parts.scheme
        or parts.netloc
        or href.startswith("/")
        or (not allow_parent and ".." in parts.path.split("/"))
    ):
        raise ValueError(f"href must be a relative path inside the reports tree: {href!r}")


@dataclass(frozen=True, slots=True)
class RelativeLink:
    """A relative link from one report to another (``..`` allowed: a disclosure links up)."""

    label: str
    href: str
    allow_parent: ClassVar[bool] = True
    """Whether the link may go up (``..``): see :func:`check_href`."""

    def __post_init__(self) -> None:
        check_href(self.href, allow_parent=self.allow_parent)


@dataclass(frozen=True, slots=True)
class StratificationRow:
    """One band of a stratification table (from the ``stratifications`` mart).

    Attributes:
        dimension: What the pool is split by (``balance``, ``province``, …).
        band: The band's label (``0-5000``, ``CN-GD``, ``cash_loan``).
        count: Loans in the band.
        balance: Outstanding balance, a decimal string in currency units.
        balance_share: Share of the pool balance (None when not computed).
        wac: Balance-weighted annual rate of the band (None when not computed).
    """

    dimension: str
    band: str
    count: int
    balance: str
    balance_share: float | None
    wac: float | None


@dataclass(frozen=True, slots=True)
class VintagePoint:
    """A point of a vintage curve (from the ``vintage_curves`` mart).

    Attributes:
        vintage: Origination month, ``YYYY-MM``.
        months_on_book: Months since origination.
        cumulative_default_rate: Cumulative defaulted principal / original principal.
        cumulative_net_loss_rate: (Defaults − recoveries) / original principal, if computed.
    """

    vintage: str
    months_on_book: int
    cumulative_default_rate: float | None
    cumulative_net_loss_rate: float | None = None

    def __post_init__(self) -> None:
        if not _MONTH.match(self.vintage):
            raise ValueError(f"vintage must be 'YYYY-MM', got {self.vintage!r}")
        if self.months_on_book < 0:
            raise ValueError("months_on_book must not be negative")


@dataclass(frozen=True, slots=True)
class DatasetQuality:
    """Rows delivered for one dataset over the business dates of a period."""

    dataset: str
    accepted: int
    quarantined: int

    @property
    def received(self) -> int:
        return self.accepted + self.quarantined


@dataclass(frozen=True, slots=True)
class RuleCount:
    """Quarantined rows of a dataset that broke one rule."""

    dataset: str
    rule_id: str
    rows: int


@dataclass(frozen=True, slots=True)
class DataQuality:
    """What was received, accepted and quarantined for a period, and under which contracts."""

    datasets: tuple[DatasetQuality, ...]
    rules: tuple[RuleCount, ...] = ()
    contract_versions: tuple[tuple[str, str], ...] = ()
    reports: tuple[RelativeLink, ...] = ()


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a report comes from: the run, the code and its input files' hashes."""

    run_id: str
    code_version: str
    inputs: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name, digest in self.inputs:
            if not _SHA256.match(digest):
                raise ValueError(f"input {name!r}: not a SHA-256 hex digest")


@dataclass(frozen=True, slots=True)
class VintageCurves:
    """Vintage-curve points and whether they cover the servicer's whole book.

    Attributes:
        points: The points, any order.
        book_wide: True when the vintages hold every loan originated in the month
            (the servicer's static pool), not only the pool's loans; the report says so.
    """

    points: tuple[VintagePoint, ...]
    book_wide: bool = False


@dataclass(frozen=True, slots=True)
class Restatement:
    """A re-publication of a period's disclosure after its figures changed.

    Attributes:
        restated_on: The date of the restatement (the report keeps its original date).
        reason: Why the figures changed, as the operator or the run states it.
        changes: (figure, old value, new value) as text.
    """

    restated_on: date
    reason: str
    changes: tuple[tuple[str, str, str], ...] = ()


def restatement_reason(figures: int, locale: str) -> str:
    """Why a restated disclosure was re-published, in the report's language."""
    # Imported here: reports.labels reads the translation files, sources stays plain data.
    from reports.formatting import format_count  # noqa: PLC0415
    from reports.labels import labels  # noqa: PLC0415

    return labels(locale, "disclosure")["restatement_reason"].format(
        count=format_count(figures, locale)
    )
