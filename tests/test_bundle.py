"""make_bundle: config + compiled LightGBM models -> the predict object (run in-process here).

Predictions are compared with the native LightGBM model's output passed through plain
numpy/pandas/scipy versions of the same steps.
"""

from __future__ import annotations

import dataclasses
import inspect

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from builder.bundle import make_bundle
from builder.config import load
from builder.errors import NmrError
from builder.kernels.bundle import Predict, PredictLegacy
from tests.buildkit import train_lightgbm, write_config, write_data
from tests.numerai_reference import rank_per_era


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    sets = write_data(root, nan_fraction=0.05)
    train_lightgbm(root, "reg_small", sets["small"], seed=1)
    train_lightgbm(root, "reg_medium", sets["medium"], seed=2)
    train_lightgbm(root, "bin_small", sets["small"], objective="binary", seed=3)
    return root, sets


def _bundle(root, models_yaml, name):
    project = load(write_config(root, models_yaml, name=name))
    return make_bundle(project, project.models[0])


def _live(root):
    return pd.read_parquet(root / "data" / "live.parquet")


def _native(root, artifact, features, X):
    booster = lgb.Booster(model_file=str(root / "artifacts" / f"{artifact}.txt"))
    return booster.predict(X[features].to_numpy(dtype=np.float64))


def test_single_model_with_steps_equals_native_output_through_reference_steps(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        m:
          artifact: artifacts/reg_small.txt
          features: small
          preprocessing:
            - fill_missing: {value: 2}
            - clip: {min: 1, max: 3}
          postprocessing:
            - rank_per_era: {}
        """,
        "single.yaml",
    )
    live = _live(root)
    X = live[sets["small"]].fillna(2).clip(1, 3)
    expected = rank_per_era(_native(root, "reg_small", sets["small"], X), live["era"].to_numpy())
    out = bundle(live, None)
    assert list(out.columns) == ["prediction"]
    assert out.index.equals(live.index)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), expected)


def test_ensemble_ranks_members_per_era_then_takes_the_weighted_mean(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        ens:
          ensemble:
            - {artifact: artifacts/reg_small.txt, features: small, weight: 0.7}
            - {artifact: artifacts/reg_medium.txt, weight: 0.3}
          features: medium
          postprocessing: []
        """,
        "ensemble.yaml",
    )
    live = _live(root)
    eras = live["era"].to_numpy()
    a = rank_per_era(_native(root, "reg_small", sets["small"], live), eras)
    b = rank_per_era(_native(root, "reg_medium", sets["medium"], live), eras)
    out = bundle(live, None)["prediction"].to_numpy()
    np.testing.assert_allclose(out, (0.7 * a + 0.3 * b) / 1.0, rtol=0, atol=1e-15)


