"""Servicer mappings: the shipped example maps a GB18030, pipe-separated Chinese tape exactly."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.ingest import ingest_dates
from flows.mapping import (
    DatasetMapping,
    MappingError,
    NumberFormat,
    apply_mapping,
    load_mapping,
    map_columns,
)
from tests.flows.ingest_cases import DAY

EXAMPLE = (
    Path(__file__).parents[2] / "data_contracts" / "mappings" / "example_servicer.mapping.yaml"
)

LOANS = (
    "贷款编号|借款人编号|产品类型|放款日期|首次还款日|贷款本金|年利率|期数|还款方式|省份|渠道\r\n"
    "HX001|BR9|现金贷|20240301|20240401|1000000|10.95|12|等额本息|北京|支付宝\r\n"
    "HX002|BR8|分期|20240302|20240402|5|7.2|6|等额本金|广东|花呗\r\n"
    "HX003|BR7|分期|2024-03-02|20240402|12.5|7.25|6|气球贷|火星|花呗\r\n"
)
REPAYMENTS = (
    "还款流水号|贷款编号|入账日期|实还本金|实还利息|实还费用|实还罚息|还款类型\n"
    "T1|HX001|20240305|78849|10000|0|0|正常还款\n"
)


@pytest.fixture
def delivered(tmp_path: Path) -> tuple[Path, object]:
    root = tmp_path / "data"
    (root / "landing" / "mappings").mkdir(parents=True)
    shutil.copy(EXAMPLE, root / "landing" / "mappings" / EXAMPLE.name)
    folder = root / "landing" / DAY.isoformat()
    folder.mkdir()
    (folder / "loans.example_servicer.csv").write_bytes(LOANS.encode("gb18030"))
    (folder / "repayments.example_servicer.csv").write_bytes(REPAYMENTS.encode("gb18030"))
    return root, ingest_dates(Catalog(root), [DAY])


def test_the_example_mapping_loads() -> None:
    mapping = load_mapping(EXAMPLE)
    assert mapping.encoding == "gb18030"
    assert mapping.delimiter == "|"
    assert set(mapping.datasets) == {"loans", "repayments", "pool_assets"}
    assert len(mapping.datasets["loans"].values["province"]) == 31


def test_a_mapped_tape_lands_in_canonical_form_exactly(delivered: tuple[Path, object]) -> None:
    root, _ = delivered
    staged = pl.read_parquet(Catalog(root).staged_partition("loans", DAY))
    first, second = staged.sort("loan_id").iter_rows(named=True)
    assert first["loan_id"] == "HX001"
    assert first["product"] == "cash_loan"
    assert first["origination_date"] == date(2024, 3, 1)
    assert first["principal"] == 1_000_000  # fen, as delivered: 10,000.00 yuan
    assert str(first["annual_rate"]) == "0.109500"
    assert first["repayment_method"] == "equal_instalment"
    assert first["province"] == "CN-BJ"
    assert first["channel"] == "支付宝"
    assert first["source_file"] == f"landing/{DAY}/loans.example_servicer.csv"
    assert second["principal"] == 5
    assert str(second["annual_rate"]) == "0.072000"
    assert second["province"] == "CN-GD"
    repayments = pl.read_parquet(Catalog(root).staged_partition("repayments", DAY))
    assert repayments.row(0, named=True)["principal_paid"] == 78_849


def test_a_value_that_breaks_the_declared_units_and_codes_is_quarantined(
    delivered: tuple[Path, object],
) -> None:
    root, outcome = delivered
    bad = pl.read_parquet(Catalog(root).quarantine_partition("loans", DAY))
    assert bad["source_line"].to_list() == [4]
    assert bad["rule_ids"][0].to_list() == [
        "loans.origination_date.type",
        "loans.principal.type",
    ]
    assert '"贷款编号":"HX003"' in bad["original"][0]
    (loans_file, _) = sorted(outcome.files, key=lambda f: f.path)  # type: ignore[attr-defined]
    assert loans_file.encoding == "gb18030"
    assert loans_file.source == "example_servicer"


def test_unmapped_codes_pass_through_for_the_contract_to_judge() -> None:
    mapping = DatasetMapping(values={"product": {"现金贷": "cash_loan"}})
    frame = pl.DataFrame({"product": ["现金贷", "信用卡"]})
    mapped = apply_mapping(frame, "loans", mapping)
    assert mapped["product"].to_list() == ["cash_loan", "信用卡"]
    assert mapped["mapping_errors"].to_list() == [[], []]


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [("5", "0.05"), ("-123", "-1.23"), ("100", "1.00"), ("123456789012", "1234567890.12")],
)
def test_fen_become_yuan_exactly(fen: str, yuan: str) -> None:
    mapped = apply_mapping(
        pl.DataFrame({"principal": [fen]}), "loans", DatasetMapping(amount_unit="fen")
    )
    assert mapped["principal"].to_list() == [yuan]


@pytest.mark.parametrize(
    ("percent", "rate"), [("10.95", "0.1095"), ("7", "0.07"), ("0.5", "0.005"), ("36", "0.36")]
)
def test_percent_becomes_a_decimal_rate_exactly(percent: str, rate: str) -> None:
    mapped = apply_mapping(
        pl.DataFrame({"annual_rate": [percent]}), "loans", DatasetMapping(rate_unit="percent")
    )
    assert mapped["annual_rate"].to_list() == [rate]


def test_a_mapping_to_an_unknown_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "acme.mapping.yaml"
    path.write_text(
        "source: acme\ndatasets:\n  loans:\n    columns: {编号: loan_number}\n", encoding="utf-8"
    )
    expected = "acme.mapping.yaml: rule datasets.loans.columns, column 'loan_number'"
    with pytest.raises(MappingError, match=re.escape(expected)):
        load_mapping(path)


def test_a_mapping_must_be_named_after_its_source(tmp_path: Path) -> None:
    path = tmp_path / "acme.mapping.yaml"
    path.write_text("source: other\ndatasets: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 'acme'"):
        load_mapping(path)


# --- mapping features real tapes need: each on a two-row file --------------------------------

TAPE_MAPPING = """\
source: us_servicer
encoding: utf-8
delimiter: ","
datasets:
  loan_tape:
    columns:
      "": loan_id
      Balance: current_principal
      Status: status
      Recovered: recoveries_to_date
      Limit: credit_limit
    number_format:
      thousands: ","
      currency_symbols: ["$"]
    status_codes:
      Current: {status: current, dpd: [0, 0]}
      "In Grace Period": {status: current, dpd: [1, 15]}
      "Late (31-120 days)": {status: delinquent, dpd: [31, 120]}
      "Charged Off": {status: charged_off, dpd: [121, null]}
    derived:
      as_of_date: month_end(date(Month, "%b-%Y"))
      charged_off_principal: if_else(Status == "Charged Off", current_principal, "0")
