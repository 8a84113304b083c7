"""Delivery control files, the delivery calendar, typed state, alerts and settings checks."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flows.alerts import send_alert
from flows.catalog import Catalog
from flows.delivery import (
    DeliveryManifest,
    check_delivery,
    manifest_for,
    required_dates,
    strictest,
)
from flows.errors import SettingsError
from flows.settings import Settings, check_data_root, load_settings
from flows.state import EmptyDay, RunManifest, StateBook

DAY = date(2024, 1, 5)
LOANS = "loan_id,principal\nL1,100.00\nL2,250.50\n"
REPAYMENTS = "repayment_id,loan_id,principal_paid\nR1,L1,10.00\nR2,L2,0.05\n"


def _deliver(root: Path, day: date = DAY) -> Catalog:
    catalog = Catalog(root)
    folder = catalog.landing_dir(day)
    folder.mkdir(parents=True)
    (folder / "loans.csv").write_text(LOANS, encoding="utf-8")
    (folder / "repayments.csv").write_text(REPAYMENTS, encoding="utf-8")
    manifest = manifest_for(folder, day, ["repayments.principal_paid"])
    (folder / "manifest.json").write_text(manifest.dumps(), encoding="utf-8")
    return catalog


def _check(catalog: Catalog, day: date = DAY) -> tuple[str, str | None]:
    found = check_delivery(catalog, day, required=True, empty=False)
    return found.status, found.reason


def test_a_manifest_lists_every_file_with_rows_sha256_and_control_totals(tmp_path: Path) -> None:
    catalog = _deliver(tmp_path)
    manifest = DeliveryManifest.model_validate_json(
        catalog.delivery_manifest(DAY).read_text(encoding="utf-8")
    )
    assert [(f.name, f.rows) for f in manifest.files] == [("loans.csv", 2), ("repayments.csv", 2)]
    assert manifest.control_totals == {"repayments.principal_paid": "10.05"}
    assert _check(catalog) == ("complete", None)


def test_a_corrupt_file_is_rejected_naming_the_file_and_the_mismatch(tmp_path: Path) -> None:
    catalog = _deliver(tmp_path)
    path = catalog.landing_dir(DAY) / "repayments.csv"
    path.write_text(REPAYMENTS.replace("10.00", "19.00"), encoding="utf-8")
    status, reason = _check(catalog)
    assert status == "rejected"
    assert reason is not None
    assert str(path) in reason
    assert "does not match the manifest" in reason


def test_a_truncated_file_an_extra_file_and_a_missing_file_are_rejected(tmp_path: Path) -> None:
    catalog = _deliver(tmp_path)
    folder = catalog.landing_dir(DAY)
    (folder / "pool_assets.csv").write_text("pool_id\n", encoding="utf-8")
    assert "not listed in manifest.json" in (_check(catalog)[1] or "")
    (folder / "pool_assets.csv").unlink()
    (folder / "loans.csv").unlink()
    assert "listed in manifest.json but not delivered" in (_check(catalog)[1] or "")


def test_a_control_total_that_does_not_add_up_is_rejected(tmp_path: Path) -> None:
    catalog = _deliver(tmp_path)
    path = catalog.delivery_manifest(DAY)
    document = json.loads(path.read_text(encoding="utf-8"))
    document["control_totals"]["repayments.principal_paid"] = "10.06"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert _check(catalog) == (
        "rejected",
        f"{catalog.landing_dir(DAY)}: control total repayments.principal_paid is 10.05, "
        "the manifest says 10.06",
    )


def test_no_manifest_is_missing_when_required_and_empty_when_declared(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    assert check_delivery(catalog, DAY, required=True, empty=False).status == "missing"
    assert check_delivery(catalog, DAY, required=False, empty=False).status == "optional"
    assert check_delivery(catalog, DAY, required=True, empty=True).status == "empty"
    folder = catalog.landing_dir(DAY)
    folder.mkdir(parents=True)
    (folder / "loans.csv").write_text(LOANS, encoding="utf-8")
    assert check_delivery(catalog, DAY, required=True, empty=True).status == "rejected"


def test_the_calendars_say_which_dates_must_have_a_delivery() -> None:
    feb = (date(2024, 2, 1), date(2024, 2, 29))
    assert len(required_dates("daily", *feb)) == 29
    assert required_dates("month_end", date(2024, 1, 15), date(2024, 3, 31)) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]
    sessions = required_dates("business_days", *feb)
    # The Shanghai exchange closed for the Spring Festival (9-17 February 2024) and weekends.
    assert date(2024, 2, 8) in sessions
    assert not any(date(2024, 2, 9) <= d <= date(2024, 2, 18) for d in sessions)
    assert date(2024, 2, 19) in sessions
    assert strictest(["month_end", "business_days"]) == "business_days"
    assert strictest([]) == "daily"


def test_the_state_round_trips_and_a_run_manifest_is_never_overwritten(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    book = StateBook()
    book.empty_days[DAY] = EmptyDay(reason="holiday", declared_at=datetime.now(UTC))
    book.save(catalog)
    assert StateBook.load(catalog).empty_days[DAY].reason == "holiday"
    now = datetime(2024, 1, 6, tzinfo=UTC)
    manifest = RunManifest.model_validate(
        {
            "run_id": "20240105-abc",
            "input_fingerprint": "f" * 64,
            "flow_run_id": None,
            "started_at": now,
            "finished_at": now,
            "parameters": {},
            "code_version": "1",
            "outcome": "ok",
            "contract_versions": {},
            "chunks": [],
            "declared_empty": {},
            "blocked": [],
            "inputs": [],
            "rules": [],
            "periods_reported": [],
            "published": [],
            "triggers_breached": [],
            "restatements": [],
            "up_to_date": False,
            "data_quality": None,
            "rejected_files": [],
            "outputs": [],
            "errors": [],
            "stage_seconds": {"plan": 0.25, "ingest": 1.5},
        }
    )
    path = manifest.write(catalog)
    with pytest.raises(FileExistsError):
        manifest.write(catalog)
    assert RunManifest.read(path) == manifest

    # A manifest written before the stage timings had their name still reads.
    earlier = manifest.model_dump(mode="json")
    earlier["timings_seconds"] = earlier.pop("stage_seconds")
    assert RunManifest.model_validate(earlier).stage_seconds == {"plan": 0.25, "ingest": 1.5}


def test_a_broken_state_file_is_a_one_line_settings_error(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    catalog.write_text("{not json", catalog.business_date_state)
    with pytest.raises(SettingsError, match=r"business_dates.json: not a state file"):
        StateBook.load(catalog)


def test_an_alert_reaches_a_file_target_and_the_alert_log(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "data")
    target = tmp_path / "alerts" / "out.jsonl"
    assert send_alert(
        catalog,
        [target.as_uri()],
        kind="missing_delivery",
        title="abs-pipeline missing delivery",
        body="2024-01-05",
    )
    [line] = target.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["kind"] == "missing_delivery"
    assert catalog.alert_log.read_text(encoding="utf-8").strip() == line


def test_settings_are_checked_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ABS_PIPELINE_DATA_ROOT", "  ")
    with pytest.raises(SettingsError, match=r"ABS_PIPELINE_DATA_ROOT: .*the data root is empty"):
        load_settings()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="relative data root is not a directory"):
        check_data_root(Settings(data_root=Path("no-such-root")))
    (tmp_path / "root").mkdir()
    with pytest.raises(SettingsError, match="no landing zone"):
        check_data_root(Settings(data_root=Path("root")))
    landing = tmp_path / "root" / "landing"
    landing.mkdir()
    if os.geteuid() != 0:
        landing.chmod(0)
        try:
            with pytest.raises(SettingsError, match="landing zone is not readable"):
                check_data_root(Settings(data_root=Path("root")))
        finally:
            landing.chmod(0o755)
    assert check_data_root(Settings(data_root=Path("root"))) == Path("root")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
