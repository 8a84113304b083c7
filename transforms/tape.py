"""Servicer loan tapes: loan snapshots from consecutive tape rows, charge-offs, reconciliation.

A servicer's ``loan_tape`` (``schema.LOAN_TAPE``) reports each loan's balance,
DPD and status at month-ends. From it, without any repayment history:

- :func:`tape_snapshots` gives ``schema.LOAN_SNAPSHOTS`` rows whose flows are
  differences between a loan's consecutive snapshots (the first snapshot of a
  loan is its opening position and carries no flows):

  * principal collected = the balance decrease not explained by charge-off
    (``opening - closing - increase of charged_off_principal``); a revolving
    account (a credit limit, no schedule) collects the increase of
    ``principal_paid_to_date`` where the tape has it, and what it drew
    (``closing - opening + collected + charged off``, never negative) is
    ``new_drawings`` (新增用款: never a purchase), so the roll-forward closes
    (a ``revolving_credit`` loan counts as revolving with or without a credit
    limit on the tape);
  * of the principal collected, what brings the balance down to the loan's
    scheduled balance (principal due up to the period end plus
    ``advance_payment_days``) is scheduled, the rest unscheduled; a loan without
    a schedule (``revolving_credit``) has only scheduled principal;
  * interest and fees are the increases of ``interest_paid_to_date`` and
    ``fees_paid_to_date``; a tape without those columns does not make them 0:
    :func:`tape_availability` says which figures the tape cannot give;
  * default (DOMAIN.md): the first snapshot whose DPD exceeds ``default_dpd``,
    the servicer's ``defaulted`` status or ``default_date``, or a servicer
    charge-off; the defaulted principal is the balance at default (closing
    balance plus principal charged off in the period). The default date is the
    servicer's when given, else the day DPD passed ``default_dpd`` (DPD grows a
    day a day), never before the previous snapshot. A default never reverses;
  * charge-off: DPD reaching ``charge_off_dpd`` or a servicer charge-off
    (status ``charged_off``, ``charged_off_principal`` or ``charge_off_date``),
    whichever comes first; a servicer charge-off before ``default_dpd`` is a
    default too;
  * after default every collection is a recovery: the increase of
    ``recoveries_to_date`` where the tape has it, plus the cash the balance and
    paid-to-date columns show (a defaulted loan paying before the servicer's
    charge-off, or a card account curing at the servicer, still pays recoveries);
  * pool membership and purchases/removals come from ``pool_assets``; the tape
    reports balances at its dates only, so unlike the engine a purchase counts
    from its period's start (``purchased_principal`` = opening balance) and a
    removal at its end (``removed_principal`` = closing balance, status
    ``repurchased``), with nothing outside the pool (``outside_*`` columns 0);
    the cut-off addition is not a purchase.

- :func:`apply_servicer_charge_offs` applies the servicer's charge-offs to the
  engine's snapshots (a loan with repayments and a tape).
- :func:`reconcile` compares engine and servicer at each tape date.
- :func:`revolving_metrics` gives the card-ABS figures of revolving pools.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl

from transforms import schema
from transforms.joins import latest_per_loan
from transforms.performance import PerformanceRules

TO_DATE_FLOWS: Final = {
    "interest_paid": "interest_paid_to_date",
    "fees_paid": "fees_paid_to_date",
    "recoveries": "recoveries_to_date",
}
"""Snapshot flows that come from a "to date" column of the tape."""

_BUCKET_BOUNDS: Final = (0, 30, 60, 90, 120, 150, 180)
_DEFAULT_RULES: Final = PerformanceRules()


def _bucket(dpd: pl.Expr) -> pl.Expr:
    index = pl.sum_horizontal(*((dpd > b).cast(pl.Int32) for b in _BUCKET_BOUNDS))
    return index.replace_strict(dict(enumerate(schema.DPD_BUCKETS)), return_dtype=pl.String)


def _month_number(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int32) * 12 + day.dt.month().cast(pl.Int32)


def _previous(column: str) -> pl.Expr:
    # Frames are sorted by loan and date before any of these per-loan expressions runs.
    return pl.col(column).shift(1).over("loan_id")


def _delta(column: str) -> pl.Expr:
    """Increase of a "to date" column since the loan's previous snapshot (null if unknown)."""
    return pl.col(column) - _previous(column)


def tape_availability(tape_columns: Sequence[str]) -> dict[str, bool]:
    """Which snapshot flows a tape with these columns can give (False: not available)."""
    return {flow: source in tape_columns for flow, source in TO_DATE_FLOWS.items()}


def _membership(rows: pl.LazyFrame, pool_assets: pl.LazyFrame) -> pl.LazyFrame:
    """Each tape row with the loan's latest pool event on or before its date."""
    events = pool_assets.select(
        "loan_id",
        pl.col("pool_id").alias("_event_pool"),
        pl.col("event_date").alias("_event_date"),
        pl.col("event").alias("_event"),
        pl.col("reason").alias("_reason"),
    )
    return latest_per_loan(rows, events, on="as_of_date", history_on="_event_date")


