"""The pipeline's outputs for a small generated book match the golden files."""

from __future__ import annotations

import pytest

from tests.reports.golden import GOLDEN_FILES, golden_path, pipeline_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return pipeline_outputs(tmp_path_factory.mktemp("golden-book"))


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_the_pipeline_output_matches_its_golden_file(outputs: dict[str, str], name: str) -> None:
    expected = golden_path(name).read_text(encoding="utf-8")
    assert outputs[name] == expected, (
        f"{name} differs from the pipeline's output; if the change is intended, "
        "run `make golden` and review the diff"
    )


def test_every_golden_file_is_a_pipeline_output() -> None:
    folder = golden_path("x").parent
    kept = {p.name for p in folder.iterdir() if p.is_file()}
    assert kept == set(GOLDEN_FILES), "every golden file comes from the pipeline"
