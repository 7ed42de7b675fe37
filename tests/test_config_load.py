"""Loading numerai.yaml into typed, immutable, resolved config objects."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from builder import runtimes
from builder.config import ConfigError, Step, find_config, load
from builder.errors import NmrError
from tests.conftest import CONFIG_FEATURE_SETS


@pytest.fixture
def project(config_project: Path) -> Path:
    return config_project  # tests/conftest.py


def write(project: Path, text: str) -> Path:
    path = project / "numerai.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load_text(project: Path, text: str):
    return load(write(project, text))


def test_models_keep_the_order_written_in_the_file(project):
    loaded = load_text(
        project,
        """
        version: 1
        models:
          zeta: {artifact: artifacts/a.txt, features: small}
          alpha: {artifact: artifacts/b.txt, features: small}
          mid: {artifact: artifacts/a.txt, features: small}
        """,
    )
    assert [m.slot for m in loaded.models] == ["zeta", "alpha", "mid"]


THREE_SLOTS = """
version: 1
models:
  zeta: {artifact: artifacts/a.txt, features: small}
  alpha: {artifact: artifacts/b.txt, features: small}
  mid: {artifact: artifacts/a.txt, features: small}
"""


def test_selecting_slots_keeps_numerai_yaml_order_and_drops_repeats(project):
    loaded = load_text(project, THREE_SLOTS)
    assert [m.slot for m in loaded.select(["mid", "zeta", "mid"])] == ["zeta", "mid"]
    assert [m.slot for m in loaded.select([])] == ["zeta", "alpha", "mid"]


def test_selecting_unknown_slots_names_each_and_the_configured_slots(project):
    loaded = load_text(project, THREE_SLOTS)
    with pytest.raises(NmrError) as caught:
        loaded.select(["alpha", "gamma", "delta"])
    assert str(caught.value) == (
        "no model slot 'gamma', 'delta' in numerai.yaml (slots: zeta, alpha, mid)"
    )


def test_feature_set_name_resolves_to_the_features_json_columns(project):
    member = (
        load_text(
            project,
            """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
        )
        .models[0]
        .members[0]
    )
    assert member.features == ("feature_b", "feature_a")
    assert member.feature_set == "small"


def test_explicit_feature_list_stays_as_given(project):
    member = (
        load_text(
            project,
            """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: [feature_d, feature_a]}
        """,
        )
        .models[0]
        .members[0]
    )
    assert member.features == ("feature_d", "feature_a")
    assert member.feature_set is None


def test_ensemble_members_default_to_the_model_features_and_may_override(project):
    model = load_text(
        project,
        """
        version: 1
        models:
          e:
            ensemble:
              - {artifact: artifacts/a.txt, weight: 0.7}
              - {artifact: artifacts/m.onnx, features: small, weight: 0.3}
            features: medium
        """,
    ).models[0]
    assert model.ensemble is True
    first, second = model.members
    assert (first.features, first.feature_set, first.weight) == (
        tuple(CONFIG_FEATURE_SETS["medium"]),
        "medium",
        0.7,
    )
    assert (second.features, second.feature_set, second.format) == (
        tuple(CONFIG_FEATURE_SETS["small"]),
        "small",
        "onnx",
    )
    assert model.features == ("feature_a", "feature_b", "feature_c")


def test_member_weight_defaults_to_one(project):
    model = load_text(
        project,
        """
        version: 1
        models:
          e:
            ensemble: [{artifact: artifacts/a.txt}, {artifact: artifacts/b.txt}]
            features: small
        """,
    ).models[0]
    assert [m.weight for m in model.members] == [1.0, 1.0]


def test_paths_are_absolute_and_resolved_against_the_config_directory(project, monkeypatch):
    write(
        project,
        """
        version: 1
        data: {dir: data}
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
    )
    monkeypatch.chdir(project.parent)
    loaded = load(Path(project.name) / "numerai.yaml")
    assert loaded.root == project.resolve()
    assert loaded.models[0].members[0].artifact == (project / "artifacts" / "a.txt").resolve()
    assert loaded.data.dir.is_absolute() and loaded.data.dir == project.resolve() / "data"
    assert loaded.data.features_json == project.resolve() / "data" / "features.json"


def test_format_is_inferred_from_the_suffix_unless_given(project):
    loaded = load_text(
        project,
        """
        version: 1
        models:
          inferred: {artifact: artifacts/a.txt, features: small}
          given: {artifact: artifacts/s.pkl, format: sklearn, features: small}
        """,
    )
    assert [m.members[0].format for m in loaded.models] == ["lightgbm", "sklearn"]


def test_omitted_postprocessing_defaults_to_rank_per_era(project):
    model = load_text(
        project,
        """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
    ).models[0]
    assert model.postprocessing == (Step("rank_per_era"),)
    assert model.raw_output is False


