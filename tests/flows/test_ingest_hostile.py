"""Hostile and careless input: every kind gets a clear error naming the file and rule, fast.

Each landing case lands something bad for one business date on top of the history
day, ingests it and checks: the error (a whole file refused, exit code 3) or the
quarantined row names the file and the rule; the ingest took little time; rows
read = accepted + quarantined; and after the bad input is taken away a clean
delivery of the same date ingests without an error. Deal cases do the same for
``landing/deals``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.data_quality import write_data_quality_report
from flows.deals import DealBook, load_deals
from flows.errors import EXIT_BAD_SETTING, EXIT_INPUT_REJECTED, SettingsError
from flows.ingest import IngestOutcome, ingest_dates
from flows.limits import DEFAULT_LIMITS, Limits, current_limits, limit_named
from tests.flows.ingest_cases import (
    DAY,
    DEAL_HB1,
    HISTORY_DAY,
    LOAN_HEADER,
    POOL_HEADER,
    copy_root,
    csv_text,
    loan,
    pool_event,
    quarantined,
    write_history,
)

GENERATED_AT = datetime(2024, 3, 5, tzinfo=UTC)

SECONDS = 5.0
"""No case may take longer than this (the slowest, the gzip bomb, inflates 256 MiB)."""


@dataclass(frozen=True)
class Landing:
    """Something bad landed for DAY, and what must come of it."""

    setup: Callable[[Path], None]
    """Writes the bad entries into the day's folder (given the folder)."""
    names: str
    """The file (or the folder, ``""``) the error or the quarantined row names."""
    rule: str
    """Text the error must contain, or the rule id the quarantined row must carry."""
    refused: bool = True
    """The whole file is refused (exit code 3), else one row is quarantined."""
    limits: Limits = field(default_factory=Limits)
    line: int = 2
    """The line of the quarantined row."""


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    return setup


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(target)

    return setup


def _mapping_with_duplicate_keys(folder: Path) -> None:
    _write("loans.acme.csv", csv_text(LOAN_HEADER, loan("N1")))(folder)
    mappings = folder.parent / "mappings"
    mappings.mkdir(exist_ok=True)
    (mappings / "acme.mapping.yaml").write_text(
        "source: acme\nsource: other\ndatasets: {loans: {}}\n", encoding="utf-8"
    )


def _fifo(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "repayments.csv")


def _folder_named_like_a_file(folder: Path) -> None:
    (folder / "loans.csv").mkdir(parents=True)


def _day_linked_to_proc(folder: Path) -> None:
    folder.symlink_to("/proc")


def _gzip_bomb() -> bytes:
    """About 4 MB that inflate to 4 GiB: 256 gzip members of 16 MiB of zeros each."""
    member = gzip.compress(b"0" * (16 << 20), compresslevel=9)
    return gzip.compress(LOAN_HEADER.encode() + b"\n") + member * 256


def _jsonl_loan_with_a_huge_principal() -> bytes:
    record = dict(zip(LOAN_HEADER.split(","), loan("N1").split(","), strict=True))
    fields = [f'"{k}": "{v}"' for k, v in record.items() if k != "principal"]
    return ("{" + ", ".join([*fields, '"principal": ' + "9" * 400]) + "}\n").encode()


def _parquet_with_bytes() -> bytes:
    buffer = io.BytesIO()
    frame = pl.DataFrame({"loan_id": ["N1"], "channel": pl.Series([b"\xff\xfe"], dtype=pl.Binary)})
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _nested_jsonl() -> bytes:
    return b'{"repayment_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"


