"""One Chinese regime: the disclosures and their texts use the glossary's vocabulary."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from reports.disclosure import build_context
from reports.glossary import chinese_formula, glossary
from reports.labels import groups
from tests.reports.golden import render_sample
from tests.reports.samples import GENERATED_AT, PROVENANCE, make_deal, make_metrics

LATIN = re.compile(r"[A-Za-z][A-Za-z0-9+/._\-]*")
RULE_ID = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)+$")
"""Contract rule ids (``loans.principal.positive``) are codes, printed as they are."""


class VisibleText(HTMLParser):
    """The text a reader sees: no style or script, nothing marked as another language."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang
        self.stack: list[tuple[str, bool]] = []
        self.parts: list[str] = []

    def _hidden(self) -> bool:
        return any(hidden for _, hidden in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"meta", "br", "hr", "img", "input", "link"}:
            return
        lang = dict(attrs).get("lang")
        foreign = lang is not None and not lang.startswith(self.lang)
        self.stack.append((tag, tag in {"style", "script"} or foreign))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._hidden() and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str, lang: str) -> list[str]:
    parser = VisibleText(lang)
    parser.feed(html)
    return parser.parts


def codes() -> set[str]:
    """Identifiers from the report's inputs that any language prints as they are."""
    deal = make_deal()
    found = {deal.pool_id, PROVENANCE.run_id, PROVENANCE.code_version}
    for tranche in deal.tranches:
        found |= {tranche.class_name, tranche.code or "", tranche.rating or ""}
        if tranche.ratings is not None:
            found |= {tranche.ratings.initial or "", tranche.ratings.current or ""}
            found |= {a.to_rating for a in tranche.ratings.actions}
    for name, digest in PROVENANCE.inputs:
        found |= {name, digest}
    return found


def test_every_term_has_both_languages_and_its_forbidden_alternatives() -> None:
    terms = glossary()["terms"]
    assert len(terms) >= 20
    for term in terms:
        assert set(term) == {"zh", "en", "forbidden_zh", "forbidden_en"}, term
        assert term["zh"]
        assert term["en"]
        assert term["zh"] not in term["forbidden_zh"]


def test_no_forbidden_term_is_in_any_chinese_or_english_text() -> None:
    terms = glossary()["terms"]
    for locale, key in (("zh_CN", "forbidden_zh"), ("en", "forbidden_en")):
        for group, texts in groups(locale).items():
            for label, text in texts.items():
                for term in terms:
                    for forbidden in term[key]:
                        found = (
                            re.search(rf"\b{re.escape(forbidden)}\b", text, re.I) is not None
                            if locale == "en"
                            else forbidden in text
                        )
                        assert not found, (locale, group, label, forbidden)


@pytest.mark.parametrize(("locale", "lang"), [("zh_CN", "zh"), ("en", "en")])
def test_the_rendered_disclosure_uses_only_glossary_terms(locale: str, lang: str) -> None:
    text = "\n".join(visible_text(render_sample(locale), lang))
    for term in glossary()["terms"]:
        for forbidden in term["forbidden_zh" if lang == "zh" else "forbidden_en"]:
            if lang == "zh":
                assert forbidden not in text, forbidden
            else:
                assert not re.search(rf"\b{re.escape(forbidden)}\b", text, re.I), forbidden


def test_every_visible_string_of_the_chinese_report_is_chinese_but_codes_and_abbreviations() -> (
    None
):
    allowed = set(glossary()["abbreviations"]) | codes()
    foreign = set()
    for part in visible_text(render_sample("zh_CN"), "zh"):
        for found in LATIN.findall(part):
            token = found.rstrip(".")
            if token in allowed or RULE_ID.match(token):
                continue
            # Run ids and code versions are codes even when split by a separator.
            if any(token in code for code in allowed if len(code) > 8):
                continue
            foreign.add(token)
    assert foreign == set()


def test_the_chinese_report_states_money_in_yuan_and_wan_yuan_never_the_iso_code() -> None:
    text = "\n".join(visible_text(render_sample("zh_CN"), "zh"))
    assert "CNY" not in text
    assert "（元）" in text
    assert "万元" in text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text)
    assert "（北京时间）" in text


def test_recorded_formulas_print_in_chinese_or_say_where_the_original_is() -> None:
    assert chinese_formula("defaulted principal / (opening balance + purchased principal)") == (
        "违约本金 / (期初资产池余额 + 购买本金)"
    )
    assert chinese_formula("1 - (1 - SMM)^12") == "1 − (1 − SMM)^12"
    assert chinese_formula("principal of loans in arrears / something else") is None
    metrics = make_metrics()
    metrics["definitions"]["mdr"] = "defaulted principal / opening balance"
    metrics["definitions"]["odd"] = "principal of loans in arrears"
    context = build_context(
        metrics, make_deal(), generated_at=GENERATED_AT, provenance=PROVENANCE, locale="zh_CN"
    )
    (definitions,) = [s for s in context["sections"] if s["key"] == "definitions"]
    rows = [{row["header"]: row["cells"] for row in t["rows"]} for t in definitions["tables"]]
    # The formula the metrics stage used replaces the default text of its rate.
    assert rows[0]["MDR"] == ["违约本金 / 期初资产池余额"]
    assert rows[1]["odd"] == ["记录的公式原文见英文版。"]


def test_the_other_chinese_pages_state_money_in_yuan_too() -> None:
    from reports import portfolio, static_pool
    from reports.render import render_portfolio, render_static_pool
    from tests.reports.samples import make_history, make_vintages

    pool_page = render_static_pool(
        static_pool.build_context(
            make_deal(),
            vintages=make_vintages(),
            history=make_history(),
            generated_at=GENERATED_AT,
            provenance=PROVENANCE,
            locale="zh_CN",
        )
    )
    overview = render_portfolio(
        portfolio.build_context(
            [portfolio.PoolLatest(make_deal(), make_metrics(), "HB-2025-1/2025-06/x.html")],
            generated_at=GENERATED_AT,
            code_version="v",
            locale="zh_CN",
        )
    )
    for page in (pool_page, overview):
        text = "\n".join(visible_text(page, "zh"))
        assert "CNY" not in text
        assert "（元）" in text
