"""numerai.yaml errors: each class of mistake is reported at its exact line and column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.config import ConfigError, Problem, load


@pytest.fixture
def project(config_project: Path) -> Path:
    return config_project  # tests/conftest.py


def problems_of(project: Path, text: str) -> list[Problem]:
    path = project / "numerai.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(ConfigError) as caught:
        load(path)
    return caught.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_yaml_syntax_error_points_at_the_offending_token(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: [artifacts/a.txt
                features: small
            """,
        )
    )
    assert (problem.line, problem.col) == (5, 13)
    assert problem.message.startswith("YAML syntax error:")


def test_duplicate_key_is_refused_naming_both_places(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                features: medium
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (6, 5, "models.m.features")
    assert "duplicate key 'features' (first defined at line 5, column 5)" in problem.message


def test_duplicate_key_in_a_flow_mapping_names_line_and_column_of_both(project):
    # every position here has line != column, so a swapped pair shows
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m: {artifact: artifacts/a.txt, features: small, features: medium}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (3, 51, "models.m.features")
    assert "duplicate key 'features' (first defined at line 3, column 34)" in problem.message


@pytest.mark.parametrize("value,line,col", [("1.5", 8, 51), ("-0.1", 8, 51)])
def test_neutralize_proportion_outside_0_1_is_refused_at_its_place_naming_the_range(
    project, value, line, col
):
    problem = only(
        problems_of(
            project,
            f"""
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                postprocessing:
                  - rank_per_era: {{}}
                  - neutralize: {{features: small, proportion: {value}}}
                  - rank_per_era: {{}}
            """,
        )
    )
    assert (problem.line, problem.col) == (line, col)
    assert problem.path == "models.m.postprocessing[1].neutralize.proportion"
    assert problem.message == f"must be between 0 and 1, got {value}"


def test_duplicate_model_slot_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m: {artifact: artifacts/a.txt, features: small}
              m: {artifact: artifacts/b.txt, features: small}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (4, 3, "models.m")
    assert "first defined at line 3, column 3" in problem.message


def test_misspelt_required_key_gets_a_suggestion_and_the_gap_is_named(project):
    problems = problems_of(
        project,
        """
        version: 1
        models:
          m:
            artifact: artifacts/a.txt
            feature: small
        """,
    )
    assert [(p.line, p.col, p.path, p.message) for p in problems] == [
        (3, 3, "models.m", "needs features: a feature set from features.json or a list of columns"),
        (5, 5, "models.m.feature", "unknown key (did you mean 'features'?)"),
    ]


def test_unknown_key_is_reported_at_the_key_with_did_you_mean(project):
    problems = problems_of(
        project,
        """
        version: 1
        data:
          versoin: v5.2
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
    )
    problem = only(problems)
    assert (problem.line, problem.col, problem.path) == (3, 3, "data.versoin")
    assert problem.message == "unknown key (did you mean 'version'?)"


def test_wrong_type_names_expected_and_found(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                deploy:
                  create: 3
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (7, 15, "models.m.deploy.create")
    assert problem.message == "expected true or false, got a number 3"


def test_both_artifact_and_ensemble_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                ensemble:
                  - {artifact: artifacts/b.txt}
                features: small
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (3, 3, "models.m")
    assert (
        problem.message
        == "needs exactly one of artifact / ensemble / source / pickle (found both artifact and ensemble)"
    )


def test_neither_artifact_nor_ensemble_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                features: small
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (3, 3, "models.m")
    assert (
        problem.message
        == "needs exactly one of artifact / ensemble / source / pickle (found neither)"
    )


def test_missing_artifact_file_names_the_resolved_path(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/nope.txt
                features: small
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (4, 15, "models.m.artifact")
    assert problem.message == f"artifact file not found: {project / 'artifacts' / 'nope.txt'}"


def test_missing_ensemble_member_artifact_is_reported_at_the_member(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              e:
                ensemble:
                  - {artifact: artifacts/a.txt}
                  - {artifact: artifacts/gone.onnx, weight: 0.5}
                features: small
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (6, 20, "models.e.ensemble[1].artifact")


def test_unknown_feature_set_lists_the_known_sets(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: mediun
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (5, 15, "models.m.features")
    assert problem.message == (
        "unknown feature set 'mediun' (did you mean 'medium'?) "
        "(known in features.json: small, medium, all)"
    )


def test_unknown_feature_column_is_reported_at_its_list_item(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features:
                  - feature_a
                  - feature_zz
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (7, 9, "models.m.features[1]")
    assert problem.message.startswith("unknown feature column 'feature_zz'")


def test_feature_set_without_features_json_says_where_it_looked(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    problem = only(
        problems_of(
            tmp_path,
            """
            version: 1
            models:
              m: {artifact: a.txt, features: small}
            """,
        )
    )
    assert (problem.line, problem.col) == (3, 34)
    assert f"{tmp_path / 'data' / 'features.json'} does not exist" in problem.message


def test_unknown_runtime_tag_lists_the_known_tags(project):
    from builder.runtimes import known_tags

    problem = only(
        problems_of(
            project,
            """
            version: 1
            runtime: numerai_predict_py_3_9:latest
            models:
              m: {artifact: artifacts/a.txt, features: small}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (2, 10, "runtime")
    assert problem.message.startswith("unknown runtime 'numerai_predict_py_3_9:latest'")
    assert all(tag in problem.message for tag in known_tags())


def test_unknown_per_model_runtime_is_reported_at_the_model(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                runtime: python3.12
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (6, 14, "models.m.runtime")


@pytest.mark.parametrize("slot", ["My_Model", "my-model", "a" * 33, "model.v2"])
def test_slot_name_numerai_would_refuse_is_reported_at_the_key(project, slot):
    problem = only(
        problems_of(
            project,
            f"""
            version: 1
            models:
              "{slot}": {{artifact: artifacts/a.txt, features: small}}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (3, 3, f"models.{slot}")
    assert "is not a model slot name Numerai accepts" in problem.message


def test_empty_file_is_one_problem_at_the_start(project):
    problem = only(problems_of(project, "# nothing here yet\n"))
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message.startswith("the file is empty")


def test_root_that_is_not_a_mapping_is_refused(project):
    problem = only(problems_of(project, "- version: 1\n- models: {}\n"))
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message.startswith("the top level must be a mapping")


def test_unknown_step_name_suggests_the_closest_step(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                postprocessing:
                  - rank_per_era: {}
                  - gausianize_per_era: {}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (
        8,
        9,
        "models.m.postprocessing[1].gausianize_per_era",
    )
    assert problem.message == (
        "unknown postprocessing step 'gausianize_per_era' (did you mean 'gaussianize_per_era'?)"
    )


def test_postprocessing_step_under_preprocessing_says_where_it_belongs(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                preprocessing:
                  - rank_per_era: {}
            """,
        )
    )
    assert (problem.line, problem.col) == (7, 9)
    assert problem.message.endswith("rank_per_era is a postprocessing step")


def test_step_with_two_keys_asks_for_one_list_item_each(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                preprocessing:
                  - {clip: {min: 0}, standardize: {}}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (7, 9, "models.m.preprocessing[0]")
    assert "put each step in its own list item" in problem.message


def test_unsupported_version_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 2
            models:
              m: {artifact: artifacts/a.txt, features: small}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (1, 10, "version")
    assert problem.message == "must be 1, got 2"


def test_missing_models_key_is_reported(project):
    problem = only(problems_of(project, "version: 1\n"))
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message == "missing required key 'models'"


def test_fitted_preprocessing_without_train_data_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                preprocessing:
                  - standardize: {}
            """,
        )
    )
    assert (problem.line, problem.col) == (7, 9)
    assert "needs training data" in problem.message


def test_clip_with_min_above_max_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                preprocessing:
                  - clip: {min: 4, max: 0}
            """,
        )
    )
    assert (problem.line, problem.col) == (7, 9)
    assert problem.message == "min (4) is greater than max (0)"


def test_fill_missing_needs_exactly_one_of_value_or_strategy(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                preprocessing:
                  - fill_missing: {}
            """,
        )
    )
    assert (problem.line, problem.col) == (7, 9)
    assert problem.message == "needs exactly one of value / strategy (found neither)"


def test_uninferable_artifact_format_asks_for_format(project):
    (project / "artifacts" / "model.bin").write_bytes(b"\0")
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m: {artifact: artifacts/model.bin, features: small}
            """,
        )
    )
    assert (problem.line, problem.col) == (3, 17)
    assert "set format: lightgbm | xgboost | sklearn | onnx" in problem.message


def test_every_problem_is_reported_at_once_in_file_order(project):
    problems = problems_of(
        project,
        """
        version: 1
        runtime: nope
        models:
          m:
            artifact: artifacts/nope.txt
            features: mediun
            deploy: {trigger: maybe}
        """,
    )
    assert [(p.line, p.col) for p in problems] == [(2, 10), (5, 15), (6, 15), (7, 23)]


def test_error_message_is_one_line_per_problem_in_the_documented_form(project):
    path = project / "numerai.yaml"
    path.write_text("version: 1\nmodels:\n  m: {artifact: artifacts/a.txt, features: mediun}\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    file = caught.value.problems[0].file
    assert str(caught.value) == (
        f"{file}:3:44: models.m.features: unknown feature set 'mediun' (did you mean "
        "'medium'?) (known in features.json: small, medium, all)"
    )
    assert file.endswith("numerai.yaml")


# -- robustness: whatever the file holds, the loader answers with problems, never a crash ------


_WORDS = [
    "version",
    "runtime",
    "data",
    "dir",
    "train",
    "models",
    "m",
    "artifact",
    "ensemble",
    "features",
    "format",
    "weight",
    "preprocessing",
    "postprocessing",
    "fill_missing",
    "value",
    "strategy",
    "clip",
    "min",
    "max",
    "standardize",
    "neutralize",
    "proportion",
    "blend_benchmark",
    "column",
    "rank_per_era",
    "deploy",
    "create",
    "small",
    "artifacts/a.txt",
]
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.floats(-2, 2), st.sampled_from(_WORDS)
)
_documents = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(_WORDS), inner, max_size=4),
    ),
    max_leaves=25,
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_documents)
def test_any_document_gives_a_project_or_located_problems_never_a_crash(project, document):
    path = project / "numerai.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "models": {"m": document}}, sort_keys=False))
    try:
        load(path)
    except ConfigError as error:
        assert error.problems and all(p.line >= 1 and p.col >= 1 for p in error.problems)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        load(path)
    except ConfigError as error:
        assert error.problems and all(p.line >= 1 and p.col >= 1 for p in error.problems)


