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
    status_document,
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
    # In the order of the report: the pool roll-forward before delinquency.
    assert [(r.field, r.old, r.new) for r in found] == [
        ("pool.closing_balance", "100.00", "99.00"),
        ("delinquency[bucket=current].balance", "90.00", "89.00"),
    ]
    assert found[0].describe() == "P1 2024-03 pool.closing_balance: 100.00 -> 99.00"
    assert restatements("P1", "2024-03", old, old) == []


def test_the_state_book_round_trips_and_chains_from_the_latest_earlier_date(
    tmp_path: Path,
) -> None:
    catalog = Catalog(tmp_path)
    assert StateBook.load(catalog).days == {}
    book = StateBook()
    book.days[date(2024, 1, 2)] = DayState(key="k2", files=3, status="complete", run_id="run-a")
    book.days[date(2024, 1, 3)] = DayState(
        key="k3", files=0, status="failed", run_id="run-b", error="boom"
    )
    book.downstream_key = "d"
    book.save(catalog)
    again = StateBook.load(catalog)
    assert again.days == book.days
    assert again.downstream_key == "d"
    assert again.latest() == date(2024, 1, 3)
    assert again.chain_before(date(2024, 1, 3)) == "k2"
    assert again.chain_before(date(2024, 1, 9)) == chain_value("k3", failed=True)
    assert again.chain_before(date(2024, 1, 1)) == ""