def test_explicit_empty_postprocessing_means_raw_output(project):
    model = load_text(
        project,
        """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: small, postprocessing: []}
        """,
    ).models[0]
    assert model.postprocessing == ()
    assert model.raw_output is True


def test_steps_keep_their_order_with_sorted_hashable_params(project):
    model = load_text(
        project,
        """
        version: 1
        models:
          m:
            artifact: artifacts/a.txt
            features: medium
            preprocessing:
              - fill_missing: {value: 2}
              - clip: {max: 4, min: 0}
            postprocessing:
              - neutralize: {proportion: 0.5, features: small}
              - gaussianize_per_era:
              - rank_per_era: {}
        """,
    ).models[0]
    assert [s.name for s in model.preprocessing] == ["fill_missing", "clip"]
    assert model.preprocessing[1].params == (("max", 4), ("min", 0))
    neutralize = model.postprocessing[0]
    assert neutralize.params == (("features", "small"), ("proportion", 0.5))
    assert neutralize.feature_columns == tuple(CONFIG_FEATURE_SETS["small"])
    assert model.postprocessing[1] == Step("gaussianize_per_era")
    assert hash(model.postprocessing)  # steps are hashable (lock hashes normalized config)


def test_neutralize_with_a_column_list_keeps_it_as_a_tuple(project):
    step = (
        load_text(
            project,
            """
        version: 1
        models:
          m:
            artifact: artifacts/a.txt
            features: small
            postprocessing:
              - neutralize: {features: [feature_c, feature_a]}
        """,
        )
        .models[0]
        .postprocessing[0]
    )
    assert step.get("features") == ("feature_c", "feature_a")
    assert step.feature_columns == ("feature_c", "feature_a")


def test_runtime_is_model_override_then_top_level_then_default(project):
    other = next(t for t in runtimes.known_tags() if t != runtimes.default_tag())
    loaded = load_text(
        project,
        f"""
        version: 1
        models:
          plain: {{artifact: artifacts/a.txt, features: small}}
          pinned: {{artifact: artifacts/a.txt, features: small, runtime: "{other}"}}
        """,
    )
    assert loaded.runtime == runtimes.default_tag()
    assert [m.runtime for m in loaded.models] == [runtimes.default_tag(), other]
    top = load_text(
        project,
        f"""
        version: 1
        runtime: "{other}"
        models:
          plain: {{artifact: artifacts/a.txt, features: small}}
        """,
    )
    assert top.models[0].runtime == other


def test_runtime_image_name_without_ref_resolves_to_its_catalog_tag(project):
    # README (Runtimes): "The image name without :ref ... is accepted as an alias".
    loaded = load_text(
        project,
        """
        version: 1
        runtime: numerai_predict_py_3_11
        models:
          plain: {artifact: artifacts/a.txt, features: small}
          pinned: {artifact: artifacts/a.txt, features: small, runtime: numerai_predict_py_3_10}
        """,
    )
    assert loaded.runtime == runtimes.get("numerai_predict_py_3_11").tag
    assert [m.runtime for m in loaded.models] == [
        runtimes.get("numerai_predict_py_3_11").tag,
        runtimes.get("numerai_predict_py_3_10").tag,
    ]
    assert all(":" in m.runtime for m in loaded.models)


def test_deploy_defaults_and_values(project):
    loaded = load_text(
        project,
        """
        version: 1
        models:
          plain: {artifact: artifacts/a.txt, features: small}
          live:
            artifact: artifacts/a.txt
            features: small
            deploy: {create: true, trigger: true, data_version: v5.1, legacy_signature: true}
        """,
    )
    plain, live = (m.deploy for m in loaded.models)
    assert (plain.create, plain.trigger, plain.data_version, plain.legacy_signature) == (
        False,
        False,
        None,
        False,
    )
    assert (live.create, live.trigger, live.data_version, live.legacy_signature) == (
        True,
        True,
        "v5.1",
        True,
    )


