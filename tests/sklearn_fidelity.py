"""Shared helpers of the scikit-learn dense-model fidelity tests (tests/test_sklearn_*.py).

``relative_error`` saves a fitted estimator with joblib, reads it back with
``builder.artifacts.sklearn`` (as ``nmr build`` does), compiles it and compares the
evaluator's output with the estimator's own ``predict`` on the same rows, given to
scikit-learn both as a C-ordered array and as a DataFrame (their BLAS summation orders differ).
"""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd

from builder.artifacts import sklearn as sk_reader
from builder.compile import compile_model
from tests.synthdata import feature_names, numerai_like

# The stated bound: |ours - scikit-learn| <= BOUND * max|scikit-learn prediction|.
BOUND = 1e-12  # the spec, deliberately not read from the code (DENSE_TOLERANCE)
N_FEATURES = 7
NAMES = feature_names(N_FEATURES)
DATA_KINDS = ("int8", "float")


def data(kind: str, seed: int, n_rows: int = 300, nan_fraction: float = 0.0):
    """Numerai-shaped X (int8 bins, or jittered floats) and a target in [0, 1]."""
    X, y = numerai_like(
        n_rows, N_FEATURES, seed=seed, float_noise=kind == "float", nan_fraction=nan_fraction
    )
    return X, y


def held_out(kind: str, seed: int, nan_fraction: float = 0.0) -> np.ndarray:
    X, _ = data(kind, seed + 10_000, n_rows=211, nan_fraction=nan_fraction)
    return X.astype(np.int8) if kind == "int8" and nan_fraction == 0 else X


def native(est, X) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(est.predict(X), dtype=np.float64).reshape(len(X), -1)


def compiled(est, tmp_path, names=NAMES, name: str = "model"):
    path = tmp_path / f"{name}.joblib"
    joblib.dump(est, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_model(sk_reader.read(path, names))


def relative_error(est, tmp_path, X, names=NAMES) -> float:
    """max |ours - scikit-learn| / max |scikit-learn| over array and DataFrame input."""
    evaluator = compiled(est, tmp_path, names)
    ours = evaluator.predict(X)
    worst = 0.0
    inputs = [pd.DataFrame(X, columns=list(names)), np.ascontiguousarray(X, dtype=np.float64)]
    for given in inputs:
        theirs = native(est, given)
        assert ours.shape == theirs.shape
        scale = max(float(np.max(np.abs(theirs))), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.abs(ours - theirs))) / scale)
    return worst
