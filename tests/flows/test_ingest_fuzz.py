"""Fuzzing ingest and deal loading: random bytes, random CSV shapes, random YAML.

Whatever arrives, no exception escapes: a file is read, refused or reported
unreadable with its name, and per file rows read = accepted + quarantined.
Examples are few and derandomised so the whole file runs in a few seconds and
the same way every time.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.catalog import Catalog
from flows.deals import load_deals
from flows.ingest import ingest_dates
from flows.landing import read_landing_file
from flows.limits import Limits
from tests.flows.ingest_cases import DEAL_HB1, LOAN_HEADER, loan

DAY = date(2024, 3, 5)
LIMITS = Limits(max_file_bytes=1 << 20, max_decompressed_bytes=1 << 20)

FAST = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""For readers only: thousands of examples a second."""

SLOW = settings(FAST, max_examples=5)
"""For whole ingests (the contract suite runs on every example)."""

_FORMATS = ("loans.csv", "loans.csv.gz", "loans.jsonl", "loans.parquet")

_CELL = st.text(
    alphabet=st.sampled_from([*"ab1.0-", ",", '"', "\n", "\r", "\x00", "\x1b", "|", "花", " "]),
    max_size=12,
)


@FAST
@given(name=st.sampled_from(_FORMATS), data=st.binary(max_size=600), gz=st.booleans())
def test_random_bytes_never_escape_the_reader(
    name: str, data: bytes, gz: bool, tmp_path: Path
) -> None:
    path = tmp_path / "landing" / DAY.isoformat() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz and name.endswith(".gz") else data)
    read = read_landing_file("loans", DAY, path, tmp_path, limits=LIMITS)
    if read.error is not None:
        assert read.error.startswith(f"landing/{DAY}/{name}: ")
        assert read.frame.height == 0
    else:
        assert read.frame["source_file"].unique().to_list() in ([], [f"landing/{DAY}/{name}"])


@SLOW
@given(name=st.sampled_from(_FORMATS), data=st.binary(max_size=400))
def test_random_bytes_through_a_whole_ingest_are_accounted_for(
    name: str, data: bytes, fuzz_root: Path
) -> None:
    folder = fuzz_root / "landing" / DAY.isoformat()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    outcome = ingest_dates(Catalog(fuzz_root), [DAY], limits=LIMITS, deal_pools=frozenset())
    (file,) = outcome.files
    assert file.rows_read == file.rows_accepted + file.rows_quarantined
    assert all(e.where == f"landing/{DAY}/{name}" for e in outcome.rejections())


def _csv_text(header: list[str], rows: list[list[str]], quoted: bool) -> bytes:
    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if quoted else value

    lines = [",".join(cell(v) for v in row) for row in [header, *rows]]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "data"
    deals = root / "landing" / "deals"
    deals.mkdir(parents=True)
    (deals / "HB-1.yaml").write_text(DEAL_HB1)
    return root


@SLOW
@given(
    header=st.one_of(
        st.just(LOAN_HEADER.split(",")),
        st.lists(_CELL, min_size=1, max_size=15),
    ),
    rows=st.lists(
        st.one_of(
            st.lists(_CELL, max_size=15),
            st.builds(lambda i: loan(f"N{i}").split(","), st.integers(0, 99)),
        ),
        max_size=6,
    ),
    quoted=st.booleans(),
)
def test_random_csv_shapes_are_accounted_for(
    header: list[str], rows: list[list[str]], quoted: bool, fuzz_root: Path
) -> None:
    folder = fuzz_root / "landing" / DAY.isoformat()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "loans.csv").write_bytes(_csv_text(header, rows, quoted))
    outcome = ingest_dates(Catalog(fuzz_root), [DAY], limits=LIMITS, deal_pools=frozenset())
    (file,) = outcome.files
    assert file.rows_read == file.rows_accepted + file.rows_quarantined
    if file.error is not None:
        assert file.error.startswith(f"landing/{DAY}/loans.csv: ")
        assert [e.where for e in outcome.rejections()] == [f"landing/{DAY}/loans.csv"]


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False).map(str),
    st.text(max_size=20),
    st.dates().map(str),
)
_YAML_VALUES: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=20,
)
_DEAL_KEYS = ("pool_id", "name", "cutoff_date", "closing_date", "tranches", "definitions")


@settings(FAST, max_examples=60)
@given(
    document=st.one_of(
        _YAML_VALUES,
        st.fixed_dictionaries({}, optional=dict.fromkeys(_DEAL_KEYS, _YAML_VALUES)),
    ),
    noise=st.one_of(st.just(""), st.text(max_size=40)),
)
def test_random_yaml_never_escapes_deal_loading(
    document: object, noise: str, tmp_path: Path
) -> None:
    deals = tmp_path / "landing" / "deals"
    shutil.rmtree(deals, ignore_errors=True)
    deals.mkdir(parents=True)
    text = yaml.safe_dump(document, allow_unicode=True) + noise
    (deals / "FUZZ-1.yaml").write_text(text, encoding="utf-8")
    book = load_deals(Catalog(tmp_path), limits=Limits())
    assert set(book.deals) <= {"FUZZ-1"}
    if not book.deals:
        assert book.errors
        assert all(e.startswith("landing/deals/FUZZ-1.yaml") for e in book.errors)
        assert all(r.exit_code == 3 for r in book.rejections())