"""


def _read_tape(tmp_path: Path, text: str, mapping: str = TAPE_MAPPING) -> pl.DataFrame:
    from flows.landing import read_landing_file

    path = tmp_path / "us_servicer.mapping.yaml"
    path.write_text(mapping, encoding="utf-8")
    tape = tmp_path / "loan_tape.us_servicer.csv"
    tape.write_text(text, encoding="utf-8")
    landed = read_landing_file("loan_tape", DAY, tape, tmp_path, mapping=load_mapping(path))
    assert landed.error is None, landed.error
    assert landed.missing_columns == ()
    return landed.frame


def test_an_unnamed_first_column_is_mapped_and_a_month_year_date_becomes_its_month_end(
    tmp_path: Path,
) -> None:
    frame = _read_tape(
        tmp_path,
        ',Month,Balance,Status\nL1,Mar-2018,"1,234.50",Current\nL2,Apr-2018,12,Current\n',
    )
    assert frame["loan_id"].to_list() == ["L1", "L2"]
    assert frame["as_of_date"].to_list() == ["2018-03-31", "2018-04-30"]
    assert frame["current_principal"].to_list() == ["1234.50", "12.00"]


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("1.2E+4", "12000.00"),
        ("1.5e-1", "0.15"),
        ('"(1,234.50)"', "-1234.50"),
        ('"$1,000"', "1000.00"),
        ("0.105", None),  # a tenth of a fen is not money: the row breaks the type rule
        ('"1,23"', None),  # a comma that is not a thousands separator
    ],
)
def test_number_formats_of_real_tapes_convert_exactly(
    tmp_path: Path, written: str, canonical: str | None
) -> None:
    frame = _read_tape(
        tmp_path, f",Month,Balance,Status\nL1,Mar-2018,{written},Current\nL2,Mar-2018,1,Current\n"
    )
    assert frame["current_principal"][0] == canonical
    errors = frame["read_errors"][0].to_list()
    assert errors == ([] if canonical else ["loan_tape.current_principal.type"])


def test_a_percentage_on_a_rate_column_becomes_a_decimal_rate() -> None:
    mapping = DatasetMapping(number_format=NumberFormat())
    frame = pl.DataFrame({"annual_rate": ["12.5%", "0.0899"], "principal": ["12.5%", "1E+2"]})
    mapped = apply_mapping(frame, "loans", mapping)
    assert mapped["annual_rate"].to_list() == ["0.125", "0.0899"]
    # A percentage is not an amount of money.
    assert mapped["principal"].to_list() == [None, "100.00"]
    assert mapped["mapping_errors"].to_list() == [["loans.principal.type"], []]


def test_a_status_code_table_gives_status_and_dpd_from_the_codes_range(tmp_path: Path) -> None:
    frame = _read_tape(
        tmp_path,
        ",Month,Balance,Status\nL1,Mar-2018,100,Late (31-120 days)\nL2,Mar-2018,50,Charged Off\n",
    )
    assert frame["status"].to_list() == ["delinquent", "charged_off"]
    assert frame["dpd"].to_list() == ["31", "121"]
    assert frame["charged_off_principal"].to_list() == ["0.00", "50.00"]


def test_a_delivered_dpd_outside_its_status_codes_range_breaks_a_rule(tmp_path: Path) -> None:
    mapping = TAPE_MAPPING.replace(
        "      Status: status\n", "      Status: status\n      DPD: dpd\n"
    )
    frame = _read_tape(
        tmp_path,
        ",Month,Balance,Status,DPD\nL1,Mar-2018,100,Current,45\nL2,Mar-2018,50,Current,0\n",
        mapping,
    )
    assert frame["dpd"].to_list() == ["45", "0"]
    assert frame["read_errors"].to_list() == [["loan_tape.dpd.status_code_range"], []]


def test_constants_and_derived_columns_fill_what_the_tape_lacks() -> None:
    mapping = DatasetMapping(
        columns={"id": "loan_id", "issue_d": "origination_date"},
        constants={"product": "cash_loan", "repayment_method": "equal_instalment"},
        derived={
            "borrower_id": 'concat("B-", member_id)',
            "first_due_date": 'add_months(date(issue_d, "%b-%Y"), 1)',
            "principal": "funded - 0.5",
            "term_months": "number(slice(term, 1, 2))",
        },
        date_formats={"origination_date": "%b-%Y"},
    )
    frame = pl.DataFrame(
        {
            "id": ["A1", "A2"],
            "member_id": ["77", "78"],
            "issue_d": ["Dec-2017", "Jan-2018"],
            "funded": ["1000", "2000.25"],
            "term": [" 36 months", " 60 months"],
        }
    )
    renamed, present = map_columns(frame, frame.columns, "loans", mapping)
    mapped = apply_mapping(renamed, "loans", mapping)
    assert {"product", "borrower_id", "first_due_date", "principal", "term_months"} <= present
    assert mapped["product"].to_list() == ["cash_loan", "cash_loan"]
    assert mapped["borrower_id"].to_list() == ["B-77", "B-78"]
    assert mapped["origination_date"].to_list() == ["2017-12-01", "2018-01-01"]
    assert mapped["first_due_date"].to_list() == ["2018-01-01", "2018-02-01"]
    assert mapped["principal"].to_list() == ["999.50", "1999.75"]
    assert mapped["term_months"].to_list() == ["36", "60"]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("__import__('os').system('true')", "only the listed functions"),
        ("open('x')", "unknown function or wrong number of arguments: open()"),
        ("loan_id.upper()", "only the listed functions"),
        ("loan_id.__class__", "Attribute is not part of the expression language"),
        ("[1, 2]", "List is not part of"),
        ("principal +", "does not parse"),
    ],
)
def test_a_derivation_outside_the_safe_language_names_file_rule_and_column(
    tmp_path: Path, expression: str, problem: str
) -> None:
    path = tmp_path / "acme.mapping.yaml"
    path.write_text(
        "source: acme\ndatasets:\n  loans:\n    derived:\n"
        f"      borrower_id: {json.dumps(expression)}\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError) as raised:
        load_mapping(path)
    message = str(raised.value)
    assert message.startswith(
        "acme.mapping.yaml: rule datasets.loans.derived, column 'borrower_id'"
    )
    assert problem in message


def test_a_mapped_loan_tape_is_ingested_with_lineage_and_quarantine(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "landing" / "mappings").mkdir(parents=True)
    (root / "landing" / "mappings" / "us_servicer.mapping.yaml").write_text(
        TAPE_MAPPING, encoding="utf-8"
    )
    folder = root / "landing" / DAY.isoformat()
    folder.mkdir()
    (folder / "loans.csv").write_text(
        "loan_id,borrower_id,product,origination_date,first_due_date,principal,annual_rate,"
        "term_months,repayment_method,province\n"
        "L1,B1,cash_loan,2024-01-10,2024-02-10,1200.00,0.12,12,equal_instalment,CN-BJ\n",
        encoding="utf-8",
    )
    (folder / "loan_tape.us_servicer.csv").write_text(
        ',Month,Balance,Status\nL1,Jan-2024,"1,200.00",Current\nL9,Jan-2024,5,Current\n',
        encoding="utf-8",
    )
    outcome = ingest_dates(Catalog(root), [DAY])
    staged = pl.read_parquet(Catalog(root).staged_partition("loan_tape", DAY))
    assert staged.select("loan_id", "as_of_date", "current_principal", "dpd", "status").rows() == [
        ("L1", date(2024, 1, 31), 120_000, 0, "current")
    ]
    bad = pl.read_parquet(Catalog(root).quarantine_partition("loan_tape", DAY))
    assert bad["rule_ids"].to_list() == [["loan_tape.loan_id.known_loan"]]
    (tape,) = [f for f in outcome.files if f.dataset == "loan_tape"]
    assert (tape.rows_read, tape.rows_accepted, tape.rows_quarantined) == (2, 1, 1)


US_TAPE = (
    "id,member_id,issue_d,funded_amnt,int_rate,term,addr_state,snapshot_month,out_prncp,"
    "loan_status,total_rec_prncp,total_rec_int,total_rec_late_fee,recoveries\n"
    'U1,901,Dec-2015,"$12,000",13.56%, 36 months,ca,Mar-2016,"11,004.12",Current,995.88,'
    "402.10,0,0\n"
    "U2,902,Jan-2016,5000,9.99%, 60 months,NY,Mar-2016,0,Charged Off,250.00,80.00,15.00,12.5\n"
)


def test_a_us_instalment_tape_enters_through_its_mapping_as_loans_and_snapshots(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    (root / "landing" / "mappings").mkdir(parents=True)
    shipped = EXAMPLE.parent / "us_instalment.mapping.yaml"
    shutil.copy(shipped, root / "landing" / "mappings" / shipped.name)
    day = date(2016, 3, 31)
    folder = root / "landing" / day.isoformat()
    folder.mkdir()
    for dataset in ("loans", "loan_tape"):
        (folder / f"{dataset}.us_instalment.csv").write_text(US_TAPE, encoding="utf-8")
    outcome = ingest_dates(Catalog(root), [day])
    assert sum(f.rows_quarantined for f in outcome.files) == 0, outcome.rule_counts
    loans = pl.read_parquet(Catalog(root).staged_partition("loans", day)).sort("loan_id")
    assert loans.select(
        "borrower_id", "origination_date", "first_due_date", "principal", "term_months", "province"
    ).rows() == [
        ("M901", date(2015, 12, 1), date(2016, 1, 1), 1_200_000, 36, "US-CA"),
        ("M902", date(2016, 1, 1), date(2016, 2, 1), 500_000, 60, "US-NY"),
    ]
    assert [str(r) for r in loans["annual_rate"]] == ["0.135600", "0.099900"]
    tape = pl.read_parquet(Catalog(root).staged_partition("loan_tape", day)).sort("loan_id")
    assert tape.select(
        "as_of_date", "current_principal", "dpd", "status", "charged_off_principal"
    ).rows() == [
        (day, 1_100_412, 0, "current", 0),
        (day, 0, 121, "charged_off", 475_000),
    ]
    assert tape["recoveries_to_date"].to_list() == [0, 1_250]