def _rules_frame(
    rules_by_pool: Mapping[str, PerformanceRules], default: PerformanceRules
) -> pl.LazyFrame:
    pools = sorted(rules_by_pool)
    return pl.LazyFrame(
        {
            "_rules_pool": pools,
            "_default_dpd": [rules_by_pool[p].default_dpd for p in pools],
            "_charge_off_dpd": [rules_by_pool[p].charge_off_dpd for p in pools],
        },
        schema={"_rules_pool": pl.String, "_default_dpd": pl.Int32, "_charge_off_dpd": pl.Int32},
    ).with_columns(pl.lit(default.default_dpd).alias("_fallback"))


def _scheduled_balance(
    rows: pl.LazyFrame, loans: pl.LazyFrame, schedules: pl.LazyFrame, advance_payment_days: int
) -> pl.LazyFrame:
    """Each row with the loan's scheduled balance at its date and its final due date."""
    # Principal due up to each date: an as-of join on the running total of the schedule.
    running = (
        schedules.select("loan_id", "due_date", "principal_due")
        .sort("loan_id", "due_date")
        .select(
            "loan_id",
            "due_date",
            pl.col("principal_due").cum_sum().over("loan_id").alias("_due_to_date"),
        )
        .sort("due_date")
    )
    due = (
        rows.select("loan_id", "as_of_date")
        .unique()
        .with_columns(
            (pl.col("as_of_date") + pl.duration(days=advance_payment_days)).alias("_horizon")
        )
        .sort("_horizon")
        .join_asof(
            running,
            left_on="_horizon",
            right_on="due_date",
            by="loan_id",
            strategy="backward",
            check_sortedness=False,
        )
        .select("loan_id", "as_of_date", "_due_to_date")
    )
    final = schedules.group_by("loan_id").agg(
        pl.col("due_date").max().alias("_final_due"), pl.len().alias("_instalments")
    )
    return (
        rows.join(due, on=["loan_id", "as_of_date"], how="left")
        .join(final, on="loan_id", how="left")
        .join(
            loans.select("loan_id", pl.col("principal").alias("_principal")),
            on="loan_id",
            how="left",
        )
        .with_columns(
            pl.when(pl.col("_final_due").is_not_null())
            .then((pl.col("_principal") - pl.col("_due_to_date").fill_null(0)).clip(lower_bound=0))
            .alias("_scheduled_balance")
        )
    )


