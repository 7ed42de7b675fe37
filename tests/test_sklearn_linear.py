"""Randomized fidelity: compiled scikit-learn linear models equal their own ``predict``.

Every estimator nmr lists as linear (builder.artifacts.sklearn_models.LINEAR and GLM) is fitted
several times with seeded hyperparameters on int8-valued and float data, saved with joblib,
read and compiled as ``nmr build`` does, and compared with ``predict`` within the stated bound
(1e-12 of the prediction scale; BLAS may sum ``X @ coef_`` in another order).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from builder.artifacts.sklearn_models import GLM, LINEAR
from tests.sklearn_fidelity import BOUND, DATA_KINDS, data, held_out, relative_error

lm = pytest.importorskip("sklearn.linear_model")
svm = pytest.importorskip("sklearn.svm")


def _make(kind: str, rng):
    alpha = float(rng.choice([1e-3, 0.01, 0.1, 1.0]))
    fit_intercept = bool(rng.random() < 0.8)
    seed = int(rng.integers(0, 1000))
    if kind in ("Ridge",):
        return lm.Ridge(alpha=alpha * 100, fit_intercept=fit_intercept)
    if kind == "RidgeCV":
        return lm.RidgeCV(alphas=(0.1, 1.0, 10.0), fit_intercept=fit_intercept)
    if kind in ("Lasso", "ElasticNet"):
        extra = {"l1_ratio": float(rng.uniform(0.1, 0.9))} if kind == "ElasticNet" else {}
        return getattr(lm, kind)(alpha=alpha, fit_intercept=fit_intercept, **extra)
    if kind in ("LassoCV", "ElasticNetCV", "LarsCV", "LassoLarsCV"):
        return getattr(lm, kind)(cv=3)
    if kind == "LassoLars":
        return lm.LassoLars(alpha=alpha / 10, fit_intercept=fit_intercept)
    if kind == "OrthogonalMatchingPursuit":
        return lm.OrthogonalMatchingPursuit(n_nonzero_coefs=int(rng.integers(1, 6)))
    if kind == "OrthogonalMatchingPursuitCV":
        return lm.OrthogonalMatchingPursuitCV(cv=3)
    if kind == "HuberRegressor":
        return lm.HuberRegressor(epsilon=float(rng.choice([1.35, 2.0])), alpha=alpha)
    if kind == "QuantileRegressor":
        return lm.QuantileRegressor(quantile=float(rng.choice([0.3, 0.5])), alpha=alpha / 10)
    if kind == "TheilSenRegressor":
        return lm.TheilSenRegressor(random_state=seed, max_subpopulation=200)
    if kind in ("SGDRegressor", "PassiveAggressiveRegressor"):
        return getattr(lm, kind)(random_state=seed, fit_intercept=fit_intercept)
    if kind == "LinearSVR":
        return svm.LinearSVR(C=float(rng.choice([0.1, 1.0])), random_state=seed, max_iter=5000)
    if kind == "TweedieRegressor":
        return lm.TweedieRegressor(power=float(rng.choice([0.0, 1.5])), alpha=alpha)
    if kind in GLM:
        return getattr(lm, kind)(alpha=alpha)
    return getattr(lm, kind)()


@pytest.mark.parametrize("kind", LINEAR + GLM)
def test_linear_model_matches_sklearn_predict_within_the_bound(kind, tmp_path):
    rng = np.random.default_rng(sum(map(ord, kind)))
    for i in range(4):
        data_kind = DATA_KINDS[i % len(DATA_KINDS)]
        X, y = data(data_kind, seed=i)
        est = _make(kind, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence, deprecation (PassiveAggressive)
            est.fit(X, y + 0.1)  # strictly positive, as Gamma/Poisson require
        error = relative_error(est, tmp_path, held_out(data_kind, i))
        assert error <= BOUND, f"{kind} model {i} ({data_kind}): relative error {error:.3g}"


def test_linear_model_fitted_on_a_dataframe_reads_its_column_names(tmp_path):
    import pandas as pd

    from tests.sklearn_fidelity import NAMES, compiled

    X, y = data("float", seed=1)
    est = lm.Ridge().fit(pd.DataFrame(X, columns=NAMES), y)
    assert compiled(est, tmp_path, names=None).feature_names == tuple(NAMES)


def test_linear_model_with_several_targets_is_refused_naming_the_fix(tmp_path):
    from builder.errors import NotSupportedYet
    from tests.sklearn_fidelity import compiled

    X, y = data("float", seed=2)
    est = lm.Ridge().fit(X, np.column_stack([y, 1 - y]))
    with pytest.raises(NotSupportedYet, match="2 targets .*fit one model per target"):
        compiled(est, tmp_path)


def test_linear_model_fitted_on_float32_keeps_float32_arithmetic_for_float32_input(tmp_path):
    from tests.sklearn_fidelity import compiled, native

    X, y = data("float", seed=3)
    est = lm.Ridge().fit(X.astype(np.float32), y.astype(np.float32))
    assert est.coef_.dtype == np.float32
    Xt = held_out("float", 3).astype(np.float32)
    ours, theirs = compiled(est, tmp_path).predict(Xt), native(est, Xt)
    assert np.max(np.abs(ours - theirs)) <= BOUND * np.max(np.abs(theirs))
