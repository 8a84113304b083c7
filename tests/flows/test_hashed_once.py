"""A run reads each landing file once to hash it: the delivery check records the sha256
(``state/file_hashes.json``) and ingest takes it from there."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from flows import delivery, ingest
from flows import state as state_module
from flows.catalog import Catalog, sha256_file
from flows.delivery import scan_days
from flows.generator import generate_landing
from flows.ingest import ingest_dates


def test_the_delivery_check_and_ingest_hash_each_landing_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_landing(tmp_path / "landing", loans=20, start="2024-01", months=1, seed=3)
    catalog = Catalog(tmp_path)
    day = catalog.landing_dates()[0]
    read: Counter[Path] = Counter()

    def counting(path: Path) -> str:
        read[path.resolve()] += 1
        return sha256_file(path)

    for module in (state_module, delivery, ingest):
        monkeypatch.setattr(module, "sha256_file", counting)
    scan = scan_days(catalog, [day], required=frozenset([day]), empty=frozenset())
    assert scan[day].check.status == "complete"
    outcome = ingest_dates(catalog, [day])
    landing_files = {p.resolve() for p in catalog.landing_dir(day).iterdir()}
    data_files = {p for p in landing_files if p.name != "manifest.json"}
    assert data_files, "the generated day delivers files"
    assert {p: read[p] for p in data_files} == dict.fromkeys(data_files, 1)
    # The outcome still names each file's sha256, as read.
    recorded = {catalog.root.joinpath(f.path).resolve(): f.sha256 for f in outcome.files}
    assert recorded == {p: sha256_file(p) for p in data_files}
