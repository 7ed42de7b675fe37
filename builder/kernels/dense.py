"""scikit-learn linear models, MLPs, preprocessing steps, Pipelines and VotingRegressor.

Shipped inside the pickle (numpy + standard library only). Every evaluator repeats the numpy
operations scikit-learn's own ``predict`` / ``transform`` performs, in the same order and dtype
(sources: ``linear_model/_base.py`` ``_decision_function``, ``neural_network/_multilayer_
perceptron.py`` ``_forward_pass_fast`` and ``_base.py`` activations, ``preprocessing/_data.py``
``transform`` methods, ``impute/_base.py`` ``SimpleImputer.transform``, ``decomposition/
_base.py`` ``_transform``, ``ensemble/_voting.py`` ``VotingRegressor.predict``).

Exactness: element-wise steps are bit-exact. A matrix product (``X @ coef``, ``a @ W``, PCA's
projection) is summed by BLAS, whose order depends on the BLAS build and on the input's memory
layout (scikit-learn itself gives different last bits for a C-ordered array and a DataFrame),
so those agree with scikit-learn to within a few ulps of the summed terms; the tests bound the
difference at 1e-12 of the prediction scale.

Input dtype follows ``check_array(dtype=FLOAT_DTYPES)``: float32 stays float32 through the
steps (as in scikit-learn), anything else becomes float64.
"""

from __future__ import annotations

import numpy as np


class LinearEvaluator:
    """``link(X @ coef + intercept)``; built by builder.compile.dense."""

    def __init__(self, estimator, feature_names, coef, intercept, link="identity"):
        self.estimator = str(estimator)
        self.feature_names = tuple(feature_names)
        self.coef = np.asarray(coef)  # float64, or float32 when fitted on float32
        self.intercept = np.asarray(intercept)
        self.link = str(link)
        self.task = "regression"
        self.n_outputs = 1
        self.accepts_nan = False

    def predict(self, X) -> np.ndarray:
        X = _refuse_nan(_as_float(X), self.estimator)
        out = X @ self.coef + self.intercept
        if self.link == "exp":
            out = np.exp(out)  # HalfPoisson/Gamma/Tweedie LogLink.inverse is np.exp
        return np.asarray(out, dtype=np.float64).reshape(len(X), 1)


class MLPEvaluator:
    """MLPRegressor: per layer ``a = a @ W; a += b``, activation in place."""

    def __init__(self, estimator, feature_names, coefs, intercepts, activation, out_activation):
        self.estimator = str(estimator)
        self.feature_names = tuple(feature_names)
        self.coefs = [np.asarray(w) for w in coefs]
        self.intercepts = [np.asarray(b) for b in intercepts]
        self.activation = str(activation)
        self.out_activation = str(out_activation)
        self.task = "regression"
        self.n_outputs = int(self.coefs[-1].shape[1])
        self.accepts_nan = False

    def predict(self, X) -> np.ndarray:
        activation = _refuse_nan(_as_float(X), self.estimator)
        last = len(self.coefs) - 1
        for i, (weights, bias) in enumerate(zip(self.coefs, self.intercepts, strict=True)):
            activation = activation @ weights
            activation += bias
            if i != last:
                _activate(self.activation, activation)
        _activate(self.out_activation, activation)
        return np.asarray(activation, dtype=np.float64).reshape(len(activation), -1)


class StepEvaluator:
    """One fitted Pipeline step (kinds and parameters as in builder.ir.Transform)."""

    def __init__(self, kind, name, params):
        self.kind = str(kind)
        self.name = str(name)
        self.params = dict(params)

    def transform(self, X) -> np.ndarray:
        p = self.params
        kind = self.kind
        if kind == "simple_imputer":
            return _impute(X, p)
        if kind == "pca":
            X = _refuse_nan(X, f"PCA step {self.name!r}")
            # PCA._transform (scikit-learn 1.9): project, then subtract the projected mean.
            out = X @ p["components"].T
            out -= np.reshape(p["mean"], (1, -1)) @ p["components"].T
            if p.get("whiten_scale") is not None:
                out /= p["whiten_scale"]
            return out
        X = X.copy()  # transform(copy=True) works on a copy, in place
        if kind == "standard_scaler":
            # StandardScaler.transform casts its statistics to the input dtype first, so
            # float32 input is scaled in float32 (scikit-learn 1.9).
            if p.get("mean") is not None:
                X -= p["mean"].astype(X.dtype)
            if p.get("scale") is not None:
                X /= p["scale"].astype(X.dtype)
            return X
        if kind == "robust_scaler":
            if p.get("center") is not None:
                X -= p["center"]
            if p.get("scale") is not None:
                X /= p["scale"]
            return X
        if kind == "minmax_scaler":
            X *= p["scale"]
            X += p["min"]
            if p.get("clip") is not None:
                lo, hi = p["clip"]
                np.clip(X, np.asarray(lo, dtype=X.dtype), np.asarray(hi, dtype=X.dtype), out=X)
            return X
        if kind == "maxabs_scaler":
            X /= p["scale"]
            if p.get("clip"):
                np.clip(X, np.asarray(-1.0, dtype=X.dtype), np.asarray(1.0, dtype=X.dtype), out=X)
            return X
        raise ValueError(f"unknown pipeline step kind {kind!r}")


