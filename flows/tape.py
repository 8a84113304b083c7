"""Tape stage: the servicer's loan tape in the loan snapshots, and its marts.

Called by the snapshot stage on each engine result (``flows.snapshots``):

- loans whose balance comes from the servicer take their snapshots from the
  tape (``transforms.tape.tape_snapshots``): loans with tape rows and no
  repayments in a pool none of whose loans has any (a seasoned or bought pool:
  in a pool fed by repayments a loan that never paid is the engine's, simply
  delinquent), revolving accounts (tape rows with a
  credit limit), and every loan with a tape in a pool whose deal says
  ``balance_source: servicer``;
- the other loans keep the engine's snapshots, with the servicer's charge-offs
  applied (``apply_servicer_charge_offs``);
- where a loan has both repayments and tape rows, engine and servicer are
  compared at each tape date and the differences above the deal's tolerances
  are written to ``marts/reconciliation`` (with ``summary.json`` beside it for
  the data-quality report), the engine's figures as they were before any
  replacement;
- revolving pools get ``marts/revolving_metrics`` (payment rate, utilisation,
  30+, charge-off, yield).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from data_contracts.deal import DealTerms
from flows.catalog import Catalog
from flows.deals import performance_rules
from transforms import schema
from transforms.metrics_document import fen_to_yuan_str
from transforms.tape import (
    RECONCILIATION,
    REVOLVING_METRICS,
    Tolerances,
    apply_servicer_charge_offs,
    at_dates,
    current_tape,
    data_source_section,
    reconcile,
    reconciliation_summary,
    revolving_metrics,
    servicer_charge_offs,
    tape_availability,
    tape_snapshots,
)

RECONCILIATION_MART = "reconciliation"
SERVICER_LOANS = "servicer_loans"
"""Curated list of the loans whose snapshots come from the tape."""
REVOLVING_MART = "revolving_metrics"


def curate_tape(catalog: Catalog, until: date) -> pl.DataFrame:
    """Write ``curated/loan_tape`` (latest delivery per loan and date) and return it."""
    columns = {**schema.LOAN_TAPE, **schema.LINEAGE}
    staged = catalog.scan_many(catalog.staged_partitions("loan_tape", until), columns)
    tape = current_tape(staged).collect()
    catalog.write_frame(tape, catalog.curated("loan_tape"))
    return tape


def _latest_pool(pool_assets: pl.LazyFrame) -> pl.LazyFrame:
    """Each loan's pool by its latest addition (loan_id, pool_id)."""
    return (
        pool_assets.filter(pl.col("event") == "added")
        .sort("event_date", "pool_id")
        .group_by("loan_id")
        .agg(pl.col("pool_id").last())
    )


