"""The per-pool, per-period ``metrics.json`` document (DOMAIN.md), built from metric rows.

Pure: the caller collects the rows of :mod:`transforms.pool_metrics` for one
pool and period and passes them in; nothing here reads or writes files.

Formatting rules of the contract:

- money is a string with exactly two decimals, from integer fen (``"1234.50"``,
  ``"-12.05"``); a float amount is refused rather than rounded;
- rates, ratios and shares are JSON numbers rounded to ``RATE_DECIMALS``
  decimal places, so that the same inputs always print the same digits;
- a value that has not been computed is ``null``: nothing is filled in with a
  made-up zero. ``tranches`` and ``triggers`` are empty lists only when the
  caller has none to give.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from transforms import schema
from transforms.pool_metrics import M_BUCKETS, ROLLFORWARD_MONEY

RATE_DECIMALS: Final = 10
"""Decimal places kept for every rate, ratio and share in the document."""

POOL_MONEY: Final = ROLLFORWARD_MONEY
"""The pool balance roll-forward, in :mod:`transforms.pool_metrics` order."""
COLLECTION_MONEY: Final = ("principal", "interest", "fees", "recoveries", "total")
PERFORMANCE_RATES: Final = (
    "smm",
    "cpr",
    "mdr",
    "cdr",
    "cumulative_default_rate",
    "cumulative_net_loss_rate",
    "recovery_rate",
    "payment_rate",
    "excess_spread",
)
CHARACTERISTIC_RATES: Final = ("wac", "wam_months", "wala_months")
TRANCHE_MONEY: Final = ("opening_balance", "interest_paid", "principal_paid", "closing_balance")
TRANCHE_RATES: Final = ("coupon", "bond_factor")
CONCENTRATION_SHARES: Final = ("top1_obligor_share", "top10_obligor_share", "hhi_obligor")
TRANCHE_EXTRA_MONEY: Final = (
    "original_balance",
    "interest_due",
    "interest_shortfall",
    "residual_paid",
)
TRANCHE_EXTRA_RATES: Final = (
    "interest_per_100",
    "principal_per_100",
    "payment_per_100",
    "subordination",
    "credit_enhancement",
)
TRIGGER_EXTRA_TEXT: Final = ("metric", "comparison", "consequence")
REVOLVING_MONEY: Final = ("purchase_price", "purchases_paid", "purchases_unfunded")
REVOLVING_DRAWINGS: Final = ("drawings_paid", "drawings_seller_funded")
"""How the period's new drawings were funded: by the trust's principal funds or the seller."""
PURCHASED_RATES: Final = ("purchased_wac", "purchased_wam_months")
"""Characteristics of the period's purchased loans (null when none was bought)."""
EXPENSES_MONEY: Final = ("taxes", "management_fee", "custody_fee", "servicer_fee")
ACCOUNT_MONEY: Final = ("opening", "inflow", "outflow", "closing")
ACCOUNT_ORDER: Final = ("collection", "principal", "income", "reserve")
CREDIT_ENHANCEMENT_MONEY: Final = (
    "collateral_balance",
    "notes_balance",
    "overcollateralisation",
    "principal_account",
    "principal_deficiency",
)
CREDIT_ENHANCEMENT_RATES: Final = ("overcollateralisation_ratio", "excess_spread")
PERIOD_DATES: Final = (
    "payment_date",
    "report_date",
    "interest_period_start",
    "interest_period_end",
)
"""Deal dates of a period document (ISO dates)."""


def fen_to_yuan_str(fen: int) -> str:
    """Format integer fen as yuan with exactly two decimals.

    Args:
        fen: Amount in fen (any integer type except ``bool``).

    Returns:
        ``123450`` as ``"1234.50"``, ``-1205`` as ``"-12.05"``, ``0`` as ``"0.00"``.

    Raises:
        TypeError: If ``fen`` is not an integer (a float amount is a bug upstream).
    """
    if isinstance(fen, bool):
        raise TypeError("an amount in fen must be an integer, not bool")
    try:
        value = operator.index(fen)
    except TypeError:
        raise TypeError(f"an amount in fen must be an integer, got {type(fen).__name__}") from None
    sign = "-" if value < 0 else ""
    yuan, cents = divmod(abs(value), schema.FEN_PER_YUAN)
    return f"{sign}{yuan}.{cents:02d}"


def _money(value: Any) -> str | None:
    return None if value is None else fen_to_yuan_str(value)


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a count must be an integer, not bool")
    return operator.index(value)