def tape_snapshots(
    tape: pl.LazyFrame,
    loans: pl.LazyFrame,
    schedules: pl.LazyFrame,
    pool_assets: pl.LazyFrame,
    *,
    rules: PerformanceRules = _DEFAULT_RULES,
    rules_by_pool: Mapping[str, PerformanceRules] | None = None,
    advance_payment_days: int = 7,
    as_of_dates: Sequence[date] | None = None,
) -> pl.LazyFrame:
    """Loan snapshots of the loans in ``tape``, their flows from consecutive tape rows.

    Args:
        tape: curated ``schema.LOAN_TAPE`` rows (one per loan and as-of date).
        loans: curated loans (``loan_id``, ``principal``, ``origination_date``,
            ``first_due_date``, ``term_months``; revolving accounts may leave terms null).
        schedules: ``schema.SCHEDULES`` of the scheduled loans (may be empty).
        pool_assets: curated pool events.
        rules: DPD thresholds outside pools (or for a pool without its own).
        rules_by_pool: DPD thresholds by pool (the deal's definitions).
        advance_payment_days: a payment this many days before its due date is scheduled.
        as_of_dates: keep only these dates (flows are still measured from the
            previous tape row of each loan).

    Returns:
        ``schema.LOAN_SNAPSHOTS`` rows sorted by as-of date and loan.
    """
    columns = tape.collect_schema().names()
    present = {c: c in columns for c in schema.LOAN_TAPE}
    typed = tape.select(
        *[
            (pl.col(c) if present[c] else pl.lit(None, dtype=t)).cast(t).alias(c)
            for c, t in schema.LOAN_TAPE.items()
        ]
    )
    rows = _membership(typed, pool_assets)
    rows = rows.with_columns(
        pl.when(pl.col("_event") == "added")
        .then(pl.col("_event_pool"))
        .when(pl.col("_event") == "removed")
        .then(pl.col("_event_pool"))
        .alias("_pool")
    ).join(
        _rules_frame(rules_by_pool or {}, rules),
        left_on="_pool",
        right_on="_rules_pool",
        how="left",
    )
    default_dpd = pl.col("_default_dpd").fill_null(rules.default_dpd)
    charge_off_dpd = pl.col("_charge_off_dpd").fill_null(rules.charge_off_dpd)
    rows = _scheduled_balance(rows, loans, schedules, advance_payment_days)
    has_product = "product" in loans.collect_schema().names()
    product = pl.col("product") if has_product else pl.lit(None, dtype=pl.String)
    rows = rows.join(
        loans.select(
            "loan_id",
            "origination_date",
            "first_due_date",
            "term_months",
            product.alias("_product"),
        ),
        on="loan_id",
        how="left",
    ).sort("loan_id", "as_of_date")

    as_of = pl.col("as_of_date")
    servicer_charge_off = (
        (pl.col("status") == "charged_off")
        | (pl.col("charged_off_principal").fill_null(0) > 0)
        | (pl.col("charge_off_date").is_not_null() & (pl.col("charge_off_date") <= as_of))
    )
    charged_off_now = servicer_charge_off | (pl.col("dpd") >= charge_off_dpd)
    defaulted_now = (
        charged_off_now
        | (pl.col("status") == "defaulted")
        | (pl.col("dpd") > default_dpd)
        | (pl.col("default_date").is_not_null() & (pl.col("default_date") <= as_of))
    )
    rows = rows.with_columns(
        defaulted_now.cast(pl.Int8).cum_max().over("loan_id").cast(pl.Boolean).alias("_defaulted"),
        charged_off_now.cast(pl.Int8).cum_max().over("loan_id").cast(pl.Boolean).alias("_charged"),
        _previous("as_of_date").alias("_previous_as_of"),
        _previous("current_principal").alias("_opening"),
        (
            pl.col("charged_off_principal").fill_null(0)
            - _previous("charged_off_principal").fill_null(0)
        ).alias("_charged_off_in_period"),
    ).with_columns(
        pl.col("_defaulted").shift(1).over("loan_id").alias("_was_defaulted"),
        (
            pl.col("_scheduled_balance")
            - pl.col("current_principal")
            - pl.col("charged_off_principal").fill_null(0)
        )
        .clip(lower_bound=0)
        .fill_null(0)
        .cum_max()
        .over("loan_id")
        .alias("_ahead"),
    )
    first_row = pl.col("_previous_as_of").is_null()
    was_defaulted = pl.col("_was_defaulted").fill_null(False)
    defaults_now = pl.col("_defaulted") & ~was_defaulted
    # The day DPD first exceeded default_dpd, when the tape shows DPD growing past it.
    passed_dpd = as_of - pl.duration(days=(pl.col("dpd") - default_dpd - 1).clip(lower_bound=0))
    day_after_previous = pl.col("_previous_as_of") + pl.duration(days=1)
    estimated = (
        pl.when(pl.col("dpd") > default_dpd)
        .then(pl.max_horizontal(passed_dpd, day_after_previous))
        .otherwise(as_of)
    )
    servicer_date = pl.min_horizontal(pl.col("default_date"), pl.col("charge_off_date"))
    default_date = (
        pl.when(defaults_now)
        .then(
            pl.coalesce(
                pl.when(first_row | (servicer_date > pl.col("_previous_as_of"))).then(
                    servicer_date.clip(upper_bound=as_of)
                ),
                pl.when(~first_row).then(estimated),
                as_of,
            )
        )
        .otherwise(None)
    )
    collected = pl.col("_opening") - pl.col("current_principal") - pl.col("_charged_off_in_period")
    principal_collected = collected.clip(lower_bound=0)
    # A revolving account (revolving_credit or a credit limit, and no schedule) repays and
    # draws in the same month:
    # its collections are the gross increase of principal_paid_to_date where the tape has
    # it, and what it drew (closing - opening + collected + charged off) is its new
    # drawings (DOMAIN.md roll-forward: new drawings on revolving accounts, 新增用款).
    revolving = pl.col("_final_due").is_null() & (
        (pl.col("_product") == "revolving_credit") | pl.col("credit_limit").is_not_null()
    )
    gross = pl.coalesce(_delta("principal_paid_to_date"), principal_collected)
    principal_collected = pl.when(revolving).then(gross).otherwise(principal_collected)
    drawn = (
        pl.when(revolving)
        .then(
            (
                pl.col("current_principal")
                - pl.col("_opening")
                + principal_collected
                + pl.col("_charged_off_in_period")
            ).clip(lower_bound=0)
        )
        .otherwise(0)
    )
    # Unscheduled principal is the growth of the running maximum of what the loan is ahead
    # of its schedule (as the engine counts it), so paying an instalment after a
    # prepayment is scheduled, and a tape that starts mid-life starts from its position.
    unscheduled = (
        (pl.col("_ahead") - pl.col("_ahead").shift(1).over("loan_id"))
        .fill_null(0)
        .clip(lower_bound=0)
    )
    unscheduled = pl.min_horizontal(unscheduled, principal_collected)
    scheduled = principal_collected - unscheduled
    interest = _delta("interest_paid_to_date")
    fees = _delta("fees_paid_to_date")
    # A servicer counts recoveries after its charge-off; what a defaulted loan pays before
    # that (or after curing at the servicer) shows in its paid-to-date columns. A default
    # never reverses in the figures, so both are recoveries (DOMAIN.md).
    # Where the tape has recoveries_to_date, a balance drop is a charge-off, never cash: only
    # the paid-to-date columns add to it.
    paid_cash = interest.fill_null(0) + fees.fill_null(0)
    recovered = (
        pl.when(_delta("recoveries_to_date").is_not_null())
        .then(
            _delta("recoveries_to_date")
            + _delta("principal_paid_to_date").fill_null(0).clip(lower_bound=0)
            + paid_cash
        )
        .otherwise(principal_collected + paid_cash)
    )
    performing_flow = ~first_row & ~was_defaulted
    rows = rows.with_columns(
        pl.when(performing_flow).then(scheduled).otherwise(0).alias("scheduled_principal_paid"),
        pl.when(performing_flow).then(unscheduled).otherwise(0).alias("unscheduled_principal_paid"),
        pl.when(performing_flow).then(interest).otherwise(0).fill_null(0).alias("interest_paid"),
        pl.when(performing_flow).then(fees).otherwise(0).fill_null(0).alias("fees_paid"),
        pl.when(~first_row & was_defaulted)
        .then(recovered)
        .otherwise(0)
        .fill_null(0)
        .alias("recoveries"),
        default_date.alias("_default_date_now"),
        drawn.alias("_drawn"),
        pl.when(defaults_now & ~first_row)
        .then(pl.col("current_principal") + pl.col("_charged_off_in_period"))
        .when(defaults_now)
        .then(0)
        .alias("_defaulted_now"),
    ).with_columns(
        pl.col("_default_date_now").forward_fill().over("loan_id").alias("default_date"),
        pl.col("_defaulted_now")
        .forward_fill()
        .over("loan_id")
        .fill_null(0)
        .alias("defaulted_principal"),
    )
    in_period = pl.col("_event_date") > pl.col("_previous_as_of")
    removed = (pl.col("_event") == "removed") & (first_row | in_period)
    purchased = (
        (pl.col("_event") == "added") & (pl.col("_reason") != "cutoff") & (first_row | in_period)
    )
    balance = pl.col("current_principal")
    repaid = pl.when(
        pl.col("_final_due").is_not_null()
        & (as_of + pl.duration(days=advance_payment_days) < pl.col("_final_due"))
    ).then(pl.lit("prepaid"))
    status = (
        pl.when(pl.col("_charged"))
        .then(pl.lit("charged_off"))
        .when(pl.col("_defaulted"))
        .then(pl.lit("defaulted"))
        .when(removed)
        .then(pl.lit("repurchased"))
        .when(pl.col("status").is_in(["prepaid", "matured", "repurchased"]))
        .then(pl.col("status"))
        .when(balance == 0)
        .then(repaid.otherwise(pl.lit("matured")))
        .when(pl.col("status").is_in(list(schema.PERFORMING_STATUSES)))
        .then(pl.col("status"))
        .when(pl.col("dpd") > 0)
        .then(pl.lit("delinquent"))
        .otherwise(pl.lit("current"))
    )
    months_on_book = _month_number(as_of) - _month_number(pl.col("origination_date"))
    instalments_due = (_month_number(as_of) - _month_number(pl.col("first_due_date")) + 1).clip(
        lower_bound=0
    )
    out = rows.with_columns(
        pl.when(pl.col("_event").is_null() | ((pl.col("_event") == "removed") & ~removed))
        .then(None)
        .otherwise(pl.col("_event_pool"))
        .alias("pool_id"),
        pl.coalesce(pl.col("_opening"), balance).alias("opening_principal"),
        balance.alias("closing_principal"),
        _bucket(pl.col("dpd")).alias("bucket"),
        status.alias("status"),
        pl.when(purchased)
        .then(pl.coalesce(pl.col("_opening"), balance))
        .otherwise(0)
        .alias("purchased_principal"),
        # What a revolving account drew in the period is a new drawing (新增用款), never a
        # purchase: it adds to the pool balance of an account already in the pool.
        pl.when(~first_row & ~was_defaulted)
        .then(pl.col("_drawn"))
        .otherwise(0)
        .alias("new_drawings"),
        pl.when(removed).then(balance).otherwise(0).alias("removed_principal"),
        # The servicer reports period ends only: pool events count at them.
        *(pl.lit(0, dtype=schema.MONEY).alias(c) for c in schema.OUTSIDE_POOL_FLOWS.values()),
        *(pl.lit(0, dtype=schema.MONEY).alias(c) for c in schema.OUTSIDE_POOL_DEFAULT.values()),
        pl.coalesce(months_on_book, pl.lit(0)).clip(lower_bound=0).alias("months_on_book"),
        # An account without a schedule (revolving_credit) has no remaining term: 0, and its
        # pool's WAM is hidden with a reason (INSTALMENT_ONLY).
        (pl.col("term_months") - instalments_due)
        .clip(lower_bound=0)
        .fill_null(0)
        .alias("remaining_term"),
    )
    if as_of_dates is not None:
        out = out.filter(pl.col("as_of_date").is_in(list(as_of_dates)))
    return out.select([pl.col(c).cast(t) for c, t in schema.LOAN_SNAPSHOTS.items()]).sort(
        "as_of_date", "loan_id"
    )


