"""numerai.yaml slot kinds: exactly one of artifact / ensemble / source / pickle per slot, and
the keys that only make sense for some kinds are refused at their line and column."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.config import ConfigError, Problem, load

FEATURE_SETS = {"small": ["feature_a", "feature_b"], "all": ["feature_a", "feature_b", "f_c"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "features.json").write_text(json.dumps({"feature_sets": FEATURE_SETS}))
    for name in ("artifacts/a.txt", "src/predict.py", "src/notes.txt", "legacy/model.pkl"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("placeholder: the loader only checks existence")
    return tmp_path


def _write(project: Path, models: str) -> Path:
    path = project / "numerai.yaml"
    body = textwrap.indent(textwrap.dedent(models).strip("\n"), "  ")
    path.write_text("version: 1\nmodels:\n" + body + "\n")
    return path


def problems_of(project: Path, models: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load(_write(project, models))
    return caught.value.problems


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_source_slot_loads_with_its_function_and_features(project):
    model = load(
        _write(project, "m:\n  source: src/predict.py\n  function: run\n  features: small")
    ).models[0]
    assert model.kind == "source"
    assert model.source.path == project / "src" / "predict.py"
    assert model.source.function == "run"
    assert model.features == ("feature_a", "feature_b")


def test_source_slot_function_defaults_to_predict(project):
    model = load(_write(project, "m:\n  source: src/predict.py")).models[0]
    assert model.source.function == "predict"


def test_source_and_pickle_slots_without_features_read_every_column(project):
    project_ = load(_write(project, "s:\n  source: src/predict.py\np:\n  pickle: legacy/model.pkl"))
    assert [m.features for m in project_.models] == [tuple(FEATURE_SETS["all"])] * 2


def test_source_slot_without_postprocessing_ships_the_function_output_as_is(project):
    model = load(_write(project, "m:\n  source: src/predict.py")).models[0]
    assert model.postprocessing == ()
    assert model.raw_output


def test_source_slot_keeps_the_postprocessing_it_names(project):
    model = load(
        _write(project, "m:\n  source: src/predict.py\n  postprocessing:\n    - rank_per_era: {}")
    ).models[0]
    assert [s.name for s in model.postprocessing] == ["rank_per_era"]


def test_pickle_slot_loads(project):
    model = load(_write(project, "m:\n  pickle: legacy/model.pkl")).models[0]
    assert model.kind == "pickle"
    assert model.pickle.path == project / "legacy" / "model.pkl"
    assert model.members == ()


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("source: src/predict.py\n  pickle: legacy/model.pkl", "found both source and pickle"),
        ("artifact: artifacts/a.txt\n  source: src/predict.py", "found both artifact and source"),
        ("features: small", "found neither"),
    ],
)
def test_a_slot_needs_exactly_one_of_the_four_kinds(project, body, found):
    problems = problems_of(project, f"m:\n  {body}")
    messages = [p.message for p in problems]
    expected = f"needs exactly one of artifact / ensemble / source / pickle ({found})"
    assert expected in messages, messages


def test_missing_source_file_is_reported_at_its_value(project):
    problem = _only(problems_of(project, "m:\n  source: src/nope.py"))
    assert (problem.line, problem.col, problem.path) == (4, 13, "models.m.source")
    assert "source file not found" in problem.message


def test_source_that_is_not_a_python_file_is_refused(project):
    problem = _only(problems_of(project, "m:\n  source: src/notes.txt"))
    assert problem.message == "'src/notes.txt' is not a Python file (.py)"


def test_function_that_is_no_python_name_is_refused(project):
    problem = _only(problems_of(project, "m:\n  source: src/predict.py\n  function: 2fast"))
    assert problem.path == "models.m.function"


def test_function_on_an_artifact_slot_is_refused(project):
    problem = _only(
        problems_of(project, "m:\n  artifact: artifacts/a.txt\n  features: small\n  function: f")
    )
    assert problem.message == "function applies to source: slots only"


def test_preprocessing_on_a_source_slot_is_refused(project):
    problem = _only(
        problems_of(project, "m:\n  source: src/predict.py\n  preprocessing:\n    - clip: {min: 0}")
    )
    assert problem.path == "models.m.preprocessing"
    assert "does not apply to a source: slot" in problem.message


def test_postprocessing_on_a_pickle_slot_is_refused_naming_source_slots(project):
    problem = _only(
        problems_of(
            project, "m:\n  pickle: legacy/model.pkl\n  postprocessing:\n    - rank_per_era: {}"
        )
    )
    assert problem.path == "models.m.postprocessing"
    assert "use a source: slot" in problem.message


def test_nmr_validate_reports_every_slot_kind_problem_with_exit_code_1(project):
    config = _write(
        project,
        "a:\n  source: src/nope.py\nb:\n  pickle: legacy/model.pkl\n  function: f",
    )
    result = CliRunner().invoke(app, ["validate", "-f", str(config)])
    assert result.exit_code == 1
    assert "models.a.source: source file not found" in result.output
    assert "models.b.function: function does not apply to a pickle: slot" in result.output


def test_source_outside_the_project_is_refused(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "predict.py"
    outside.write_text("def predict(live_features): pass\n")
    problem = _only(problems_of(project, f"m:\n  source: {outside}"))
    assert "is outside the project" in problem.message
