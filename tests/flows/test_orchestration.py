"""Backfills on a tiny tape: skipped, resumed, restated, retried, locked, observed."""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import Catalog
from flows.state import RunManifest
from flows.status import StateBook, days_between, status_document
from tests.flows.books import (
    Backfilled,
    assert_same_outputs,
    break_ingest,
    copy_root,
    outputs,
    redeliver_lower_principal,
    start_cli,
    wait_for,
)
from tests.flows.conftest import TINY_END, TINY_START

pytestmark = pytest.mark.flow

START, END = TINY_START, TINY_END
POOL = "HB2024-1"
STAGES = {"plan", "ingest", "curate", "snapshots", "metrics", "publish"}


def _backfill(root: Path, **options: Any) -> Any:
    from flows.pipeline import backfill_flow

    return backfill_flow(
        start=options.pop("start", START),
        end=options.pop("end", END),
        data_root=str(root),
        **options,
    )


def _outcomes(summary: Any) -> list[tuple[str, str]]:
    return [(f"{c.start:%Y-%m}", c.outcome) for c in summary.chunks]


def test_a_clean_backfill_processes_every_chunk_and_records_each_date(
    tiny_backfill: Backfilled,
) -> None:
    root, summary = tiny_backfill.root, tiny_backfill.summary
    assert _outcomes(summary) == [
        ("2024-01", "processed"),
        ("2024-02", "processed"),
        ("2024-03", "processed"),
    ]
    assert summary.periods == [f"{POOL}/2024-02", f"{POOL}/2024-03"]
    book = StateBook.load(Catalog(root))
    assert sorted(book.days) == days_between(START, END)
    assert {s.status for s in book.days.values()} == {"complete"}
    assert {s.run_id for s in book.days.values()} == {summary.run_id}


def test_the_run_manifest_records_each_stages_seconds_and_status_shows_them(
    tiny_backfill: Backfilled,
) -> None:
    manifest = RunManifest.read(Path(tiny_backfill.summary.manifest))

    assert set(manifest.stage_seconds) == STAGES
    assert all(seconds >= 0 for seconds in manifest.stage_seconds.values())
    (run,) = status_document(Catalog(tiny_backfill.root))["runs"]
    assert run["stage_seconds"] == manifest.stage_seconds


def test_a_rerun_with_unchanged_inputs_skips_every_chunk(
    tiny_backfill: Backfilled, tmp_path: Path
) -> None:
    # The first run is the shared clean backfill; this test goes on from a copy of it.
    first = tiny_backfill.summary
    root = copy_root(tiny_backfill.root, tmp_path)
    first_manifest = root / Path(first.manifest).relative_to(tiny_backfill.root)
    before = outputs(root)
    manifest = first_manifest.read_bytes()
    again = _backfill(root)
    assert _outcomes(again) == [(m, "skipped") for m in ("2024-01", "2024-02", "2024-03")]
    assert again.up_to_date
    assert again.fingerprint == first.fingerprint
    assert outputs(root) == before
    assert_same_outputs(root, tiny_backfill.root)
    assert first_manifest.read_bytes() == manifest
    assert Path(again.manifest) != first_manifest

    forced = _backfill(root, force=True)
    assert [o for _, o in _outcomes(forced)] == ["processed"] * 3
    assert_same_outputs(root, tiny_backfill.root)
    # Run ids are unique per execution; the input fingerprint says the inputs are the same.
    assert len({again.run_id, forced.run_id, first.run_id}) == 3
    assert forced.fingerprint == again.fingerprint == first.fingerprint


def test_late_data_recomputes_from_its_date_onward_and_lists_restated_figures(
    tiny_backfill: Backfilled, tmp_path: Path
) -> None:
    root = copy_root(tiny_backfill.root, tmp_path)
    published = (Catalog(root).metrics_json(POOL, "2024-02")).read_text(encoding="utf-8")

    # A corrected delivery for a February date: one repayment's principal was 5.00 lower.
    redeliver_lower_principal(root, "2024-02", POOL)

    summary = _backfill(root, start=date(2024, 2, 1), end=date(2024, 2, 29))
    # February changed; March is processed again because its inputs chain from February.
    assert _outcomes(summary) == [("2024-02", "processed"), ("2024-03", "processed")]
    assert summary.periods == [f"{POOL}/2024-02", f"{POOL}/2024-03"]
    assert f"{POOL}/2024-02/v2" in summary.published
    restated = {(r.period, r.field): (r.old, r.new) for r in summary.restatements}
    old, new = restated[("2024-02", "collections.principal")]
    assert float(new) == pytest.approx(float(old) - 5)
    assert old == json.loads(published)["collections"]["principal"]
    manifest = json.loads(Path(summary.manifest).read_text(encoding="utf-8"))
    assert {"pool_id": POOL, "period": "2024-02", "field": "collections.principal",
            "old": old, "new": new} in manifest["restatements"]  # fmt: skip
    assert "restated published figures" in summary.describe()
    report = Path(summary.data_quality).read_text(encoding="utf-8")
    assert "Restated figures of published periods" in report
    assert f'<td><code>collections.principal</code></td><td class="num">{old}</td>' in report