def test_data_defaults_pick_existing_files_only(project):
    pd.DataFrame({"v52_lgbm_ender20": [0.5]}, index=pd.Index(["n1"], name="id")).to_parquet(
        project / "data" / "live_benchmark_models.parquet"
    )
    data = load_text(
        project,
        """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
    ).data
    assert data.version == "v5.2"
    assert data.live_benchmarks == project.resolve() / "data" / "live_benchmark_models.parquet"
    assert (data.train, data.validation, data.live, data.validation_benchmarks) == (
        None,
        None,
        None,
        None,
    )


def test_named_data_file_that_does_not_exist_is_a_problem(project):
    with pytest.raises(ConfigError) as caught:
        load_text(
            project,
            """
            version: 1
            data: {train: train.parquet}
            models:
              m: {artifact: artifacts/a.txt, features: small}
            """,
        )
    (problem,) = caught.value.problems
    assert (problem.line, problem.col, problem.path) == (2, 15, "data.train")


def test_blend_benchmark_column_is_checked_against_the_live_benchmarks(project):
    pd.DataFrame({"v52_lgbm_ender20": [0.5]}, index=pd.Index(["n1"], name="id")).to_parquet(
        project / "data" / "live_benchmark_models.parquet"
    )
    with pytest.raises(ConfigError) as caught:
        load_text(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                postprocessing:
                  - blend_benchmark: {column: v52_lgbm_ender02, weight: 0.2}
            """,
        )
    (problem,) = caught.value.problems
    assert (problem.line, problem.col) == (7, 35)
    assert "did you mean 'v52_lgbm_ender20'" in problem.message


def test_blend_benchmark_refuses_the_id_index_of_the_benchmarks_file(project):
    pd.DataFrame({"v52_lgbm_ender20": [0.5]}, index=pd.Index(["n1"], name="id")).to_parquet(
        project / "data" / "live_benchmark_models.parquet"
    )
    with pytest.raises(ConfigError) as caught:
        load_text(
            project,
            """
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                postprocessing:
                  - blend_benchmark: {column: id, weight: 0.2}
            """,
        )
    (problem,) = caught.value.problems
    assert "column 'id' is not in live_benchmark_models.parquet" in problem.message


def test_slot_keys_are_kept_as_written_text(project):
    loaded = load_text(
        project,
        """
        version: 1
        models:
          2024: {artifact: artifacts/a.txt, features: small}
        """,
    )
    assert loaded.models[0].slot == "2024"


