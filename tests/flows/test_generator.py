"""The synthetic landing-zone generator: layout, determinism, conventions, realism."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from data_contracts.deal import DealTerms
from flows.generator import GenerationSummary, generate_landing
from flows.metrics import date_rules
from transforms import schema
from transforms.dates import is_business_day, payment_date, report_date
from transforms.periods import month_ends_between
from transforms.schedules import build_schedules

MONEY_TEXT = r"^\d+\.\d{2}$"
RATE_TEXT = r"^0\.\d{1,6}$"
# fmt: off
MAINLAND_PROVINCES = frozenset({
    "CN-BJ", "CN-TJ", "CN-HE", "CN-SX", "CN-NM", "CN-LN", "CN-JL", "CN-HL", "CN-SH", "CN-JS",
    "CN-ZJ", "CN-AH", "CN-FJ", "CN-JX", "CN-SD", "CN-HA", "CN-HB", "CN-HN", "CN-GD", "CN-GX",
    "CN-HI", "CN-CQ", "CN-SC", "CN-GZ", "CN-YN", "CN-XZ", "CN-SN", "CN-GS", "CN-QH", "CN-NX",
    "CN-XJ",
})
# fmt: on
DATASETS = {
    "loans": schema.LOANS,
    "repayments": schema.REPAYMENTS,
    "pool_assets": schema.POOL_ASSETS,
}


@dataclass(frozen=True)
class Landing:
    root: Path
    summary: GenerationSummary
    text: dict[str, pl.DataFrame]
    """Each dataset as text, with the ``folder`` it was delivered in."""

    @property
    def loans(self) -> pl.DataFrame:
        return _typed(self.text["loans"], schema.LOANS)

    @property
    def repayments(self) -> pl.DataFrame:
        return _typed(self.text["repayments"], schema.REPAYMENTS)

    @property
    def pool_assets(self) -> pl.DataFrame:
        return _typed(self.text["pool_assets"], schema.POOL_ASSETS)


def _typed(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    exprs = []
    for name, dtype in columns.items():
        col = pl.col(name)
        if dtype == schema.MONEY:
            exprs.append((col.cast(pl.Decimal(18, 2)) * 100).cast(pl.Int64).alias(name))
        elif dtype == pl.Date:
            exprs.append(col.str.to_date("%Y-%m-%d").alias(name))
        else:
            exprs.append(col.cast(dtype).alias(name))
    return frame.with_columns(exprs)


def _read(root: Path) -> dict[str, pl.DataFrame]:
    frames: dict[str, list[pl.DataFrame]] = {name: [] for name in DATASETS}
    for folder in sorted(p for p in root.iterdir() if p.name != "deals"):
        for name in DATASETS:
            path = folder / f"{name}.csv"
            if path.exists():
                frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
                frames[name].append(frame.with_columns(pl.lit(folder.name).alias("folder")))
    return {name: pl.concat(parts) for name, parts in frames.items()}


def _generate(root: Path, loans: int, months: int, seed: int) -> Landing:
    summary = generate_landing(root, loans=loans, start="2024-01", months=months, seed=seed)
    return Landing(root, summary, _read(root))


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Landing:
    return _generate(tmp_path_factory.mktemp("landing") / "landing", 5_000, 18, 20240101)


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_byte_identical_trees_and_another_seed_differs(
    tmp_path: Path,
) -> None:
    first = generate_landing(tmp_path / "a", loans=400, start="2024-03", months=9, seed=5)
    second = generate_landing(tmp_path / "b", loans=400, start="2024-03", months=9, seed=5)
    generate_landing(tmp_path / "c", loans=400, start="2024-03", months=9, seed=6)
    assert first == second
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")


def test_the_summary_counts_what_was_written(book: Landing) -> None:
    folders = [p for p in book.root.iterdir() if p.name != "deals" and any(p.glob("*.csv"))]
    assert book.summary.loans == 5_000 == book.text["loans"].height
    assert book.summary.repayments == book.text["repayments"].height
    assert book.summary.pool_assets == book.text["pool_assets"].height
    assert book.summary.business_dates == len(folders)
    assert book.summary.pools == 1
    assert book.summary.pool_ids == ("HB2024-1",)
    assert sorted(p.name for p in (book.root / "deals").iterdir()) == ["HB2024-1.yaml"]


def test_files_have_exactly_the_canonical_columns_and_formats(book: Landing) -> None:
    for folder in (p for p in book.root.iterdir() if p.name != "deals"):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.name)
        files = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
        if not files:
            continue
        assert date.fromisoformat(folder.name).weekday() < 5
        assert set(files) <= {"loans.csv", "repayments.csv", "pool_assets.csv"}
        for path in (folder / name for name in files):
            header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
            assert header == list(DATASETS[path.stem])
    for name, columns in DATASETS.items():
        text = book.text[name]
        for column, dtype in columns.items():
            values = text[column].drop_nulls()
            if dtype == schema.MONEY:
                assert values.str.contains(MONEY_TEXT).all(), (name, column)
            elif dtype == pl.Date:
                assert values.str.contains(r"^\d{4}-\d{2}-\d{2}$").all(), (name, column)
        _typed(text, columns)  # every value casts to its canonical dtype
    assert book.text["loans"]["annual_rate"].str.contains(RATE_TEXT).all()
    removed = book.text["pool_assets"].filter(pl.col("event") == "removed")
    assert removed["purchase_price"].null_count() == removed.height


def test_rows_land_in_the_folder_of_their_date(book: Landing) -> None:
    for name, column in (
        ("loans", "origination_date"),
        ("repayments", "value_date"),
        ("pool_assets", "event_date"),
    ):
        frame = book.text[name]
        assert (frame[column] == frame["folder"]).all(), name


def test_identifiers_are_unique_and_every_repayment_has_its_loan(book: Landing) -> None:
    loans, repayments = book.loans, book.repayments
    assert loans["loan_id"].is_unique().all()
    assert repayments["repayment_id"].is_unique().all()
    assert repayments["loan_id"].is_in(loans["loan_id"].implode()).all()
    assert book.pool_assets["loan_id"].is_in(loans["loan_id"].implode()).all()
    assert repayments["repayment_id"].str.contains(r"^[A-Za-z0-9._-]{1,64}$").all()


def test_the_deal_yaml_validates_and_sizes_the_notes_on_the_cutoff_pool(book: Landing) -> None:
    raw = yaml.safe_load((book.root / "deals" / "HB2024-1.yaml").read_text(encoding="utf-8"))
    deal = DealTerms.model_validate(raw)
    assert deal.name
    assert deal.name_zh
    assert deal.is_revolving
    assert deal.cutoff_date == date(2024, 6, 28)  # last business day of month 6
    assert 8 <= (deal.closing_date - deal.cutoff_date).days <= 12
    assert deal.revolving_period_end == date(2025, 6, 30)
    pool = book.pool_assets
    cutoff = pool.filter(pl.col("reason") == "cutoff")
    assert cutoff["event_date"].unique().to_list() == [deal.cutoff_date]
    assert deal.notes_balance == cutoff["purchase_price"].sum()
    shares = {t.class_name: t.original_balance / deal.notes_balance for t in deal.tranches}
    assert shares["A"] == pytest.approx(0.89, abs=0.001)
    assert shares["B"] == pytest.approx(0.035, abs=0.001)
    assert shares["C"] == pytest.approx(0.075, abs=0.002)
    assert {t.kind for t in deal.tranches} == {"senior", "mezzanine", "subordinated"}
    metrics = {t.metric for t in deal.triggers}
    assert {"cumulative_default_rate", "delinquency_ratio"} <= metrics
    steps = next(t for t in deal.triggers if t.metric == "cumulative_default_rate").schedule
    assert [s.threshold for s in steps] == sorted(s.threshold for s in steps)
    assert deal.definitions.default_dpd == 90
    assert deal.definitions.charge_off_dpd == 180
    assert deal.definitions.dpd_tolerance == 100
    assert deal.definitions.cumulative_default_denominator == "initial_plus_purchases"


def test_no_demo_payment_or_report_date_falls_on_a_weekend_or_exchange_holiday(
    book: Landing,
) -> None:
    raw = yaml.safe_load((book.root / "deals" / "HB2024-1.yaml").read_text(encoding="utf-8"))
    deal = DealTerms.model_validate(raw)
    rules = date_rules(deal)
    assert (rules.payment_day, rules.business_day_convention, rules.day_count) == (
        26,
        "following",
        "ACT/365",
    )
    periods = month_ends_between(deal.cutoff_date, deal.revolving_period_end or deal.cutoff_date)
    days = [payment_date(p, rules) for p in periods] + [report_date(p, rules) for p in periods]
    assert days
    assert all(is_business_day(d) and d.weekday() < 5 for d in days)


def test_pool_members_are_eligible_and_revolving_purchases_run_monthly(book: Landing) -> None:
    raw = yaml.safe_load((book.root / "deals" / "HB2024-1.yaml").read_text(encoding="utf-8"))
    deal = DealTerms.model_validate(raw)
    pool = book.pool_assets.join(book.loans, on="loan_id")
    added = pool.filter(pl.col("event") == "added")
    rules = deal.eligibility
    assert (added["annual_rate"].cast(pl.Float64) <= float(rules.max_annual_rate)).all()
    assert added["term_months"].is_between(rules.min_term_months, rules.max_term_months).all()
    assert (added["credit_score"] >= rules.min_credit_score).all()
    assert added["product"].is_in(list(rules.products)).all()
    assert ((added["purchase_price"] > 0) & (added["purchase_price"] <= added["principal"])).all()
    assert added["loan_id"].is_unique().all()
    purchases = added.filter(pl.col("reason") == "revolving_purchase")
    assert (purchases["purchase_price"] == purchases["principal"]).all()
    assert (
        purchases["origination_date"].dt.month_start() == purchases["event_date"].dt.month_start()
    ).all()
    months = purchases["event_date"].dt.month_start().unique().sort().to_list()
    assert months == [date(2024 + (m > 12), (m - 1) % 12 + 1, 1) for m in range(7, 19)]
    removed = pool.filter(pl.col("event") == "removed")
    assert removed.height >= 1
    assert (removed["reason"] == "repurchase").all()
    first_added = added.select("loan_id", pl.col("event_date").alias("added_on"))
    assert (
        removed.join(first_added, on="loan_id")["event_date"]
        > removed.join(first_added, on="loan_id")["added_on"]
    ).all()


def test_repayments_fall_on_weekdays_from_origination_and_never_overpay(book: Landing) -> None:
    repayments = book.repayments.join(book.loans, on="loan_id")
    assert (repayments["value_date"].dt.weekday() <= 5).all()
    assert (repayments["value_date"] >= repayments["origination_date"]).all()
    signed = pl.when(pl.col("kind") == "reversal").then(-1).otherwise(1)
    net = repayments.group_by("loan_id", "principal").agg(
        (pl.col("principal_paid") * signed).sum().alias("paid")
    )
    assert (net["paid"] <= net["principal"]).all()
    assert (net["paid"] >= 0).all()
    assert (book.loans["origination_date"].dt.weekday() <= 5).all()
    assert (book.loans["first_due_date"] > book.loans["origination_date"]).all()


def test_on_time_payers_pay_exactly_the_scheduled_instalment(book: Landing) -> None:
    schedules = build_schedules(book.loans.lazy()).collect()
    prepaid_ahead = book.repayments.filter(pl.col("kind") == "partial_prepayment")["loan_id"]
    scheduled = book.repayments.filter(
        (pl.col("kind") == "scheduled")
        & (pl.col("fee_paid") == 0)
        & (pl.col("penalty_paid") == 0)
        & ~pl.col("loan_id").is_in(prepaid_ahead.implode())
    )
    matched = scheduled.join(
        schedules,
        left_on=["loan_id", "principal_paid", "interest_paid"],
        right_on=["loan_id", "principal_due", "interest_due"],
        how="semi",
    )
    assert matched.height / scheduled.height > 0.97
    # Paid on the due date, or on the business day next to a weekend due date.
    on_due = matched.join(schedules, on="loan_id").filter(
        (pl.col("principal_paid") == pl.col("principal_due"))
        & (pl.col("interest_paid") == pl.col("interest_due"))
        & ((pl.col("value_date") - pl.col("due_date")).dt.total_days().abs() <= 2)
    )
    assert on_due["repayment_id"].n_unique() / matched.height > 0.85


def test_recoveries_come_only_after_the_loan_has_passed_90_days_past_due(book: Landing) -> None:
    schedules = (
        build_schedules(book.loans.lazy())
        .collect()
        .with_columns(
            (pl.col("principal_due") + pl.col("interest_due"))
            .cum_sum()
            .over("loan_id")
            .alias("owed")
        )
    )
    signed = pl.when(pl.col("kind") == "reversal").then(-1).otherwise(1)
    repayments = book.repayments
    first_recovery = (
        repayments.filter(pl.col("kind") == "recovery")
        .group_by("loan_id")
        .agg(pl.col("value_date").min().alias("recovered_on"))
    )
    assert first_recovery.height > 0
    cash = (
        repayments.join(first_recovery, on="loan_id")
        .filter(pl.col("value_date") < pl.col("recovered_on"))
        .group_by("loan_id")
        .agg(((pl.col("principal_paid") + pl.col("interest_paid")) * signed).sum().alias("cash"))
    )
    oldest_unpaid = (
        first_recovery.join(schedules, on="loan_id")
        .join(cash, on="loan_id", how="left")
        .filter(pl.col("owed") > pl.col("cash").fill_null(0) + 100)
        .group_by("loan_id", "recovered_on")
        .agg(pl.col("due_date").min())
    )
    assert oldest_unpaid.height == first_recovery.height
    days_past_due = (oldest_unpaid["recovered_on"] - oldest_unpaid["due_date"]).dt.total_days()
    assert (days_past_due > 90).all()
    # No ordinary cash after a recovery has started.
    later = repayments.join(first_recovery, on="loan_id").filter(
        (pl.col("value_date") >= pl.col("recovered_on")) & (pl.col("kind") != "recovery")
    )
    assert later.height == 0


def test_the_book_mixes_products_methods_terms_and_rates_like_the_platform(book: Landing) -> None:
    loans = book.loans.with_columns(
        (pl.col("principal") / 100).alias("yuan"),
        pl.col("annual_rate").cast(pl.Float64).alias("rate"),
    )
    cash = loans.filter(pl.col("product") == "cash_loan")
    shop = loans.filter(pl.col("product") == "consumer_instalment")
    assert 0.25 < cash.height / loans.height < 0.6
    assert set(loans["repayment_method"]) == set(schema.REPAYMENT_METHODS)
    assert set(cash["repayment_method"]) == set(schema.REPAYMENT_METHODS)
    cash_amortising = cash["repayment_method"].is_in(["equal_instalment", "equal_principal"]).mean()
    assert 0.75 < cash_amortising < 0.95
    assert (shop["repayment_method"] == "equal_instalment").mean() > 0.85
    assert set(shop["term_months"]) == {3, 6, 9, 12, 18, 24}
    assert loans["term_months"].is_between(3, 24).all()
    assert 5_500 < cash["yuan"].median() < 10_500
    assert 1_100 < shop["yuan"].median() < 2_000
    assert (cash["principal"] % 10_000 == 0).all()  # whole hundreds of yuan
    assert loans["yuan"].max() <= 200_000
    assert loans["rate"].is_between(0.07, 0.24).all()
    assert cash["rate"].is_between(0.07, 0.18).all()
    assert 0.14 < shop["rate"].median() < 0.165


def test_borrowers_span_all_provinces_ages_and_scores(book: Landing) -> None:
    loans = book.loans
    assert set(loans["province"]) == MAINLAND_PROVINCES
    shares = loans["province"].value_counts(normalize=True).sort("province")
    share = dict(zip(shares["province"], shares["proportion"], strict=True))
    assert share["CN-GD"] > share["CN-BJ"] > share["CN-XZ"]
    assert loans["borrower_age"].is_between(18, 70).all()
    assert 24 <= loans["borrower_age"].median() <= 34
    assert loans["credit_score"].is_between(350, 950).all()
    assert set(loans["channel"]) == {"app", "mini_program", "partner_merchant", "web"}
    per_borrower = loans.group_by("borrower_id").len()["len"]
    assert 1.2 < loans.height / per_borrower.len() < 3
    assert per_borrower.max() > 3


def test_originations_grow_over_the_window(book: Landing) -> None:
    by_month = (
        book.loans.group_by(pl.col("origination_date").dt.month_start())
        .len()
        .sort("origination_date")
    )
    assert by_month.height == 18
    assert by_month["len"].tail(3).sum() > by_month["len"].head(3).sum()


def test_behaviour_includes_every_kind_of_cash_event_in_realistic_amounts(book: Landing) -> None:
    repayments = book.repayments
    kinds = repayments["kind"].value_counts().sort("kind")
    counts = dict(zip(kinds["kind"], kinds["count"], strict=True))
    assert set(counts) == set(schema.REPAYMENT_KINDS)
    assert counts["scheduled"] > 0.8 * repayments.height
    assert counts["reversal"] < 0.01 * repayments.height
    assert (repayments["penalty_paid"] > 0).sum() > 0
    assert (repayments["fee_paid"] > 0).sum() > 0
    partial = repayments.filter(pl.col("kind") == "partial_prepayment")
    assert (partial["interest_paid"] == 0).all()
    # Lifetime outcomes of the first six cohorts (seasoned 12-18 months).
    seasoned = book.loans.filter(pl.col("origination_date") < date(2024, 7, 1))["loan_id"]
    outcome = repayments.filter(pl.col("loan_id").is_in(seasoned.implode()))
    recovered = outcome.filter(pl.col("kind") == "recovery")["loan_id"].n_unique()
    prepaid = outcome.filter(pl.col("kind") == "full_prepayment")["loan_id"].n_unique()
    assert 0.003 < recovered / seasoned.len() < 0.04
    assert 0.05 < prepaid / seasoned.len() < 0.4


def test_a_reversal_is_followed_by_the_same_amount_paid_again(book: Landing) -> None:
    repayments = book.repayments.sort("repayment_id")
    reversals = repayments.filter(pl.col("kind") == "reversal")
    repaid = reversals.join(
        repayments.filter(pl.col("kind") == "scheduled"),
        on=["loan_id", "principal_paid", "interest_paid"],
        suffix="_again",
    ).filter(pl.col("value_date_again") > pl.col("value_date"))
    pending = reversals.filter(~pl.col("repayment_id").is_in(repaid["repayment_id"].implode()))
    assert repaid["repayment_id"].n_unique() > 0.9 * reversals.height
    # Only a payment bounced in the last days of the window waits for its re-payment.
    assert (pending["value_date"] >= date(2025, 6, 20)).all()


def test_a_short_window_still_gets_a_deal(tmp_path: Path) -> None:
    summary = generate_landing(tmp_path / "x", loans=300, start="2023-11", months=3, seed=2)
    raw = yaml.safe_load((tmp_path / "x" / "deals" / "HB2023-1.yaml").read_text(encoding="utf-8"))
    deal = DealTerms.model_validate(raw)
    assert summary.pool_ids == ("HB2023-1",)
    assert deal.cutoff_date == date(2023, 11, 30)


def test_it_refuses_a_non_empty_folder_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_landing(tmp_path, loans=10, start="2024-01", months=2, seed=1)
    with pytest.raises(ValueError, match="YYYY-MM"):
        generate_landing(tmp_path / "y", loans=10, start="2024-13", months=2, seed=1)
    with pytest.raises(ValueError, match="positive"):
        generate_landing(tmp_path / "z", loans=0, start="2024-01", months=2, seed=1)