def test_a_failing_chunk_does_not_stop_the_others_and_a_rerun_resumes(
    tiny_backfill: Backfilled, tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import pipeline

    root = tiny_root
    mend = break_ingest(monkeypatch, 2, ValueError("servicer file for February cannot be parsed"))
    with pytest.raises(pipeline.RunFailedError) as failed:
        _backfill(root)
    summary = failed.value.summary
    assert _outcomes(summary) == [
        ("2024-01", "processed"),
        ("2024-02", "failed"),
        ("2024-03", "processed"),
    ]
    assert "failed chunk 2024-02-01 .. 2024-02-29: failed (ValueError: servicer file" in (
        summary.describe()
    )
    assert failed.value.exit_code == 1  # a bug in ingest, not rejected input
    failure = json.loads(Catalog(root).failure_summary(summary.run_id).read_text("utf-8"))
    assert failure["run_id"] == summary.run_id
    assert failure["failed_chunks"] == [summary.failed_chunks[0].describe()]
    assert failure["state"] == "FAILED"
    assert Path(summary.manifest).is_file()

    mend()
    resumed = _backfill(root)
    # March ran without February's loans, so it is ingested again after February succeeds.
    assert _outcomes(resumed) == [
        ("2024-01", "skipped"),
        ("2024-02", "processed"),
        ("2024-03", "processed"),
    ]
    assert not resumed.failed
    assert_same_outputs(root, tiny_backfill.root, resumed=True)


def test_a_transient_io_error_is_retried(
    harness: str, tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows import pipeline

    root = tiny_root
    real = pipeline.ingest_dates
    calls: list[date] = []

    def flaky(catalog: Catalog, days: Sequence[date]) -> Any:
        calls.append(days[0])
        if len(calls) == 1:
            raise OSError("NFS server not responding")
        return real(catalog, days)

    monkeypatch.setattr(pipeline, "ingest_dates", flaky)
    monkeypatch.setattr(
        pipeline, "ingest_task", pipeline.ingest_task.with_options(retry_delay_seconds=0)
    )
    summary = _backfill(root, start=START, end=date(2024, 1, 31))
    assert calls == [START, START]
    assert _outcomes(summary) == [("2024-01", "processed")]

    def wrong(catalog: Catalog, days: Sequence[date]) -> Any:
        calls.append(days[0])
        raise ValueError("not an I/O error")

    calls.clear()
    monkeypatch.setattr(pipeline, "ingest_dates", wrong)
    with pytest.raises(pipeline.RunFailedError):
        _backfill(root, start=START, end=date(2024, 1, 31), force=True)
    assert calls == [START]


def test_an_unknown_pool_fails_clearly(harness: str, tiny_root: Path) -> None:
    from flows import pipeline

    root = tiny_root
    with pytest.raises(pipeline.RunFailedError, match="unknown pool 'NOPE'; deals: HB2024-1"):
        _backfill(root, pool="NOPE")


def test_a_pool_scoped_backfill_writes_only_that_pools_reports(
    harness: str, tiny_root: Path
) -> None:
    root = tiny_root
    summary = _backfill(root, pool=POOL)
    assert summary.periods == [f"{POOL}/2024-02", f"{POOL}/2024-03"]
    reports = Catalog(root).reports
    written = [Path(p).relative_to(reports).parts for p in summary.reports]
    assert {parts[0] for parts in written if len(parts) > 1} == {POOL}
    assert summary.published == [f"{POOL}/2024-02/v1", f"{POOL}/2024-03/v1"]
    # A pool-scoped run leaves the dates for a full run to mark complete.
    assert {s.status for s in StateBook.load(Catalog(root)).days.values()} == {"ingested"}


def test_the_run_publishes_a_summary_a_metrics_table_and_a_link(
    tiny_backfill: Backfilled,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    root, summary = tiny_backfill.root, tiny_backfill.summary
    flow_run_id = tiny_backfill.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_key = {a.key: a for a in artifacts}
    markdown = str(by_key["abs-pipeline-run-summary"].data)
    assert f"| {summary.rows_read} | {summary.rows_accepted} | {summary.rows_quarantined} |" in (
        markdown
    )
    assert f"- {POOL}/2024-03" in markdown
    assert "## Triggers breached" in markdown
    table = by_key["abs-pipeline-pool-metrics"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [(r["pool"], r["period"]) for r in rows] == [(POOL, "2024-02"), (POOL, "2024-03")]
    metrics = json.loads(Catalog(root).metrics_json(POOL, "2024-03").read_text("utf-8"))
    assert rows[1]["closing balance"] == metrics["pool"]["closing_balance"]
    link = by_key["abs-pipeline-disclosures"]
    assert (
        link.data
        == f"[Disclosures (reports/index.html)]({Catalog(root).index_html.resolve().as_uri()})"
    )


def test_a_killed_backfill_resumes_where_it_stopped(
    harness: str, tiny_backfill: Backfilled, tiny_root: Path, tmp_path: Path
) -> None:
    root = tiny_root
    catalog = Catalog(root)
    process, _ = start_cli(
        harness, tmp_path, "backfill", "--start", str(START), "--end", str(END),
        "--data-root", str(root),
    )  # fmt: skip
    wait_for(lambda: bool(StateBook.load(catalog).days) or process.poll() is not None, 120)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    recorded = StateBook.load(catalog).days
    assert recorded, "the run finished before it could be interrupted"
    done_months = sorted({d.month for d in recorded})

    resumed = _backfill(root)
    skipped = [m for m, outcome in _outcomes(resumed) if outcome == "skipped"]
    assert skipped == [f"2024-{m:02d}" for m in done_months]
    assert [o for _, o in _outcomes(resumed)][len(skipped) :] == ["processed"] * (3 - len(skipped))
    assert_same_outputs(root, tiny_backfill.root, resumed=True)