class PipelineEvaluator:
    """Pipeline.predict: the steps' transforms in order, then the final model."""

    def __init__(self, feature_names, steps, final, accepts_nan):
        self.feature_names = tuple(feature_names)
        self.steps = list(steps)
        self.final = final
        self.task = getattr(final, "task", "regression")
        self.n_outputs = int(getattr(final, "n_outputs", 1))
        self.accepts_nan = bool(accepts_nan)

    def predict(self, X) -> np.ndarray:
        X = _as_float(X)
        for step in self.steps:
            X = step.transform(X)
        return self.final.predict(X)


class VotingEvaluator:
    """VotingRegressor.predict: ``np.average(np.asarray(preds).T, axis=1, weights=w)``.

    The (members, rows) stack is transposed exactly as scikit-learn does, so ``np.average``
    reduces the same strided view in the same order.
    """

    def __init__(self, feature_names, members, weights, accepts_nan):
        self.feature_names = tuple(feature_names)
        self.members = list(members)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.task = "regression"
        self.n_outputs = 1
        self.accepts_nan = bool(accepts_nan)

    def predict(self, X) -> np.ndarray:
        X = _as_float(X)
        stacked = np.asarray([member.predict(X)[:, 0] for member in self.members]).T
        out = np.average(stacked, axis=1, weights=self.weights)
        return np.asarray(out, dtype=np.float64).reshape(len(X), 1)


# ---------------------------------------------------------------------- helpers


def _as_float(X) -> np.ndarray:
    """check_array(dtype=FLOAT_DTYPES): float32/float64 kept, anything else to float64."""
    X = np.asarray(X)
    if X.dtype == np.float32 or X.dtype == np.float64:
        return X
    return X.astype(np.float64)


def _refuse_nan(X: np.ndarray, what: str) -> np.ndarray:
    # scikit-learn raises on NaN here ("Input X contains NaN"); so do we, instead of returning
    # NaN predictions that numerai-predict would reject without saying why.
    if np.isnan(X).any():
        raise ValueError(
            f"{what} cannot take missing values (NaN) in its input: add `fill_missing` under "
            "the slot's preprocessing in numerai.yaml, or a SimpleImputer step to the Pipeline"
        )
    return X


def _activate(name: str, a: np.ndarray) -> None:
    """The in-place activations of sklearn.neural_network._base.ACTIVATIONS."""
    if name == "identity":
        return
    if name == "relu":
        np.maximum(a, 0, out=a)
    elif name == "exp":  # output activation of loss="poisson"
        np.exp(a, out=a)
    elif name == "tanh":
        np.tanh(a, out=a)
    elif name == "logistic":
        # scipy.special.expit is 1 / (1 + exp(-x)) in C (scipy special/_logit.h).
        np.negative(a, out=a)
        np.exp(a, out=a)
        a += 1.0
        np.divide(1.0, a, out=a)
    else:
        raise ValueError(f"unknown MLP activation {name!r}")


def _impute(X: np.ndarray, p: dict) -> np.ndarray:
    """SimpleImputer.transform: mask before dropping empty columns, fill, append indicator."""
    missing = p["missing"]
    mask = np.isnan(X) if np.isnan(missing) else X == missing
    keep = p["keep"]
    stats = np.asarray(p["statistics"]).astype(X.dtype)
    out = X[:, keep] if keep is not None else X.copy()
    valid_mask = mask[:, keep] if keep is not None else mask
    out = np.where(valid_mask, stats, out)
    if p.get("indicator") is not None:
        # MissingIndicator.transform returns the mask columns; _concatenate_indicator hstacks
        # them, which casts the booleans to the imputed array's dtype.
        out = np.hstack((out, mask[:, p["indicator"]]))
    return out