# --- servicer charge-offs on the engine's snapshots ----------------------------------------------


def servicer_charge_offs(tape: pl.LazyFrame) -> pl.LazyFrame:
    """The first date the servicer reports each loan charged off (one row per loan)."""
    columns = tape.collect_schema().names()
    signal = pl.col("status") == "charged_off"
    if "charged_off_principal" in columns:
        signal = signal | (pl.col("charged_off_principal").fill_null(0) > 0)
    day = pl.col("as_of_date")
    if "charge_off_date" in columns:
        day = pl.min_horizontal(pl.col("charge_off_date"), day)
    return (
        tape.filter(signal)
        .group_by("loan_id")
        .agg(day.min().alias("servicer_charge_off_date"))
        .sort("loan_id")
    )


def apply_servicer_charge_offs(snapshots: pl.LazyFrame, charge_offs: pl.LazyFrame) -> pl.LazyFrame:
    """Charge loans off where the servicer did, even before ``charge_off_dpd`` (DOMAIN.md).

    From the first snapshot on or after the servicer's charge-off date the loan is
    ``charged_off``; if the engine had not defaulted it yet, that snapshot is its
    default: ``default_date`` is the charge-off date and its defaulted principal
    the balance then (the closing balance, after the period's collections).
    Later cash is recovery: from the next snapshot on, the performing flows the
    engine computed (principal, interest, fees) are recoveries.

    Args:
        snapshots: engine ``schema.LOAN_SNAPSHOTS`` rows.
        charge_offs: :func:`servicer_charge_offs`.

    Returns:
        The snapshots, same rows and columns.
    """
    joined = snapshots.join(charge_offs, on="loan_id", how="left").sort("loan_id", "as_of_date")
    charged = pl.col("servicer_charge_off_date").is_not_null() & (
        pl.col("as_of_date") >= pl.col("servicer_charge_off_date")
    )
    engine_defaulted = pl.col("default_date").is_not_null() & (
        pl.col("default_date") <= pl.col("as_of_date")
    )
    first_charged = charged & ~(charged.shift(1).over("loan_id").fill_null(False))
    new_default = charged & ~engine_defaulted
    after = charged & ~first_charged
    flows = ["scheduled_principal_paid", "unscheduled_principal_paid", "interest_paid", "fees_paid"]
    cash_after = pl.sum_horizontal(*[pl.col(c) for c in flows])
    adjusted = joined.with_columns(
        pl.when(charged).then(pl.lit("charged_off")).otherwise(pl.col("status")).alias("status"),
        pl.when(new_default)
        .then(pl.col("servicer_charge_off_date"))
        .otherwise(pl.col("default_date"))
        .alias("default_date"),
        pl.when(new_default & first_charged)
        .then(pl.col("closing_principal"))
        .when(new_default)
        .then(None)
        .otherwise(pl.col("defaulted_principal"))
        .alias("defaulted_principal"),
        pl.when(after & new_default)
        .then(pl.col("recoveries") + cash_after)
        .otherwise(pl.col("recoveries"))
        .alias("recoveries"),
        *[pl.when(after & new_default).then(0).otherwise(pl.col(c)).alias(c) for c in flows],
        # The part outside the pool moves to recoveries alike.
        pl.when(after & new_default)
        .then(pl.sum_horizontal(pl.col(list(schema.OUTSIDE_POOL_FLOWS.values()))))
        .otherwise(pl.col("outside_recoveries"))
        .alias("outside_recoveries"),
        *[
            pl.when(after & new_default).then(0).otherwise(pl.col(o)).alias(o)
            for o in (schema.OUTSIDE_POOL_FLOWS[c] for c in flows)
        ],
    ).with_columns(
        pl.col("defaulted_principal").forward_fill().over("loan_id").fill_null(0),
    )
    return adjusted.select(list(schema.LOAN_SNAPSHOTS)).sort("as_of_date", "loan_id")


