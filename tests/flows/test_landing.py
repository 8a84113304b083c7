"""Landing readers: every supported format and encoding gives the same rows and lines."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows.landing import decode, read_landing_file
from tests.flows.ingest_cases import LOAN_HEADER, csv_text, loan
from transforms import schema

DAY = date(2024, 3, 5)
ROWS = [loan("N1", channel="支付宝"), loan("N2", channel="app, web")]


def _records() -> list[dict[str, str]]:
    header = LOAN_HEADER.split(",")
    first = dict(zip(header, ROWS[0].split(","), strict=True))
    second = dict(zip(header, ROWS[1].replace("app, web", "app; web").split(","), strict=True))
    second["channel"] = "app, web"
    return [first, second]


def _csv(separator: str, line_end: str, bom: bool) -> bytes:
    lines = [LOAN_HEADER.replace(",", separator)]
    for record in _records():
        values = [f'"{v}"' if ("," in v or '"' in v) else v for v in record.values()]
        lines.append(separator.join(values))
    text = line_end.join(lines) + line_end
    return ("\ufeff" if bom else "").encode() + text.encode("utf-8")


def _parquet() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(_records()).write_parquet(buffer)
    return buffer.getvalue()


def _jsonl() -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records()).encode()


FORMATS: dict[str, tuple[str, bytes, list[int]]] = {
    "csv comma LF": ("loans.csv", _csv(",", "\n", bom=False), [2, 3]),
    "csv comma CRLF with BOM": ("loans.csv", _csv(",", "\r\n", bom=True), [2, 3]),
    "csv pipe CRLF": ("loans.csv", _csv("|", "\r\n", bom=False), [2, 3]),
    "csv gzip": ("loans.csv.gz", gzip.compress(_csv(",", "\n", bom=True)), [2, 3]),
    "csv GB18030": (
        "loans.csv",
        _csv(",", "\n", bom=False).decode().encode("gb18030"),
        [2, 3],
    ),
    "parquet": ("loans.parquet", _parquet(), [1, 2]),
    "jsonl": ("loans.jsonl", _jsonl(), [1, 2]),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_reads_the_same_rows(name: str, tmp_path: Path) -> None:
    file_name, data, lines = FORMATS[name]
    path = tmp_path / "landing" / DAY.isoformat() / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    read = read_landing_file("loans", DAY, path, tmp_path)
    assert read.error is None
    assert read.missing_columns == ()
    frame = read.frame
    assert frame.select(list(schema.LOANS)).to_dicts() == _records()
    assert frame["source_line"].to_list() == lines
    assert frame["source_file"].unique().to_list() == [f"landing/{DAY}/{file_name}"]
    assert frame["read_errors"].to_list() == [[], []]
    assert json.loads(frame["original"][1])["channel"] == "app, web"


def test_a_quoted_field_with_a_line_break_keeps_its_first_line(tmp_path: Path) -> None:
    text = LOAN_HEADER + "\n" + loan("N1", channel='"two\nlines"') + "\n" + loan("N2") + "\n"
    path = tmp_path / "loans.csv"
    path.write_text(text, encoding="utf-8")
    read = read_landing_file("loans", DAY, path, tmp_path)
    assert read.frame["source_line"].to_list() == [2, 4]
    assert read.frame["channel"].to_list() == ["two\nlines", "app"]


def test_blank_lines_are_skipped_and_lines_still_count(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    path.write_bytes(csv_text(LOAN_HEADER, loan("N1"), "", "  ", loan("N2")))
    read = read_landing_file("loans", DAY, path, tmp_path)
    assert read.frame["source_line"].to_list() == [2, 5]


def test_detection_prefers_utf8_then_gb18030() -> None:
    assert decode("花呗".encode(), None) == ("花呗", "utf-8")
    assert decode("花呗".encode("gbk"), None) == ("花呗", "gb18030")
    assert decode("\ufeff花呗".encode(), None) == ("花呗", "utf-8")


def test_a_declared_encoding_is_used_strictly() -> None:
    assert decode("借呗".encode("gbk"), "gbk") == ("借呗", "gbk")
    with pytest.raises(ValueError, match="line 2: not valid utf-8 text"):
        decode(b"a\n" + "借呗".encode("gbk"), "utf-8")
