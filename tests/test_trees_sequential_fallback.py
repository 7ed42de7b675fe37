"""The tree kernel's fallback sum: when ``_reduce_is_sequential`` finds that the numpy running
the pickle (whatever an image ships) does not reduce over trees strictly in order, the walk adds
tree rows in a plain loop. That branch must stay bit-identical to LightGBM (double sums) and
XGBoost (float32 sums) on models where any other summation order shows."""

from __future__ import annotations

import numpy as np
import pytest

from builder.artifacts import lightgbm as lgb_reader
from builder.artifacts import xgboost as xgb_reader
from builder.compile.trees import compile_trees
from builder.kernels import trees as kernel
from tests.lightgbm_fidelity import data_variants, save_both, train
from tests.synthdata import feature_names, numerai_like

xgb = pytest.importorskip("xgboost")


@pytest.fixture()
def reduce_not_sequential(monkeypatch):
    """The probe's answer on a numpy whose add.reduce is not in order."""
    monkeypatch.setattr(kernel, "_SEQUENTIAL", [False])
    assert kernel._reduce_is_sequential() is False


def _walk_predict(ens, X):
    return compile_trees(ens, "walk").predict(X)


def test_loop_sum_matches_lightgbm_bit_for_bit(reduce_not_sequential, tmp_path):
    # 400 trees at learning rate 0.003 on a large offset: the running double sum rounds at
    # every tree, so a sum in any other order differs from LightGBM's
    X, y = numerai_like(600, 10, seed=7)
    booster = train(
        {"num_leaves": 31, "max_depth": 5, "learning_rate": 0.003}, X, y * 1e3 + 1e6, 400
    )
    text, _ = save_both(booster, tmp_path)
    ens = lgb_reader.read(text)
    for kind, rows in data_variants(400, 10, 7).items():
        native = booster.predict(rows, num_threads=1).reshape(len(rows), -1)
        ours = _walk_predict(ens, rows)
        assert np.array_equal(ours, native, equal_nan=True), kind


def test_loop_sum_matches_xgboost_bit_for_bit(reduce_not_sequential, tmp_path):
    # float32 accumulation over 300 small steps: order and precision both show
    names = feature_names(8)
    X, y = numerai_like(600, 8, seed=5, float_noise=True)
    params = {"max_depth": 5, "eta": 0.02, "nthread": 1, "seed": 0, "base_score": 1000.0}
    booster = xgb.train(params, xgb.DMatrix(X, y * 10 + 1000.0, feature_names=names), 300)
    path = tmp_path / "model.json"
    booster.save_model(str(path))
    ens = xgb_reader.read(path)
    for kind in ("float", "nan"):
        rows, _ = numerai_like(
            300, 8, seed=55, float_noise=kind == "float", nan_fraction=0.15 if kind == "nan" else 0
        )
        native = booster.predict(xgb.DMatrix(rows, feature_names=names)).astype(np.float64)
        ours = _walk_predict(ens, rows)[:, 0]
        assert np.array_equal(ours, native), kind
