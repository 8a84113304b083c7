"""Deal terms from ``landing/deals/<pool_id>.yaml`` (``.yml`` is read the same way).

Each file is read as a regular file inside the data root (a link, a device or a
folder with a deal's name is refused by name and never opened) by the guarded
YAML loader (:mod:`flows.safe_yaml`: size cap, alias and nesting budget,
duplicate keys refused), then by the typed model (shape, types, identifiers,
plausible dates, tranches sized on the cut-off pool), then the deals are judged
by their data contract (``deal.odcs.yaml``): a deal breaking an ``error`` rule
is left out of the run with the rule named; ``warning`` rules are reported and
the deal is used. Every error names the file, the field and the bad value.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl
from pydantic import ValidationError

from data_contracts.contract import contract_path, load_contract
from data_contracts.deal import DealTerms, describe_errors
from data_contracts.deal_table import deal_frame
from data_contracts.validate import validate_frame
from flows.catalog import Catalog, deal_check_result, sha256_file
from flows.errors import InputRejectedError
from flows.limits import Limits, current_limits, refusal
from flows.safe_yaml import load_yaml_file
from flows.version import code_version
from transforms.performance import PerformanceRules

DEAL_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True)
class DealBook:
    """The deals that loaded, and a clear error for each that did not."""

    deals: dict[str, DealTerms] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()
    """(entry, reason): entries of the deals folder that are not deal files (not read)."""
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)
    """pool_id to (``deals/<file>``, sha256) of the file each deal was loaded from."""

    def rejections(self) -> list[InputRejectedError]:
        """One error (exit code 3) per problem, naming the deal file first."""
        found = []
        for error in self.errors:
            where, _, message = error.partition(": ")
            found.append(InputRejectedError(message or error, where=where if message else None))
        return found


@dataclass(frozen=True)
class _Entries:
    files: list[Path]
    errors: list[str]
    ignored: list[tuple[str, str]]


def _scan(catalog: Catalog) -> _Entries:
    """Deal files of the deals folder by ``lstat``: regular files read, others refused."""
    root = catalog.root
    folder = catalog.deals_dir
    try:
        folder.lstat()
    except FileNotFoundError:
        return _Entries([], [], [])
    except OSError as exc:
        shown = folder.relative_to(root).as_posix()
        return _Entries([], [f"{shown}: cannot be examined ({exc.strerror})"], [])
    reason = refusal(folder, root, directory=True)
    if reason is not None:
        return _Entries([], [f"{folder.relative_to(root).as_posix()}: {reason}"], [])
    files: list[Path] = []
    errors: list[str] = []
    ignored: list[tuple[str, str]] = []
    stems: dict[str, Path] = {}
    for path in catalog.deals_entries():
        shown = path.relative_to(root).as_posix()
        if path.suffix not in DEAL_SUFFIXES:
            ignored.append((shown, "not a deal file (<pool_id>.yaml or .yml): not read"))
            continue
        reason = refusal(path, root)
        if reason is not None:
            errors.append(f"{shown}: {reason}")
            continue
        if path.stem in stems:
            other = stems[path.stem].relative_to(root).as_posix()
            errors.append(f"{shown}: a second deal file for pool {path.stem!r} (also {other})")
            continue
        stems[path.stem] = path
        files.append(path)
    return _Entries(files, errors, ignored)


def deal_pool_ids(catalog: Catalog) -> frozenset[str]:
    """Pools that have a deal file (whether or not its terms are valid); nothing is read."""
    return frozenset(path.stem for path in _scan(catalog).files)


def load_deals(catalog: Catalog, *, limits: Limits | None = None) -> DealBook:
    """Load and validate every deal file; a bad one is reported, the others go on."""
    limits = limits if limits is not None else current_limits()
    entries = _scan(catalog)
    deals: dict[str, DealTerms] = {}
    errors = list(entries.errors)
    for path in entries.files:
        where = path.relative_to(catalog.root).as_posix()
        try:
            document = load_yaml_file(path, catalog.root, limits)
        except InputRejectedError as exc:
            errors.append(f"{exc.where or where}: {exc.message}")
            continue
        if not isinstance(document, dict):
            kind = "empty" if document is None else f"a {type(document).__name__}"
            errors.append(f"{where}: invalid deal terms: the file is {kind}, not a mapping")
            continue
        try:
            window = {"min_date": limits.min_date, "max_date": limits.max_date}
            deal = DealTerms.model_validate(document, context=window)
        except ValidationError as exc:
            errors.extend(describe_errors(where, exc))
            continue
        if deal.pool_id != path.stem:
            errors.append(
                f"{where}: field pool_id: {deal.pool_id!r} does not match the file name "
                f"(expected {path.stem!r})"
            )
            continue
        deals[deal.pool_id] = deal
    if not deals:
        return DealBook(deals, tuple(errors), (), tuple(entries.ignored))
    ordered = sorted(deals)
    files = {p.stem: p.relative_to(catalog.root).as_posix() for p in entries.files}
    failures = _kept_deal_failures(
        catalog, deal_frame(deals[p] for p in ordered).serialize(format="json")
    )
    warnings: list[str] = []
    for position, rule_id, severity, message in failures.select(
        "row_index", "rule_id", "severity", "message"
    ).iter_rows():
        pool_id = ordered[position]
        where = files[pool_id]
        if severity == "error":
            errors.append(f"{where}: breaks {rule_id}: {message}")
            deals.pop(pool_id, None)
        else:
            warnings.append(f"{where}: warning {rule_id}: {message}")
    sources = {
        pool_id: (f"deals/{path.name}", sha256_file(path))
        for pool_id, path in sorted((p.stem, p) for p in entries.files)
        if pool_id in deals
    }
    return DealBook(deals, tuple(errors), tuple(warnings), tuple(entries.ignored), sources)


def _kept_deal_failures(catalog: Catalog, frame: str) -> pl.DataFrame:
    """The deal contract's failures on a deal table, read back when these terms were
    checked before with this contract and code (``catalog.deal_check_result``)."""
    contract = contract_path("deal").read_bytes()
    digest = hashlib.sha256(code_version().encode() + b"|" + contract + b"|" + frame.encode())
    path = deal_check_result(catalog, digest.hexdigest())
    if path.is_file():
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError):
            pass  # unreadable: check again and replace it
    failures = _deal_failures(frame)
    with contextlib.suppress(OSError):  # a read-only data root checks every time
        catalog.write_frame(failures, path)
    return failures


def _deal_failures(frame: str) -> pl.DataFrame:
    """The deal contract's failures on a deal table (serialised as JSON)."""
    table = pl.DataFrame.deserialize(io.StringIO(frame), format="json")
    return validate_frame(load_contract("deal"), table).failures


def performance_rules(deal: DealTerms) -> PerformanceRules:
    """The deal's definitions the engine applies (its DPD tolerance is in fen)."""
    shared = deal.definitions.model_dump(
        include={"default_dpd", "charge_off_dpd", "advance_payment_days"}
    )
    return PerformanceRules(**shared, tolerance_fen=deal.definitions.dpd_tolerance)
