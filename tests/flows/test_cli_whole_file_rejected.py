"""A file none of whose rows is accepted: the run exits 3 and names the first violations in full."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from flows.cli import main

pytestmark = pytest.mark.flow

DAY = "2024-01-31"
# Three rows, each broken differently: too few rows for the share rule, yet nothing is accepted.
LOANS = """\
loan_id,borrower_id,product,origination_date,first_due_date,principal,annual_rate,term_months,\
repayment_method,province
L1,B1,cash_loan,2024-01-05,2024-02-05,1.2E+4,0.12,12,equal_principal,CN-GD
L2,B2,cash_loan,2024-01-08,2024-01-01,600.00,0.48,6,equal_principal,CN-BJ
L3,B3,cash_loan,2024-01-08,2024-02-08,-5.00,0.18,99,balloon,CN-SH
"""


def _landing(root: Path) -> None:
    folder = root / "landing" / DAY
    folder.mkdir(parents=True)
    data = LOANS.encode("utf-8")
    (folder / "loans.csv").write_bytes(data)
    manifest = {
        "business_date": DAY,
        "files": [{"name": "loans.csv", "rows": 3, "sha256": hashlib.sha256(data).hexdigest()}],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_file_with_every_row_rejected_exits_3_naming_each_rule_in_full(
    harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    _landing(root)
    code = main(["backfill", "--start", DAY, "--end", DAY, "--data-root", str(root)])
    captured = capsys.readouterr()
    assert code == 3, captured.out + captured.err
    panel = captured.err
    assert "input rejected (exit 3)" in panel
    assert "landing/2024-01-31/loans.csv: every row rejected (3 of 3 rows quarantined)" in panel
    # Each distinct rule with its column, line, delivered value and full description: the
    # panel is as wide as its longest line, so nothing is cut or wrapped.
    for line in (
        "line 2: loans.principal.type (column principal, value '1.2E+4'): principal is an "
        "amount in yuan with at most two decimals (1234.50)",
        "line 3: loans.annual_rate.range (column annual_rate, value '0.48'): annual_rate is "
        "between 0 and 0.36 (the legal ceiling used as a sanity bound).",
        "line 3: loans.first_due_date.after_origination (column first_due_date, value "
        "'2024-01-01'): first_due_date is after origination_date.",
        "line 4: loans.principal.positive (column principal, value '-5.00'): principal is "
        "greater than zero.",
        "line 4: loans.repayment_method.valid_values (column repayment_method, value "
        "'balloon'): repayment_method is equal_instalment, equal_principal, interest_only "
        "or bullet.",
        "line 4: loans.term_months.range (column term_months, value '99'): term_months is "
        "between 1 and 60.",
    ):
        assert line in panel, line
    assert "Traceback" not in panel