# --- reconciliation: engine versus servicer ------------------------------------------------------

RECONCILIATION: Final[schema.Columns] = {
    "as_of_date": pl.Date,
    "loan_id": pl.String,
    "pool_id": pl.String,
    "engine_balance": schema.MONEY,
    "servicer_balance": schema.MONEY,
    "balance_difference": schema.MONEY,
    "engine_dpd": pl.Int32,
    "servicer_dpd": pl.Int32,
    "dpd_difference": pl.Int32,
    "engine_status": pl.String,
    "servicer_status": pl.String,
    "breaks": pl.List(pl.String),
}
"""One row per loan and tape date where engine and servicer differ beyond tolerance."""


@dataclass(frozen=True)
class Tolerances:
    """How far engine and servicer may differ before a difference is listed."""

    balance_fen: int = 0
    dpd_days: int = 0


def _status_group(status: pl.Expr) -> pl.Expr:
    """Statuses that mean the same for reconciliation (a servicer's 'prepaid' vs 'matured')."""
    return status.replace({"matured": "repaid", "prepaid": "repaid"})


def reconcile(
    engine: pl.LazyFrame, tape: pl.LazyFrame, tolerances: Tolerances = Tolerances()
) -> pl.LazyFrame:
    """Differences between the engine's snapshots and the servicer's tape at each tape date.

    Balance is compared to the fen (above ``balance_fen``) while both sides hold
    the loan performing or repaid (a written-off balance is the servicer's
    accounting, not a difference), DPD within ``dpd_days``, status as a
    category (prepaid and matured both mean repaid).

    Returns:
        :data:`RECONCILIATION` rows, only those with at least one break, sorted by
        as-of date and loan.
    """
    both = engine.select(
        "as_of_date",
        "loan_id",
        "pool_id",
        pl.col("closing_principal").alias("engine_balance"),
        pl.col("dpd").alias("engine_dpd"),
        pl.col("status").alias("engine_status"),
    ).join(
        tape.select(
            "as_of_date",
            "loan_id",
            pl.col("current_principal").alias("servicer_balance"),
            pl.col("dpd").alias("servicer_dpd"),
            pl.col("status").alias("servicer_status"),
        ),
        on=["as_of_date", "loan_id"],
        how="inner",
    )
    balance_difference = pl.col("engine_balance") - pl.col("servicer_balance")
    dpd_difference = pl.col("engine_dpd") - pl.col("servicer_dpd")
    written_off = ["defaulted", "charged_off"]
    comparable = ~pl.col("engine_status").is_in(written_off) & ~pl.col("servicer_status").is_in(
        written_off
    )
    breaks = pl.concat_list(
        pl.when(comparable & (balance_difference.abs() > tolerances.balance_fen)).then(
            pl.lit("balance")
        ),
        pl.when(dpd_difference.abs() > tolerances.dpd_days).then(pl.lit("dpd")),
        pl.when(
            _status_group(pl.col("engine_status")) != _status_group(pl.col("servicer_status"))
        ).then(pl.lit("status")),
    ).list.drop_nulls()
    return (
        both.with_columns(
            balance_difference.alias("balance_difference"),
            dpd_difference.alias("dpd_difference"),
            breaks.alias("breaks"),
        )
        .filter(pl.col("breaks").list.len() > 0)
        .select([pl.col(c).cast(t) for c, t in RECONCILIATION.items()])
        .sort("as_of_date", "loan_id")
    )