@dataclass(frozen=True)
class ServicerTape:
    """The curated tape and what it decides for one snapshot-stage run."""

    catalog: Catalog
    tape: pl.DataFrame
    servicer_loans: pl.DataFrame
    """``loan_id`` of the loans whose snapshots come from the tape."""
    reconciled_loans: pl.DataFrame
    """``loan_id`` of the loans with both repayments and tape rows."""
    deals: Mapping[str, DealTerms]

    @property
    def tape_only(self) -> pl.DataFrame:
        """``loan_id`` of the servicer-sourced loans the engine need not compute."""
        return self.servicer_loans.join(self.reconciled_loans, on="loan_id", how="anti")

    @property
    def available(self) -> dict[str, bool]:
        """Which tape-derived flows this tape can give (see ``tape_availability``)."""
        delivered = [c for c in schema.LOAN_TAPE if self.tape[c].null_count() < self.tape.height]
        return tape_availability(delivered)

    def merge(self, engine: pl.DataFrame, chain: Sequence[date]) -> pl.DataFrame:
        """The snapshots of ``chain`` with the tape applied (see the module docstring)."""
        if self.tape.height == 0:
            return engine
        self._write_reconciliation(engine, chain)
        loans = self.catalog.scan(self.catalog.curated("loans"))
        pool_assets = self.catalog.scan(self.catalog.curated("pool_assets"))
        schedules = self.catalog.scan(self.catalog.curated("schedules"))
        servicer = self.servicer_loans.lazy()
        from_tape = tape_snapshots(
            self.tape.lazy().join(servicer, on="loan_id", how="semi"),
            loans,
            schedules,
            pool_assets,
            rules_by_pool={p: performance_rules(d) for p, d in self.deals.items()},
        )
        kept = apply_servicer_charge_offs(
            engine.lazy().join(servicer, on="loan_id", how="anti"),
            servicer_charge_offs(self.tape.lazy()),
        )
        return pl.concat([kept, at_dates(from_tape, chain)]).sort("as_of_date", "loan_id").collect()

    def _tolerances(self) -> pl.LazyFrame:
        pools = sorted(self.deals)
        return pl.LazyFrame(
            {
                "pool_id": pools,
                "_balance": [self.deals[p].reconciliation.balance for p in pools],
                "_dpd": [self.deals[p].reconciliation.dpd_days for p in pools],
            },
            schema={"pool_id": pl.String, "_balance": schema.MONEY, "_dpd": pl.Int32},
        )

    def _write_reconciliation(self, engine: pl.DataFrame, chain: Sequence[date]) -> None:
        both = engine.lazy().join(self.reconciled_loans.lazy(), on="loan_id", how="semi")
        # Every difference is found at zero tolerance, then each pool's own tolerances apply.
        found = (
            reconcile(both, self.tape.lazy(), Tolerances())
            .join(self._tolerances(), on="pool_id", how="left")
            .collect()
        )
        found = self._beyond_tolerance(found)
        mart = self.catalog.mart(RECONCILIATION_MART)
        earlier = (
            pl.read_parquet(mart).filter(~pl.col("as_of_date").is_in(list(chain)))
            if mart.is_file()
            else pl.DataFrame(schema=RECONCILIATION)
        )
        rows = pl.concat([earlier, found]).sort("as_of_date", "loan_id")
        self.catalog.write_frame(rows, mart)
        # Loan-dates compared so far: the tape rows of reconciled loans at every snapshot date
        # written before and in this chain.
        dates = sorted({*self.catalog.snapshot_dates(), *chain})
        compared = (
            self.tape.lazy()
            .join(self.reconciled_loans.lazy(), on="loan_id", how="semi")
            .filter(pl.col("as_of_date").is_in(dates))
            .select(pl.len())
            .collect()
            .item()
        )
        summary = reconciliation_summary(rows, compared=int(compared))
        text = json.dumps(summary, indent=1, sort_keys=True) + "\n"
        self.catalog.write_text(text, self.catalog.mart_summary(RECONCILIATION_MART))

    @staticmethod
    def _beyond_tolerance(found: pl.DataFrame) -> pl.DataFrame:
        """Keep the breaks above the pool's tolerances (a status difference always counts)."""
        balance = pl.col("breaks").list.contains("balance") & (
            pl.col("balance_difference").abs() > pl.col("_balance").fill_null(0)
        )
        dpd = pl.col("dpd_difference").abs() > pl.col("_dpd").fill_null(0)
        breaks = pl.concat_list(
            pl.when(balance).then(pl.lit("balance")),
            pl.when(dpd).then(pl.lit("dpd")),
            pl.when(pl.col("breaks").list.contains("status")).then(pl.lit("status")),
        ).list.drop_nulls()
        return (
            found.with_columns(breaks.alias("breaks"))
            .filter(pl.col("breaks").list.len() > 0)
            .select([pl.col(c).cast(t) for c, t in RECONCILIATION.items()])
        )

    def write_revolving(self) -> int:
        """Write ``marts/revolving_metrics`` for the accounts with a credit limit; its rows."""
        accounts = self.tape.filter(pl.col("credit_limit").is_not_null()).select("loan_id").unique()
        pools = _latest_pool(self.catalog.scan(self.catalog.curated("pool_assets")))
        if accounts.height == 0:
            frame = pl.DataFrame(schema=REVOLVING_METRICS)
        else:
            frame = revolving_metrics(
                self.tape.lazy().join(accounts.lazy(), on="loan_id", how="semi"), pools
            ).collect()
        self.catalog.write_frame(frame, self.catalog.mart(REVOLVING_MART))
        return frame.height


