"""Landing files: one folder per business date, canonical columns, yuan amounts.

Every file is written to a temporary sibling and renamed, and a day's file of a
dataset is written once, whole.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import yaml

from flows.delivery import MANIFEST_NAME, manifest_for
from flows.generator.bad_rows import spoil
from flows.generator.behaviour import Events
from flows.generator.book import loan_ids
from flows.generator.calendar import I64, Months, to_date
from flows.generator.pool import NO_PRICE, PoolEvents, demo_events, demo_participants
from transforms import schema


def yuan_text(column: str) -> pl.Expr:
    """Integer fen as yuan text with exactly two decimals (non-negative amounts)."""
    fen = pl.col(column)
    return pl.concat_str(
        (fen // 100).cast(pl.String), pl.lit("."), (fen % 100).cast(pl.String).str.zfill(2)
    ).alias(column)


def _dates(days: I64) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _write_by_day(
    out: Path, frame: pl.DataFrame, day_column: str, name: str, spoiled: date | None = None
) -> set[str]:
    """Write ``frame`` as ``out/<day>/<name>.csv`` per day; return the days written.

    The file of the ``spoiled`` day also carries a few bad rows (``bad_rows.spoil``).
    """
    written: set[str] = set()
    for (day,), part in frame.partition_by(day_column, as_dict=True, maintain_order=True).items():
        folder = day.isoformat()
        if day == spoiled:
            part = spoil(name, part)  # noqa: PLW2901 (the day's rows, with its bad rows)
        _write_text(out / folder / f"{name}.csv", part.write_csv())
        written.add(folder)
    return written


def write_loans(out: Path, loans: pl.DataFrame, spoiled: date | None = None) -> set[str]:
    """Loans in the folder of their origination date."""
    frame = loans.sort("loan_id").with_columns(
        yuan_text("principal"), pl.col("annual_rate").cast(pl.String).str.strip_chars_end("0")
    )
    return _write_by_day(out, frame, "origination_date", "loans", spoiled)


def write_repayments(
    out: Path, events: Events, first_number: int, spoiled: date | None = None
) -> set[str]:
    """Repayments in the folder of their value date.

    Events are numbered in (value date, loan, order-within-day) order, so
    ``repayment_id`` order is the order the engine applies them in.
    """
    if events.size == 0:
        return set()
    order = np.lexsort((events.order, events.loan, events.value_date))
    ev = events.take(order)
    number = pl.Series(np.arange(first_number, first_number + ev.size, dtype=np.int64))
    frame = pl.DataFrame(
        {
            "repayment_id": "RP" + number.cast(pl.String).str.zfill(12),
            "loan_id": loan_ids(ev.loan),
            "value_date": _dates(ev.value_date),
            "principal_paid": ev.principal,
            "interest_paid": ev.interest,
            "fee_paid": ev.fee,
            "penalty_paid": ev.penalty,
            "kind": np.array(schema.REPAYMENT_KINDS)[ev.kind],
        }
    ).with_columns(
        yuan_text(c) for c in ("principal_paid", "interest_paid", "fee_paid", "penalty_paid")
    )
    return _write_by_day(out, frame, "value_date", "repayments", spoiled)


def write_pool_assets(
    out: Path, pool_id: str, events: PoolEvents, spoiled: date | None = None
) -> set[str]:
    """Pool membership events in the folder of their event date."""
    if events.size == 0:
        return set()
    frame = (
        pl.DataFrame(
            {
                "pool_id": pl.Series([pool_id] * events.size, dtype=pl.String),
                "loan_id": loan_ids(events.loan),
                "event_date": _dates(events.event_date),
                "event": np.array(schema.POOL_EVENTS)[events.event],
                "reason": np.array(schema.POOL_EVENT_REASONS)[events.reason],
                "purchase_price": pl.Series(events.price).replace(NO_PRICE, None),
            }
        )
        .sort("event_date", "event", "loan_id")
        .with_columns(yuan_text("purchase_price"))
    )
    return _write_by_day(out, frame, "event_date", "pool_assets", spoiled)


def write_deal(out: Path, pool_id: str, document: dict[str, Any]) -> None:
    """``out/deals/<pool_id>.yaml``."""
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    _write_text(out / "deals" / f"{pool_id}.yaml", text)


# -- further servicers' deliveries (second_servicer, revolving_pool) ----------------------
@dataclass(frozen=True)
class ServicerLanding:
    """The main book's landing folder and window, which a further servicer's pool joins.

    Attributes:
        out: The landing folder (the main book's).
        start: First month of the window, ``YYYY-MM``; the pool's cut-off is its last day.
        months: Month-end tapes to write (the cut-off month included).
        seed: The main generator's seed (each pool draws from its own stream of it).
    """

    out: Path
    start: str
    months: int
    seed: int

    def rng(self, stream: int) -> np.random.Generator:
        """The pool's own random stream, number ``stream`` of the seed."""
        return np.random.Generator(np.random.PCG64([self.seed, stream]))

    def month_ends(self) -> list[date]:
        """The month-end tape dates, the first being the pool's cut-off date."""
        table = Months.starting(self.start, self.months + 1)
        return [to_date(table.last_day(i)) for i in range(self.months)]

    @property
    def cutoff(self) -> date:
        """The pool's cut-off date, the last day of the window's first month."""
        return self.month_ends()[0]


@dataclass(frozen=True)
class ServicerPool:
    """What a further servicer's delivery holds."""

    pool_id: str
    loans: int
    """Loans (a card servicer's accounts) delivered at the cut-off."""
    tape_rows: int


def servicer_mapping(source: str) -> Path:
    """The mapping file shipped for a further servicer (``data_contracts/mappings/``)."""
    return Path(__file__).parents[2] / "data_contracts" / "mappings" / f"{source}.mapping.yaml"


def write_servicer_csv(path: Path, frame: pl.DataFrame, encoding: str = "utf-8") -> None:
    """A further servicer's CSV file in its own text encoding, written whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(frame.write_csv().encode(encoding))
    temporary.replace(path)


def zero_totals(n: int, *names: str) -> dict[str, I64]:
    """Running totals in fen of ``n`` loans, all zero, by name (a simulation's state)."""
    return {name: np.zeros(n, dtype=np.int64) for name in names}


@functools.cache
def _mapped(source: str, dataset: str) -> dict[str, Any]:
    """A dataset's entry of a further servicer's mapping file."""
    document = yaml.safe_load(servicer_mapping(source).read_text(encoding="utf-8"))
    entry: dict[str, Any] = document["datasets"][dataset]
    return entry


def servicer_file(source: str, dataset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` as ``source`` delivers ``dataset``, as its mapping file reads it back.

    ``frame`` has the canonical columns and codes, its amounts and rates already written
    as the servicer writes them; the file has the servicer's codes for every value its
    mapping translates, dates in its date format, and its columns in its mapping's order.
    """
    mapped = _mapped(source, dataset)
    codes = {
        field: {canonical: code for code, canonical in translation.items()}
        for field, translation in mapped.get("values", {}).items()
    }
    return frame.with_columns(
        *(pl.col(field).replace_strict(code) for field, code in codes.items()),
        pl.col(pl.Date).dt.strftime(mapped["date_format"]),
    ).select(pl.col(canonical).alias(column) for column, canonical in mapped["columns"].items())


def cutoff_additions(source: str, loan_ids: pl.Series, pool_id: str, cutoff: date) -> pl.DataFrame:
    """The pool's additions at the cut-off as ``source`` delivers them (:func:`servicer_file`)."""
    additions = pl.DataFrame({"loan_id": loan_ids}).with_columns(
        pool_id=pl.lit(pool_id),
        event_date=pl.lit(cutoff),
        event=pl.lit("added"),
        reason=pl.lit("cutoff"),
    )
    return servicer_file(source, "pool_assets", additions)


_TAPE_TOTALS: Final = {
    "principal_paid_to_date": "paid",
    "interest_paid_to_date": "interest",
    "fees_paid_to_date": "fees",
    "charged_off_principal": "charged",
    "recoveries_to_date": "recovered",
}
"""The loan tape's to-date totals, each with the simulation's running total behind it."""


def tape_totals(source: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The to-date totals ``source``'s tape carries, under its own column names in the order
    of its mapping file, from the simulation's running totals."""
    columns = _mapped(source, "loan_tape")["columns"]
    return {
        column: state[_TAPE_TOTALS[canonical]]
        for column, canonical in columns.items()
        if canonical in _TAPE_TOTALS
    }


def write_servicer_delivery(
    landing: ServicerLanding,
    source: str,
    *,
    loans: pl.DataFrame,
    tape: Callable[[date], pl.DataFrame],
    advance: Callable[[date], None],
    deal: dict[str, Any],
    encoding: str = "utf-8",
) -> ServicerPool:
    """Write what a further servicer delivers, in its own columns and text encoding.

    At the cut-off ``loans.<source>.csv`` and ``pool_assets.<source>.csv`` (every loan
    added to the deal's pool); at every month-end of the window ``loan_tape.<source>.csv``;
    its mapping in ``mappings/`` and the pool's deal in ``deals/``.

    Args:
        loans: The loans delivered at the cut-off, as :func:`servicer_file` takes them.
        tape: The tape rows of the simulated pool as it stands at a month-end.
        advance: Moves the simulated pool on to a month-end (called for each after the
            cut-off, in order, before its tape).
    """
    out = landing.out
    folder = out / landing.cutoff.isoformat()
    pool_id = str(deal["pool_id"])
    write_servicer_csv(
        folder / f"loans.{source}.csv", servicer_file(source, "loans", loans), encoding
    )
    additions = cutoff_additions(source, loans["loan_id"], pool_id, landing.cutoff)
    write_servicer_csv(folder / f"pool_assets.{source}.csv", additions, encoding)
    rows = 0
    for i, as_of in enumerate(landing.month_ends()):
        if i:
            advance(as_of)
        rows_of_month = tape(as_of)
        write_servicer_csv(
            out / as_of.isoformat() / f"loan_tape.{source}.csv", rows_of_month, encoding
        )
        rows += rows_of_month.height
    mapping = servicer_mapping(source)
    (out / "mappings").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mapping, out / "mappings" / mapping.name)
    write_deal(out, pool_id, deal)
    return ServicerPool(pool_id=pool_id, loans=loans.height, tape_rows=rows)


def trigger(
    names: tuple[str, str], test: str, consequence: str = "early_amortisation"
) -> dict[str, str]:
    """A deal trigger with a fixed threshold, named in English and Chinese.

    Args:
        names: The trigger's English and Chinese names.
        test: ``"<metric> <above|below> <threshold>"``, e.g. ``"payment_rate below 0.2000"``.
        consequence: What a breach does.
    """
    metric, comparison, threshold = test.split()
    return {
        "name": names[0],
        "name_zh": names[1],
        "metric": metric,
        "comparison": comparison,
        "threshold": threshold,
        "consequence": consequence,
    }


def two_class_deal(
    pool_id: str,
    names: tuple[str, str],
    cutoff: date,
    balance: int,
    *,
    senior_percent: int,
    senior_coupon: str,
    eligibility: dict[str, Any],
    short_name: str,
    servicer: dict[str, str],
    triggers: list[dict[str, Any]] | None = None,
    closing_lag_days: int = 14,
) -> dict[str, Any]:
    """A deal with a rated senior class A (``senior_percent`` of ``balance`` fen, whole
    yuan) and a subordinated class C taking the rest; ``names`` is (English, Chinese).

    The classes' exchange short names are ``short_name`` and the class letter; the plan
    matures legally three years after the cut-off month (as the main demo deal), which
    is also each class's expected maturity; ``servicer`` names the servicer in each
    language, the other parties being the demo's; ``triggers`` are the plan's numeric
    tests (none when not given).
    """
    class_a = balance * senior_percent // 100 // 100 * 100
    class_c = balance - class_a
    legal_final = Months.starting(f"{cutoff.year:04d}-{cutoff.month:02d}", 37)
    legal_final_date = to_date(legal_final.last_day(36))
    participants = demo_participants()
    participants["servicer"] = dict(servicer)
    deal: dict[str, Any] = {
        "pool_id": pool_id,
        "name": names[0],
        "name_zh": names[1],
        "currency": "CNY",
        "allowed_regions": ["CN"],
        "balance_source": "servicer",
        "cutoff_date": cutoff,
        "closing_date": date.fromordinal(cutoff.toordinal() + closing_lag_days),
        "payment_day": 26,
        "tranches": [
            {
                "class": "A",
                "kind": "senior",
                "original_balance": f"{class_a // 100}.{class_a % 100:02d}",
                "coupon": senior_coupon,
                "rating": "AAA",
                "code": f"{pool_id}A",
            },
            {
                "class": "C",
                "kind": "subordinated",
                "original_balance": f"{class_c // 100}.{class_c % 100:02d}",
                "coupon": "0",
                "code": f"{pool_id}C",
            },
        ],
        "eligibility": eligibility,
        "legal_final_date": legal_final_date,
        "participants": participants,
        "events": demo_events(),
        "triggers": list(triggers or []),
    }
    for tranche in deal["tranches"]:
        tranche["short_name"] = f"{short_name}{tranche['class']}"
        tranche["expected_maturity_date"] = legal_final_date
        if "rating" in tranche:
            tranche["ratings"] = {"initial": tranche["rating"]}
    return deal


# -- delivery control files (flows.delivery) ----------------------------------------------
MANIFEST_TOTALS = ("repayments.principal_paid",)
"""Control totals the generator's servicer states in every manifest that has repayments."""


def write_manifests(out: Path, days: list[date]) -> None:
    """``out/<day>/manifest.json`` for every day: its files' rows, sha256 and control totals.

    A day without events gets a manifest listing no files: the servicer delivered, and
    there was nothing to deliver (not the same as a missing delivery).
    """
    for day in days:
        folder = out / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        manifest = manifest_for(folder, day, MANIFEST_TOTALS)
        _write_text(folder / MANIFEST_NAME, manifest.dumps())
