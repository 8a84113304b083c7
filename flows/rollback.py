"""A way back from a bad run: restore the data outputs as a named good run left them.

Every successful run hard-links its data outputs (``staged``, ``quarantine``,
``curated``, ``marts``, ``state``) into ``runs/snapshots/<run_id>/`` — cheap, because
every write replaces a file by rename, so the link keeps the bytes the run wrote.
``rollback_to`` puts those folders back whole. Published report versions are never
removed (they are immutable); the next run re-publishes a new version where figures
differ from the latest published one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flows.catalog import SNAPSHOT_FOLDERS, Catalog
from flows.errors import SettingsError

KEEP_IN_STATE = ("data-root.lock", "alerts.jsonl")
"""State files that belong to the data root, not to a run: never rolled back."""


def rollback_to(catalog: Catalog, run_id: str) -> list[str]:
    """Replace the data outputs with the snapshot of ``run_id``; return the folders restored.

    Raises:
        SettingsError: No snapshot of that run (unknown id, failed run, or pruned).
    """
    snapshot = catalog.output_snapshot(run_id)
    if not snapshot.is_dir():
        known = sorted(p.name for p in catalog.output_snapshots())
        raise SettingsError(
            f"no output snapshot of run {run_id!r} (snapshots: {', '.join(known) or 'none'})",
            where=str(snapshot.parent),
        )
    restored = []
    for folder in SNAPSHOT_FOLDERS:
        source = catalog.output_snapshot_folder(run_id, folder)
        target = catalog.data_folder(folder)
        staging = catalog.rollback_staging(folder)
        shutil.rmtree(staging, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, staging, copy_function=os.link)
        else:
            staging.mkdir()
        if folder == "state":
            for name in KEEP_IN_STATE:
                if (target / name).is_file():
                    (staging / name).unlink(missing_ok=True)
                    os.link(target / name, staging / name)
        _swap(staging, target)
        restored.append(folder)
    return restored


def _swap(staging: Path, target: Path) -> None:
    """Put ``staging`` in place of ``target`` (the old one is removed after the rename)."""
    old = target.with_name(f".rollback-old-{target.name}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