def test_status_lists_dates_with_their_runs_outcomes_and_gaps(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    book = StateBook()
    for day in days_between(date(2024, 1, 1), date(2024, 1, 3)):
        book.days[day] = DayState(
            key=f"k{day.day}",
            files=0,
            status="complete",
            run_id="20240103-aaa",
            processed_at=datetime(2024, 1, 4, 1, tzinfo=UTC),
        )
    book.days[date(2024, 1, 4)] = DayState(
        key="k4", files=3, status="failed", run_id="20240104-bbb", error="bad gzip"
    )
    book.save(catalog)
    for day in days_between(date(2024, 1, 1), date(2024, 1, 6)):
        if day != date(2024, 1, 5):  # 5 January never arrived
            catalog.write_text(
                json.dumps({"business_date": day.isoformat(), "files": []}),
                catalog.delivery_manifest(day),
            )
    catalog.write_text(
        json.dumps({"run_id": "20240104-bbb", "message": "1 chunk failed"}),
        catalog.failure_summary("20240104-bbb"),
    )
    document = status_document(catalog, now=datetime(2024, 1, 5, tzinfo=UTC))
    assert document["gaps"] == ["2024-01-04", "2024-01-05"]
    by_date = {entry["date"]: entry for entry in document["dates"]}
    assert by_date["2024-01-05"]["delivered"] == "missing"
    assert by_date["2024-01-06"]["processed"] == "no"
    assert by_date["2024-01-01"]["last_success"] == "2024-01-04T01:00:00+00:00"
    lines = status_lines(document)
    assert lines[1].split()[:7] == [
        "2024-01-01", "..", "2024-01-03", "delivered", "complete", "processed", "complete"
    ]  # fmt: skip
    assert "run 20240103-aaa" in lines[1]
    assert lines[2].split()[:5] == ["2024-01-04", "delivered", "complete", "processed", "failed"]
    assert lines[2].endswith("error: bad gzip")
    assert "gaps: 2024-01-04, 2024-01-05" in lines
    assert any("failure summary: runs/20240104-bbb.failure.json" in line for line in lines)
    assert len(status_lines(document, by_date=True)) == len(lines) + 2


def test_a_second_holder_of_the_data_root_fails_clearly_and_writes_nothing(
    tmp_path: Path,
) -> None:
    holder = Catalog(tmp_path).data_root_lock
    with exclusive_lock(tmp_path, holder_file=holder, timeout=0, holder={"flow_run": "first"}):
        began = time.monotonic()
        before = holder.read_text(encoding="utf-8")
        with (
            pytest.raises(DataRootBusyError, match=r"in use by another run.*flow_run first"),
            _lock_in_another_process(tmp_path, holder, timeout=0.3, name="second"),
        ):
            pass
        assert time.monotonic() - began >= 0.3
        assert holder.read_text(encoding="utf-8") == before
    with exclusive_lock(tmp_path, holder_file=holder, timeout=0, holder={"flow_run": "third"}):
        assert "third" in holder.read_text(encoding="utf-8")
    assert holder.read_text(encoding="utf-8") == ""


def test_the_lock_survives_the_deletion_of_its_file(tmp_path: Path) -> None:
    holder = Catalog(tmp_path).data_root_lock
    with exclusive_lock(tmp_path, holder_file=holder, timeout=0, holder={"flow_run": "first"}):
        holder.unlink()
        with (
            pytest.raises(DataRootBusyError),
            _lock_in_another_process(tmp_path, holder, timeout=0, name="second"),
        ):
            pass
        assert not holder.exists()


class _lock_in_another_process:  # noqa: N801 - read as a context-manager function
    """Try the lock from a second process (this process's own holds are re-entrant)."""

    def __init__(self, root: Path, holder: Path, *, timeout: float, name: str) -> None:
        self.args = (root, holder, timeout, name)
        self.error: BaseException | None = None

    def __enter__(self) -> None:
        import subprocess
        import sys

        root, holder, timeout, name = self.args
        code = (
            "from pathlib import Path; from flows.locking import exclusive_lock\n"
            f"with exclusive_lock(Path({str(root)!r}), holder_file=Path({str(holder)!r}), "
            f"timeout={timeout}, holder={{'flow_run': {name!r}}}): pass"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO
        )
        if done.returncode:
            raise DataRootBusyError(done.stderr.strip().splitlines()[-1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_second_holder_waits_for_the_first_to_finish(tmp_path: Path) -> None:
    holder = Catalog(tmp_path).data_root_lock
    order: list[str] = []
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with exclusive_lock(tmp_path, holder_file=holder, timeout=0, holder={"flow_run": "1"}):
            held.set()
            release.wait(10)
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(10)
    release.set()
    import subprocess
    import sys

    code = (
        "from pathlib import Path; from flows.locking import exclusive_lock\n"
        f"with exclusive_lock(Path({str(tmp_path)!r}), holder_file=Path({str(holder)!r}), "
        "timeout=30, holder={'flow_run': '2'}): print('second in')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    order.append(out.strip())
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
    assert set(deployments) == {"nightly", "backfill", "late-check"}
    assert all(d["concurrency_limit"] == 1 for d in deployments.values())
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
    assert "Traceback" not in err


def test_a_nightly_without_success_by_the_late_hour_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main
    from flows.state import DayState

    root = tmp_path / "data"
    (root / "landing").mkdir(parents=True)
    alerts = tmp_path / "alerts.jsonl"
    settings = {"ABS_PIPELINE_ALERT_URLS": json.dumps([alerts.as_uri()])}
    # 01:30 UTC is 09:30 in Shanghai, past the default late hour (09:00): 29 February is late.
    late = datetime(2024, 3, 1, 1, 30, tzinfo=UTC)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.items():
            patch.setenv(key, value)
        assert main(["check-late", "--data-root", str(root)], now=lambda: late) == 1
        [alert] = [json.loads(line) for line in alerts.read_text("utf-8").splitlines()]
        assert alert["kind"] == "late"
        assert "2024-02-29 not processed" in alert["title"]

        book = StateBook()
        book.days[date(2024, 2, 29)] = DayState(key="k", files=1, status="complete", run_id="r")
        book.save(Catalog(root))
        assert main(["check-late", "--data-root", str(root)], now=lambda: late) == 0
        early = datetime(2024, 3, 1, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
        assert main(["check-late", "--data-root", str(tmp_path / "data")], now=lambda: early) == 0
    assert len(alerts.read_text("utf-8").splitlines()) == 1
    assert "nightly on time" in capsys.readouterr().out
