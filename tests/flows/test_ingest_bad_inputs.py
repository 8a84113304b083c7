"""A corpus of bad deliveries, each with its exact outcome.

Every case lands files for one business date on top of a history day (loans
L1..L3, repayment R0 of L1, L1 added to pool HB-1) and states what must come of
it: the rule ids of each quarantined row (by file and line), a file rejected
whole and why, or an error naming the file and line. Every case also checks
that each file's rows read = accepted + quarantined.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.ingest import IngestOutcome
from tests.flows.ingest_cases import (
    DAY,
    LOAN_HEADER,
    POOL_HEADER,
    REPAYMENT_HEADER,
    copy_root,
    csv_text,
    deliver,
    loan,
    pool_event,
    quarantined,
    repayment,
    write_history,
)


@dataclass(frozen=True)
class Case:
    """A bad delivery and its exact outcome."""

    files: dict[str, bytes]
    quarantined: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)
    error: tuple[str, str] | None = None
    """(file name, text the error must contain after the file's path)."""
    rejected: tuple[str, str] | None = None
    """(file name, text the rejection reason must contain)."""
    accepted: dict[str, int] = field(default_factory=dict)
    check: Callable[[IngestOutcome, Path], None] | None = None


def _loans(*rows: str) -> bytes:
    return csv_text(LOAN_HEADER, *rows)


def _repayments(*rows: str) -> bytes:
    return csv_text(REPAYMENT_HEADER, *rows)


def _pool(*rows: str) -> bytes:
    return csv_text(POOL_HEADER, *rows)


def _warned(rule_id: str, rows: int) -> Callable[[IngestOutcome, Path], None]:
    def check(outcome: IngestOutcome, root: Path) -> None:
        dataset = rule_id.split(".", maxsplit=1)[0]
        assert outcome.rule_counts[(dataset, rule_id, "warning")] == rows

    return check


def _correction(outcome: IngestOutcome, root: Path) -> None:
    (correction,) = outcome.corrections
    assert correction.loan_id == "L2"
    assert correction.source_file == f"landing/{DAY}/loans.csv"
    assert correction.source_line == 2
    assert [(c.column, c.previous, c.value) for c in correction.changes] == [
        ("borrower_id", None, None),
        ("principal", "10000.00", "12000.00"),
        ("annual_rate", "0.120000", "0.150000"),
    ]
    assert correction.changes[0].redacted
    assert correction.changes[1].value_yuan == Decimal("12000.00")
    assert correction.row_key.startswith("row-")
    assert "L2" not in correction.row_key
    assert outcome.files[0].rows_duplicate == 1  # L3 again, unchanged


def _ignored(outcome: IngestOutcome, root: Path) -> None:
    assert outcome.ignored == [f"landing/{DAY}/notes.txt"]
    (reason,) = outcome.ignored_reasons.values()
    assert "not a delivery file name" in reason


def _kept_verbatim(outcome: IngestOutcome, root: Path) -> None:
    staged = pl.read_parquet(Catalog(root).staged_partition("loans", DAY))
    assert staged["channel"].to_list() == ["<script>alert(1)</script>", "支付宝 & 花呗"]


def _duplicates(count: int) -> Callable[[IngestOutcome, Path], None]:
    def check(outcome: IngestOutcome, root: Path) -> None:
        assert sum(f.rows_duplicate for f in outcome.files) == count

    return check


def _truncated_gzip() -> bytes:
    body = _loans(*(loan(f"N{i}") for i in range(200)))
    return gzip.compress(body)[:-40]


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"loan_id": ["L9"]}).write_parquet(buffer)
    return buffer.getvalue()[:-12]


def _batch() -> bytes:
    rows = [loan(f"N{i:02d}") for i in range(23)]
    rows += [loan("N98", annual_rate="0.50"), loan("N99", annual_rate="0.60")]
    return _loans(*rows)


FUTURE_LOANS = _loans(
    *(loan(f"F{i}", origination_date="2024-04-01", first_due_date="2024-05-01") for i in range(3))
)

