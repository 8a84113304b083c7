"""The publication gate end to end: missing, empty and corrupt deliveries, recovery,
restatements as new versions, unique run ids, rollback, alerts and status."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from flows.catalog import Catalog
from flows.cli import main
from flows.generator import generate_landing
from flows.state import RunManifest, StateBook
from tests.flows.books import (
    break_ingest,
    copy_root,
    data_root,
    redeliver,
    redeliver_lower_principal,
)

pytestmark = pytest.mark.flow

POOL = "HB2024-1"
RANGE = ["--start", "2024-01-01", "--end", "2024-02-29"]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tape") / "landing"
    generate_landing(out, loans=120, start="2024-01", months=2, seed=7)
    return out


@pytest.fixture
def root(harness: str, landing: Path, tmp_path: Path) -> Path:
    """A data root with the tape delivered, nothing processed."""
    return data_root(tmp_path, landing)


@pytest.fixture(scope="module")
def backfilled(harness: str, landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tape backfilled over the range once, by the command line; copy before use."""
    root = data_root(tmp_path_factory.mktemp("backfilled"), landing)
    assert _cli(root, "backfill", *RANGE) == 0
    return root


@pytest.fixture
def published(backfilled: Path, tmp_path: Path) -> Path:
    """A copy of the backfilled root, its periods published as v1."""
    return copy_root(backfilled, tmp_path)


def _cli(root: Path, *args: str) -> int:
    return main([*args, "--data-root", str(root)])


def _tree(root: Path, folder: str) -> dict[str, bytes]:
    base = root / folder
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def _repayments_of(root: Path, month: str) -> Path:
    return next(
        p / "repayments.csv"
        for p in sorted((root / "landing").glob(f"{month}-*"))
        if (p / "repayments.csv").is_file()
    )


def _manifests(catalog: Catalog) -> list[RunManifest]:
    """The run manifests in the order the runs started."""
    found = [RunManifest.read(p) for p in catalog.run_manifests()]
    return sorted(found, key=lambda m: m.started_at)


def _statuses(root: Path) -> dict[date, str]:
    return {d: s.status for d, s in StateBook.load(Catalog(root)).days.items()}


