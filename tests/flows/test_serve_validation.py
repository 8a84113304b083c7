"""The validation host: served runs get the in-process outcome without importing GX."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.contract import Contract, load_contract
from data_contracts.validate import ValidationOutcome, validate_frame
from flows import serve_validation
from flows.serve_validation import ADDRESS_VARIABLE, KEY_VARIABLE, validate, validation_host
from tests.data_contracts.test_validate import LOAN
from transforms import schema


def _loans() -> pl.DataFrame:
    """Three loans: the second with no principal, the third repeating the first's id."""
    return pl.DataFrame(
        [
            {**LOAN, "loan_id": "L-1"},
            {**LOAN, "loan_id": "L-2", "principal": 0},
            {**LOAN, "loan_id": "L-1", "annual_rate": Decimal("0.5")},
        ],
        schema=schema.INPUT_DATASETS["loans"],
    )


def _not_here(contract: Contract, frame: pl.DataFrame) -> ValidationOutcome:
    raise AssertionError("validated in the run's own process")


def _assert_same(found: ValidationOutcome, expected: ValidationOutcome) -> None:
    assert_frame_equal(found.failures, expected.failures)
    assert found.rule_results == expected.rule_results
    assert (found.contract_id, found.row_count) == (expected.contract_id, expected.row_count)


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    with validation_host() as address:
        assert address is not None, "the validation host did not start"
        yield address


def test_the_host_answers_with_the_outcome_of_validating_in_process(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract, frame = load_contract("loans"), _loans()
    expected = validate_frame(contract, frame)
    assert expected.failures.height > 0
    assert os.environ[ADDRESS_VARIABLE] == host
    monkeypatch.setattr(serve_validation, "validate_frame", _not_here)
    _assert_same(validate(contract, frame), expected)


def test_a_run_of_other_code_validates_in_its_own_process(
    host: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    contract, frame = load_contract("loans"), _loans()
    monkeypatch.setattr(serve_validation, "code_version", lambda: "0+other")
    with caplog.at_level(logging.WARNING, logger=serve_validation.__name__):
        found = validate(contract, frame)
    _assert_same(found, validate_frame(contract, frame))
    assert "the run 0+other" in caplog.text


def test_a_frame_over_the_host_limit_is_validated_in_the_run(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract, frame = load_contract("loans"), _loans()
    called: list[int] = []

    def local(contract: Contract, frame: pl.DataFrame) -> ValidationOutcome:
        called.append(frame.height)
        return validate_frame(contract, frame)

    monkeypatch.setattr(serve_validation, "HOST_MAX_ROWS", 2)
    monkeypatch.setattr(serve_validation, "validate_frame", local)
    validate(contract, frame)
    assert called == [3]


def test_an_unreachable_host_leaves_the_run_to_validate_by_itself(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    contract, frame = load_contract("loans"), _loans()
    monkeypatch.setenv(ADDRESS_VARIABLE, f"{tmp_path}/gone.sock")
    monkeypatch.setenv(KEY_VARIABLE, "00" * 32)
    with caplog.at_level(logging.WARNING, logger=serve_validation.__name__):
        found = validate(contract, frame)
    _assert_same(found, validate_frame(contract, frame))
    assert "unreachable" in caplog.text


def test_the_host_refuses_what_is_not_a_validation_request() -> None:
    status, reason = serve_validation._answer({"frame": None}, "0.1.0")
    assert status == "refused"
    assert "not a validation request" in str(reason)


def test_serve_goes_on_without_a_host_that_is_not_ready_in_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Another host of this module may be named: the variables come back after the test.
    monkeypatch.delenv(ADDRESS_VARIABLE, raising=False)
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.setattr(serve_validation, "HOST_START_SECONDS", 0.0)
    with (
        caplog.at_level(logging.WARNING, logger=serve_validation.__name__),
        validation_host() as address,
    ):
        assert address is None
        assert ADDRESS_VARIABLE not in os.environ
    assert "did not start" in caplog.text