def _rate(value: Any) -> float | None:
    """A rate as a JSON number rounded to ``RATE_DECIMALS``; ``None`` stays null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"a rate must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a rate must be finite, got {value!r}")
    # Adding 0.0 turns -0.0 into 0.0 so a zero never prints as "-0.0".
    return round(number, RATE_DECIMALS) + 0.0


def _require(row: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise KeyError(f"{what} lacks {', '.join(missing)}")


def _fields(
    row: Mapping[str, Any], fields: Mapping[str, Callable[[Any], Any]], what: str
) -> dict[str, Any]:
    """Each of ``fields`` read from ``row`` through its converter, in the table's order."""
    _require(row, list(fields), what)
    return {key: convert(row[key]) for key, convert in fields.items()}


_BUCKET_FIELDS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "count": _count,
    "balance": _money,
    "balance_share": _rate,
}
"""A delinquency bucket's figures (DPD or M notation)."""
_TOP_OBLIGOR_FIELDS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "rank": _count,
    "balance": _money,
    "balance_share": _rate,
}
"""A top obligor: rank, balance and share only, never an identifier."""
_STEP_FIELDS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "order": _count,
    "account": str,
    "item": str,
    "available": _money,
    "due": _money,
    "paid": _money,
}
"""A line of the order of payments."""


def _check_identity(row: Mapping[str, Any], what: str, pool_id: str, period_end: date) -> None:
    """Refuse a row that names another pool or period than the document."""
    if "pool_id" in row and row["pool_id"] != pool_id:
        raise ValueError(f"{what} is for pool {row['pool_id']!r}, not {pool_id!r}")
    if "period_end" in row and row["period_end"] != period_end:
        raise ValueError(f"{what} is for period end {row['period_end']}, not {period_end}")


def _pool(rollforward: Mapping[str, Any], cutoff_balance: int) -> dict[str, Any]:
    _require(rollforward, [*POOL_MONEY, "opening_count", "closing_count"], "rollforward_row")
    pool: dict[str, Any] = {k: _money(rollforward[k]) for k in POOL_MONEY}
    closing = operator.index(rollforward["closing_balance"])
    pool["cutoff_balance"] = fen_to_yuan_str(cutoff_balance)
    pool["pool_factor"] = _rate(closing / cutoff_balance) if cutoff_balance else None
    pool["opening_count"] = _count(rollforward["opening_count"])
    pool["closing_count"] = _count(rollforward["closing_count"])
    return pool


def _collections(row: Mapping[str, Any], rollforward: Mapping[str, Any]) -> dict[str, Any]:
    _require(row, COLLECTION_MONEY, "collections_row")
    parts = sum(operator.index(row[k]) for k in ("principal", "interest", "fees", "recoveries"))
    if parts != row["total"]:
        raise ValueError(f"collections total {row['total']} is not the sum of its parts {parts}")
    principal = rollforward["scheduled_principal"] + rollforward["unscheduled_principal"]
    if row["principal"] != principal:
        raise ValueError(
            f"principal collections {row['principal']} differ from the roll-forward's {principal}"
        )
    return {k: _money(row[k]) for k in COLLECTION_MONEY}