def test_loaded_config_is_immutable(project):
    loaded = load_text(
        project,
        """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.models[0].slot = "other"  # type: ignore[misc]
    assert loaded.model("m") is loaded.models[0]


def test_find_config_walks_up_from_the_start_directory(project):
    config = write(project, "version: 1\n")
    nested = project / "a" / "b"
    nested.mkdir(parents=True)
    assert find_config(nested) == config.resolve()


def test_find_config_prefers_nmr_config_env(project, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("other") / "custom.yaml"
    elsewhere.write_text("version: 1\n")
    write(project, "version: 1\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("NMR_CONFIG", str(elsewhere))
    assert find_config() == elsewhere.resolve()


def test_find_config_without_any_file_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("NMR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NmrError, match="no numerai.yaml in .* run `nmr init` or pass -f FILE"):
        find_config()


def test_load_without_path_discovers_the_file_from_the_working_directory(project, monkeypatch):
    write(
        project,
        """
        version: 1
        models:
          m: {artifact: artifacts/a.txt, features: small}
        """,
    )
    monkeypatch.delenv("NMR_CONFIG", raising=False)
    monkeypatch.chdir(project / "artifacts")
    assert load().models[0].slot == "m"


def test_error_locations_use_the_path_relative_to_the_working_directory(project, monkeypatch):
    write(project, "version: 1\nmodels: {m: {artifact: artifacts/a.txt, features: nope}}\n")
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as caught:
        load(project / "numerai.yaml")
    assert str(caught.value).startswith("numerai.yaml:2:")


def test_normalized_config_is_the_same_for_a_copy_at_another_path(project, tmp_path_factory):
    import shutil

    from builder.config import normalized

    text = """
        version: 1
        models:
          m:
            artifact: artifacts/a.txt
            features: small
            postprocessing:
              - neutralize: {features: [feature_c], proportion: 0.5}
              - rank_per_era: {}
        """
    first = load_text(project, text)
    copy = tmp_path_factory.mktemp("elsewhere") / "copy"
    shutil.copytree(project, copy)
    second = load(copy / "numerai.yaml")
    a = normalized(first.models[0], first.root)
    assert a == normalized(second.models[0], second.root)
    assert a["members"][0]["artifact"] == "artifacts/a.txt"
    assert a["postprocessing"][0] == {
        "name": "neutralize",
        "params": {"features": ["feature_c"], "proportion": 0.5},
        "feature_columns": ["feature_c"],
    }
    assert json.loads(json.dumps(a)) == a


def test_ensemble_member_keeps_its_own_preprocessing_apart_from_the_models(project):
    model = load_text(
        project,
        """
        version: 1
        models:
          e:
            ensemble:
              - {artifact: artifacts/a.txt}
              - artifact: artifacts/m.onnx
                preprocessing: [fill_missing: {value: 2}, clip: {max: 3}]
            features: small
            preprocessing: [clip: {min: 0}]
        """,
    ).models[0]
    assert model.members[0].preprocessing == ()
    assert model.members[1].preprocessing == (
        Step("fill_missing", (("value", 2),)),
        Step("clip", (("max", 3),)),
    )
    assert model.members[1].preprocessing[0].mark.line == 7
    assert model.preprocessing == (Step("clip", (("min", 0),)),)


def test_an_unknown_step_in_a_members_preprocessing_is_reported_at_its_place(project):
    with pytest.raises(ConfigError) as caught:
        load_text(
            project,
            """
            version: 1
            models:
              e:
                ensemble:
                  - {artifact: artifacts/a.txt, preprocessing: [rank_per_era: {}]}
                features: small
            """,
        )
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (5, "models.e.ensemble[0].preprocessing[0].rank_per_era")
    assert "unknown preprocessing step 'rank_per_era'" in problem.message
    assert "rank_per_era is a postprocessing step" in problem.message


def test_deploy_disable_webhook_defaults_to_false_and_can_be_set(project):
    loaded = load_text(
        project,
        """
        version: 1
        models:
          plain: {artifact: artifacts/a.txt, features: small}
          hooked: {artifact: artifacts/a.txt, features: small, deploy: {disable_webhook: true}}
        """,
    )
    assert [m.deploy.disable_webhook for m in loaded.models] == [False, True]


def test_deploy_disable_webhook_that_is_not_a_boolean_names_its_place(project):
    with pytest.raises(ConfigError) as caught:
        load_text(
            project,
            """
            version: 1
            models:
              hooked: {artifact: artifacts/a.txt, features: small, deploy: {disable_webhook: "yes"}}
            """,
        )
    assert str(caught.value).endswith(
        "numerai.yaml:3:82: models.hooked.deploy.disable_webhook: expected true or false, "
        "got a string 'yes'"
    )


def test_bmc_benchmark_is_checked_against_the_validation_benchmarks(project):
    pd.DataFrame({"v52_lgbm_ender20": [0.5]}, index=pd.Index(["n1"], name="id")).to_parquet(
        project / "data" / "validation_benchmark_models.parquet"
    )
    with pytest.raises(ConfigError) as caught:
        load_text(
            project,
            """
            version: 1
            data:
              bmc_benchmark: v52_lgbm_ender02
            models:
              m: {artifact: artifacts/a.txt, features: small}
            """,
        )
    (problem,) = caught.value.problems
    assert (problem.line, problem.col, problem.path) == (3, 18, "data.bmc_benchmark")
    assert "not in validation_benchmark_models.parquet" in problem.message
    assert "did you mean 'v52_lgbm_ender20'" in problem.message


def test_bmc_benchmark_is_kept_when_set_and_none_by_default(project):
    models = "models:\n  m: {artifact: artifacts/a.txt, features: small}\n"
    chosen = load_text(
        project, "version: 1\ndata:\n  bmc_benchmark: v52_lgbm_teager2b20\n" + models
    )
    assert chosen.data.bmc_benchmark == "v52_lgbm_teager2b20"
    assert load_text(project, "version: 1\n" + models).data.bmc_benchmark is None