def prepare_tape(catalog: Catalog, until: date, deals: Mapping[str, DealTerms]) -> ServicerTape:
    """Curate the tape and decide, per loan, whether its balance comes from the servicer."""
    tape = curate_tape(catalog, until)
    with_tape = tape.select("loan_id").unique()
    paid = catalog.scan(catalog.curated("repayments")).select("loan_id").unique().collect()
    pools = _latest_pool(catalog.scan(catalog.curated("pool_assets"))).collect()
    servicer_pools = [p for p, d in deals.items() if d.balance_source == "servicer"]
    # Revolving accounts: a credit limit on the tape, or the revolving_credit product (no
    # schedule: the engine never computes them, so their balances are the servicer's).
    cards = (
        catalog.scan(catalog.curated("loans"))
        .filter(pl.col("product") == "revolving_credit")
        .select("loan_id")
        .collect()
    )
    revolving = (
        pl.concat(
            [
                tape.filter(pl.col("credit_limit").is_not_null()).select("loan_id"),
                with_tape.join(cards, on="loan_id", how="semi"),
            ]
        )
        .unique()
        .sort("loan_id")
    )
    # A loan with no repayment history is the tape's only when nothing of its pool has
    # any (a seasoned pool bought with its tape): in a pool fed by repayments, a loan
    # that has not paid yet is still the engine's (it is simply delinquent or new).
    unpaid = with_tape.join(paid, on="loan_id", how="anti")
    pools_paid = pools.join(paid, on="loan_id", how="semi").select("pool_id").unique()
    in_paid_pools = pools.join(pools_paid, on="pool_id", how="semi").select("loan_id")
    servicer = (
        pl.concat(
            [
                unpaid.join(in_paid_pools, on="loan_id", how="anti"),
                revolving,
                with_tape.join(
                    pools.filter(pl.col("pool_id").is_in(servicer_pools)).select("loan_id"),
                    on="loan_id",
                    how="semi",
                ),
            ]
        )
        .unique()
        .sort("loan_id")
    )
    reconciled = with_tape.join(paid, on="loan_id", how="semi").join(
        revolving, on="loan_id", how="anti"
    )
    catalog.write_frame(servicer, catalog.curated(SERVICER_LOANS))
    return ServicerTape(catalog, tape, servicer, reconciled.sort("loan_id"), deals)


def _fen_text(value: int | None) -> str | None:
    return None if value is None else fen_to_yuan_str(value)


def tape_sections(catalog: Catalog, deal: DealTerms, period_end: date) -> dict[str, object]:
    """The ``data_source`` (and, for revolving pools, ``revolving_accounts``) of a metrics.json.

    Empty when nothing of the pool comes from a tape and the deal keeps engine balances.
    """
    tape_path, servicer_path = catalog.curated("loan_tape"), catalog.curated(SERVICER_LOANS)
    snapshot = catalog.snapshot_partition(period_end)
    if not (tape_path.is_file() and servicer_path.is_file() and snapshot.is_file()):
        return {}
    members = (
        catalog.scan(snapshot).filter(pl.col("pool_id") == deal.pool_id).select("loan_id").collect()
    )
    servicer = members.join(pl.read_parquet(servicer_path), on="loan_id", how="semi")
    regions = (
        catalog.scan(catalog.curated("loans"))
        .join(members.lazy(), on="loan_id", how="semi")
        .select(pl.col("province").unique())
        .collect()["province"]
        .to_list()
    )
    outside = sorted(r for r in regions if r is not None and not deal.region_allowed(r))
    if servicer.height == 0 and deal.balance_source == "engine" and not outside:
        return {}
    rows = pl.read_parquet(tape_path).join(servicer, on="loan_id", how="semi")
    at_end = rows.filter(pl.col("as_of_date") <= period_end)
    delivered = [c for c in schema.LOAN_TAPE if at_end[c].null_count() < at_end.height]
    revolving = at_end["credit_limit"].null_count() < at_end.height
    source = data_source_section(
        balance_source=deal.balance_source,
        servicer_loans=servicer.height,
        engine_loans=members.height - servicer.height,
        available=tape_availability(delivered),
        revolving=revolving,
    )
    # The deal's allowed_regions: a pool loan from elsewhere is named for the report.
    source["regions_not_allowed"] = outside
    sections: dict[str, object] = {"data_source": source}
    mart = catalog.mart(REVOLVING_MART)
    if revolving and mart.is_file():
        found = pl.read_parquet(mart).filter(
            (pl.col("pool_id") == deal.pool_id) & (pl.col("as_of_date") == period_end)
        )
        if found.height:
            row = found.row(0, named=True)
            sections["revolving_accounts"] = {
                **{c: _fen_text(row[c]) for c, t in REVOLVING_METRICS.items() if t == schema.MONEY},
                "account_count": row["account_count"],
                "thirty_plus_count": row["thirty_plus_count"],
                "over_limit_count": row["over_limit_count"],
                **{
                    c: row[c]
                    for c in (
                        "payment_rate",
                        "utilisation",
                        "thirty_plus_share",
                        "charge_off_rate_annualised",
                        "yield_annualised",
                    )
                },
            }
    return sections