def reconciliation_summary(
    differences: pl.DataFrame, compared: int, largest: int = 10
) -> dict[str, object]:
    """Counts, amounts and the largest balance differences, for the data-quality report.

    Args:
        differences: :func:`reconcile` rows.
        compared: loan-dates compared (rows present in both sources).
        largest: how many of the largest balance differences to list.

    Returns:
        ``compared``, ``differing``, ``by_break`` (break -> rows),
        ``balance_difference_total`` and ``balance_difference_abs_total`` (fen), and
        ``largest`` (as-of date, loan, engine, servicer, difference; fen) by absolute
        balance difference, then loan key.
    """
    by_break = (
        differences.select(pl.col("breaks").explode().alias("break"))
        .drop_nulls()
        .group_by("break")
        .len()
        .sort("break")
    )
    top = (
        differences.filter(pl.col("breaks").list.contains("balance"))
        .with_columns(pl.col("balance_difference").abs().alias("_abs"))
        .sort(["_abs", "loan_id", "as_of_date"], descending=[True, False, False])
        .head(largest)
    )
    return {
        "compared": compared,
        "differing": differences.height,
        "by_break": dict(zip(by_break["break"].to_list(), by_break["len"].to_list(), strict=True)),
        "balance_difference_total": int(differences["balance_difference"].sum() or 0),
        "balance_difference_abs_total": int(differences["balance_difference"].abs().sum() or 0),
        "largest": [
            {
                "as_of_date": row["as_of_date"].isoformat(),
                "loan_id": row["loan_id"],
                "engine_balance": row["engine_balance"],
                "servicer_balance": row["servicer_balance"],
                "balance_difference": row["balance_difference"],
            }
            for row in top.iter_rows(named=True)
        ],
    }


# --- revolving pools -----------------------------------------------------------------------------

REVOLVING_METRICS: Final[schema.Columns] = {
    "pool_id": pl.String,
    "as_of_date": pl.Date,
    "opening_balance": schema.MONEY,
    "principal_collections": schema.MONEY,
    "interest_collections": schema.MONEY,
    "fee_collections": schema.MONEY,
    "new_drawings": schema.MONEY,
    "charged_off_principal": schema.MONEY,
    "recoveries": schema.MONEY,
    "closing_balance": schema.MONEY,
    "credit_limit": schema.MONEY,
    "account_count": pl.Int64,
    "thirty_plus_count": pl.Int64,
    "thirty_plus_balance": schema.MONEY,
    "over_limit_count": pl.Int64,
    "payment_rate": pl.Float64,
    "utilisation": pl.Float64,
    "thirty_plus_share": pl.Float64,
    "charge_off_rate_annualised": pl.Float64,
    "yield_annualised": pl.Float64,
}
"""One row per revolving pool and as-of date (card-ABS conventions, DOMAIN.md)."""


