"""Orchestration pieces that need no flow run: the clock, chunks, state, locks, deployments."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from flows.catalog import Catalog
from flows.locking import DataRootBusyError, exclusive_lock
from flows.settings import Settings, yesterday
from flows.status import (
    DayState,
    StateBook,
    chain_value,
    days_between,
    input_key,
    restatements,
    split_chunks,
    status_lines,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # 01:30 UTC on 1 March is 09:30 in Shanghai: yesterday is 29 February (leap year).
        (datetime(2024, 3, 1, 1, 30, tzinfo=UTC), date(2024, 2, 29)),
        # 17:00 UTC on 29 February is already 01:00 on 1 March in Shanghai.
        (datetime(2024, 2, 29, 17, 0, tzinfo=UTC), date(2024, 2, 29)),
        # 15:59 UTC on 29 February is still 23:59 on the 29th in Shanghai.
        (datetime(2024, 2, 29, 15, 59, tzinfo=UTC), date(2024, 2, 28)),
    ],
)
def test_yesterday_is_the_day_before_in_shanghai(instant: datetime, expected: date) -> None:
    assert yesterday("Asia/Shanghai", instant) == expected


def test_chunks_are_calendar_months_or_single_days() -> None:
    days = days_between(date(2024, 1, 30), date(2024, 3, 2))
    months = split_chunks(days, "month")
    assert [(c[0], c[-1]) for c in months] == [
        (date(2024, 1, 30), date(2024, 1, 31)),
        (date(2024, 2, 1), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 2)),
    ]
    assert sum(len(c) for c in months) == len(days) == 33
    assert split_chunks(days, "day") == [[d] for d in days]


def test_a_key_changes_with_the_files_the_code_and_everything_before() -> None:
    base = input_key("1.0", "files", "")
    assert input_key("1.0", "files", "") == base
    assert input_key("1.1", "files", "") != base
    assert input_key("1.0", "other files", "") != base
    assert input_key("1.0", "files", "earlier") != base
    assert chain_value(base, failed=False) == base
    assert chain_value(base, failed=True) != base


def test_restatements_name_the_field_with_old_and_new_values() -> None:
    old = {
        "pool": {"closing_balance": "100.00", "opening_balance": "120.00"},
        "delinquency": [
            {"bucket": "current", "balance": "90.00"},
            {"bucket": "1-30", "balance": "10.00"},
        ],
    }
    new = {
        "pool": {"closing_balance": "99.00", "opening_balance": "120.00"},
        "delinquency": [
            {"bucket": "current", "balance": "89.00"},
            {"bucket": "1-30", "balance": "10.00"},
        ],
    }
    found = restatements("P1", "2024-03", old, new)
    assert [(r.field, r.old, r.new) for r in found] == [
        ("delinquency[bucket=current].balance", "90.00", "89.00"),
        ("pool.closing_balance", "100.00", "99.00"),
    ]
    assert found[1].describe() == "P1 2024-03 pool.closing_balance: 100.00 -> 99.00"
    assert restatements("P1", "2024-03", old, old) == []


def test_the_state_book_round_trips_and_chains_from_the_latest_earlier_date(
    tmp_path: Path,
) -> None:
    catalog = Catalog(tmp_path)
    assert StateBook.load(catalog).days == {}
    book = StateBook()
    book.days[date(2024, 1, 2)] = DayState("k2", 3, "complete", "run-a")
    book.days[date(2024, 1, 3)] = DayState("k3", 0, "failed", "run-b", "boom")
    book.downstream_key = "d"
    book.save(catalog)
    again = StateBook.load(catalog)
    assert again.days == book.days
    assert again.downstream_key == "d"
    assert again.latest() == date(2024, 1, 3)
    assert again.chain_before(date(2024, 1, 3)) == "k2"
    assert again.chain_before(date(2024, 1, 9)) == chain_value("k3", failed=True)
    assert again.chain_before(date(2024, 1, 1)) == ""


def test_status_lists_dates_with_their_runs_and_outcomes(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    book = StateBook()
    for day in days_between(date(2024, 1, 1), date(2024, 1, 3)):
        book.days[day] = DayState(f"k{day.day}", 3, "complete", "20240103-aaa")
    book.days[date(2024, 1, 4)] = DayState("k4", 3, "failed", "20240104-bbb", "bad gzip")
    book.save(catalog)
    catalog.write_text(
        json.dumps({"run_id": "20240103-aaa", "parameters": {"start": "2024-01-01"}}),
        catalog.run_manifest("20240103-aaa"),
    )
    catalog.write_text(
        json.dumps({"run_id": "20240104-bbb", "message": "1 chunk failed"}),
        catalog.failure_summary("20240104-bbb"),
    )
    lines = status_lines(catalog)
    assert lines[1].split() == [
        "2024-01-01", "..", "2024-01-03", "complete", "run", "20240103-aaa", "files", "9"
    ]  # fmt: skip
    assert lines[2].split()[:2] == ["2024-01-04", "failed"]
    assert lines[2].endswith("error: bad gzip")
    assert any("20240103-aaa" in line and "ok" in line for line in lines[3:])
    assert any("20240104-bbb" in line and "1 chunk failed" in line for line in lines[3:])
    assert catalog.run_manifests() == [catalog.run_manifest("20240103-aaa")]
    assert len(status_lines(catalog, by_date=True)) == len(lines) + 2


def test_a_second_holder_of_the_data_root_fails_clearly(tmp_path: Path) -> None:
    lock = Catalog(tmp_path).data_root_lock
    with exclusive_lock(lock, timeout=0, holder={"flow_run": "first-run"}):
        began = time.monotonic()
        with (
            pytest.raises(DataRootBusyError, match=r"in use by another run.*flow_run first-run"),
            exclusive_lock(lock, timeout=0.3, holder={"flow_run": "second-run"}),
        ):
            pass
        assert time.monotonic() - began >= 0.3
    with exclusive_lock(lock, timeout=0, holder={"flow_run": "third-run"}):
        assert "third-run" in lock.read_text(encoding="utf-8")
    assert lock.read_text(encoding="utf-8") == ""


def test_a_second_holder_waits_for_the_first_to_finish(tmp_path: Path) -> None:
    lock = Catalog(tmp_path).data_root_lock
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with exclusive_lock(lock, timeout=0, holder={"flow_run": "first"}):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)
    with exclusive_lock(lock, timeout=30, holder={"flow_run": "second"}):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_the_deployments_schedule_the_nightly_run_at_two_in_shanghai(tmp_path: Path) -> None:
    from flows.deployments import backfill_deployment, nightly_deployment

    settings = Settings(data_root=tmp_path)
    nightly = nightly_deployment(settings)
    assert nightly.name == "nightly"
    assert nightly.flow_name == "abs-pipeline-nightly"
    assert nightly.entrypoint == "flows/pipeline.py:run_flow"
    [schedule] = nightly.schedules
    assert schedule.active
    assert schedule.schedule.cron == "0 2 * * *"  # type: ignore[union-attr]
    assert schedule.schedule.timezone == "Asia/Shanghai"
    # No business date: each run takes yesterday in Shanghai at run time.
    assert nightly.parameters == {"data_root": str(tmp_path.resolve())}
    assert "business_date" not in nightly._parameter_openapi_schema.required

    backfill = backfill_deployment(settings)
    assert backfill.name == "backfill"
    assert backfill.flow_name == "abs-pipeline-backfill"
    assert backfill.entrypoint == "flows/pipeline.py:backfill_flow"
    assert backfill.schedules == []
    assert backfill.parameters == {"data_root": str(tmp_path.resolve())}
    schema = backfill._parameter_openapi_schema
    assert sorted(schema.required) == ["end", "start"]
    assert {"pool", "force", "chunk"} <= set(schema.properties)


def test_prefect_yaml_declares_the_same_deployments_for_a_work_pool() -> None:
    document = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in document["deployments"]}
    assert set(deployments) == {"nightly", "backfill"}
    nightly, backfill = deployments["nightly"], deployments["backfill"]
    settings = Settings()
    assert nightly["entrypoint"] == "flows/pipeline.py:run_flow"
    assert nightly["schedules"] == [
        {"cron": settings.nightly_cron, "timezone": settings.timezone, "active": True}
    ]
    assert backfill["entrypoint"] == "flows/pipeline.py:backfill_flow"
    assert backfill["schedules"] == []
    from flows import pipeline

    for deployment, flow_name in (
        (nightly, "abs-pipeline-nightly"),
        (backfill, "abs-pipeline-backfill"),
    ):
        assert deployment["work_pool"]["name"] == settings.work_pool
        assert set(deployment["parameters"]) == {"data_root"}
        path, function = deployment["entrypoint"].split(":")
        assert (REPO / path).is_file()
        assert getattr(pipeline, function).name == flow_name


def test_serve_without_a_server_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["serve", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "prefect server start --host 127.0.0.1 --port 4200" in err
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api abs-pipeline serve" in err
