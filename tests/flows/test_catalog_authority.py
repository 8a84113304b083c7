"""Only the catalog builds data-root paths, lists folders or reads dates from folder names."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest

from flows.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "reports", "transforms")

ALLOWED = {
    "flows/catalog.py": "the catalog itself",
    "flows/landing.py": "the landing-zone scanner: vets each entry (links, devices)",
    "flows/version.py": "looks for the source checkout's .git, not the data root",
    "flows/serve_validation.py": "its socket is in a private temporary folder, not the data root",
}
ALLOWED_FOLDERS = {
    "flows/generator/": "writes a servicer's synthetic landing zone into a folder it is given",
}

LISTING_CALLS = {"glob", "rglob", "iterdir", "walk", "listdir", "scandir"}


def _is_string(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _is_package_resource(node: ast.expr) -> bool:
    """``files("reports") / "x.yaml"``: a file shipped in a package, not under the data root."""
    while isinstance(node, ast.BinOp):
        node = node.left
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "files"
    )


def violations(source: str) -> list[tuple[int, str]]:
    """(line, what) for every path built, folder listed or folder name parsed in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if _is_string(node.right) and not _is_package_resource(node.left):
                found.append((node.lineno, "path joined with a string"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            receiver = node.func.value
            if name in LISTING_CALLS:
                found.append((node.lineno, f"folder listed with {name}()"))
            elif name == "strptime" and not (
                isinstance(receiver, ast.Attribute) and receiver.attr == "str"
            ):
                # Polars' ``.str.strptime`` parses column values, not path parts.
                found.append((node.lineno, "date parsed with strptime"))
            elif name == "removeprefix" and any(
                isinstance(a, ast.Constant) and str(a.value).endswith("=") for a in node.args
            ):
                found.append((node.lineno, "partition folder name parsed"))
            elif name == "fromisoformat" and any(
                isinstance(a, ast.Attribute) and a.attr in {"name", "stem"} for a in node.args
            ):
                found.append((node.lineno, "date parsed from a file or folder name"))
    return found


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_module_outside_the_catalog_builds_a_path_or_parses_a_folder_name() -> None:
    offending = []
    for path in _sources():
        shown = path.relative_to(ROOT).as_posix()
        if shown in ALLOWED or any(shown.startswith(f) for f in ALLOWED_FOLDERS):
            continue
        for line, what in violations(path.read_text(encoding="utf-8")):
            offending.append(f"{shown}:{line}: {what}")
    assert offending == [], "ask flows/catalog.py instead:\n" + "\n".join(offending)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ('p = root / "staged"', "path joined with a string"),
        ('p = root / f"business_date={d}"', "path joined with a string"),
        ('xs = sorted(folder.glob("*.json"))', "folder listed with glob()"),
        ("xs = list(folder.iterdir())", "folder listed with iterdir()"),
        ('d = datetime.strptime(p.name, "%Y-%m-%d")', "date parsed with strptime"),
        ('d = p.name.removeprefix("as_of_date=")', "partition folder name parsed"),
        ("d = date.fromisoformat(p.parent.name)", "date parsed from a file or folder name"),
    ],
)
def test_the_check_catches_each_kind_of_path_handling(source: str, what: str) -> None:
    assert violations(source) == [(1, what)]


def test_the_check_passes_package_resources_and_column_parsing() -> None:
    source = (
        'text = (files("reports") / "translations" / "en.yaml").read_text()\n'
        'col = pl.col("d").str.strptime(pl.Date, "%Y%m%d")\n'
    )
    assert violations(source) == []


def test_staged_partitions_are_found_by_their_business_date(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    for day in (date(2024, 3, 2), date(2024, 3, 1), date(2024, 3, 4)):
        catalog.write_text("x", catalog.staged_partition("loans", day))
    stray = tmp_path / "staged" / "loans" / "notes"
    stray.mkdir()

    assert catalog.staged_dates("loans", date(2024, 3, 3)) == [date(2024, 3, 1), date(2024, 3, 2)]
    assert catalog.staged_by_date("loans")[date(2024, 3, 4)] == catalog.staged_partition(
        "loans", date(2024, 3, 4)
    )


def test_snapshot_dates_ignore_folders_that_are_not_an_as_of_partition(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    catalog.write_text("x", catalog.snapshot_partition(date(2024, 1, 31)))
    catalog.write_text("x", tmp_path / "curated" / "loan_snapshots" / "as_of_date=20240229" / "p")

    assert catalog.snapshot_dates() == [date(2024, 1, 31)]