def revolving_metrics(tape: pl.LazyFrame, pool_of: pl.LazyFrame) -> pl.LazyFrame:
    """Payment rate, utilisation, 30+ delinquency, charge-off and yield of revolving pools.

    Balances are the servicer's statement balances. Per account and month:
    principal collected is the increase of ``principal_paid_to_date`` where the
    tape has it (then new drawings = closing - opening + collected + charged
    off), else the balance decrease not explained by charge-off (and a balance
    increase is new drawings, net). Payment rate = principal + interest + fees
    collected / opening balance (recoveries excluded); utilisation = balance /
    credit limit of open accounts (zero balances included); 30+ = DPD above 30
    among open accounts; charge-off and yield rates are monthly amounts /
    opening balance x 12. Open accounts are those not charged off or defaulted.

    Args:
        tape: ``schema.LOAN_TAPE`` rows of revolving accounts.
        pool_of: ``loan_id``, ``pool_id`` (each account's pool).

    Returns:
        :data:`REVOLVING_METRICS` rows sorted by pool and date; ratios null when
        their denominator is zero, payment rate and yield null when the tape lacks
        interest or fees paid to date (never a rate over the parts that are there).
    """
    columns = tape.collect_schema().names()

    def optional(name: str) -> pl.Expr:
        return pl.col(name) if name in columns else pl.lit(None, dtype=schema.MONEY)

    rows = tape.join(pool_of, on="loan_id", how="inner").sort("loan_id", "as_of_date")
    charged = optional("charged_off_principal").fill_null(0)
    rows = rows.with_columns(
        charged.alias("_charged_to_date"),
        optional("principal_paid_to_date").alias("_paid_to_date"),
        optional("interest_paid_to_date").alias("_interest_to_date"),
        optional("fees_paid_to_date").alias("_fees_to_date"),
        optional("recoveries_to_date").alias("_recoveries_to_date"),
        optional("credit_limit").alias("_limit"),
    )
    first = _previous("as_of_date").is_null()
    opening = _previous("current_principal")
    charged_in = pl.col("_charged_to_date") - _previous("_charged_to_date")
    collected_paid = _delta("_paid_to_date")
    net = opening - pl.col("current_principal") - charged_in
    collected = pl.coalesce(collected_paid, net.clip(lower_bound=0))
    drawings = pl.coalesce(
        pl.col("current_principal") - opening + collected_paid + charged_in,
        (-net).clip(lower_bound=0),
    )
    open_account = ~pl.col("status").is_in(["charged_off", "defaulted"])
    was_open = ~(_previous("status").is_in(["charged_off", "defaulted"]).fill_null(False))
    flows = rows.with_columns(
        pl.when(~first & was_open).then(opening).otherwise(0).alias("_opening"),
        pl.when(~first & was_open).then(collected).otherwise(0).alias("_collected"),
        pl.when(~first & was_open)
        .then(_delta("_interest_to_date"))
        .otherwise(0)
        .alias("_interest"),
        pl.when(~first & was_open).then(_delta("_fees_to_date")).otherwise(0).alias("_fees"),
        pl.when(~first & was_open).then(drawings).otherwise(0).alias("_drawings"),
        pl.when(~first & was_open)
        .then(pl.when(open_account).then(charged_in).otherwise(opening - collected + drawings))
        .otherwise(0)
        .alias("_charged_off"),
        pl.when(~first).then(_delta("_recoveries_to_date")).otherwise(0).alias("_recovered"),
        open_account.alias("_open"),
    )
    thirty = pl.col("_open") & (pl.col("dpd") > 30)
    per_pool = flows.group_by("pool_id", "as_of_date").agg(
        pl.col("_opening").sum().alias("opening_balance"),
        pl.col("_collected").sum().alias("principal_collections"),
        pl.col("_interest").sum().alias("interest_collections"),
        pl.col("_fees").sum().alias("fee_collections"),
        pl.col("_drawings").sum().alias("new_drawings"),
        pl.col("_charged_off").sum().alias("charged_off_principal"),
        pl.col("_recovered").sum().alias("recoveries"),
        pl.col("current_principal").filter(pl.col("_open")).sum().alias("closing_balance"),
        pl.col("_limit").filter(pl.col("_open")).sum().alias("credit_limit"),
        pl.col("_open").sum().cast(pl.Int64).alias("account_count"),
        thirty.sum().cast(pl.Int64).alias("thirty_plus_count"),
        pl.col("current_principal").filter(thirty).sum().alias("thirty_plus_balance"),
        # A balance above its limit is flagged (DESIGN.md), never rejected.
        (pl.col("_open") & (pl.col("current_principal") > pl.col("_limit")))
        .sum()
        .cast(pl.Int64)
        .alias("over_limit_count"),
        # Payment rate and yield need both interest and fees: a missing part is no 0.
        (pl.col("_interest").is_null().any() | pl.col("_fees").is_null().any()).alias("_no_income"),
        pl.col("_limit").filter(pl.col("_open")).is_null().any().alias("_no_limit"),
    )

    def ratio(numerator: pl.Expr, denominator: pl.Expr, scale: int = 1) -> pl.Expr:
        return (
            pl.when(denominator > 0)
            .then(numerator.cast(pl.Float64) * scale / denominator.cast(pl.Float64))
            .otherwise(None)
        )

    opening_balance = pl.col("opening_balance")
    cash = (
        pl.col("principal_collections") + pl.col("interest_collections") + pl.col("fee_collections")
    )
    return (
        per_pool.with_columns(
            pl.when(pl.col("_no_income"))
            .then(None)
            .otherwise(ratio(cash, opening_balance))
            .alias("payment_rate"),
            pl.when(pl.col("_no_limit"))
            .then(None)
            .otherwise(ratio(pl.col("closing_balance"), pl.col("credit_limit")))
            .alias("utilisation"),
            ratio(pl.col("thirty_plus_balance"), pl.col("closing_balance")).alias(
                "thirty_plus_share"
            ),
            ratio(pl.col("charged_off_principal"), opening_balance, 12).alias(
                "charge_off_rate_annualised"
            ),
            pl.when(pl.col("_no_income"))
            .then(None)
            .otherwise(
                ratio(
                    pl.col("interest_collections") + pl.col("fee_collections"), opening_balance, 12
                )
            )
            .alias("yield_annualised"),
        )
        .select([pl.col(c).cast(t) for c, t in REVOLVING_METRICS.items()])
        .sort("pool_id", "as_of_date")
    )


# --- curation and snapshot dates ------------------------------------------------------------------


def current_tape(staged: pl.LazyFrame) -> pl.LazyFrame:
    """One row per loan and as-of date: the latest delivery wins (a re-sent month corrects)."""
    return (
        staged.sort("business_date", "source_file", "source_line")
        .unique(subset=["loan_id", "as_of_date"], keep="last", maintain_order=True)
        .select(list(schema.LOAN_TAPE))
        .sort("loan_id", "as_of_date")
    )


