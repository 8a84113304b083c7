"""Metrics stage: the marts and one contract-checked metrics.json per pool and period.

The computing is in ``transforms`` (:mod:`transforms.pool_marts` has the picture of
the marts); this module turns the deal terms into the transforms' terms, scans the
snapshots, writes the marts and ``reports/<pool_id>/<YYYY-MM>/metrics.json``, checks
each document against its contract, and hands the written documents on
(:class:`PoolPeriod`, :class:`MetricsBook`) so that later stages never read them again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl

from data_contracts.deal import DealTerms, Trigger
from data_contracts.metrics_contract import contract_conventions, contract_version, validate_metrics
from flows.amortisation import quarantine_late_purchases
from flows.catalog import Catalog
from flows.curate import curate
from flows.errors import SettingsError
from flows.snapshots import build_loan_snapshots, snapshot_dates
from flows.state import cached_sha256
from flows.tape import tape_sections
from flows.version import code_version
from transforms import schema
from transforms.dates import CalendarHorizonError, DateRules
from transforms.metrics_document import dumps_metrics
from transforms.periods import month_end, period_label
from transforms.pool_marts import PoolTerms, metric_marts, metrics_document, reportable_periods
from transforms.portfolio import portfolio_metrics
from transforms.triggers import TRIGGER_PREFIX, ThresholdStep, TriggerTerms
from transforms.waterfall import TrancheTerms, WaterfallTerms, early_amortisation_starts


@dataclass(frozen=True)
class PoolPeriod:
    """A pool period whose metrics.json was written, with the document it holds.

    Later stages (the gate's version check, rendering, the manifest) use these
    values instead of reading the file again.
    """

    pool_id: str
    period: str
    metrics_path: Path
    metrics_text: str
    """The file's exact text (compared with the published version, hashed)."""
    metrics: dict[str, Any]
    """The contract-checked document."""

    @property
    def metrics_sha256(self) -> str:
        return hashlib.sha256(self.metrics_text.encode("utf-8")).hexdigest()

    @classmethod
    def read(cls, pool_id: str, period: str, path: Path) -> PoolPeriod:
        """A period written by an earlier run, read from its metrics.json."""
        text = path.read_text(encoding="utf-8")
        return cls(pool_id, period, path, text, _document(json.loads(text), path))


@dataclass(frozen=True)
class MetricsBook:
    """Every pool period's metrics document under reports/, each read once per run."""

    documents: dict[tuple[str, str], dict[str, Any]]
    """(pool_id, period) to the contract-checked document, in (pool, period) order."""

    def document(self, pool_id: str, period: str) -> dict[str, Any] | None:
        return self.documents.get((pool_id, period))

    def history(self, pool_id: str) -> list[dict[str, Any]]:
        """Every document of a pool, oldest period first."""
        return [doc for (pool, _), doc in self.documents.items() if pool == pool_id]


def load_metrics_book(catalog: Catalog, fresh: Sequence[PoolPeriod] = ()) -> MetricsBook:
    """Read every metrics.json once; the ``fresh`` periods (just written) are not read again."""
    known = {(p.pool_id, p.period): p.metrics for p in fresh}
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    for pool_id, period, path in sorted(catalog.metrics_documents()):
        key = (pool_id, period)
        documents[key] = known[key] if key in known else read_metrics(path)
    return MetricsBook(documents)


def read_metrics(path: Path) -> dict[str, Any]:
    """One metrics.json as a document.

    Raises:
        ValueError: The file does not hold a JSON object.
    """
    return _document(json.loads(path.read_text(encoding="utf-8")), path)


def _document(value: object, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


def _ppm(rate: Decimal) -> int:
    return int((rate * schema.RATE_SCALE).to_integral_value(rounding=ROUND_HALF_UP))


def date_rules(deal: DealTerms) -> DateRules:
    """The deal's payment-date, report-date and day-count conventions."""
    rule = deal.payment_rule
    return DateRules(
        closing_date=deal.closing_date,
        payment_day=rule.day_of_month,
        months_after=rule.months_after,
        business_day_convention=deal.business_day_convention,
        report_business_days=deal.report_date_rule.business_days_before,
        day_count=deal.day_count,
    )


def waterfall_terms(deal: DealTerms) -> WaterfallTerms:
    """The deal's terms as the waterfall fold takes them (rates in parts per million)."""
    return WaterfallTerms(
        pool_id=deal.pool_id,
        cutoff_date=deal.cutoff_date,
        tranches=tuple(
            TrancheTerms(t.class_name, t.kind, t.original_balance, _ppm(t.coupon))
            for t in deal.tranches
        ),
        trustee_fee_ppm=_ppm(deal.fees.trustee),
        servicer_fee_ppm=_ppm(deal.fees.servicer),
        management_fee_ppm=_ppm(deal.fees.management),
        custody_fee_ppm=_ppm(deal.fees.custody),
        tax_on_interest_ppm=_ppm(deal.fees.tax_on_interest),
        revolving_period_end=deal.revolving_period_end,
        triggers=tuple(
            TriggerTerms(
                name=t.name,
                metric=t.metric,
                comparison=t.comparison,
                steps=(
                    (ThresholdStep(1, float(t.threshold)),)
                    if t.threshold is not None
                    else tuple(ThresholdStep(s.from_period, float(s.threshold)) for s in t.schedule)
                ),
                consequence=t.consequence,
            )
            for t in deal.triggers
        ),
        date_rules=date_rules(deal),
    )


def _definitions(deal: DealTerms) -> dict[str, Any]:
    """Every convention in use, from the deal (so a deal's own choice shows)."""
    terms = deal.definitions
    rule = deal.payment_rule
    triggers = {f"{TRIGGER_PREFIX}{t.name}": _trigger_definition(t) for t in deal.triggers}
    return {
        **contract_conventions(),
        **triggers,
        "default_dpd": terms.default_dpd,
        "charge_off_dpd": terms.charge_off_dpd,
        "dpd_tolerance_fen": terms.dpd_tolerance,
        "cumulative_default_denominator": terms.cumulative_default_denominator,
        "advance_payment_days": terms.advance_payment_days,
        "day_count": deal.day_count,
        "payment_date_rule": (
            f"day {rule.day_of_month} of the month {rule.months_after} month(s) after the "
            "collection period"
        ),
        "payment_day_of_month": rule.day_of_month,
        "payment_months_after": rule.months_after,
        "business_day_convention": deal.business_day_convention,
        "business_day_calendar": "XSHG (Shanghai Stock Exchange, exchange-calendars)",
        "report_date_rule": (
            f"{deal.report_date_rule.business_days_before} exchange business days before the "
            "payment date"
        ),
        "report_business_days_before": deal.report_date_rule.business_days_before,
        "closing_date": deal.closing_date.isoformat(),
        "cutoff_date": deal.cutoff_date.isoformat(),
        "metrics_contract_version": contract_version(),
    }


def pool_terms(deal: DealTerms) -> PoolTerms:
    """The deal as the marts and the metrics document take it."""
    return PoolTerms(
        waterfall=waterfall_terms(deal),
        currency=deal.currency,
        cumulative_default_denominator=deal.definitions.cumulative_default_denominator,
        definitions=_definitions(deal),
    )


def _trigger_definition(trigger: Trigger) -> str:
    if trigger.threshold is not None:
        threshold = f"{trigger.threshold}"
    else:
        threshold = ", ".join(
            f"{s.threshold} from period {s.from_period}"
            for s in sorted(trigger.schedule, key=lambda s: s.from_period)
        )
    return (
        f"{trigger.metric} {trigger.comparison} {threshold}; consequence "
        f"{trigger.consequence}; {contract_conventions().get(trigger.metric, trigger.metric)}"
    )


def compute_pool_metrics(
    catalog: Catalog,
    deals: Mapping[str, DealTerms],
    period_ends: Sequence[date],
    *,
    recompute: bool = False,
) -> list[PoolPeriod]:
    """Write the metrics marts and one validated metrics.json per pool and reported period.

    Marts whose inputs are those they were computed from are kept (see :func:`_marts`);
    ``recompute`` computes every one again.

    A pool that breaches an early-amortisation trigger stops buying: purchase
    events dated after the breach period are quarantined
    (:mod:`flows.amortisation`), the curated views and snapshots are rebuilt
    and the marts recomputed, and every period from the breach period on is
    re-published, so the class balances chain across all published periods.

    Raises:
        SettingsError: If a payment date lies beyond the exchange calendar's
            known years (exit code 2).
    """
    if recompute:
        marts_record_path(catalog).unlink(missing_ok=True)
    try:
        return _compute_pool_metrics(catalog, deals, period_ends)
    except CalendarHorizonError as exc:
        # The exchange calendar does not know the payment dates yet: a setting to
        # update (the library), not a bug.
        raise SettingsError(str(exc), where="exchange calendar (exchange-calendars XSHG)") from None


def _compute_pool_metrics(
    catalog: Catalog, deals: Mapping[str, DealTerms], period_ends: Sequence[date]
) -> list[PoolPeriod]:
    built = _marts(catalog, deals)
    if built is None:
        return []
    republish: set[tuple[str, date]] = set()
    # One pass normally settles it: removing purchases after the breach leaves every
    # figure up to the breach unchanged. The bound guards against a breach that moves.
    for _ in range(3):
        starts = early_amortisation_starts(built.marts["trigger_tests"])
        if not quarantine_late_purchases(catalog, starts):
            break
        _rebuild_snapshots(catalog, deals)
        rebuilt = _marts(catalog, deals)
        assert rebuilt is not None  # the snapshots were there a moment ago
        built = rebuilt
        for pool_id, start in starts.items():
            republish.update(
                (pool_id, d) for d in built.marts["pool_rollforward"]["period_end"] if d >= start
            )
    built.write(catalog)
    marts = built.marts
    written = []
    for pool_id, deal in sorted(deals.items()):
        wanted = set(period_ends) | {d for p, d in republish if p == pool_id}
        periods = reportable_periods(deal.cutoff_date, sorted(wanted))
        if not periods:
            continue
        computed = set(marts["pool_rollforward"]["period_end"])
        terms = pool_terms(deal)
        for period_end in periods:
            if period_end not in computed:
                continue
            document = metrics_document(marts, terms, period_end)
            document.update(tape_sections(catalog, deal, period_end))
            validate_metrics(document)
            path = catalog.metrics_json(pool_id, period_label(period_end))
            text = dumps_metrics(document)
            catalog.write_text(text, path)
            written.append(
                PoolPeriod(pool_id, period_label(period_end), path, text, json.loads(text))
            )
    return written


def _marts(catalog: Catalog, deals: Mapping[str, DealTerms]) -> _BuiltMarts | None:
    """The metrics marts, computed only where their inputs changed since they were written.

    The period marts (everything but ``portfolio_metrics``) are kept when their inputs
    (:attr:`MartInputs.period_key`) are those recorded, as on a night inside a
    collection period; ``portfolio_metrics`` (every as-of date, the latest business
    date too) is recomputed when any snapshot partition or loan it reads changed.
    Anything not as recorded, or whose file is not as written, is computed again.
    """
    inputs = MartInputs.of(catalog, deals)
    if inputs is None:
        return None
    record = MartsRecord.load(catalog)
    stored = record.verified(catalog) if record is not None else None
    fresh: dict[str, pl.DataFrame] = {}
    if stored is not None and stored.period_key == inputs.period_key:
        period_marts: Mapping[str, pl.DataFrame] = _StoredMarts(
            catalog, [name for name in stored.marts if name != PORTFOLIO_MART]
        )
    else:
        fresh = _period_marts(catalog, deals, inputs)
        period_marts = fresh
    if stored is None or stored.portfolio_key != inputs.portfolio_key:
        fresh[PORTFOLIO_MART] = _portfolio(catalog, inputs)
    marts = _Merged(period_marts, fresh, catalog)
    return _BuiltMarts(marts, fresh, inputs)


PORTFOLIO_MART = "portfolio_metrics"
"""The mart of every as-of date (the others are per collection period)."""


def _period_marts(
    catalog: Catalog, deals: Mapping[str, DealTerms], inputs: MartInputs
) -> dict[str, pl.DataFrame]:
    """Every mart but ``portfolio_metrics``, from the month-end and cut-off snapshots."""
    marts = metric_marts(
        month_end_snapshots=catalog.scan_many(
            [catalog.snapshot_partition(d) for d in inputs.month_end_days], schema.LOAN_SNAPSHOTS
        ),
        # portfolio_metrics is computed apart (_portfolio).
        all_snapshots=pl.LazyFrame(schema=schema.LOAN_SNAPSHOTS),
        # A cut-off snapshot fixes the cut-off balance and opens the pool's period 1.
        cutoff_snapshots=catalog.scan_many(
            [catalog.snapshot_partition(d) for d in inputs.cutoff_days], schema.LOAN_SNAPSHOTS
        ),
        loans=catalog.scan(catalog.curated("loans")),
        pool_assets=catalog.scan(catalog.curated("pool_assets")),
        pools={pool_id: pool_terms(deal) for pool_id, deal in deals.items()},
        periods=inputs.month_end_days[1:],
    )
    del marts[PORTFOLIO_MART]
    return marts


def _portfolio(catalog: Catalog, inputs: MartInputs) -> pl.DataFrame:
    """``portfolio_metrics`` over every snapshot partition.

    It is computed whole, never spliced from per-date parts: Polars divides a column
    by a scalar with a vectorised reciprocal whose last bit depends on the column's
    length, so a row computed in a shorter frame can differ in its last bit.
    """
    return portfolio_metrics(
        catalog.scan_many(
            [catalog.snapshot_partition(d) for d in inputs.snapshot_days], schema.LOAN_SNAPSHOTS
        ),
        catalog.scan(catalog.curated("loans")),
    ).collect(engine="streaming")


@dataclass(frozen=True)
class MartInputs:
    """What the metrics marts read, and the digests that key them.

    Snapshot partitions are keyed by their sha256 (hashed once, :mod:`flows.state`);
    curated loans by the rows a date can see (a snapshot at ``D`` holds loans
    originated on or before ``D``); pool events by the rows of the reported periods
    and the pool entries of those loans (vintage membership).
    """

    snapshot_days: list[date]
    month_end_days: list[date]
    cutoff_days: list[date]
    period_key: str
    """Digest of every input of the period marts."""
    portfolio_key: str
    """Digest of what ``portfolio_metrics`` reads (every snapshot partition, the loans)."""

    @classmethod
    def of(cls, catalog: Catalog, deals: Mapping[str, DealTerms]) -> MartInputs | None:
        """The inputs as they are now; None when fewer than two month-ends have snapshots."""
        snapshot_days = catalog.snapshot_dates()
        month_end_days = [d for d in snapshot_days if d == month_end(d)]
        if len(month_end_days) < 2:
            return None
        # Cut-off dates that are not month-ends (those are in the month-end set already).
        cutoff_days = sorted(
            ({deal.cutoff_date for deal in deals.values()} & set(snapshot_days))
            - set(month_end_days)
        )
        partitions = cached_sha256(catalog, [catalog.snapshot_partition(d) for d in snapshot_days])
        digest = {d: partitions[catalog.snapshot_partition(d)] for d in snapshot_days}
        loans = catalog.scan(catalog.curated("loans"))
        last = month_end_days[-1]
        seen = _loan_digests(loans, [last, snapshot_days[-1]])
        common = [code_version(), pl.__version__, str(_KEY_FORMAT)]
        period = hashlib.sha256()
        for part in (
            *common,
            json.dumps(
                {pool_id: deal.model_dump(mode="json") for pool_id, deal in sorted(deals.items())},
                sort_keys=True,
            ),
            *(f"month_end|{d}|{digest[d]}" for d in month_end_days),
            *(f"cutoff|{d}|{digest[d]}" for d in cutoff_days),
            f"loans|{seen[last]}",
            f"pool_assets|{_pool_event_digest(catalog, loans, last)}",
        ):
            period.update(f"{part}\n".encode())
        portfolio = hashlib.sha256()
        for part in (
            *common,
            *(f"{d}|{digest[d]}" for d in snapshot_days),
            f"loans|{seen[snapshot_days[-1]]}",
        ):
            portfolio.update(f"{part}\n".encode())
        return cls(
            snapshot_days, month_end_days, cutoff_days, period.hexdigest(), portfolio.hexdigest()
        )


_KEY_FORMAT = 1
_ROW_HASH_SEED = 20_240_101
"""Row digests hash each row with Polars (stable within a Polars version, which the key
holds) and then feed the sorted 64-bit row hashes to sha256."""


def _row_hash() -> pl.Expr:
    """Each row's 64-bit hash over all of its columns."""
    return pl.struct(pl.all()).hash(seed=_ROW_HASH_SEED).alias("row_hash")


def _loan_digests(loans: pl.LazyFrame, days: Sequence[date]) -> dict[date, str]:
    """Per date ``D``, a digest of every curated loan row originated on or before ``D``."""
    rows = (
        loans.select(
            pl.col("origination_date").fill_null(date.min).alias("origination"),
            _row_hash(),
        )
        .sort("origination", "row_hash")
        .collect()
    )
    running = hashlib.sha256()
    position = 0
    digests = {}
    for day in sorted(days):
        end = int(rows["origination"].search_sorted(day, side="right"))
        running.update(rows["row_hash"][position:end].to_numpy().tobytes())
        position = max(position, end)
        digests[day] = f"{position}|{running.copy().hexdigest()}"
    return digests


def _pool_event_digest(catalog: Catalog, loans: pl.LazyFrame, last: date) -> str:
    """Digest of the pool events the period marts read up to ``last``: the events dated
    on or before it (purchases by period) and which pools the loans originated by then
    ever entered (vintage membership)."""
    events = catalog.scan(catalog.curated("pool_assets"))
    dated = events.filter(pl.col("event_date") <= last)
    entered = (
        events.filter(pl.col("event") == "added")
        .select("pool_id", "loan_id")
        .unique()
        .join(
            loans.filter(pl.col("origination_date") <= last).select("loan_id"),
            on="loan_id",
            how="semi",
        )
    )
    digest = hashlib.sha256()
    for part in (dated, entered):
        hashes = part.select(_row_hash()).sort("row_hash").collect()["row_hash"]
        digest.update(f"{hashes.len()}|".encode())
        digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class MartsRecord:
    """``state/metrics_marts.json``: what the marts on disk were computed from."""

    period_key: str
    portfolio_key: str
    marts: dict[str, str]
    """Mart name to the sha256 of its file as written."""

    @classmethod
    def load(cls, catalog: Catalog) -> MartsRecord | None:
        """The record, or None when there is none or it is unreadable (all recomputed)."""
        try:
            document = json.loads(marts_record_path(catalog).read_text(encoding="utf-8"))
            if document.get("format") != _KEY_FORMAT:
                return None
            return cls(
                period_key=str(document["period_key"]),
                portfolio_key=str(document["portfolio_key"]),
                marts={str(k): str(v) for k, v in document["marts"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, catalog: Catalog) -> None:
        document = {
            "format": _KEY_FORMAT,
            "period_key": self.period_key,
            "portfolio_key": self.portfolio_key,
            "marts": dict(sorted(self.marts.items())),
        }
        catalog.write_text(
            json.dumps(document, indent=1, sort_keys=True) + "\n", marts_record_path(catalog)
        )

    def verified(self, catalog: Catalog) -> MartsRecord | None:
        """The record when every mart it names is on disk as written, else None."""
        paths = {name: catalog.mart(name) for name in self.marts}
        if not all(path.is_file() for path in paths.values()):
            return None
        digests = cached_sha256(catalog, list(paths.values()))
        if any(digests[paths[name]] != sha for name, sha in self.marts.items()):
            return None
        return self


def marts_record_path(catalog: Catalog) -> Path:
    """Where the record of the marts' inputs is kept (beside the business-date state)."""
    return catalog.metrics_marts_state


class _StoredMarts(Mapping[str, pl.DataFrame]):
    """Marts as written by an earlier run, each read when first used."""

    def __init__(self, catalog: Catalog, names: Sequence[str]) -> None:
        self._catalog = catalog
        self._names = sorted(names)
        self._read: dict[str, pl.DataFrame] = {}

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._read:
            self._read[name] = pl.read_parquet(self._catalog.mart(name))
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Merged(Mapping[str, pl.DataFrame]):
    """The period marts (stored or fresh) and the freshly computed ones over them."""

    def __init__(
        self, base: Mapping[str, pl.DataFrame], fresh: Mapping[str, pl.DataFrame], catalog: Catalog
    ) -> None:
        self._base, self._fresh = base, fresh
        self._stored = _StoredMarts(catalog, [PORTFOLIO_MART])

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name in self._fresh:
            return self._fresh[name]
        if name in self._base:
            return self._base[name]
        return self._stored[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._base, *self._fresh, PORTFOLIO_MART}))

    def __len__(self) -> int:
        return len({*self._base, *self._fresh, PORTFOLIO_MART})


@dataclass(frozen=True)
class _BuiltMarts:
    """The marts of this run: every one readable, the recomputed ones still to write."""

    marts: Mapping[str, pl.DataFrame]
    fresh: dict[str, pl.DataFrame]
    inputs: MartInputs

    def write(self, catalog: Catalog) -> None:
        """Write the recomputed marts, then the record of what every mart was computed from
        (a crash in between leaves files that do not match the record: recomputed)."""
        for name, frame in sorted(self.fresh.items()):
            catalog.write_frame(frame, catalog.mart(name))
        names = list(self.marts)
        digests = cached_sha256(catalog, [catalog.mart(name) for name in names])
        MartsRecord(
            period_key=self.inputs.period_key,
            portfolio_key=self.inputs.portfolio_key,
            marts={name: digests[catalog.mart(name)] for name in names},
        ).save(catalog)


def _rebuild_snapshots(catalog: Catalog, deals: Mapping[str, DealTerms]) -> None:
    """Curate again and recompute every snapshot after pool events were quarantined."""
    horizon = max(catalog.snapshot_dates())
    curated = curate(catalog, horizon)
    if curated.first_origination is None:
        return
    build_loan_snapshots(
        catalog,
        snapshot_dates(curated.first_origination, horizon, deals.values()),
        deals,
        recompute=True,
    )
