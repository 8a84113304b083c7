"""The ``abs-pipeline`` command line."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flows.settings import Settings, configure_prefect


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}")
    return text


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="abs-pipeline",
        description="Consumer-loan ABS: ingest, validate, compute and disclose.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def data_root(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--data-root",
            type=Path,
            default=None,
            help="data root (default: $ABS_PIPELINE_DATA_ROOT or ./data)",
        )

    gen = commands.add_parser("generate", help="write a synthetic landing zone")
    gen.add_argument("--out", type=Path, required=True, help="landing folder to write")
    gen.add_argument("--loans", type=_positive, default=50_000)
    gen.add_argument("--start", type=_month, required=True, help="first origination month")
    gen.add_argument("--months", type=_positive, default=18)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the landing folder already holds deliveries",
    )

    run = commands.add_parser("run", help="process one business date (the nightly job)")
    run.add_argument("--date", type=_date, default=None, help="default: yesterday in Asia/Shanghai")
    data_root(run)

    back = commands.add_parser("backfill", help="process a range of business dates")
    back.add_argument("--start", type=_date, required=True)
    back.add_argument("--end", type=_date, required=True)
    back.add_argument("--force", action="store_true", help="reprocess unchanged chunks too")
    data_root(back)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "data_root", None) is not None:
        settings = settings.model_copy(update={"data_root": args.data_root})
    return settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        return _generate(args)
    settings = _settings(args)
    configure_prefect(settings)
    # Imported only now: Prefect reads its settings from the environment at import.
    from flows.pipeline import backfill_flow, run_flow  # noqa: PLC0415 - see above

    if args.command == "run":
        day = args.date or (datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1))
        summary = run_flow(business_date=day, data_root=str(settings.data_root))
    else:
        if args.end < args.start:
            print("abs-pipeline: --end is before --start", file=sys.stderr)
            return 2
        summary = backfill_flow(
            start=args.start, end=args.end, data_root=str(settings.data_root), force=args.force
        )
    print(summary.describe())
    return 1 if summary.failed else 0


def _generate(args: argparse.Namespace) -> int:
    # Imported on use: the other commands need not load the generator.
    from flows.generator import generate_landing  # noqa: PLC0415

    out: Path = args.out
    if args.if_empty and out.is_dir() and any(p.is_dir() for p in out.iterdir()):
        print(f"landing zone {out} already holds deliveries; not generating")
        return 0
    summary = generate_landing(
        out, loans=args.loans, start=args.start, months=args.months, seed=args.seed
    )
    print(
        f"wrote {summary.loans} loans, {summary.repayments} repayments and "
        f"{summary.pool_assets} pool events over {summary.business_dates} business dates "
        f"to {out} (pools: {', '.join(summary.pool_ids)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
