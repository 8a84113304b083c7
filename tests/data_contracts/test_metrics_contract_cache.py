"""The metrics contract is parsed once per file version, and callers cannot change it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from data_contracts.metrics_contract import contract_path, load_contract


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    parse = yaml.safe_load

    def counted(text: str) -> object:
        calls.append(1)
        return parse(text)

    monkeypatch.setattr(yaml, "safe_load", counted)
    return calls


def test_an_unchanged_contract_is_parsed_once_and_an_edited_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.odcs.yaml"
    shutil.copyfile(contract_path(), path)
    calls = _counting_parses(monkeypatch)

    first = load_contract(path)
    assert load_contract(path) == first
    assert len(calls) == 1

    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f"version: {first['version']}", "version: 9.9.9", 1))
    stat = path.stat()
    # A later modification time, whatever the file system's clock resolution.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_contract(path)["version"] == "9.9.9"
    assert len(calls) == 2


def test_changing_a_loaded_contract_does_not_change_the_next_load() -> None:
    loaded = load_contract()
    version = loaded["version"]
    loaded["version"] = "changed"
    loaded["schema"].clear()

    again = load_contract()
    assert again["version"] == version
    assert len(again["schema"]) == 1
