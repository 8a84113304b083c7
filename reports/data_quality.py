"""The data-quality report of one run: what came in and what became of every row.

:func:`build_context` is pure: the flows turn the ingest outcome into the plain
records below and pass them in with the generation time. The page is
self-contained (inline style, no external resources) like every report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypedDict

from reports.formatting import (
    check_locale,
    format_amount,
    format_beijing_time,
    format_count,
    format_long_date,
    html_lang,
)
from reports.layout import LanguageLink, Texts, report_texts
from reports.sources import check_href
from transforms.keys import pseudonymous_key
from transforms.schema import MONEY_COLUMNS

REPORT: Final = "data_quality"

MAX_CORRECTIONS_SHOWN: Final = 500
"""Corrections listed one by one; beyond this the report gives the count."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One delivered file and what became of its rows."""

    business_date: date
    dataset: str
    path: str
    file_format: str
    source: str | None
    encoding: str | None
    sha256: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    rows_duplicate: int
    rejected: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """One rule broken by the run's rows."""

    dataset: str
    rule_id: str
    severity: str
    description: str
    rows: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CorrectionRecord:
    """A loan re-delivered with changed terms: where, and what changed."""

    loan_id: str
    business_date: date
    location: str
    previous_business_date: date
    changes: tuple[tuple[str, str, str], ...]
    """(column, previous value, new value) as text."""


class FileContext(TypedDict):
    business_date: str
    dataset: str
    path: str
    format: str
    source: str
    encoding: str
    sha256: str
    rows_read: str
    rows_accepted: str
    rows_quarantined: str
    rows_duplicate: str
    status: str
    problem: bool


class RuleContext(TypedDict):
    dataset: str
    rule_id: str
    severity: str
    description: str
    rows: str
    examples: list[str]


class CorrectionContext(TypedDict):
    """A corrected loan, keyed by where its row was delivered, never by its ids."""

    row_key: str
    business_date: str
    previous_business_date: str
    changes: list[str]


class DatasetSummary(TypedDict):
    """Files and rows of one dataset over the run."""

    dataset: str
    files: str
    rows_read: str
    rows_accepted: str
    rows_quarantined: str


class RestatementContext(TypedDict):
    """A figure of an already-published period that this run changed."""

    pool_id: str
    period: str
    field: str
    old: str
    new: str


MAX_RESTATEMENTS_SHOWN = 200
"""The report lists this many restated figures; the run manifest lists them all."""


class DifferenceContext(TypedDict):
    """One of the largest balance differences, keyed by a pseudonymous loan key."""

    as_of_date: str
    loan_key: str
    engine_balance: str
    servicer_balance: str
    balance_difference: str


class ReconciliationContext(TypedDict):
    """Engine against servicer tape: counts, amounts in yuan, the largest differences."""

    compared: str
    differing: str
    by_kind: list[tuple[str, str]]
    balance_difference_total: str
    balance_difference_abs_total: str
    largest: list[DifferenceContext]


def loan_key(loan_id: str) -> str:
    """A loan's pseudonymous key in published reports (``loan-`` and 12 hex digits)."""
    return pseudonymous_key("loan", loan_id)


MAX_DIFFERENCES_SHOWN: Final = 10
"""The reconciliation lists this many of the largest balance differences."""


def _yuan(fen: object, locale: str) -> str:
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise ValueError(f"reconciliation summary: amount {fen!r} is not an integer of fen")
    return format_amount(Decimal(fen) / 100, locale)


def _count_of(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"reconciliation summary: {what} {value!r} is not a count")
    return value


def reconciliation_context(
    summary: Mapping[str, Any], texts: Texts, locale: str
) -> ReconciliationContext:
    """The reconciliation section from ``marts/reconciliation/summary.json``.

    Amounts in the summary are integer fen; they are printed in yuan. The largest
    differences are listed by pseudonymous loan key (:func:`loan_key`) in the summary's
    order (absolute difference, then loan), at most :data:`MAX_DIFFERENCES_SHOWN`.

    Raises:
        ValueError: If a count or amount of the summary is malformed.
    """
    by_break = summary.get("by_break") or {}
    largest: list[DifferenceContext] = [
        {
            "as_of_date": str(item["as_of_date"]),
            "loan_key": loan_key(str(item["loan_id"])),
            "engine_balance": _yuan(item["engine_balance"], locale),
            "servicer_balance": _yuan(item["servicer_balance"], locale),
            "balance_difference": _yuan(item["balance_difference"], locale),
        }
        for item in list(summary.get("largest") or [])[:MAX_DIFFERENCES_SHOWN]
    ]
    return {
        "compared": format_count(_count_of(summary.get("compared"), "compared"), locale),
        "differing": format_count(_count_of(summary.get("differing"), "differing"), locale),
        "by_kind": [
            (
                texts.get(f"break.{kind}", str(kind)),
                format_count(_count_of(by_break[kind], str(kind)), locale),
            )
            for kind in sorted(by_break)
        ],
        "balance_difference_total": _yuan(summary.get("balance_difference_total"), locale),
        "balance_difference_abs_total": _yuan(summary.get("balance_difference_abs_total"), locale),
        "largest": largest,
    }