LANDING: dict[str, Landing] = {
    "a landing file that is a symlink to /etc/passwd": Landing(
        _symlink("loans.csv", "/etc/passwd"), "loans.csv", "a symbolic link"
    ),
    "a landing file that is a FIFO": Landing(_fifo, "repayments.csv", "a FIFO"),
    "a mapping file with a repeated key": Landing(
        _mapping_with_duplicate_keys,
        "loans.acme.csv",
        "invalid mapping landing/mappings/acme.mapping.yaml:2: duplicate key 'source'",
    ),
    "a directory with a landing file's name": Landing(
        _folder_named_like_a_file, "loans.csv", "a directory"
    ),
    "a date folder that is a symlink to /proc": Landing(_day_linked_to_proc, "", "a symbolic link"),
    "a CSV header of 200,000 columns": Landing(
        _write("loans.csv", ",".join(f"c{i}" for i in range(200_000)).encode() + b"\n"),
        "loans.csv",
        "max_columns",
    ),
    "a gzip bomb": Landing(
        _write("loans.csv.gz", _gzip_bomb()),
        "loans.csv.gz",
        "max_decompressed_bytes",
        limits=Limits(max_decompressed_bytes=16 << 20),  # the default: test_ingest_memory.py
    ),
    "a file over the size limit": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, *(loan(f"N{i}") for i in range(40)))),
        "loans.csv",
        "max_file_bytes",
        limits=Limits(max_file_bytes=2000),
    ),
    "a file over the row limit": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, *(loan(f"N{i}") for i in range(40)))),
        "loans.csv",
        "max_rows",
        limits=Limits(max_rows=10),
    ),
    "a 10 MB text field": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, loan("N1", channel="x" * 10_000_000))),
        "loans.csv",
        "line 2: a value of 10000000 bytes, over the limit max_field_bytes",
    ),
    "a Parquet column of bytes that are not text": Landing(
        _write("loans.parquet", _parquet_with_bytes()),
        "loans.parquet",
        "column 'channel' (Binary) cannot be read as text",
    ),
    "a JSON record with 300 keys": Landing(
        _write(
            "repayments.jsonl",
            ("{" + ", ".join(f'"k{i}": {i}' for i in range(300)) + "}\n").encode(),
        ),
        "repayments.jsonl",
        "max_columns",
    ),
    "deeply nested JSON Lines": Landing(
        _write("repayments.jsonl", _nested_jsonl()), "repayments.jsonl", "max_json_depth"
    ),
    "a loan originated 0001-01-01": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, loan("N1", origination_date="0001-01-01"))),
        "loans.csv",
        "loans.origination_date.date_window",
        refused=False,
    ),
    "a loan originated in 1900": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, loan("N1", origination_date="1900-03-01"))),
        "loans.csv",
        "loans.origination_date.date_window",
        refused=False,
    ),
    "a 400-digit balance": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, loan("N1", principal="9" * 400))),
        "loans.csv",
        "loans.principal.type",
        refused=False,
    ),
    "a 400-digit number in JSON Lines": Landing(
        _write("loans.jsonl", _jsonl_loan_with_a_huge_principal()),
        "loans.jsonl",
        "loans.principal.type",
        refused=False,
        line=1,
    ),
    "NUL bytes and an escape character in a text field": Landing(
        _write("loans.csv", csv_text(LOAN_HEADER, loan("N1", channel="a\x00p\x1b[31mp"))),
        "loans.csv",
        "loans.row.control_characters",
        refused=False,
    ),
    "a pool event for a pool without a deal": Landing(
        _write("pool_assets.csv", csv_text(POOL_HEADER, pool_event("L2", pool_id="NO-DEAL"))),
        "pool_assets.csv",
        "pool_assets.pool_id.known_deal",
        refused=False,
    ),
}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "data"
    write_history(root)
    return root


def _accounted(outcome: IngestOutcome) -> None:
    for f in outcome.files:
        assert f.rows_read == f.rows_accepted + f.rows_quarantined, f.path


def _clean_run_succeeds(root: Path, folder: Path) -> None:
    """Take the bad input away, deliver a clean file for the same date: no error."""
    if folder.is_symlink():
        folder.unlink()
    else:
        shutil.rmtree(folder)
    folder.mkdir()
    (folder / "loans.csv").write_bytes(csv_text(LOAN_HEADER, loan("N1")))
    outcome = ingest_dates(Catalog(root), [DAY], limits=DEFAULT_LIMITS)
    assert outcome.rejections() == []
    assert [(f.path, f.rows_accepted) for f in outcome.files] == [(f"landing/{DAY}/loans.csv", 1)]
    assert quarantined(root) == {}


