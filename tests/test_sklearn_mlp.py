"""Randomized fidelity: compiled MLPRegressor equals its own ``predict``, every activation.

Hidden layers use ``activation`` (identity, logistic, tanh, relu), the output layer
``out_activation_`` (identity, or exp for loss="poisson"); layer sizes, solvers and seeds vary.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from builder import ir
from builder.artifacts import sklearn as sk_reader
from tests.sklearn_fidelity import BOUND, DATA_KINDS, data, held_out, relative_error

nn = pytest.importorskip("sklearn.neural_network")


def _fit(rng, activation: str, loss: str = "squared_error", seed: int = 0):
    n_layers = int(rng.integers(1, 4))
    sizes = tuple(int(rng.integers(2, 24)) for _ in range(n_layers))
    est = nn.MLPRegressor(
        hidden_layer_sizes=sizes,
        activation=activation,
        loss=loss,
        solver=str(rng.choice(["adam", "lbfgs"])),
        alpha=float(rng.choice([1e-4, 1e-2])),
        max_iter=60,
        random_state=int(rng.integers(0, 1000)),
    )
    X, y = data(DATA_KINDS[seed % len(DATA_KINDS)], seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        est.fit(X, y + 0.1)
    return est


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_mlp_regressor_matches_sklearn_predict_within_the_bound(activation, tmp_path):
    rng = np.random.default_rng(sum(map(ord, activation)))
    for i in range(5):
        est = _fit(rng, activation, seed=i)
        kind = DATA_KINDS[i % len(DATA_KINDS)]
        error = relative_error(est, tmp_path, held_out(kind, i))
        assert error <= BOUND, f"{activation} model {i} {est.hidden_layer_sizes}: {error:.3g}"


def test_mlp_regressor_with_poisson_loss_applies_exp_to_the_output(tmp_path):
    rng = np.random.default_rng(7)
    for i in range(3):
        est = _fit(rng, "relu", loss="poisson", seed=i)
        assert est.out_activation_ == "exp"
        error = relative_error(est, tmp_path, held_out("float", i))
        assert error <= BOUND, f"poisson model {i}: {error:.3g}"


def test_mlp_regressor_reads_as_mlp_ir_with_its_layers(tmp_path):
    import joblib

    est = nn.MLPRegressor(hidden_layer_sizes=(5, 3), max_iter=5, random_state=0)
    X, y = data("float", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    joblib.dump(est, tmp_path / "m.joblib")
    model = sk_reader.read(tmp_path / "m.joblib", [f"c{i}" for i in range(X.shape[1])])
    assert isinstance(model, ir.MLP)
    assert model.meta["layers"] == [5, 3, 1]
