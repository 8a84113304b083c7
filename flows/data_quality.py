"""Data-quality stage: the run's report of every file received and every rule broken.

Writes ``reports/data_quality/<run_id>.html`` (English) and ``<run_id>.zh-CN.html``
(Chinese), self-contained, and a JSON summary beside them (run id, business dates,
counts); the index and the disclosures link each period to the reports of the runs that ingested its
business dates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TypedDict

from data_contracts.contract import INPUT_DATASETS, load_contract
from flows.catalog import Catalog
from flows.ingest import IngestOutcome, batch_rule, field_count_rule, required_columns_rule
from flows.tape import RECONCILIATION_MART
from reports import data_quality
from reports.render import render_data_quality
from transforms.staging import type_rule_id


@dataclass(frozen=True)
class DataQualityOutput:
    """What the data-quality stage wrote, and what the run should say about it."""

    report: Path
    summary: Path
    notices: list[str]
    """One line per file rejected whole, for the run's summary."""


@cache
def _contract_rules() -> dict[str, tuple[str, str]]:
    return {
        rule.rule_id: (rule.severity, rule.description)
        for dataset in INPUT_DATASETS
        for rule in load_contract(dataset).rules
    }


def describe_rule(dataset: str, rule_id: str) -> str:
    """What a rule id means: the contract's description, or the reader's own rules."""
    known = _contract_rules().get(rule_id)
    if known is not None:
        return known[1]
    if rule_id == required_columns_rule(dataset):
        return "The file lacks a required column, so none of its rows can be read as this dataset."
    if rule_id == field_count_rule(dataset):
        return "The row has more or fewer fields than the header."
    if rule_id == batch_rule(dataset):
        return (
            "The file's share of rows breaking error rules is above the contract's limit, "
            "so its remaining rows are rejected with it."
        )
    column = rule_id.removeprefix(f"{dataset}.").removesuffix(".type")
    if rule_id == type_rule_id(dataset, column):
        return f"{column} does not parse as its type (or its declared unit or date format)."
    return rule_id


class _Records(TypedDict):
    """The run's rows as the data-quality report takes them."""

    files: list[data_quality.FileRecord]
    rules: list[data_quality.RuleRecord]
    corrections: list[data_quality.CorrectionRecord]


class _Run(_Records):
    """Everything the report's context takes but its language."""

    run_id: str
    start: date
    end: date
    ignored: Sequence[str]
    generated_at: datetime
    restatements: Sequence[tuple[str, str, str, str, str]]
    reconciliation: dict[str, object] | None


def _records(ingested: IngestOutcome) -> _Records:
    # The report's file record is the ingest's, field for field.
    shown = [field.name for field in fields(data_quality.FileRecord)]
    files = [
        data_quality.FileRecord(**{name: getattr(f, name) for name in shown})
        for f in ingested.files
    ]
    rules = [
        data_quality.RuleRecord(
            dataset=dataset,
            rule_id=rule_id,
            severity=severity,
            description=describe_rule(dataset, rule_id),
            rows=rows,
            examples=tuple(ingested.examples.get((dataset, rule_id), ())),
        )
        for (dataset, rule_id, severity), rows in sorted(ingested.rule_counts.items())
    ]
    corrections = [
        data_quality.CorrectionRecord(
            loan_id=c.loan_id,
            business_date=c.business_date,
            location=f"{c.source_file}:{c.source_line}",
            previous_business_date=c.previous_business_date,
            changes=tuple((f.column, f.previous or "", f.value or "") for f in c.changes),
        )
        for c in ingested.corrections
    ]
    return {"files": files, "rules": rules, "corrections": corrections}


def _reconciliation_summary(catalog: Catalog) -> dict[str, object] | None:
    """The reconciliation mart's summary (engine against servicer tape), if one was written."""
    path = catalog.mart_summary(RECONCILIATION_MART)
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the reconciliation summary is not a JSON object")
    return document


def write_data_quality_report(
    catalog: Catalog,
    run_id: str,
    ingested: IngestOutcome,
    *,
    start: date,
    end: date,
    generated_at: datetime,
    restatements: Sequence[tuple[str, str, str, str, str]] = (),
) -> DataQualityOutput:
    """Render the run's data-quality report and its JSON summary.

    Args:
        catalog: Where to write.
        run_id: The run.
        ingested: What the run's ingest read, accepted and rejected.
        start: First business date of the run.
        end: Last business date of the run.
        generated_at: Timezone-aware generation time (the business date, so re-runs
            give identical bytes).
        restatements: Published figures the run changed, as (pool_id, period, field,
            old, new) text.

    Returns:
        The paths written and the lines the run summary should print.
    """
    records = _records(ingested)
    files, rules = records["files"], records["rules"]
    run: _Run = {
        **records,
        "run_id": run_id,
        "start": start,
        "end": end,
        "ignored": ingested.ignored,
        "generated_at": generated_at,
        "restatements": restatements,
        "reconciliation": _reconciliation_summary(catalog),
    }
    pages = {locale: catalog.data_quality_report(run_id, locale) for locale in ("en", "zh_CN")}
    report = pages["en"]
    for locale, page in pages.items():
        other = pages["zh_CN" if locale == "en" else "en"]
        context = data_quality.build_context(**run, locale=locale, alternate_href=other.name)
        catalog.write_text(render_data_quality(context), page)
    notices = [
        f"rejected whole: {f.path}: {f.rejected}"
        for f in sorted(ingested.files, key=lambda f: (f.business_date, f.path))
        if f.rejected is not None and f.error is None
    ]
    summary = {
        "run_id": run_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "report": report.relative_to(catalog.reports).as_posix(),
        "files": len(files),
        "rows_read": sum(f.rows_read for f in files),
        "rows_accepted": sum(f.rows_accepted for f in files),
        "rows_quarantined": sum(f.rows_quarantined for f in files),
        "rows_duplicate": sum(f.rows_duplicate for f in files),
        "corrections": len(records["corrections"]),
        "restatements": len(restatements),
        "rules": [
            {"dataset": r.dataset, "rule_id": r.rule_id, "severity": r.severity, "rows": r.rows}
            for r in rules
        ],
        "rejected": notices,
        "errors": [f.error for f in files if f.error is not None],
        "ignored": [{"path": p, "reason": r} for p, r in ingested.ignored_with_reasons()],
    }
    path = catalog.data_quality_summary(run_id)
    catalog.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", path)
    return DataQualityOutput(report=report, summary=path, notices=notices)