def _characteristics(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = [*CHARACTERISTIC_RATES, "average_balance", "loan_count", "obligor_count"]
    _require(row, keys, "characteristics_row")
    out: dict[str, Any] = {k: _rate(row[k]) for k in CHARACTERISTIC_RATES}
    out["average_balance"] = _money(row["average_balance"])
    out["loan_count"] = _count(row["loan_count"])
    out["obligor_count"] = _count(row["obligor_count"])
    return out


def _delinquency(
    rows: Sequence[Mapping[str, Any]], pool_id: str, period_end: date
) -> list[dict[str, Any]]:
    by_bucket: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        _require(row, ["bucket", "count", "balance", "balance_share"], "delinquency row")
        _check_identity(row, "delinquency row", pool_id, period_end)
        if row["bucket"] in by_bucket:
            raise ValueError(f"delinquency bucket {row['bucket']!r} appears twice")
        by_bucket[row["bucket"]] = row
    if set(by_bucket) != set(schema.DPD_BUCKETS):
        raise ValueError(
            f"delinquency rows must cover exactly the buckets {', '.join(schema.DPD_BUCKETS)}"
        )
    return [
        {"bucket": bucket, **_fields(by_bucket[bucket], _BUCKET_FIELDS, "delinquency row")}
        for bucket in schema.DPD_BUCKETS
    ]


def _performance(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return dict.fromkeys(PERFORMANCE_RATES)
    return {k: _rate(row.get(k)) for k in PERFORMANCE_RATES}


def _tranches(rows: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if rows is None:
        return []
    out = []
    for row in rows:
        _require(row, ["class", *TRANCHE_MONEY, *TRANCHE_RATES], "tranche row")
        tranche: dict[str, Any] = {"class": str(row["class"])}
        tranche.update({k: _money(row[k]) for k in TRANCHE_MONEY})
        tranche.update({k: _rate(row[k]) for k in TRANCHE_RATES})
        if "kind" in row:
            tranche["kind"] = str(row["kind"])
        tranche.update({k: _money(row[k]) for k in TRANCHE_EXTRA_MONEY if k in row})
        tranche.update({k: _rate(row[k]) for k in TRANCHE_EXTRA_RATES if k in row})
        out.append(tranche)
    return out


def _triggers(rows: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if rows is None:
        return []
    out = []
    for row in rows:
        _require(row, ["name", "threshold", "actual", "breached"], "trigger row")
        breached = row["breached"]
        if breached is not None and not isinstance(breached, bool):
            raise TypeError(f"trigger {row['name']!r}: breached must be a bool or None")
        trigger: dict[str, Any] = {
            "name": str(row["name"]),
            "threshold": _rate(row["threshold"]),
            "actual": _rate(row["actual"]),
            "breached": breached,
        }
        trigger.update({k: str(row[k]) for k in TRIGGER_EXTRA_TEXT if k in row})
        if "in_effect" in row:
            trigger["in_effect"] = bool(row["in_effect"])
        out.append(trigger)
    return out


def _optional_section(
    row: Mapping[str, Any] | None, money: Sequence[str], rates: Sequence[str], what: str
) -> dict[str, Any] | None:
    if row is None:
        return None
    _require(row, [*money, *rates], what)
    section: dict[str, Any] = {k: _money(row[k]) for k in money}
    section.update({k: _rate(row[k]) for k in rates})
    return section


def _revolving(rollforward: Mapping[str, Any], row: Mapping[str, Any] | None) -> dict[str, Any]:
    revolving: dict[str, Any] = {
        "purchased_count": _count(rollforward.get("purchased_count")),
        "purchased_principal": _money(rollforward["purchased_principal"]),
    }
    if row is not None:
        _require(row, [*REVOLVING_MONEY, "revolving_period"], "revolving")
        revolving.update({k: _money(row[k]) for k in REVOLVING_MONEY})
        flag = row["revolving_period"]
        if not isinstance(flag, bool):
            raise TypeError("revolving_period must be a bool")
        revolving["revolving_period"] = flag
        revolving.update({k: _money(row[k]) for k in REVOLVING_DRAWINGS if k in row})
        revolving.update({k: _rate(row[k]) for k in PURCHASED_RATES if k in row})
        if "purchased_average_balance" in row:
            revolving["purchased_average_balance"] = _money(row["purchased_average_balance"])
    return revolving


def _accounts(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each account's opening + inflow - outflow = closing, refused unless it holds to the fen."""
    order = {name: i for i, name in enumerate(ACCOUNT_ORDER)}
    out = []
    for row in sorted(rows, key=lambda r: order.get(str(r["account"]), len(order))):
        _require(row, ["account", *ACCOUNT_MONEY], "account row")
        opening, inflow, outflow, closing = (operator.index(row[k]) for k in ACCOUNT_MONEY)
        if opening + inflow - outflow != closing:
            raise ValueError(
                f"account {row['account']!r} does not reconcile: "
                f"{opening} + {inflow} - {outflow} != {closing}"
            )
        out.append({"account": str(row["account"]), **{k: _money(row[k]) for k in ACCOUNT_MONEY}})
    return out


def _top_obligors(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ranked, anonymous: only rank, balance and share are kept (never an identifier)."""
    ranked = sorted(rows, key=lambda r: operator.index(r["rank"]))
    return [_fields(row, _TOP_OBLIGOR_FIELDS, "top obligor row") for row in ranked]


def _steps(rows: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if rows is None:
        return []
    ordered = sorted(rows, key=lambda r: operator.index(r["order"]))
    return [_fields(row, _STEP_FIELDS, "waterfall step") for row in ordered]


def _m_buckets(rows: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if rows is None:
        return []
    order = {label: i for i, label in enumerate(M_BUCKETS)}
    out = []
    for row in sorted(rows, key=lambda r: order.get(str(r["m_bucket"]), len(order))):
        figures = _fields(row, {"m_bucket": str, **_BUCKET_FIELDS}, "M-bucket row")
        out.append({"bucket": figures.pop("m_bucket"), **figures})
    return out


def _definitions(values: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted((values or {}).items()):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"definition {key!r} must be text or an integer")
        out[str(key)] = value
    return out


def _dates(values: Mapping[str, Any]) -> dict[str, Any]:
    _require(values, [*PERIOD_DATES, "interest_days", "day_count"], "dates")
    out: dict[str, Any] = {}
    for key in PERIOD_DATES:
        value = values[key]
        if not isinstance(value, date):
            raise TypeError(f"{key} must be a date, got {type(value).__name__}")
        out[key] = value.isoformat()
    out["interest_days"] = _count(values["interest_days"])
    out["day_count"] = str(values["day_count"])
    return out


def _concentration(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {**dict.fromkeys(CONCENTRATION_SHARES), "province_shares": None}
    _require(row, [*CONCENTRATION_SHARES, "province_shares"], "concentration")
    out: dict[str, Any] = {k: _rate(row[k]) for k in CONCENTRATION_SHARES}
    provinces = row["province_shares"]
    out["province_shares"] = (
        None if provinces is None else {str(k): _rate(v) for k, v in sorted(provinces.items())}
    )
    if "top_obligors" in row:
        out["top_obligors"] = _top_obligors(row["top_obligors"])
    return out


def build_metrics_document(
    *,
    pool_id: str,
    period_end: date,
    currency: str,
    rollforward_row: Mapping[str, Any],
    delinquency_rows: Sequence[Mapping[str, Any]],
    characteristics_row: Mapping[str, Any],
    collections_row: Mapping[str, Any],
    performance_row: Mapping[str, Any] | None,
    cutoff_balance: int,
    tranches: Sequence[Mapping[str, Any]] | None = None,
    triggers: Sequence[Mapping[str, Any]] | None = None,
    concentration: Mapping[str, Any] | None = None,
    period_number: int | None = None,
    revolving: Mapping[str, Any] | None = None,
    credit_enhancement: Mapping[str, Any] | None = None,
    waterfall: Sequence[Mapping[str, Any]] | None = None,
    delinquency_m: Sequence[Mapping[str, Any]] | None = None,
    definitions: Mapping[str, Any] | None = None,
    dates: Mapping[str, Any] | None = None,
    accounts: Sequence[Mapping[str, Any]] | None = None,
    expenses: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the ``metrics.json`` document of one pool and collection period.

    Rows are mappings as produced by ``DataFrame.rows(named=True)`` on the
    outputs of :mod:`transforms.pool_metrics`; a row that carries ``pool_id``
    or ``period_end`` must match the document's.

    Args:
        pool_id: The pool.
        period_end: Last day of the collection period (a month-end).
        currency: ISO 4217 code of the amounts (``CNY``).
        rollforward_row: A :func:`~transforms.pool_metrics.pool_rollforward`
            row; ``purchased_count`` is used for ``revolving`` when present.
        delinquency_rows: The eight
            :func:`~transforms.pool_metrics.delinquency_buckets` rows.
        characteristics_row: A
            :func:`~transforms.pool_metrics.pool_characteristics` row.
        collections_row: A :func:`~transforms.pool_metrics.pool_collections` row.
        performance_row: A :func:`~transforms.pool_metrics.pool_performance`
            row, possibly with ``excess_spread``; ``None`` when not computed
            (every performance value is then null). Missing keys are null.
        cutoff_balance: Cut-off pool balance in fen (pool factor denominator;
            the factor is null when it is zero).
        tranches: Rows with ``class``, ``opening_balance``, ``interest_paid``,
            ``principal_paid``, ``closing_balance`` (fen), ``coupon`` and
            ``bond_factor``; ``None`` gives an empty list.
        triggers: Rows with ``name``, ``threshold``, ``actual`` and
            ``breached``; ``None`` gives an empty list.
        concentration: ``top1_obligor_share``, ``top10_obligor_share``,
            ``hhi_obligor`` and ``province_shares`` (province to share);
            ``None`` gives nulls.
        period_number: 1-based collection period number (key ``period_number``
            when given).
        revolving: ``purchase_price``, ``purchases_paid``,
            ``purchases_unfunded`` (fen) and ``revolving_period`` (bool),
            added to ``revolving``.
        credit_enhancement: :data:`CREDIT_ENHANCEMENT_MONEY` (fen) and
            :data:`CREDIT_ENHANCEMENT_RATES` (key ``credit_enhancement``).
        waterfall: Order-of-payments lines with ``order``, ``account``,
            ``item``, ``available``, ``due``, ``paid`` (key ``waterfall``).
        delinquency_m: :func:`~transforms.pool_metrics.delinquency_m_notation`
            rows (key ``delinquency_m``).
        definitions: Conventions used, text or integers (key ``definitions``).
        dates: The period's deal dates, top-level keys :data:`PERIOD_DATES`
            (dates) plus ``interest_days`` (int) and ``day_count`` (text).
        accounts: Rows with ``account`` and :data:`ACCOUNT_MONEY` (fen), each
            reconciling (key ``accounts``, in :data:`ACCOUNT_ORDER`).
        expenses: :data:`EXPENSES_MONEY` paid in the period (fen, key ``expenses``).

    ``revolving`` may also carry :data:`PURCHASED_RATES` and
    ``purchased_average_balance`` (fen); ``concentration`` may carry
    ``top_obligors`` rows (``rank``, ``balance`` in fen, ``balance_share``).

    Tranche rows may also carry ``kind`` and :data:`TRANCHE_EXTRA_MONEY` /
    :data:`TRANCHE_EXTRA_RATES`; trigger rows :data:`TRIGGER_EXTRA_TEXT` and
    ``in_effect``. Optional sections are left out when not given.

    Returns:
        The document as plain JSON-ready Python values (see
        :func:`dumps_metrics`).

    Raises:
        ValueError: If ``period_end`` is not a month-end, a row belongs to
            another pool or period, the delinquency rows are not exactly the
            eight buckets, or the collections do not add up.
        KeyError: If a row lacks a required key.
        TypeError: If an amount is not an integer or a rate not a number.
    """
    if (period_end + timedelta(days=1)).day != 1:
        raise ValueError(f"period_end {period_end} is not a month-end")
    for what, row in (
        ("rollforward_row", rollforward_row),
        ("characteristics_row", characteristics_row),
        ("collections_row", collections_row),
        ("performance_row", performance_row or {}),
    ):
        _check_identity(row, what, pool_id, period_end)
    document: dict[str, Any] = {
        "pool_id": pool_id,
        "period": f"{period_end.year:04d}-{period_end.month:02d}",
        "period_start": period_end.replace(day=1).isoformat(),
        "period_end": period_end.isoformat(),
        "currency": currency,
        "pool": _pool(rollforward_row, cutoff_balance),
        "collections": _collections(collections_row, rollforward_row),
        "characteristics": _characteristics(characteristics_row),
        "delinquency": _delinquency(delinquency_rows, pool_id, period_end),
        "performance": _performance(performance_row),
        "tranches": _tranches(tranches),
        "triggers": _triggers(triggers),
        "revolving": _revolving(rollforward_row, revolving),
        "concentration": _concentration(concentration),
    }
    if period_number is not None:
        document["period_number"] = _count(period_number)
    enhancement = _optional_section(
        credit_enhancement,
        CREDIT_ENHANCEMENT_MONEY,
        CREDIT_ENHANCEMENT_RATES,
        "credit_enhancement",
    )
    if enhancement is not None:
        document["credit_enhancement"] = enhancement
    if waterfall is not None:
        document["waterfall"] = _steps(waterfall)
    if delinquency_m is not None:
        document["delinquency_m"] = _m_buckets(delinquency_m)
    if definitions is not None:
        document["definitions"] = _definitions(definitions)
    if dates is not None:
        document.update(_dates(dates))
    if accounts is not None:
        document["accounts"] = _accounts(accounts)
    section = _optional_section(expenses, EXPENSES_MONEY, (), "expenses")
    if section is not None:
        document["expenses"] = section
    return document


def dumps_metrics(document: Mapping[str, Any]) -> str:
    """Serialise a metrics document deterministically.

    Args:
        document: Output of :func:`build_metrics_document`.

    Returns:
        JSON with sorted keys, two-space indent, non-ASCII kept as is and a
        trailing newline; NaN and infinity are refused.
    """
    return (
        json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )
