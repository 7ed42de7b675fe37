"""Randomized fidelity: a Pipeline's final estimator and VotingRegressor's members may be any
model nmr compiles (scikit-learn trees, pickled LGBMRegressor / XGBRegressor, linear, MLP),
and the composite's output equals scikit-learn's ``predict`` within the stated bound."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from builder import ir
from tests.sklearn_fidelity import BOUND, NAMES, compiled, data, held_out, relative_error

lm = pytest.importorskip("sklearn.linear_model")
pipeline = pytest.importorskip("sklearn.pipeline")
pre = pytest.importorskip("sklearn.preprocessing")
impute = pytest.importorskip("sklearn.impute")
decomposition = pytest.importorskip("sklearn.decomposition")
ensemble = pytest.importorskip("sklearn.ensemble")
nn = pytest.importorskip("sklearn.neural_network")
lightgbm = pytest.importorskip("lightgbm")
xgboost = pytest.importorskip("xgboost")


def _final(kind: str, seed: int):
    if kind == "lgbm":
        return lightgbm.LGBMRegressor(n_estimators=15, num_leaves=7, verbose=-1, random_state=seed)
    if kind == "xgb":
        return xgboost.XGBRegressor(n_estimators=15, max_depth=3, random_state=seed, n_jobs=1)
    if kind == "forest":
        return ensemble.RandomForestRegressor(n_estimators=8, max_depth=5, random_state=seed)
    if kind == "hgb":
        return ensemble.HistGradientBoostingRegressor(max_iter=10, random_state=seed)
    if kind == "mlp":
        return nn.MLPRegressor(hidden_layer_sizes=(6,), max_iter=40, random_state=seed)
    return lm.Ridge(alpha=1.0)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


FINALS = ("lgbm", "xgb", "forest", "hgb", "mlp", "ridge")


@pytest.mark.parametrize("final", FINALS)
def test_pipeline_final_estimator_may_be_any_compiled_model(final, tmp_path):
    for i in range(2):
        kind = ("int8", "float")[i]
        X, y = data(kind, seed=i, nan_fraction=0.1 * i)
        est = _fit(
            pipeline.make_pipeline(impute.SimpleImputer(), pre.StandardScaler(), _final(final, i)),
            X,
            y,
        )
        error = relative_error(est, tmp_path, held_out(kind, i, nan_fraction=0.1 * i))
        assert error <= BOUND, f"Pipeline ending in {final}, model {i}: {error:.3g}"


def test_pipeline_with_pca_feeds_the_components_to_the_final_model(tmp_path):
    X, y = data("float", seed=4)
    est = _fit(
        pipeline.make_pipeline(pre.StandardScaler(), decomposition.PCA(3), _final("lgbm", 0)),
        X,
        y,
    )
    model = compiled(est, tmp_path)
    assert len(model.final.feature_names) == 3
    assert relative_error(est, tmp_path, held_out("float", 4)) <= BOUND


def test_pipeline_fitted_on_a_dataframe_binds_the_config_columns_by_name(tmp_path):
    X, y = data("float", seed=6)
    frame = pd.DataFrame(X, columns=NAMES)
    est = _fit(pipeline.make_pipeline(pre.StandardScaler(), lm.Ridge()), frame, y)
    evaluator = compiled(est, tmp_path, names=list(reversed(NAMES)))
    assert evaluator.feature_names == tuple(NAMES)
    assert relative_error(est, tmp_path, held_out("float", 6)) <= BOUND


def test_pipeline_of_only_an_estimator_compiles_as_that_estimator(tmp_path):
    X, y = data("float", seed=2)
    est = _fit(pipeline.Pipeline([("scale", "passthrough"), ("ridge", lm.Ridge())]), X, y)
    import joblib

    from builder.artifacts import sklearn as sk_reader

    joblib.dump(est, tmp_path / "p.joblib")
    assert isinstance(sk_reader.read(tmp_path / "p.joblib", NAMES), ir.LinearModel)


@pytest.mark.parametrize("weighted", [False, True])
def test_voting_regressor_averages_its_members_as_np_average(weighted, tmp_path):
    rng = np.random.default_rng(11 + weighted)
    for i in range(3):
        kind = ("int8", "float")[i % 2]
        X, y = data(kind, seed=i)
        members = [(k, _final(k, i)) for k in ("ridge", "lgbm", "xgb", "forest", "mlp")]
        members.append(("piped", pipeline.make_pipeline(pre.StandardScaler(), lm.Lasso(0.01))))
        weights = list(rng.uniform(0.1, 3.0, size=len(members))) if weighted else None
        est = _fit(ensemble.VotingRegressor(members, weights=weights), X, y)
        error = relative_error(est, tmp_path, held_out(kind, i))
        assert error <= BOUND, f"VotingRegressor {i} (weights={weighted}): {error:.3g}"


def test_voting_regressor_skips_dropped_members_and_their_weights(tmp_path):
    X, y = data("float", seed=8)
    members = [("a", lm.Ridge()), ("b", "drop"), ("c", _final("lgbm", 0))]
    est = _fit(ensemble.VotingRegressor(members, weights=[1.0, 5.0, 3.0]), X, y)
    evaluator = compiled(est, tmp_path)
    assert len(evaluator.members) == 2
    np.testing.assert_array_equal(evaluator.weights, [1.0, 3.0])
    assert relative_error(est, tmp_path, held_out("float", 8)) <= BOUND