CASES: dict[str, Case] = {
    "missing required column": Case(
        files={"loans.csv": b"loan_id,borrower_id\nN1,B1\nN2,B2\n"},
        quarantined={
            ("loans.csv", 2): ("loans.schema.required_columns",),
            ("loans.csv", 3): ("loans.schema.required_columns",),
        },
        rejected=("loans.csv", "missing required columns: product, origination_date"),
    ),
    "extra column is reported and ignored": Case(
        files={"loans.csv": (LOAN_HEADER + ",remark\n" + loan("N1") + ",vip\n").encode()},
        accepted={"loans.csv": 1},
        check=lambda o, r: (
            None if o.files[0].extra_columns == ("remark",) else pytest.fail("extra")
        ),
    ),
    "wrong type: text in an integer column": Case(
        files={"loans.csv": _loans(loan("N1", term_months="twelve"))},
        quarantined={("loans.csv", 2): ("loans.term_months.type",)},
    ),
    "wrong type: thousands separator in money": Case(
        files={"loans.csv": _loans(loan("N1", principal='"1,000.00"'))},
        quarantined={("loans.csv", 2): ("loans.principal.type",)},
    ),
    "wrong type: three decimals of yuan": Case(
        files={"repayments.csv": _repayments(repayment("R1", principal_paid="100.005"))},
        quarantined={("repayments.csv", 2): ("repayments.principal_paid.type",)},
    ),
    "unparseable date": Case(
        files={"loans.csv": _loans(loan("N1", origination_date="2024/03/01"))},
        quarantined={("loans.csv", 2): ("loans.origination_date.type",)},
    ),
    "impossible date": Case(
        files={"loans.csv": _loans(loan("N1", first_due_date="2024-02-30"))},
        quarantined={("loans.csv", 2): ("loans.first_due_date.type",)},
    ),
    "negative amount": Case(
        files={"repayments.csv": _repayments(repayment("R1", fee_paid="-5.00"))},
        quarantined={("repayments.csv", 2): ("repayments.fee_paid.non_negative",)},
    ),
    "absurd amount": Case(
        files={"loans.csv": _loans(loan("N1", principal="20000000.00"))},
        quarantined={("loans.csv", 2): ("loans.principal.upper_bound",)},
    ),
    "rate above 0.36": Case(
        files={
            "loans.csv": _loans(loan("N1", annual_rate="0.3601"), loan("N2", annual_rate="0.36"))
        },
        quarantined={("loans.csv", 2): ("loans.annual_rate.range",)},
        accepted={"loans.csv": 1},
    ),
    "null in a required field": Case(
        files={"loans.csv": _loans(loan("N1", borrower_id=""))},
        quarantined={("loans.csv", 2): ("loans.borrower_id.required",)},
    ),
    "unknown product code": Case(
        files={"loans.csv": _loans(loan("N1", product="credit_card"))},
        quarantined={("loans.csv", 2): ("loans.product.valid_values",)},
    ),
    "first due date before origination": Case(
        files={"loans.csv": _loans(loan("N1", first_due_date="2024-02-01"))},
        quarantined={("loans.csv", 2): ("loans.first_due_date.after_origination",)},
    ),
    "duplicate loan id within a delivery": Case(
        files={"loans.csv": _loans(loan("N1"), loan("N1", principal="20.00"))},
        quarantined={
            ("loans.csv", 2): ("loans.loan_id.unique",),
            ("loans.csv", 3): ("loans.loan_id.unique",),
        },
    ),
    "identical repayment twice in a delivery is kept once": Case(
        files={"repayments.csv": _repayments(repayment("R1"), repayment("R1"))},
        accepted={"repayments.csv": 2},
        check=_duplicates(1),
    ),
    "conflicting repayment id within a delivery": Case(
        files={
            "repayments.csv": _repayments(repayment("R1"), repayment("R1", interest_paid="11.00"))
        },
        quarantined={("repayments.csv", 3): ("repayments.repayment_id.conflict",)},
    ),
    "repayment id re-delivered: identical kept once, conflicting quarantined": Case(
        files={
            "repayments.csv": _repayments(
                repayment("R0", value_date="2024-03-01"),
                repayment("R0", value_date="2024-03-02"),
            )
        },
        quarantined={("repayments.csv", 3): ("repayments.repayment_id.conflict",)},
        check=_duplicates(1),
    ),
    "repayment for an unknown loan": Case(
        files={"repayments.csv": _repayments(repayment("R1", loan_id="L404"))},
        quarantined={("repayments.csv", 2): ("repayments.loan_id.known_loan",)},
    ),
    "payment before origination": Case(
        files={"repayments.csv": _repayments(repayment("R1", value_date="2024-02-28"))},
        quarantined={("repayments.csv", 2): ("repayments.value_date.on_or_after_origination",)},
    ),
    "payment dated after the business date": Case(
        files={"repayments.csv": _repayments(repayment("R1", value_date="2024-03-06"))},
        quarantined={("repayments.csv", 2): ("repayments.value_date.not_future",)},
    ),
    "a file for a future date": Case(
        files={"loans.csv": FUTURE_LOANS},
        quarantined={
            ("loans.csv", line): ("loans.origination_date.not_future",) for line in (2, 3, 4)
        },
    ),
    "principal paid beyond the outstanding balance is flagged": Case(
        files={
            "repayments.csv": _repayments(
                repayment("R1", principal_paid="9900.00"),
                repayment("R2", principal_paid="0.01"),
            )
        },
        accepted={"repayments.csv": 2},
        check=_warned("repayments.principal_paid.within_outstanding", 1),
    ),
    "pool asset for an unknown loan": Case(
        files={"pool_assets.csv": _pool(pool_event("L404"))},
        quarantined={("pool_assets.csv", 2): ("pool_assets.loan_id.known_loan",)},
    ),
    "loan added twice to a pool": Case(
        files={"pool_assets.csv": _pool(pool_event("L1"), pool_event("L2"))},
        quarantined={("pool_assets.csv", 2): ("pool_assets.event.added_twice",)},
        accepted={"pool_assets.csv": 1},
    ),
    "loan removed from a pool it is not in": Case(
        files={"pool_assets.csv": _pool(pool_event("L2", event="removed", reason="repurchase"))},
        quarantined={("pool_assets.csv", 2): ("pool_assets.event.removed_not_in_pool",)},
    ),
    "removal with an addition reason": Case(
        files={"pool_assets.csv": _pool(pool_event("L1", event="removed", reason="cutoff"))},
        quarantined={("pool_assets.csv", 2): ("pool_assets.reason.removal_reason",)},
    ),
    "loan re-delivered with changed terms is a correction": Case(
        files={
            "loans.csv": _loans(
                loan("L2", borrower_id="B-NEW", principal="12000.00", annual_rate="0.15"),
                loan("L3"),
            )
        },
        accepted={"loans.csv": 2},
        check=_correction,
    ),
    "empty file": Case(
        files={"loans.csv": b""},
        rejected=("loans.csv", "empty file: no header line"),
    ),
    "header-only file": Case(
        files={"loans.csv": (LOAN_HEADER + "\r\n").encode()},
        accepted={"loans.csv": 0},
    ),
    "truncated gzip": Case(
        files={"loans.csv.gz": _truncated_gzip()},
        error=("loans.csv.gz", "truncated gzip stream: the data ends inside line"),
    ),
    "wrong encoding: a GBK line in a UTF-8 file": Case(
        files={
            "loans.csv": _loans(loan("N1", channel="支付宝"))
            + loan("N2", channel="花呗").encode("gbk")
            + b"\n"
        },
        error=("loans.csv", "line 3: not valid UTF-8 text"),
    ),
    "wrong encoding: UTF-16": Case(
        files={"loans.csv": _loans(loan("N1")).decode().encode("utf-16")},
        error=("loans.csv", "line 1: neither UTF-8 nor GB18030 text"),
    ),
    "HTML and script in text fields": Case(
        files={
            "loans.csv": _loans(
                loan("N1", channel="<script>alert(1)</script>"),
                loan("N2", channel="支付宝 & 花呗"),
                loan("<b>N3</b>", borrower_id="B3"),
            )
        },
        quarantined={("loans.csv", 4): ("loans.loan_id.pattern",)},
        check=_kept_verbatim,
    ),
    "Chinese text in an identifier": Case(
        files={"repayments.csv": _repayments(repayment("还款1"))},
        quarantined={("repayments.csv", 2): ("repayments.repayment_id.pattern",)},
    ),
    "row with more fields than the header": Case(
        files={"loans.csv": _loans(loan("N1") + ",extra", loan("N2"))},
        quarantined={("loans.csv", 2): ("loans.row.field_count",)},
        accepted={"loans.csv": 1},
    ),
    "unterminated quote": Case(
        files={"loans.csv": _loans(loan("N1"), loan("N2", channel='"app'))},
        error=("loans.csv", "line 3: malformed quoting"),
    ),
    "invalid JSON line": Case(
        files={"repayments.jsonl": b'{"repayment_id": "R1"}\n{"repayment_id": \n'},
        error=("repayments.jsonl", "line 2: invalid JSON"),
    ),
    "corrupt parquet": Case(
        files={"loans.parquet": _parquet_bytes()},
        error=("loans.parquet", "not a readable Parquet file"),
    ),
    "mapping file missing for a named source": Case(
        files={"loans.acme.csv": _loans(loan("N1"))},
        error=("loans.acme.csv", "no mapping landing/mappings/acme.mapping.yaml for source 'acme'"),
    ),
    "batch above the error share is rejected whole": Case(
        files={"loans.csv": _batch()},
        quarantined={
            **{("loans.csv", line): ("loans.batch.error_share",) for line in range(2, 25)},
            ("loans.csv", 25): ("loans.annual_rate.range",),
            ("loans.csv", 26): ("loans.annual_rate.range",),
        },
        rejected=("loans.csv", "batch rejected whole: 25 of 25 rows quarantined"),
    ),
    "a file that is not a delivery is reported, not read": Case(
        files={"notes.txt": b"call the servicer", "loans.csv": _loans(loan("N1"))},
        accepted={"loans.csv": 1},
        check=_ignored,
    ),
}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("history") / "data"
    outcome = write_history(root)
    assert all(f.rows_read == f.rows_accepted for f in outcome.files)
    return root


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_has_its_exact_outcome(name: str, history: Path, tmp_path: Path) -> None:
    case = CASES[name]
    root = copy_root(history, tmp_path / "data")
    outcome = deliver(root, case.files)

    assert quarantined(root) == case.quarantined
    by_name = {Path(f.path).name: f for f in outcome.files}
    for f in outcome.files:
        assert f.rows_read == f.rows_accepted + f.rows_quarantined, f.path
    for name_, rows in case.accepted.items():
        assert by_name[name_].rows_accepted == rows
    errors = {Path(f.path).name: f.error for f in outcome.files if f.error}
    if case.error is None:
        assert errors == {}
    else:
        file_name, text = case.error
        assert list(errors) == [file_name]
        assert (errors[file_name] or "").startswith(f"landing/{DAY}/{file_name}: {text}")
    rejected = {Path(f.path).name: f.rejected for f in outcome.files if f.rejected and not f.error}

    # A file none of whose rows was accepted is rejected whole (the run exits 3), its
    # first violations named; the quarantine above already states each row's rules.
    # Rows that only name loans not yet staged wait in quarantine instead.
    def only_unknown_loans(file_name: str) -> bool:
        rules = {r for (f, _), ids in case.quarantined.items() if f == file_name for r in ids}
        return bool(rules) and all(r.endswith(".known_loan") for r in rules)

    nothing_accepted = {
        name_: f"every row rejected ({f.rows_read} of {f.rows_read} rows quarantined)"
        for name_, f in by_name.items()
        if f.rows_read
        and f.rows_quarantined == f.rows_read
        and not f.error
        and not only_unknown_loans(name_)
    }
    expected = dict(nothing_accepted)
    if case.rejected is not None:
        file_name, text = case.rejected
        expected[file_name] = text
    assert sorted(rejected) == sorted(expected)
    for file_name, text in expected.items():
        assert text in (rejected[file_name] or ""), rejected[file_name]
    if case.check is not None:
        case.check(outcome, root)