def test_binary_model_ships_probability_of_class_one_as_raw_output(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        b:
          artifact: artifacts/bin_small.txt
          features: small
          postprocessing: []
        """,
        "binary.yaml",
    )
    live = _live(root)
    out = bundle(live, None)["prediction"].to_numpy()
    np.testing.assert_array_equal(out, _native(root, "bin_small", sets["small"], live))


def test_standardize_statistics_come_from_train_after_the_earlier_steps(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        s:
          artifact: artifacts/reg_small.txt
          features: small
          preprocessing:
            - fill_missing: {strategy: median}
            - clip: {max: 3}
            - standardize: {}
        """,
        "standardize.yaml",
    )
    train = pd.read_parquet(root / "data" / "train.parquet", columns=sets["small"])
    medians = train.median()
    clipped = train.fillna(medians).clip(upper=3)
    fill, _clip, standardize = bundle.preprocessing
    np.testing.assert_array_equal(fill.values, medians.to_numpy())
    np.testing.assert_allclose(standardize.mean, clipped.mean().to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(standardize.scale, clipped.std(ddof=0).to_numpy(), rtol=1e-12)


def test_fill_missing_mean_uses_train_column_means_ignoring_nan(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        f:
          artifact: artifacts/reg_small.txt
          features: small
          preprocessing:
            - fill_missing: {strategy: mean}
        """,
        "fillmean.yaml",
    )
    train = pd.read_parquet(root / "data" / "train.parquet", columns=sets["small"])
    np.testing.assert_allclose(bundle.preprocessing[0].values, train.mean().to_numpy(), rtol=1e-13)


def test_regression_without_rank_is_refused_naming_the_fix(project_dir):
    root, _ = project_dir
    with pytest.raises(NmrError, match=r"not guaranteed to lie in \[0, 1\].*rank_per_era"):
        _bundle(
            root,
            """
            r:
              artifact: artifacts/reg_small.txt
              features: small
              postprocessing:
                - neutralize: {features: small, proportion: 0.5}
            """,
            "unbounded.yaml",
        )


def test_gaussianize_as_last_step_is_refused(project_dir):
    root, _ = project_dir
    with pytest.raises(NmrError, match="after gaussianize_per_era"):
        _bundle(
            root,
            """
            g:
              artifact: artifacts/reg_small.txt
              features: small
              postprocessing:
                - rank_per_era: {}
                - gaussianize_per_era: {}
            """,
            "gauss.yaml",
        )


def test_explicit_empty_postprocessing_ships_raw_regression_output(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        raw:
          artifact: artifacts/reg_small.txt
          features: small
          postprocessing: []
        """,
        "raw.yaml",
    )
    live = _live(root)
    np.testing.assert_array_equal(
        bundle(live, None)["prediction"].to_numpy(), _native(root, "reg_small", sets["small"], live)
    )


def test_default_signature_has_two_parameters(project_dir):
    root, _ = project_dir
    bundle = _bundle(root, "d:\n  artifact: artifacts/reg_small.txt\n  features: small\n", "d.yaml")
    assert isinstance(bundle, Predict)
    assert len(inspect.signature(bundle).parameters) == 2


def test_legacy_signature_has_one_parameter(project_dir):
    root, _ = project_dir
    bundle = _bundle(
        root,
        """
        l:
          artifact: artifacts/reg_small.txt
          features: small
          deploy: {legacy_signature: true}
        """,
        "legacy.yaml",
    )
    assert isinstance(bundle, PredictLegacy)
    assert len(inspect.signature(bundle).parameters) == 1
    assert bundle(_live(root))["prediction"].between(0, 1).all()


def test_legacy_signature_with_blend_benchmark_is_refused(project_dir):
    root, _ = project_dir
    with pytest.raises(NmrError, match="legacy_signature.*blend_benchmark"):
        _bundle(
            root,
            """
            lb:
              artifact: artifacts/reg_small.txt
              features: small
              postprocessing:
                - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.2}
              deploy: {legacy_signature: true}
            """,
            "legacyblend.yaml",
        )


def test_missing_feature_columns_raise_value_error_naming_the_first_few(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root, "d:\n  artifact: artifacts/reg_medium.txt\n  features: medium\n", "m.yaml"
    )
    live = _live(root).drop(columns=sets["medium"][2:9])
    with pytest.raises(ValueError, match=rf"missing 7 column\(s\).*{sets['medium'][2]}.*, \.\.\.$"):
        bundle(live, None)


def test_output_keeps_live_row_order(project_dir):
    root, _ = project_dir
    bundle = _bundle(root, "d:\n  artifact: artifacts/reg_small.txt\n  features: small\n", "o.yaml")
    live = _live(root).sample(frac=1.0, random_state=1)
    out = bundle(live, None)
    assert out.index.equals(live.index)
    np.testing.assert_array_equal(
        out["prediction"].to_numpy(),
        bundle(live.sort_index(), None)["prediction"].reindex(live.index).to_numpy(),
    )


def test_blend_benchmark_bundle_reads_the_benchmark_frame(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        bb:
          artifact: artifacts/reg_small.txt
          features: small
          postprocessing:
            - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.25}
        """,
        "blend.yaml",
    )
    live = _live(root)
    bench = pd.read_parquet(root / "data" / "live_benchmark_models.parquet")
    eras = live["era"].to_numpy()
    expected = 0.75 * rank_per_era(
        _native(root, "reg_small", sets["small"], live), eras
    ) + 0.25 * rank_per_era(bench["v52_lgbm_ender20"].reindex(live.index).to_numpy(), eras)
    np.testing.assert_allclose(bundle(live, bench)["prediction"].to_numpy(), expected, atol=1e-15)


def test_standardize_without_train_data_names_data_train(project_dir):
    # The config loader already refuses this; make_bundle guards callers that build a Project
    # themselves.
    root, _ = project_dir
    config = write_config(
        root,
        """
        nt:
          artifact: artifacts/reg_small.txt
          features: small
          preprocessing:
            - standardize: {}
        """,
        name="notrain.yaml",
    )
    project = load(config)
    project = dataclasses.replace(project, data=dataclasses.replace(project.data, train=None))
    with pytest.raises(NmrError, match="standardize computes its statistics from data.train"):
        make_bundle(project, project.models[0])


def test_a_truncated_train_file_is_refused_naming_the_file(project_dir, tmp_path):
    root, _ = project_dir
    config = write_config(
        root,
        """
        tr:
          artifact: artifacts/reg_small.txt
          features: small
          preprocessing:
            - fill_missing: {strategy: median}
        """,
        name="truncated_train.yaml",
    )
    project = load(config)
    truncated = tmp_path / "train.parquet"
    truncated.write_bytes((root / "data" / "train.parquet").read_bytes()[:1000])
    project = dataclasses.replace(project, data=dataclasses.replace(project.data, train=truncated))
    with pytest.raises(NmrError, match=r"train\.parquet: data\.train is not a readable parquet"):
        make_bundle(project, project.models[0])


def test_int8_features_reach_the_models_as_int8_when_no_step_needs_floats():
    from builder.kernels.bundle import feature_matrix

    frame = pd.DataFrame({"a": np.array([0, 4], np.int8), "b": np.array([2, 3], np.int8)})
    X = feature_matrix(frame, preprocessing=[])
    assert X.dtype == np.int8
    assert X.tolist() == [[0, 2], [4, 3]]


def test_features_become_float64_with_nan_for_preprocessing_or_mixed_dtypes():
    from builder.kernels.bundle import feature_matrix

    ints = pd.DataFrame({"a": np.array([0, 4], np.int8)})
    assert feature_matrix(ints, preprocessing=["clip"]).dtype == np.float64
    mixed = pd.DataFrame({"a": np.array([0, 4], np.int8), "b": [np.nan, 1.0]})
    X = feature_matrix(mixed, preprocessing=[])
    assert X.dtype == np.float64 and np.isnan(X[0, 1])
    nullable = pd.DataFrame({"a": pd.array([1, None], dtype="Int8")})
    X = feature_matrix(nullable, preprocessing=[])
    assert X.dtype == np.float64 and np.isnan(X[1, 0])


@pytest.mark.parametrize("written,expected", [("proportion: 0.37", 0.37), ("", 1.0)])
def test_neutralize_proportion_in_numerai_yaml_reaches_the_step(project_dir, written, expected):
    root, sets = project_dir
    params = ", ".join(p for p in ("features: small", written) if p)
    bundle = _bundle(
        root,
        f"""
        m:
          artifact: artifacts/reg_small.txt
          features: small
          postprocessing:
            - neutralize: {{{params}}}
            - rank_per_era: {{}}
        """,
        "neutralize_proportion.yaml",
    )
    step = bundle.postprocessing[0]
    assert step.name == "neutralize"
    assert step.columns == tuple(sets["small"])
    assert step.proportion == expected


def test_member_preprocessing_fills_only_that_member_while_the_other_keeps_native_nan(
    project_dir,
):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        m:
          ensemble:
            - artifact: artifacts/reg_small.txt
              weight: 0.5
              preprocessing: [fill_missing: {value: 2}]
            - {artifact: artifacts/reg_medium.txt, features: medium, weight: 0.5}
          features: small
        """,
        "member_pre.yaml",
    )
    live = _live(root)
    assert live[sets["medium"]].isna().to_numpy().any()  # the test needs NaN in both members
    filled = live.copy()
    filled[sets["small"]] = filled[sets["small"]].fillna(2)
    eras = np.zeros(len(live))
    expected = 0.5 * rank_per_era(
        _native(root, "reg_small", sets["small"], filled), eras
    ) + 0.5 * rank_per_era(_native(root, "reg_medium", sets["medium"], live), eras)
    got = bundle(live, None)["prediction"].to_numpy()
    np.testing.assert_array_equal(got, rank_per_era(expected, eras))


def test_member_fill_missing_median_is_fitted_on_that_members_train_columns(project_dir):
    root, sets = project_dir
    bundle = _bundle(
        root,
        """
        m:
          ensemble:
            - {artifact: artifacts/reg_small.txt, preprocessing: [fill_missing: {strategy: median}]}
            - {artifact: artifacts/reg_medium.txt, features: medium}
          features: small
        """,
        "member_median.yaml",
    )
    train = pd.read_parquet(root / "data" / "train.parquet")
    [fill] = bundle.members[0].preprocessing
    np.testing.assert_array_equal(fill.values, train[sets["small"]].median().to_numpy())
    assert bundle.members[1].preprocessing == []
    assert bundle.preprocessing == []
    assert bundle.summary["members"][0]["preprocessing"] == ["fill_missing{strategy: median}"]
