from __future__ import annotations

import string

import pytest

from reports.labels import REPORTS, groups, labels, province_names


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_locales_have_the_same_keys_and_placeholders() -> None:
    english, chinese = groups("en"), groups("zh_CN")
    assert set(english) == set(chinese) == {"common", *REPORTS, "provinces"}
    for group, texts in english.items():
        assert set(texts) == set(chinese[group]), group
        for key, text in texts.items():
            assert placeholders(text) == placeholders(chinese[group][key]), (group, key)


def test_report_labels_merge_the_common_texts() -> None:
    disclosure = labels("zh_CN", "disclosure")
    assert disclosure["s2.title"] == "证券兑付"
    assert disclosure["bucket.1-30"] == "逾期1–30天（M1）"
    with pytest.raises(ValueError, match="unknown report"):
        labels("en", "nope")
    with pytest.raises(ValueError, match="unsupported"):
        labels("fr", "index")


def test_every_mainland_division_has_a_local_name() -> None:
    from flows.generator.calibration import PROVINCES

    for code, _ in PROVINCES:
        assert province_names("zh_CN")[code].endswith(("省", "市", "自治区"))
        assert province_names("en")[code]
    assert province_names("zh_CN")["CN-BJ"] == "北京市"
