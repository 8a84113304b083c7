"""Servicer mappings: the shipped example maps a GB18030, pipe-separated Chinese tape exactly."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.catalog import Catalog
from flows.ingest import ingest_dates
from flows.mapping import DatasetMapping, MappingError, apply_mapping, load_mapping
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
    with pytest.raises(MappingError, match="acme.mapping.yaml: rule datasets.loans.columns, column 'loan_number'"):
        load_mapping(path)


def test_a_mapping_must_be_named_after_its_source(tmp_path: Path) -> None:
    path = tmp_path / "acme.mapping.yaml"
    path.write_text("source: other\ndatasets: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 'acme'"):
        load_mapping(path)
