"""Preprocessing folded into the tree predicates (builder.compile.trees.fold_preprocessing).

Real LightGBM models trained on preprocessed Numerai-shaped data; the folded bundle reads the
raw codes and must give exactly what LightGBM gives on the preprocessed matrix, and what the
unfolded bundle gives.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from builder.artifacts import read
from builder.compile.trees import compile_trees, fold_preprocessing
from builder.kernels import bundle as kb
from builder.kernels import steps as ks
from builder.kernels.trees import TreeEnsembleEvaluator
from tests.synthdata import feature_names, numerai_like

N_FEATURES = 12


def _steps(kind: str, X: np.ndarray) -> list:
    fill = ks.FillMissing(np.array([2.0, 2.5, 0.0, 4.0, 1.0, 3.0] * 2))
    clip = ks.Clip(0.5, 3.0)
    filled = fill.apply(X)
    clipped = clip.apply(filled)
    if kind == "fill":
        return [fill]
    if kind == "clip":
        return [clip]
    if kind == "standardize":
        return [ks.Standardize(np.nanmean(X, axis=0), np.nanstd(X, axis=0))]
    # Numerai-style: fill, clip, standardize with statistics after the earlier steps
    return [fill, clip, ks.Standardize(clipped.mean(axis=0), clipped.std(axis=0))]


def _apply(steps, X):
    X = np.asarray(X, dtype=np.float64)
    for step in steps:
        X = step.apply(X)
    return X


def _setup(tmp_path, kind: str, seed: int = 0):
    """(folded bundle, unfolded bundle, booster, steps) for a model trained on the
    preprocessed train matrix."""
    X, y = numerai_like(n_rows=3000, n_features=N_FEATURES, seed=seed, nan_fraction=0.1)
    steps = _steps(kind, X)
    params = {
        "objective": "regression",
        "num_leaves": 31,
        "max_depth": 5,
        "learning_rate": 0.1,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
    }
    names = feature_names(N_FEATURES)
    booster = lgb.train(params, lgb.Dataset(_apply(steps, X), y, feature_name=names), 60)
    path = tmp_path / f"{kind}.txt"
    booster.save_model(str(path))

    def bundle():
        evaluator = compile_trees(read(path, "lightgbm"))
        return kb.Predict(
            feature_names=tuple(names),
            preprocessing=list(steps),
            members=[kb.Member(evaluator, np.arange(N_FEATURES), "regression")],
            ensemble=False,
            postprocessing=[],
            required_columns=tuple(names),
            summary={},
        )

    return fold_preprocessing(bundle()), bundle(), booster, steps


def _live(seed: int, nan_fraction: float = 0.1, jitter: bool = False) -> pd.DataFrame:
    X, _ = numerai_like(n_rows=700, n_features=N_FEATURES, seed=seed, nan_fraction=nan_fraction)
    if jitter:
        X = X + np.random.default_rng(seed).normal(scale=0.3, size=X.shape)
    return pd.DataFrame(X, columns=feature_names(N_FEATURES))


@pytest.mark.parametrize("kind", ["fill", "clip", "standardize", "numerai"])
def test_folded_bundle_equals_lightgbm_on_the_preprocessed_codes(tmp_path, kind):
    folded, _, booster, steps = _setup(tmp_path, kind)
    live = _live(seed=5)
    expected = booster.predict(_apply(steps, live.to_numpy()), num_threads=1)
    got = folded.predict(live)["prediction"].to_numpy()
    assert folded.preprocessing_folded
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("kind", ["fill", "numerai"])
def test_folded_bundle_equals_unfolded_bundle_on_int8_codes(tmp_path, kind):
    folded, unfolded, _, _ = _setup(tmp_path, kind, seed=1)
    live = _live(seed=6, nan_fraction=0.0).astype(np.int8)
    assert np.array_equal(
        folded.predict(live)["prediction"].to_numpy(),
        unfolded.predict(live)["prediction"].to_numpy(),
    )


def test_folded_member_reads_raw_codes_without_walking(tmp_path, monkeypatch):
    folded, _, booster, steps = _setup(tmp_path, "numerai", seed=2)
    live = _live(seed=7)

    def no_walk(*args, **kwargs):
        raise AssertionError("the walk ran on code inputs")

    monkeypatch.setattr(TreeEnsembleEvaluator, "_walk", no_walk)
    got = folded.predict(live)["prediction"].to_numpy()
    assert np.array_equal(got, booster.predict(_apply(steps, live.to_numpy()), num_threads=1))


def test_folded_member_applies_its_steps_before_walking_non_code_inputs(tmp_path):
    folded, unfolded, booster, steps = _setup(tmp_path, "numerai", seed=3)
    live = _live(seed=8, jitter=True)  # fractions: the bit-sliced path refuses them
    got = folded.predict(live)["prediction"].to_numpy()
    assert np.array_equal(got, booster.predict(_apply(steps, live.to_numpy()), num_threads=1))
    assert np.array_equal(got, unfolded.predict(live)["prediction"].to_numpy())


def test_member_reading_a_column_subset_gets_that_subsets_step_parameters(tmp_path):
    _, _, booster, steps = _setup(tmp_path, "numerai", seed=4)
    names = feature_names(N_FEATURES)
    # the bundle has two extra leading columns; the member reads columns 2..13
    wide = ("extra_a", "extra_b", *names)
    evaluator = compile_trees(read(tmp_path / "numerai.txt", "lightgbm"))
    bundle = kb.Predict(
        feature_names=wide,
        preprocessing=[_widened(s) for s in steps],
        members=[kb.Member(evaluator, np.arange(2, N_FEATURES + 2), "regression")],
        ensemble=False,
        postprocessing=[],
        required_columns=wide,
        summary={},
    )
    bundle = fold_preprocessing(bundle)
    assert bundle.preprocessing_folded
    live = _live(seed=9)
    live.insert(0, "extra_b", 1.0)
    live.insert(0, "extra_a", 3.0)
    expected = booster.predict(_apply(steps, live[names].to_numpy()), num_threads=1)
    assert np.array_equal(bundle.predict(live)["prediction"].to_numpy(), expected)


def test_fold_leaves_a_bundle_with_another_step_unchanged(tmp_path):
    _, unfolded, _, steps = _setup(tmp_path, "fill")

    class Square:  # not elementwise-with-fitted-parameters as far as folding knows
        name = "square"

        def apply(self, X):
            return X * X

    unfolded.preprocessing = [*steps, Square()]
    member = unfolded.members[0]
    same = fold_preprocessing(unfolded)
    assert not getattr(same, "preprocessing_folded", False)
    assert same.members[0] is member


def _widened(step):
    """The step with two leading columns added (their parameters are never read)."""
    if isinstance(step, ks.FillMissing):
        return ks.FillMissing(np.concatenate([[9.0, 9.0], step.values]))
    if isinstance(step, ks.Standardize):
        return ks.Standardize(
            np.concatenate([[100.0, 100.0], step.mean]), np.concatenate([[7.0, 7.0], step.scale])
        )
    return step


def test_make_bundle_folds_numerai_style_preprocessing(tmp_path):
    from builder.bundle import make_bundle
    from builder.config import load
    from tests.buildkit import train_lightgbm, write_config, write_data

    sets = write_data(tmp_path, nan_fraction=0.05)
    train_lightgbm(tmp_path, "reg", sets["small"], seed=1)
    config = write_config(
        tmp_path,
        """
        s:
          artifact: artifacts/reg.txt
          features: small
          preprocessing:
            - fill_missing: {strategy: median}
            - clip: {min: 1, max: 3}
            - standardize: {}
          postprocessing:
            - rank_per_era: {}
        """,
    )
    project = load(config)
    bundle = make_bundle(project, project.models[0])
    assert bundle.preprocessing_folded
    live = pd.read_parquet(tmp_path / "data" / "live.parquet")
    unfolded = kb.Predict(
        feature_names=bundle.feature_names,
        preprocessing=bundle.preprocessing,
        members=[
            kb.Member(
                compile_trees(read(tmp_path / "artifacts" / "reg.txt", "lightgbm")),
                bundle.members[0].columns,
                "regression",
            )
        ],
        ensemble=False,
        postprocessing=bundle.postprocessing,
        required_columns=bundle.required_columns,
        summary={},
    )
    assert np.array_equal(
        bundle.predict(live)["prediction"].to_numpy(),
        unfolded.predict(live)["prediction"].to_numpy(),
    )