def at_dates(snapshots: pl.LazyFrame, as_of_dates: Sequence[date]) -> pl.LazyFrame:
    """Tape-derived snapshots at ``as_of_dates``.

    A date with the loan's own tape row keeps it; a date between tape rows (a
    cut-off or the latest business date inside a month) shows the loan's last
    reported position with no flows, so a collection period is never split and
    nothing is counted twice. A date before a loan's first tape row has no row.
    """
    wanted = pl.LazyFrame({"_date": sorted(set(as_of_dates))}, schema={"_date": pl.Date})
    latest = (
        snapshots.select("loan_id")
        .unique()
        .join(wanted, how="cross")
        .sort("_date")
        .join_asof(
            snapshots.sort("as_of_date").with_columns(pl.col("as_of_date").alias("_reported")),
            left_on="_date",
            right_on="as_of_date",
            by="loan_id",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("_reported").is_not_null())
    )
    same_day = pl.col("_reported") == pl.col("_date")
    flows = [
        "scheduled_principal_paid",
        "unscheduled_principal_paid",
        "interest_paid",
        "fees_paid",
        "recoveries",
        "purchased_principal",
        "removed_principal",
        "new_drawings",
        *schema.OUTSIDE_POOL_FLOWS.values(),
        *schema.OUTSIDE_POOL_DEFAULT.values(),
    ]
    return (
        latest.with_columns(
            pl.col("_date").alias("as_of_date"),
            pl.when(same_day)
            .then(pl.col("opening_principal"))
            .otherwise(pl.col("closing_principal"))
            .alias("opening_principal"),
            *[pl.when(same_day).then(pl.col(c)).otherwise(0).alias(c) for c in flows],
        )
        .select(list(schema.LOAN_SNAPSHOTS))
        .sort("as_of_date", "loan_id")
    )


# --- what a pool's disclosure can show ----------------------------------------------------------

NEEDS_INTEREST: Final = (
    "collections.interest",
    "collections.total",
    "performance.payment_rate",
    "performance.excess_spread",
    "credit_enhancement.excess_spread",
    "revolving_accounts.interest_collections",
    "revolving_accounts.payment_rate",
    "revolving_accounts.yield_annualised",
    "waterfall.income",
)
"""metrics.json figures that need the interest collected (``waterfall.income``: the
income the waterfall distributes, so its income account is not available either)."""

NEEDS_FEES: Final = (
    "collections.fees",
    "collections.total",
    "performance.payment_rate",
    "performance.excess_spread",
    "credit_enhancement.excess_spread",
    "revolving_accounts.fee_collections",
    "revolving_accounts.payment_rate",
    "revolving_accounts.yield_annualised",
    "waterfall.income",
)
"""metrics.json figures that need the fees collected (a total over what is there is no total)."""

NEEDS_RECOVERIES: Final = (
    "collections.recoveries",
    "collections.total",
    "performance.recovery_rate",
    "performance.cumulative_net_loss_rate",
    "revolving_accounts.recoveries",
    "waterfall.income",
)
"""metrics.json figures that need the recoveries collected."""

INSTALMENT_ONLY: Final = {
    "characteristics.wam_months": "revolving accounts have no schedule, so no remaining term",
    "performance.smm": "schedule-based prepayment does not apply to revolving accounts",
    "performance.cpr": "schedule-based prepayment does not apply to revolving accounts",
    "pool.scheduled_principal": (
        "card repayments have no schedule, so principal collected is not split into"
        " scheduled and unscheduled"
    ),
}
"""Figures hidden for revolving pools, with the reason the report states."""


def data_source_section(
    *,
    balance_source: str,
    servicer_loans: int,
    engine_loans: int,
    available: Mapping[str, bool],
    revolving: bool,
) -> dict[str, object]:
    """The ``data_source`` object of a pool's metrics.json.

    Args:
        balance_source: the deal's ``balance_source`` (kept as ``requested_balance_source``).
        servicer_loans: the pool's loans whose snapshots come from the tape.
        engine_loans: the pool's loans computed by the engine from repayments.
        available: :func:`tape_availability` of the pool's tape rows.
        revolving: the pool holds revolving accounts.

    Returns:
        ``balance_source`` (``engine``, ``servicer`` or ``mixed``: what the figures rest on),
        the counts, ``not_available`` (metrics.json keys the source cannot give: the
        report prints "not available from this source", never the 0 in the document)
        and ``hidden_sections`` (instalment-only figures of revolving pools, with reasons).
    """
    # What the figures rest on, whatever the deal asks for: a servicer deal whose loans have
    # no tape rows yet is still computed by the engine.
    if servicer_loans and engine_loans:
        source = "mixed"
    elif servicer_loans:
        source = "servicer"
    else:
        source = "engine"
    missing: list[str] = []
    if servicer_loans:
        # A figure built from a missing part is not available as a whole: never the sum of
        # the parts that are there (collections.total, payment rate, excess spread).
        if not available.get("interest_paid", False):
            missing.extend(NEEDS_INTEREST)
        if not available.get("fees_paid", False):
            missing.extend(NEEDS_FEES)
        if not available.get("recoveries", False):
            missing.extend(NEEDS_RECOVERIES)
    hidden = (
        [{"section": key, "reason": reason} for key, reason in INSTALMENT_ONLY.items()]
        if revolving
        else []
    )
    return {
        "balance_source": source,
        "requested_balance_source": balance_source,
        "servicer_loans": servicer_loans,
        "engine_loans": engine_loans,
        "not_available": sorted(set(missing)),
        "hidden_sections": hidden,
    }
