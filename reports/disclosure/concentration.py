"""Section 15: concentration — the largest obligors as anonymous ranks, and regions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from reports.disclosure.base import Inputs, Report, SectionSpec
from reports.formatting import rate_to_decimal
from reports.layout import Section, present, row, section, table

TOP_OBLIGORS: Final = 20
TOP_OBLIGOR_FLOOR: Final = 0.01
"""The exchange reports list the top twenty obligors holding more than 1% of the pool."""
TOP_REGIONS: Final = 10
"""Regions shown one by one in the concentration section."""


def concentration(inputs: Inputs, r: Report) -> Section:
    """Top-20 obligors above 1% of the pool (借款人1…, never an id), shares, HHI, regions."""
    t, f = r.t, r.f
    found: Mapping[str, Any] = inputs.metrics.get("concentration") or {}
    shares = {
        key: found.get(key) for key in ("top1_obligor_share", "top10_obligor_share", "hhi_obligor")
    }
    provinces: Any = found.get("province_shares")
    top: Any = found.get("top_obligors")
    if not present(shares) and not present(provinces) and top is None:
        return r.missing(15, "concentration")
    columns = [(t("col.item"), False), (t("col.value"), True)]
    tables = [
        table(
            t("s15.caption"),
            columns,
            [
                row(t("s15.top1_obligor_share"), f.rate(shares["top1_obligor_share"], 4)),
                row(t("s15.top10_obligor_share"), f.rate(shares["top10_obligor_share"], 2)),
                row(t("s15.hhi_obligor"), f.number(shares["hhi_obligor"], 6)),
            ],
        )
    ]
    notes: list[str] = []
    if top is None:
        notes.append(t("s15.top_missing"))
    else:
        # Only ranks, balances and shares are read: an obligor id never reaches the report.
        listed = [
            item
            for item in top
            if item.get("balance_share") is not None
            and rate_to_decimal(item["balance_share"]) > rate_to_decimal(TOP_OBLIGOR_FLOOR)
        ][:TOP_OBLIGORS]
        rows = [
            row(
                t("s15.obligor", rank=f.count(i)),
                f.amount(item.get("balance")),
                f.rate(item.get("balance_share"), 2),
            )
            for i, item in enumerate(listed, start=1)
        ] or [row(t("none"), "–", "–")]
        tables.append(
            table(
                t("s15.top_caption"),
                [(t("s15.rank"), False), (r.c("s15.balance"), True), (t("s15.share"), True)],
                rows,
            )
        )
        if not listed:
            notes.append(t("s15.none_above"))
    if present(provinces):
        ordered = sorted(
            provinces.items(), key=lambda item: (-rate_to_decimal(item[1] or 0), str(item[0]))
        )
        # The largest regions one by one, the rest together (section 6 lists every region).
        shown = [
            row(r.province(str(code)), f.rate(share, 2)) for code, share in ordered[:TOP_REGIONS]
        ]
        rest = ordered[TOP_REGIONS:]
        if rest:
            others = [share for _, share in rest]
            total = (
                None
                if any(share is None for share in others)
                else sum(rate_to_decimal(share) for share in others)
            )
            shown.append(row(t("s15.other_regions", count=f.count(len(rest))), f.rate(total, 2)))
        tables.append(
            table(
                t("s15.province_caption"),
                [(t("s15.province"), False), (t("s15.share"), True)],
                shown,
            )
        )
    return section(15, "concentration", t("s15.title"), tables, notes=notes)


CONCENTRATION: Final = SectionSpec(15, "concentration", concentration)