@pytest.mark.parametrize("name", sorted(LANDING))
def test_hostile_landing_input_is_named_with_its_rule(
    name: str, history: Path, tmp_path: Path
) -> None:
    case = LANDING[name]
    root = copy_root(history, tmp_path / "data")
    folder = root / "landing" / DAY.isoformat()
    case.setup(folder)
    shown = f"landing/{DAY}/{case.names}".removesuffix("/")

    began = time.perf_counter()
    outcome = ingest_dates(Catalog(root), [DAY], limits=case.limits)
    assert time.perf_counter() - began < SECONDS

    _accounted(outcome)
    errors = outcome.rejections()
    if case.refused:
        (error,) = errors
        assert error.exit_code == EXIT_INPUT_REJECTED
        assert error.where == shown
        assert case.rule in error.message
        assert str(error).startswith(f"{shown}: ")
        assert quarantined(root) == {}
        (file,) = [f for f in outcome.files if f.error]
        named = case.rule if case.rule.startswith("max_") else limit_named(case.rule)
        if named is not None:
            assert (file.limit, file.rejected) == (named, f"over the limit {named}")
        elif case.rule.startswith("a "):  # a link, a FIFO, a directory: never opened
            assert file.refused
            assert file.sha256 == ""
        else:
            assert file.rejected == "unreadable"
    else:
        assert errors == []
        found = quarantined(root)
        assert list(found) == [(case.names, case.line)]
        assert case.rule in found[(case.names, case.line)]
    _clean_run_succeeds(root, folder)


def test_nothing_read_through_a_refused_path_reaches_any_output(
    history: Path, tmp_path: Path
) -> None:
    root = copy_root(history, tmp_path / "data")
    folder = root / "landing" / DAY.isoformat()
    _symlink("loans.csv", "/etc/passwd")(folder)
    _symlink("repayments.csv", "/etc/hostname")(folder)
    outcome = ingest_dates(Catalog(root), [DAY], limits=DEFAULT_LIMITS)
    assert {f.sha256 for f in outcome.files} == {""}  # never opened, so never hashed
    assert all(f.refused and f.rows_read == 0 for f in outcome.files)
    secret = Path("/etc/passwd").read_bytes().split(b"\n")[0]
    for written in (root / "quarantine", root / "staged"):
        for path in written.rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes(), path


def test_date_folders_that_do_not_parse_are_listed_with_the_reason(
    history: Path, tmp_path: Path
) -> None:
    root = copy_root(history, tmp_path / "data")
    for name in ("20240305", "2024-02-30", "latest"):
        (root / "landing" / name).mkdir()
    (root / "landing" / "readme.txt").write_text("call the servicer")
    _write("loans.csv", csv_text(LOAN_HEADER, loan("N1")))(root / "landing" / DAY.isoformat())
    outcome = ingest_dates(Catalog(root), [DAY], limits=DEFAULT_LIMITS)
    reasons = dict(outcome.ignored_with_reasons())
    assert sorted(reasons) == [
        "landing/2024-02-30",
        "landing/20240305",
        "landing/latest",
        "landing/readme.txt",
    ]
    assert reasons["landing/2024-02-30"] == "2024-02-30 is not a calendar date: folder not read"
    assert "the name must be YYYY-MM-DD" in reasons["landing/20240305"]
    assert outcome.rejections() == []
    assert Catalog(root).landing_dates() == [HISTORY_DAY, DAY]  # "20240305" is not a date folder
    written = write_data_quality_report(
        Catalog(root), "r1", outcome, start=DAY, end=DAY, generated_at=GENERATED_AT
    )
    summary = json.loads(written.summary.read_text(encoding="utf-8"))
    assert {"path": "landing/latest", "reason": reasons["landing/latest"]} in summary["ignored"]
    later = IngestOutcome()
    later.merge(outcome)
    later.merge(outcome)
    assert later.ignored == outcome.ignored  # each listed once however many chunks saw it


# -- deal files ----------------------------------------------------------------------------


def _billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _wide_alias() -> str:
    items = ", ".join(["1"] * 300)
    return f"a: &a [{items}]\nb: [*a, *a, *a, *a]\n"