class DataQualityContext(TypedDict):
    """Everything ``data_quality.html.j2`` prints."""

    lang: str
    title: str
    texts: dict[str, str]
    run_id: str
    business_dates: str
    generated_at: str
    totals: list[tuple[str, str]]
    datasets: list[DatasetSummary]
    rejected: list[str]
    errors: list[str]
    files: list[FileContext]
    errors_by_rule: list[RuleContext]
    warnings: list[RuleContext]
    corrections: list[CorrectionContext]
    corrections_hidden: str
    restatements: list[RestatementContext]
    restatements_hidden: str
    ignored: list[str]
    reconciliation: ReconciliationContext | None
    alternate: LanguageLink | None


PERSONAL_COLUMNS: Final = frozenset({"borrower_id", "loan_id", "name", "id_number", "phone"})
"""Columns whose values a report never prints: a correction says only that they changed."""

MONEY: Final = frozenset(MONEY_COLUMNS["loans"])
"""Loan terms held in integer fen: printed in yuan with two decimals."""


def _change(column: str, old: str, new: str, texts: Texts, locale: str) -> str:
    name = texts.get(f"column.{column}", column)
    if column in PERSONAL_COLUMNS:
        return texts("change_hidden", column=name)

    def shown(value: str) -> str:
        # Money arrives in yuan with two decimals (never fen): formatted, never rescaled.
        if column in MONEY and value:
            try:
                return format_amount(Decimal(value), locale)
            except InvalidOperation:
                return value
        return value or "—"

    return texts("change", column=name, old=shown(old), new=shown(new))


def _status(record: FileRecord, texts: Texts) -> str:
    if record.error is not None:
        return texts("status.unreadable")
    if record.rejected is not None:
        return texts("status.rejected", reason=record.rejected)
    if record.rows_quarantined:
        return texts("status.partly")
    return texts("status.accepted")


