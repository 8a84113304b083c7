"""Polars' "Sortedness of columns cannot be checked" warning, made a test failure.

Polars issues that warning from Rust while a query runs, where the suite's
``filterwarnings = error`` cannot turn it into an exception (it is printed and
the query goes on). These helpers record it instead and fail the test, so a
``join_asof`` whose order is not guaranteed and declared cannot creep back into
the tape code.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SORTEDNESS_WARNING = "Sortedness of columns cannot be checked"


@contextmanager
def no_sortedness_warning() -> Iterator[None]:
    """Fail if Polars warns that it cannot check a join's sortedness inside the block."""
    with warnings.catch_warnings(record=True) as caught:
        # Only this warning is recorded; every other one follows the suite's filters.
        warnings.filterwarnings("always", message=SORTEDNESS_WARNING, category=UserWarning)
        yield
    found = sorted({str(w.message) for w in caught if SORTEDNESS_WARNING in str(w.message)})
    if found:
        pytest.fail(f"polars warned: {'; '.join(found)}")


@pytest.fixture
def fail_on_sortedness_warning() -> Iterator[None]:
    """The test fails if Polars cannot check a join's sortedness (see the module docstring)."""
    with no_sortedness_warning():
        yield
