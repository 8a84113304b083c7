"""Shared data roots of the flow tests (helpers in tests/flows/books.py).

A Prefect flow run costs about a second and a backfill of the tiny tape several: tests
that only read a clean backfill share :func:`tiny_backfill`; tests that change it work
on a copy (``books.copy_root``); tests that need an unprocessed root take
:func:`tiny_root`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.flows.books import Backfilled, build_amortising_book, data_root, shared_book

TINY_START, TINY_END = date(2024, 1, 1), date(2024, 3, 31)
"""The business dates of the tiny tape (tests/conftest.py, ``tiny_landing``)."""


@pytest.fixture(scope="session")
def tiny_backfill(
    harness: str, tiny_landing: Path, tmp_path_factory: pytest.TempPathFactory
) -> Backfilled:
    """A clean backfill of the whole tiny tape; read it, or copy it before changing it."""
    from flows.pipeline import backfill_flow

    root = data_root(tmp_path_factory.mktemp("tiny-backfill"), tiny_landing)
    state = backfill_flow(start=TINY_START, end=TINY_END, data_root=str(root), return_state=True)
    return Backfilled(root, state.result(), state.state_details.flow_run_id)


@pytest.fixture
def tiny_root(tiny_landing: Path, tmp_path: Path) -> Path:
    """A data root holding a copy of the tiny tape's landing zone, nothing processed."""
    return data_root(tmp_path, tiny_landing)


@pytest.fixture(scope="session")
def amortising_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The early-amortisation book (books.build_amortising_book), built once per run; read it."""
    return shared_book(tmp_path_factory, "amortising", build_amortising_book)