def build_context(
    *,
    run_id: str,
    start: date,
    end: date,
    files: Sequence[FileRecord],
    rules: Sequence[RuleRecord],
    corrections: Sequence[CorrectionRecord],
    ignored: Sequence[str],
    generated_at: datetime,
    restatements: Sequence[tuple[str, str, str, str, str]] = (),
    locale: str = "en",
    alternate_href: str | None = None,
    reconciliation: Mapping[str, Any] | None = None,
) -> DataQualityContext:
    """Build the data-quality context of one run, in one language.

    The report is compact: the summary and what went wrong come first; the
    per-file list, warnings and corrections are folded. It prints no borrower
    or loan id: a corrected loan is shown by the delivery row it came from
    (file and line, a pseudonymous row key) and personal columns only as changed.

    Args:
        run_id: The run.
        start: First business date of the run.
        end: Last business date of the run.
        files: Every file received, in any order (sorted here by date and path).
        rules: Every rule broken, with its row count.
        corrections: Loans re-delivered with changed terms.
        ignored: Landing entries that are not delivery files.
        generated_at: Timezone-aware generation time.
        restatements: Published figures this run changed, as (pool_id, period,
            field, old, new) text.
        locale: ``"en"`` or ``"zh_CN"``.
        alternate_href: Link to the same report in the other language.
        reconciliation: The reconciliation mart's summary (engine against servicer
            tape), when the run has one.

    Returns:
        The context for ``render_data_quality``.
    """
    check_locale(locale)
    if alternate_href is not None:
        check_href(alternate_href, allow_parent=False)
    texts = report_texts(REPORT, locale)

    def count(value: int) -> str:
        return format_count(value, locale)

    def dataset(name: str) -> str:
        return texts.get(f"dataset.{name}", name)

    ordered = sorted(files, key=lambda f: (f.business_date, f.path))
    totals = [
        (texts("total.files"), count(len(ordered))),
        (texts("total.rows_read"), count(sum(f.rows_read for f in ordered))),
        (texts("total.rows_accepted"), count(sum(f.rows_accepted for f in ordered))),
        (texts("total.rows_quarantined"), count(sum(f.rows_quarantined for f in ordered))),
        (texts("total.rows_duplicate"), count(sum(f.rows_duplicate for f in ordered))),
        (texts("total.corrections"), count(len(corrections))),
        (texts("total.restated"), count(len(restatements))),
        (
            texts("total.warnings"),
            count(sum(r.rows for r in rules if r.severity == "warning")),
        ),
        (
            texts("total.rejected"),
            count(sum(1 for f in ordered if f.rejected is not None and f.error is None)),
        ),
        (texts("total.unreadable"), count(sum(1 for f in ordered if f.error is not None))),
    ]
    names = sorted({f.dataset for f in ordered})
    datasets: list[DatasetSummary] = [
        {
            "dataset": dataset(name),
            "files": count(sum(1 for f in ordered if f.dataset == name)),
            "rows_read": count(sum(f.rows_read for f in ordered if f.dataset == name)),
            "rows_accepted": count(sum(f.rows_accepted for f in ordered if f.dataset == name)),
            "rows_quarantined": count(
                sum(f.rows_quarantined for f in ordered if f.dataset == name)
            ),
        }
        for name in names
    ]

    def rule(record: RuleRecord) -> RuleContext:
        return {
            "dataset": dataset(record.dataset),
            "rule_id": record.rule_id,
            "severity": record.severity,
            "description": texts.get(f"rule.{record.rule_id}", record.description),
            "rows": count(record.rows),
            "examples": list(record.examples),
        }

    by_rule = sorted(rules, key=lambda r: (r.dataset, r.rule_id))
    shown = sorted(corrections, key=lambda c: (c.business_date, c.location, c.loan_id))
    day = format_long_date(start, locale)
    last = format_long_date(end, locale)
    dates = day if start == end else texts("date_range", start=day, end=last)
    other = "zh-CN" if locale == "en" else "en"
    return {
        "lang": html_lang(locale),
        "title": texts("title", run_id=run_id),
        "texts": {key: texts(key) for key in TEMPLATE_TEXTS},
        "run_id": run_id,
        "business_dates": dates,
        "generated_at": format_beijing_time(generated_at, locale),
        "totals": totals,
        "datasets": datasets,
        "rejected": [
            f"{f.path}: {f.rejected}" for f in ordered if f.rejected is not None and f.error is None
        ],
        "errors": [f.error for f in ordered if f.error is not None],
        "files": [
            {
                "business_date": f.business_date.isoformat(),
                "dataset": dataset(f.dataset),
                "path": f.path,
                "format": f.file_format,
                "source": f.source or texts("canonical"),
                "encoding": f.encoding or "—",
                "sha256": f.sha256[:12],
                "rows_read": count(f.rows_read),
                "rows_accepted": count(f.rows_accepted),
                "rows_quarantined": count(f.rows_quarantined),
                "rows_duplicate": count(f.rows_duplicate),
                "status": _status(f, texts),
                "problem": f.error is not None or f.rejected is not None,
            }
            for f in ordered
        ],
        "errors_by_rule": [rule(r) for r in by_rule if r.severity == "error"],
        "warnings": [rule(r) for r in by_rule if r.severity == "warning"],
        "corrections": [
            {
                "row_key": c.location,
                "business_date": c.business_date.isoformat(),
                "previous_business_date": c.previous_business_date.isoformat(),
                "changes": [_change(col, old, new, texts, locale) for col, old, new in c.changes],
            }
            for c in shown[:MAX_CORRECTIONS_SHOWN]
        ],
        "corrections_hidden": texts(
            "corrections_hidden", count=count(max(0, len(shown) - MAX_CORRECTIONS_SHOWN))
        )
        if len(shown) > MAX_CORRECTIONS_SHOWN
        else "",
        "restatements": [
            {"pool_id": pool_id, "period": period, "field": field, "old": old, "new": new}
            for pool_id, period, field, old, new in list(restatements)[:MAX_RESTATEMENTS_SHOWN]
        ],
        "restatements_hidden": texts(
            "restatements_hidden",
            count=count(max(0, len(restatements) - MAX_RESTATEMENTS_SHOWN)),
        )
        if len(restatements) > MAX_RESTATEMENTS_SHOWN
        else "",
        "ignored": sorted(ignored),
        "reconciliation": None
        if reconciliation is None
        else reconciliation_context(reconciliation, texts, locale),
        "alternate": None
        if alternate_href is None
        else {"label": texts(f"language.{other}"), "href": alternate_href, "lang": other},
    }


TEMPLATE_TEXTS: Final = (
    "business_dates",
    "summary",
    "by_dataset",
    "dataset",
    "files",
    "rows_read",
    "rows_accepted",
    "rows_quarantined",
    "rows_duplicate",
    "problems",
    "unreadable",
    "rejected",
    "no_problems",
    "by_rule",
    "rule",
    "description",
    "rows",
    "examples",
    "no_errors",
    "warnings",
    "no_warnings",
    "corrections",
    "corrections_note",
    "row_key",
    "delivered",
    "previous",
    "changes",
    "no_corrections",
    "restatements",
    "restatements_note",
    "pool",
    "period",
    "figure",
    "old",
    "new",
    "no_restatements",
    "files_received",
    "file",
    "format",
    "sha256",
    "status",
    "no_files",
    "ignored",
    "run",
    "generated_at",
    "show",
    "reconciliation",
    "reconciliation_note",
    "recon_compared",
    "recon_differing",
    "recon_kind",
    "recon_count",
    "recon_total",
    "recon_abs_total",
    "recon_largest",
    "recon_as_of",
    "recon_loan",
    "recon_engine",
    "recon_servicer",
    "recon_difference",
    "no_reconciliation",
)
"""The labels the template prints as they are."""
