"""What the operator sees: restated figures, and the status of every business date.

``abs-pipeline status`` shows, per business date, whether it was delivered (its
control file matches), processed, and published (every period it belongs to has a
published version), when it last succeeded, the gaps (dates the calendar requires
that are missing or failed), and the freshness of each pool's latest disclosure;
``--json`` prints the same as one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flows.alerts import last_alert
from flows.catalog import Catalog
from flows.delivery import check_delivery, required_dates
from flows.planner import CHUNK_SIZES, ChunkSize, days_between, split_chunks
from flows.state import DayState, RunManifest, StateBook, chain_value, input_key

__all__ = [
    "CHUNK_SIZES",
    "ChunkSize",
    "DayState",
    "Restatement",
    "StateBook",
    "chain_value",
    "days_between",
    "input_key",
    "restatements",
    "split_chunks",
    "status_document",
    "status_lines",
]


@dataclass(frozen=True)
class Restatement:
    """A published figure that changed: its pool, period, field and old and new value."""

    pool_id: str
    period: str
    field: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.pool_id} {self.period} {self.field}: {_show(self.old)} -> {_show(self.new)}"


LIST_ITEM_KEYS = ("bucket", "class", "name", "tranche", "province", "stratum", "period")
"""Fields that name an item of a list in metrics.json, so items are matched by name."""

REPORT_ORDER = (
    "pool_id",
    "period",
    "period_start",
    "period_end",
    "period_number",
    "currency",
    "tranches",
    "pool",
    "collections",
    "waterfall",
    "characteristics",
    "delinquency",
    "delinquency_m",
    "performance",
    "revolving",
    "credit_enhancement",
    "triggers",
    "concentration",
    "definitions",
)
"""metrics.json sections in the order the disclosure prints them (DOMAIN.md, "What a
disclosure contains"): a restatement note lists changed figures in this order."""


def restatements(pool_id: str, period: str, old: Any, new: Any) -> list[Restatement]:
    """Every leaf of two metrics.json documents whose value differs, old to new, in the
    order of the report (sections as the disclosure prints them, list items in order)."""
    before = dict(_leaves(old, ""))
    after = dict(_leaves(new, ""))
    names = list(after) + [name for name in before if name not in after]
    names.sort(key=_report_position)
    return [
        Restatement(pool_id, period, name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]


def _report_position(name: str) -> int:
    section = name.split(".", 1)[0].split("[", 1)[0]
    return REPORT_ORDER.index(section) if section in REPORT_ORDER else len(REPORT_ORDER)


def _leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key in value:
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{_item_name(item, position)}]")
    else:
        yield prefix, value


def _item_name(item: Any, position: int) -> str:
    if isinstance(item, Mapping):
        for key in LIST_ITEM_KEYS:
            if key in item and isinstance(item[key], str | int):
                return f"{key}={item[key]}"
    return str(position)


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


# -- status ---------------------------------------------------------------------------------
def status_document(
    catalog: Catalog, *, calendar: str = "daily", now: datetime | None = None
) -> dict[str, Any]:
    """Everything ``status`` shows, as plain JSON values.

    Args:
        catalog: The data root.
        calendar: The delivery calendar that says which dates must exist.
        now: The current instant (for freshness); the wall clock when omitted.
    """
    now = now or datetime.now(UTC)
    book = StateBook.load(catalog)
    landing = catalog.landing_dates()
    recorded = sorted(book.days)
    known = sorted({*landing, *recorded, *book.empty_days})
    dates: list[dict[str, Any]] = []
    gaps: list[str] = []
    if known:
        first, last = known[0], known[-1]
        required = set(required_dates(calendar, first, last))  # type: ignore[arg-type]
        published_months = {
            key.split("/", 1)[1] for key, versions in book.published.items() if versions
        }
        for day in days_between(first, last):
            check = check_delivery(
                catalog, day, required=day in required, empty=day in book.empty_days
            )
            state = book.days.get(day)
            if check.status == "optional" and state is None:
                continue
            processed = state.status if state else "no"
            month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
            entry = {
                "date": day.isoformat(),
                "delivered": check.status,
                "delivery_problem": check.reason,
                "processed": processed,
                "run_id": state.run_id if state else None,
                "last_success": (
                    state.processed_at.isoformat()
                    if state and state.processed_at and state.status != "failed"
                    else None
                ),
                "published": f"{day:%Y-%m}" in published_months and month_end <= last,
                "declared_empty": (book.empty_days[day].reason if day in book.empty_days else None),
                "error": state.error if state else None,
            }
            dates.append(entry)
            if check.status in ("missing", "rejected") or processed in ("failed",):
                gaps.append(day.isoformat())
    freshness: list[dict[str, Any]] = []
    for key, versions in sorted(book.published.items()):
        pool_id, period = key.split("/", 1)
        latest = versions[-1]
        freshness.append(
            {
                "pool_id": pool_id,
                "period": period,
                "version": latest.version,
                "published_at": latest.published_at.isoformat(),
                "age_hours": round((now - latest.published_at).total_seconds() / 3600, 1),
            }
        )
    latest_by_pool: dict[str, dict[str, Any]] = {}
    for item in freshness:
        latest_by_pool[item["pool_id"]] = item
    runs: list[dict[str, Any]] = []
    for path in catalog.run_manifests():
        try:
            manifest = RunManifest.read(path)
        except ValueError:
            continue
        runs.append(
            {
                "run_id": manifest.run_id,
                "started_at": manifest.started_at.isoformat(),
                "finished_at": manifest.finished_at.isoformat(),
                "outcome": manifest.outcome,
                "start": manifest.parameters.get("start"),
                "end": manifest.parameters.get("end"),
                "manifest": path.relative_to(catalog.root).as_posix(),
                "stage_seconds": manifest.stage_seconds,
            }
        )
    runs.sort(key=lambda r: str(r["started_at"]))
    return {
        "data_root": str(catalog.root),
        "calendar": calendar,
        "dates": dates,
        "gaps": gaps,
        "last_success": book.last_success_at.isoformat() if book.last_success_at else None,
        "last_success_run_id": book.last_success_run_id,
        "freshness": sorted(latest_by_pool.values(), key=lambda item: item["pool_id"]),
        "runs": runs,
        "failures": [p.relative_to(catalog.root).as_posix() for p in catalog.failure_summaries()],
        "last_alert": last_alert(catalog),
    }


def status_lines(document: Mapping[str, Any], *, by_date: bool = False) -> list[str]:
    """The status document as text: dates (runs of equal lines folded unless ``by_date``),
    gaps, freshness, runs."""
    dates = document["dates"]
    lines = [f"business dates under {document['data_root']} ({len(dates)} known):"]
    if not dates:
        lines.append("  none delivered or processed yet")
    groups: list[list[dict[str, Any]]] = []
    for entry in dates:
        same = ("delivered", "processed", "run_id", "published", "error", "declared_empty")
        previous = groups[-1][-1] if groups else None
        if (
            not by_date
            and previous is not None
            and date.fromisoformat(previous["date"]) + timedelta(days=1)
            == date.fromisoformat(entry["date"])
            and all(previous[k] == entry[k] for k in same)
        ):
            groups[-1].append(entry)
        else:
            groups.append([entry])
    for group in groups:
        first, last = group[0], group[-1]
        span = first["date"] if first is last else f"{first['date']} .. {last['date']}"
        line = (
            f"  {span:<24} delivered {first['delivered']:<9} processed {first['processed']:<9}"
            f" published {'yes' if first['published'] else 'no':<3}"
        )
        if first["run_id"]:
            line += f"  run {first['run_id']}"
        if last["last_success"]:
            line += f"  last success {last['last_success']}"
        if first["declared_empty"]:
            line += f"  declared empty: {first['declared_empty']}"
        if first["delivery_problem"]:
            line += f"  ({first['delivery_problem']})"
        if first["error"]:
            line += f"  error: {first['error']}"
        lines.append(line)
    lines.append(
        "gaps: " + (", ".join(document["gaps"]) if document["gaps"] else "none"),
    )
    lines.append(
        "last success: "
        + (
            f"{document['last_success']} (run {document['last_success_run_id']})"
            if document["last_success"]
            else "never"
        )
    )
    lines.append("latest disclosure per pool:")
    if not document["freshness"]:
        lines.append("  none published yet")
    for item in document["freshness"]:
        lines.append(
            f"  {item['pool_id']} {item['period']} v{item['version']} published "
            f"{item['published_at']} ({item['age_hours']} h ago)"
        )
    lines.append("runs:")
    if not document["runs"] and not document["failures"]:
        lines.append("  none yet")
    for run in document["runs"]:
        lines.append(
            f"  {run['run_id']}  {run['start']} .. {run['end']}  {run['outcome']}  "
            f"{run['started_at']} -> {run['finished_at']}  {run['manifest']}"
        )
    lines += [f"  failure summary: {path}" for path in document["failures"]]
    if document["last_alert"]:
        alert = document["last_alert"]
        lines.append(f"last alert: {alert['at']} {alert['kind']}: {alert['title']}")
    return lines


def dumps_status(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
