"""The package layers: flows → (data_contracts, transforms, reports); reports → transforms;
transforms imports none of the others, nor Prefect, Great Expectations or Jinja."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "transforms": {"flows", "reports", "data_contracts", "prefect", "great_expectations", "jinja2"},
    "reports": {"flows", "data_contracts", "prefect", "great_expectations"},
    "data_contracts": {"flows", "reports", "prefect"},
}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``source``, nested ones included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT).as_posix()}:{line} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in imported_packages(path.read_text(encoding="utf-8"))
        if name in FORBIDDEN[package]
    ]
    assert offending == []


def test_the_check_sees_nested_and_dotted_imports() -> None:
    source = (
        "import reports.labels\n"
        "def f():\n"
        "    from data_contracts.deal import DealTerms\n"
        "from . import sibling\n"
    )
    assert imported_packages(source) == [(1, "reports"), (3, "data_contracts")]