def _deal(pool_id: str, **changes: str) -> str:
    text = DEAL_HB1.replace("HB-1", pool_id)
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class DealCase:
    file: str
    text: str | None
    """YAML text, or None when ``setup`` makes the entry."""
    says: tuple[str, ...]
    """Texts the error must contain (after the file and line)."""
    line: int | None = None
    setup: Callable[[Path], None] | None = None


DEAL_LIMITS = Limits(max_yaml_bytes=4000, max_yaml_nodes=1000)
"""Small enough for the size and expansion cases to stay small files."""

DEALS: dict[str, DealCase] = {
    "a billion laughs alias bomb": DealCase(
        "BOMB.yaml", _billion_laughs(), ("max_yaml_aliases",), line=5
    ),
    "a few aliases of a long list": DealCase("WIDE.yaml", _wide_alias(), ("max_yaml_nodes",)),
    "deeply nested YAML": DealCase(
        "DEEP.yaml", "a: " + "[" * 100 + "]" * 100 + "\n", ("max_yaml_depth",), line=1
    ),
    "a YAML file over the size limit": DealCase(
        "BIG.yaml", _deal("BIG") + "# padding\n" * 400, ("max_yaml_bytes",)
    ),
    "duplicate keys": DealCase(
        "DUPKEY.yaml",
        _deal("DUPKEY", **{"name: Deal DUPKEY": "name: Deal DUPKEY\nname: Other"}),
        ("duplicate key 'name' (first on line 2)",),
        line=3,
    ),
    "an invalid deal date": DealCase(
        "BADDATE.yaml",
        _deal("BADDATE", **{"cutoff_date: 2024-03-01": "cutoff_date: 2024-02-30"}),
        ("field cutoff_date", "'2024-02-30'"),
    ),
    "a deal date in 1900": DealCase(
        "OLD.yaml",
        _deal("OLD", **{"cutoff_date: 2024-03-01": "cutoff_date: 1900-03-01"}),
        ("cutoff_date 1900-03-01 is outside the plausible window",),
    ),
    "a 400-digit balance in a deal": DealCase(
        "HUGE.yaml",
        _deal("HUGE", **{'"8900.00"': '"' + "9" * 400 + '"'}),
        ("field tranches.0.original_balance", "does not fit the money type"),
    ),
    "tranches of 3 yuan against a pool of millions": DealCase(
        "THIN.yaml",
        _deal(
            "THIN", **{'"10000.00"': '"5000000.00"', '"8900.00"': '"2.00"', '"1100.00"': '"1.00"'}
        ),
        ("tranches total 3.00 yuan, not within 1.00% of cutoff_pool_balance 5000000.00",),
    ),
    "a pool id that does not match the file name": DealCase(
        "OTHER.yaml", _deal("ANOTHER"), ("field pool_id", "expected 'OTHER'")
    ),
    "a list instead of a mapping": DealCase("LIST.yaml", "- 1\n- 2\n", ("not a mapping",)),
    "a directory named like a deal file": DealCase(
        "x.yaml", None, ("a directory",), setup=lambda p: p.mkdir()
    ),
    "a deal file that is a symlink": DealCase(
        "LINK.yaml", None, ("a symbolic link",), setup=lambda p: p.symlink_to("/etc/passwd")
    ),
}


@dataclass(frozen=True)
class DealRun:
    catalog: Catalog
    book: DealBook
    seconds: float


@pytest.fixture(scope="module")
def bad_deals(tmp_path_factory: pytest.TempPathFactory) -> DealRun:
    """Every bad deal file beside one good deal, loaded once (the contract check is slow)."""
    catalog = Catalog(tmp_path_factory.mktemp("deals"))
    catalog.deals_dir.mkdir(parents=True)
    (catalog.deals_dir / "HB-1.yaml").write_text(DEAL_HB1)
    for case in DEALS.values():
        path = catalog.deals_dir / case.file
        if case.setup is not None:
            case.setup(path)
        else:
            path.write_text(case.text or "")
    began = time.perf_counter()
    book = load_deals(catalog, limits=DEAL_LIMITS)
    return DealRun(catalog, book, time.perf_counter() - began)


