"""The data-quality report of one run: what came in and what became of every row.

:func:`build_context` is pure: the flows turn the ingest outcome into the plain
records below and pass them in with the generation time. The page is
self-contained (inline style, no external resources) like every report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, TypedDict

from reports.formatting import format_count, format_timestamp

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
    loan_id: str
    business_date: str
    location: str
    previous_business_date: str
    changes: list[str]


class RestatementContext(TypedDict):
    """A figure of an already-published period that this run changed."""

    pool_id: str
    period: str
    field: str
    old: str
    new: str


MAX_RESTATEMENTS_SHOWN = 200
"""The report lists this many restated figures; the run manifest lists them all."""


class DataQualityContext(TypedDict):
    """Everything ``data_quality.html.j2`` prints."""

    lang: str
    title: str
    run_id: str
    business_dates: str
    generated_at: str
    totals: list[tuple[str, str]]
    rejected: list[str]
    errors: list[str]
    files: list[FileContext]
    errors_by_rule: list[RuleContext]
    warnings: list[RuleContext]
    corrections: list[CorrectionContext]
    corrections_hidden: int
    restatements: list[RestatementContext]
    restatements_hidden: int
    ignored: list[str]


def _status(record: FileRecord) -> str:
    if record.error is not None:
        return "unreadable"
    if record.rejected is not None:
        return f"rejected: {record.rejected}"
    if record.rows_quarantined:
        return "accepted in part"
    return "accepted"


def count(value: int) -> str:
    """A row or file count as the report prints it (``12,345``)."""
    return format_count(value, "en")


def _rule(record: RuleRecord) -> RuleContext:
    return {
        "dataset": record.dataset,
        "rule_id": record.rule_id,
        "severity": record.severity,
        "description": record.description,
        "rows": count(record.rows),
        "examples": list(record.examples),
    }


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
) -> DataQualityContext:
    """Build the data-quality context of one run.

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

    Returns:
        The context for ``render_data_quality``.
    """
    ordered = sorted(files, key=lambda f: (f.business_date, f.path))
    totals = [
        ("Files received", count(len(ordered))),
        ("Rows read", count(sum(f.rows_read for f in ordered))),
        ("Rows accepted", count(sum(f.rows_accepted for f in ordered))),
        ("Rows quarantined", count(sum(f.rows_quarantined for f in ordered))),
        ("Re-delivered rows (kept once)", count(sum(f.rows_duplicate for f in ordered))),
        ("Loan corrections", count(len(corrections))),
        ("Published figures restated", count(len(restatements))),
        (
            "Rows with warnings",
            count(sum(r.rows for r in rules if r.severity == "warning")),
        ),
        (
            "Files rejected whole",
            count(sum(1 for f in ordered if f.rejected is not None and f.error is None)),
        ),
        ("Unreadable files", count(sum(1 for f in ordered if f.error is not None))),
    ]
    by_rule = sorted(rules, key=lambda r: (r.dataset, r.rule_id))
    shown = sorted(corrections, key=lambda c: (c.business_date, c.location, c.loan_id))
    dates = start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
    return {
        "lang": "en",
        "title": f"Data quality — run {run_id}",
        "run_id": run_id,
        "business_dates": dates,
        "generated_at": format_timestamp(generated_at),
        "totals": totals,
        "rejected": [
            f"{f.path}: {f.rejected}" for f in ordered if f.rejected is not None and f.error is None
        ],
        "errors": [f.error for f in ordered if f.error is not None],
        "files": [
            {
                "business_date": f.business_date.isoformat(),
                "dataset": f.dataset,
                "path": f.path,
                "format": f.file_format,
                "source": f.source or "canonical",
                "encoding": f.encoding or "—",
                "sha256": f.sha256[:12],
                "rows_read": count(f.rows_read),
                "rows_accepted": count(f.rows_accepted),
                "rows_quarantined": count(f.rows_quarantined),
                "rows_duplicate": count(f.rows_duplicate),
                "status": _status(f),
                "problem": f.error is not None or f.rejected is not None,
            }
            for f in ordered
        ],
        "errors_by_rule": [_rule(r) for r in by_rule if r.severity == "error"],
        "warnings": [_rule(r) for r in by_rule if r.severity == "warning"],
        "corrections": [
            {
                "loan_id": c.loan_id,
                "business_date": c.business_date.isoformat(),
                "location": c.location,
                "previous_business_date": c.previous_business_date.isoformat(),
                "changes": [f"{column}: {old} → {new}" for column, old, new in c.changes],
            }
            for c in shown[:MAX_CORRECTIONS_SHOWN]
        ],
        "corrections_hidden": max(0, len(shown) - MAX_CORRECTIONS_SHOWN),
        "restatements": [
            {"pool_id": pool_id, "period": period, "field": field, "old": old, "new": new}
            for pool_id, period, field, old, new in sorted(restatements)[:MAX_RESTATEMENTS_SHOWN]
        ],
        "restatements_hidden": max(0, len(restatements) - MAX_RESTATEMENTS_SHOWN),
        "ignored": sorted(ignored),
    }
