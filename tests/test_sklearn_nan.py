"""NaN input: which compiled scikit-learn models accept it, and what the others do with it.

scikit-learn refuses NaN in linear models, MLPs and PCA; scalers keep NaN, SimpleImputer
replaces it. ``builder.ir.accepts_nan(model)`` (and the evaluator's ``accepts_nan``) says
whether a model gives a defined answer on NaN input; a model that does not raises one clear
error at predict time instead of returning NaN predictions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from builder import ir
from builder.artifacts import sklearn as sk_reader
from tests.sklearn_fidelity import BOUND, NAMES, compiled, data, held_out, relative_error

lm = pytest.importorskip("sklearn.linear_model")
pipeline = pytest.importorskip("sklearn.pipeline")
pre = pytest.importorskip("sklearn.preprocessing")
impute = pytest.importorskip("sklearn.impute")
decomposition = pytest.importorskip("sklearn.decomposition")
ensemble = pytest.importorskip("sklearn.ensemble")
nn = pytest.importorskip("sklearn.neural_network")


def _ir(est, tmp_path):
    import joblib

    joblib.dump(est, tmp_path / "m.joblib")
    return sk_reader.read(tmp_path / "m.joblib", NAMES)


def _fitted(est, nan_fraction=0.0):
    X, y = data("float", seed=3, nan_fraction=nan_fraction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def test_linear_model_does_not_accept_nan(tmp_path):
    model = _ir(_fitted(lm.Ridge()), tmp_path)
    assert ir.accepts_nan(model) is False
    assert compiled(_fitted(lm.Ridge()), tmp_path).accepts_nan is False


def test_mlp_does_not_accept_nan(tmp_path):
    est = _fitted(nn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=5))
    assert ir.accepts_nan(_ir(est, tmp_path)) is False


def test_pipeline_with_an_imputer_before_the_linear_model_accepts_nan(tmp_path):
    est = _fitted(
        pipeline.make_pipeline(pre.StandardScaler(), impute.SimpleImputer(), lm.Ridge()), 0.1
    )
    assert ir.accepts_nan(_ir(est, tmp_path)) is True
    assert compiled(est, tmp_path).accepts_nan is True


def test_pipeline_with_pca_before_the_imputer_does_not_accept_nan(tmp_path):
    est = _fitted(pipeline.make_pipeline(decomposition.PCA(3), impute.SimpleImputer(), lm.Ridge()))
    assert ir.accepts_nan(_ir(est, tmp_path)) is False


def test_pipeline_of_scaler_and_tree_model_accepts_nan(tmp_path):
    est = _fitted(
        pipeline.make_pipeline(
            pre.StandardScaler(), ensemble.HistGradientBoostingRegressor(max_iter=5)
        ),
        0.1,
    )
    assert ir.accepts_nan(_ir(est, tmp_path)) is True
    error = relative_error(est, tmp_path, held_out("float", 3, nan_fraction=0.2))
    assert error <= BOUND


def test_voting_regressor_accepts_nan_only_when_every_member_does(tmp_path):
    trees = ("t", ensemble.HistGradientBoostingRegressor(max_iter=5))
    imputed = ("i", pipeline.make_pipeline(impute.SimpleImputer(), lm.Ridge()))
    bare = ("r", lm.Ridge())
    assert ir.accepts_nan(_ir(_fitted(ensemble.VotingRegressor([trees, imputed]), 0.1), tmp_path))
    assert not ir.accepts_nan(_ir(_fitted(ensemble.VotingRegressor([trees, bare])), tmp_path))


def test_linear_model_given_nan_raises_naming_the_estimator_and_the_fix(tmp_path):
    evaluator = compiled(_fitted(lm.ElasticNet(alpha=0.01)), tmp_path)
    X = held_out("float", 1, nan_fraction=0.1)
    with pytest.raises(ValueError, match=r"ElasticNet cannot take missing values .*fill_missing"):
        evaluator.predict(X)


def test_tree_ensembles_and_unknown_models_count_as_accepting_nan():
    assert ir.accepts_nan(object()) is True
    assert ir.accepts_nan(np.zeros(1)) is True