def test_a_missing_date_stops_publishes_nothing_alerts_and_can_be_declared_empty(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = date(2024, 2, 10)
    shutil.rmtree(Catalog(root).landing_dir(missing))
    alerts = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("ABS_PIPELINE_ALERT_URLS", json.dumps([alerts.as_uri()]))

    assert _cli(root, "backfill", *RANGE) == 3
    captured = capsys.readouterr()
    assert "delivery missing for 2024-02-10" in captured.err
    assert "Traceback" not in captured.err
    assert not (root / "reports").exists()
    statuses = _statuses(root)
    assert max(statuses) == date(2024, 2, 9)
    assert set(statuses.values()) == {"ingested"}
    [alert] = [json.loads(line) for line in alerts.read_text(encoding="utf-8").splitlines()]
    assert alert["kind"] == "missing_delivery"
    assert "2024-02-10" in alert["body"]

    assert _cli(root, "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["gaps"] == ["2024-02-10"]
    assert status["runs"][0]["outcome"] == "stopped"

    assert _cli(root, "declare-empty", "--date", "2024-02-10", "--reason", "servicer outage") == 0
    assert _cli(root, "backfill", *RANGE) == 0
    out = capsys.readouterr().out
    assert "declared empty: 2024-02-10 (servicer outage)" in out
    catalog = Catalog(root)
    assert [n for n, _ in catalog.report_versions(POOL, "2024-02")] == [1]
    book = StateBook.load(catalog)
    assert book.empty_days[missing].reason == "servicer outage"
    assert {s.status for s in book.days.values()} == {"complete"}
    manifest = _manifests(catalog)[-1]
    assert manifest.declared_empty == {missing: "servicer outage"}
    quality = Path(str(manifest.data_quality))
    assert "declared empty (servicer outage)" in (root / quality).read_text(encoding="utf-8")


def test_a_corrupt_file_mid_period_is_rejected_whole_and_the_good_partitions_stay(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = published
    reports, staged = _tree(root, "reports"), _tree(root, "staged")
    path = _repayments_of(root, "2024-02")
    text = path.read_text(encoding="utf-8")

    # The file no longer matches its control file: the delivery is rejected whole.
    path.write_text(text.replace(".", ",", 3), encoding="utf-8")
    capsys.readouterr()
    assert _cli(root, "backfill", *RANGE, "--force") == 3
    err = capsys.readouterr().err
    assert f"delivery rejected for {path.parent.name}" in err
    assert "does not match the manifest" in err
    assert _tree(root, "reports") == reports
    assert _tree(root, "staged") == staged

    # A file that matches its manifest but cannot be read fails its chunk (Failed in
    # Prefect) and the chunk's previous staged partitions are put back.
    redeliver(path, b"\xff\xfe" + text.encode())
    assert _cli(root, "backfill", *RANGE) == 3
    captured = capsys.readouterr()
    assert "failed chunk 2024-02-01 .. 2024-02-29: failed (input refused" in captured.out
    assert _tree(root, "reports") == reports
    assert _tree(root, "staged") == staged
    assert _statuses(root)[date.fromisoformat(path.parent.name)] == "failed"


def test_a_crash_between_chunks_is_recovered_from_the_first_incomplete_date(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mend = break_ingest(monkeypatch, 2, RuntimeError("worker lost"))
    assert _cli(root, "backfill", *RANGE) == 1
    assert not (root / "reports" / POOL).exists()
    statuses = _statuses(root)
    assert statuses[date(2024, 1, 31)] == "ingested"
    assert statuses[date(2024, 2, 1)] == "failed"

    mend()
    capsys.readouterr()
    assert _cli(root, "recover", "--dry-run") == 0
    plan = capsys.readouterr().out
    assert "recovering 2024-01-01 .. 2024-02-29" in plan
    assert "chunk 2024-02-01 .. 2024-02-29: process (failed before)" in plan
    assert _cli(root, "recover") == 0
    assert set(_statuses(root).values()) == {"complete"}
    assert [n for n, _ in Catalog(root).report_versions(POOL, "2024-02")] == [1]


def test_a_restatement_writes_v2_keeps_v1_and_rollback_goes_back(
    published: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = published
    catalog = Catalog(root)
    assert _cli(root, "run", "--date", "2024-02-29") == 0
    first, second = _manifests(catalog)
    assert first.run_id != second.run_id
    assert first.input_fingerprint == second.input_fingerprint
    assert second.up_to_date
    v1 = _tree(root, f"reports/{POOL}/2024-02/v1")
    state_after_first = catalog.business_date_state.read_bytes()

    # A corrected February delivery: one pool loan's repayment was 5.00 lower.
    redeliver_lower_principal(root, "2024-02")
    capsys.readouterr()
    assert _cli(root, "backfill", *RANGE) == 0
    out = capsys.readouterr().out
    assert f"{POOL}/2024-02/v2" in out
    assert _tree(root, f"reports/{POOL}/2024-02/v1") == v1
    note = json.loads(
        (catalog.report_version_dir(POOL, "2024-02", 2) / "restatement.json").read_text("utf-8")
    )
    fields = [change["field"] for change in note["changes"]]
    assert "collections.principal" in fields
    sections = [f.split(".")[0].split("[")[0] for f in fields]
    assert sections.index("pool") < sections.index("collections")  # report order
    index = catalog.index_html.read_text(encoding="utf-8")
    assert f"{POOL}/2024-02/v1/disclosure.en.html" in index
    assert f"{POOL}/2024-02/v2/disclosure.en.html" in index

    assert _cli(root, "rollback", "--to", first.run_id) == 0
    assert catalog.business_date_state.read_bytes() == state_after_first
    assert (catalog.report_version_dir(POOL, "2024-02", 2) / "restatement.json").is_file()