@pytest.mark.parametrize("name", sorted(DEALS))
def test_a_bad_deal_file_is_named_with_its_rule_and_the_others_load(
    name: str, bad_deals: DealRun
) -> None:
    case = DEALS[name]
    assert bad_deals.seconds < SECONDS
    assert sorted(bad_deals.book.deals) == ["HB-1"]
    shown = f"landing/deals/{case.file}"
    (error,) = [e for e in bad_deals.book.rejections() if (e.where or "").split(":")[0] == shown]
    assert error.exit_code == EXIT_INPUT_REJECTED
    assert error.where == (f"{shown}:{case.line}" if case.line else shown)
    for text in case.says:
        assert text in error.message


def test_with_the_bad_deal_files_taken_away_the_next_run_loads_cleanly(
    bad_deals: DealRun,
) -> None:
    assert len(bad_deals.book.rejections()) == len(DEALS)
    for case in DEALS.values():
        path = bad_deals.catalog.deals_dir / case.file
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    book = load_deals(bad_deals.catalog)
    assert (sorted(book.deals), book.rejections()) == (["HB-1"], [])


def test_yml_and_yaml_deal_files_are_both_read(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    catalog.deals_dir.mkdir(parents=True)
    (catalog.deals_dir / "HB-1.yaml").write_text(DEAL_HB1)
    (catalog.deals_dir / "HB-2.yml").write_text(DEAL_HB1.replace("HB-1", "HB-2"))
    (catalog.deals_dir / "notes.txt").write_text("not a deal")
    book = load_deals(catalog)
    assert sorted(book.deals) == ["HB-1", "HB-2"]
    assert book.errors == ()
    assert book.ignored == (
        ("landing/deals/notes.txt", "not a deal file (<pool_id>.yaml or .yml): not read"),
    )
    assert [p.name for p in catalog.deal_files()] == ["HB-1.yaml", "HB-2.yml"]


def test_the_same_pool_in_yaml_and_yml_is_refused_by_name(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    catalog.deals_dir.mkdir(parents=True)
    (catalog.deals_dir / "HB-1.yaml").write_text(DEAL_HB1)
    (catalog.deals_dir / "HB-1.yml").write_text(DEAL_HB1)
    book = load_deals(catalog)
    assert sorted(book.deals) == ["HB-1"]
    assert book.errors == (
        "landing/deals/HB-1.yml: a second deal file for pool 'HB-1' (also landing/deals/HB-1.yaml)",
    )


# -- settings ------------------------------------------------------------------------------


def test_limits_come_from_settings_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ABS_PIPELINE_MIN_DATE", "2024-06-01")
    monkeypatch.setenv("ABS_PIPELINE_MAX_ROWS", "1000")
    limits = current_limits()
    assert (limits.min_date, limits.max_rows) == (date(2024, 6, 1), 1000)
    assert limits.max_columns == DEFAULT_LIMITS.max_columns
    monkeypatch.setenv("ABS_PIPELINE_MAX_ROWS", "-1")
    with pytest.raises(SettingsError) as refused:
        current_limits()
    assert refused.value.where == "ABS_PIPELINE_MAX_ROWS"
    assert refused.value.exit_code == EXIT_BAD_SETTING


def test_a_narrower_date_window_applies_to_deals_and_rows(history: Path, tmp_path: Path) -> None:
    narrow = Limits(min_date=date(2024, 3, 2))
    root = copy_root(history, tmp_path / "data")
    book = load_deals(Catalog(root), limits=narrow)
    assert book.errors == (
        "landing/deals/HB-1.yaml: cutoff_date 2024-03-01 is outside the plausible window "
        "2024-03-02 .. 2100-12-31",
    )
    _write("loans.csv", csv_text(LOAN_HEADER, loan("N1")))(root / "landing" / DAY.isoformat())
    ingest_dates(Catalog(root), [DAY], limits=narrow)
    assert quarantined(root) == {("loans.csv", 2): ("loans.origination_date.date_window",)}