def test_unknown_yaml_tag_is_a_located_problem_not_a_crash(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m: !!python/object:os.system {}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (3, 6, "models.m")
    assert problem.message.startswith("YAML error: unsupported tag")


def test_alias_that_contains_itself_is_refused(project):
    problems = problems_of(project, "version: 1\nmodels: &m {m: *m}\n")
    # PyYAML resolves an alias to the anchored node itself, so the place is the anchor's
    assert (2, 9, "models.m") in [(p.line, p.col, p.path) for p in problems]


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab:- \n{}[],&*!'\"#|>%@`?1.~\t")), max_size=60))
def test_any_text_gives_a_project_or_located_problems_never_a_crash(text):
    from builder.config import load_text

    try:
        load_text(text, Path("/nonexistent/numerai.yaml"))
    except ConfigError as error:
        assert error.problems and all(p.line >= 1 and p.col >= 1 for p in error.problems)


def test_feature_listed_twice_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              m: {artifact: artifacts/a.txt, features: [feature_a, feature_b, feature_a]}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (3, 44, "models.m.features")
    assert problem.message == "lists 'feature_a' more than once"


def test_ensemble_member_without_features_anywhere_is_refused(project):
    problem = only(
        problems_of(
            project,
            """
            version: 1
            models:
              e:
                ensemble:
                  - {artifact: artifacts/a.txt, features: small}
                  - {artifact: artifacts/b.txt}
            """,
        )
    )
    assert (problem.line, problem.col, problem.path) == (6, 9, "models.e.ensemble[1]")
    assert problem.message == "needs features: set features on this member or on the model"


def test_yaml_merge_key_is_reported_as_not_supported_yet(project):
    problems = problems_of(
        project,
        """
        version: 1
        models:
          a: &base {artifact: artifacts/a.txt, features: small}
          b:
            <<: *base
            artifact: artifacts/b.txt
        """,
    )
    assert [(p.line, p.col, p.message) for p in problems if "merge" in p.message] == [
        (5, 5, "not supported yet: YAML merge keys (<<); write the keys out")
    ]


def test_absurdly_deep_nesting_is_a_problem_not_a_crash(project):
    problem = only(problems_of(project, "version: 1\nmodels: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert (problem.line, problem.col, problem.message) == (1, 1, "YAML error: nested too deeply")


def test_repeated_unhashable_items_are_a_located_problem_not_a_crash(project):
    (project / "numerai.yaml").write_text("version: 1\nmodels:\n  m: {features: [[], []]}\n")
    with pytest.raises(ConfigError) as caught:
        load(project / "numerai.yaml")
    assert all(p.line >= 1 and p.col >= 1 for p in caught.value.problems)
