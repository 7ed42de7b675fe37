"""Threshold-rank strategy for non-integer inputs (builder/compile/trees.py::_ranks, kernel
_rank_bits): real LightGBM and XGBoost models trained on float features, predictions on float
inputs (with NaN) must equal the native library's exactly, without walking the trees."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest
import xgboost

from builder.artifacts import lightgbm as lgb_reader
from builder.artifacts import xgboost as xgb_reader
from builder.compile.trees import compile_trees
from builder.kernels.trees import TreeEnsembleEvaluator
from tests.lightgbm_fidelity import train
from tests.synthdata import numerai_like


def _floats(n_rows: int, seed: int, nan_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    X, y = numerai_like(n_rows, 10, seed=seed, float_noise=True, nan_fraction=nan_fraction)
    return X, y


@pytest.fixture
def no_walk(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the walk ran: the rank strategy did not take the input")

    monkeypatch.setattr(TreeEnsembleEvaluator, "_walk", refuse)


LGB_PARAMS = {
    "nan_default_side": {"objective": "regression", "num_leaves": 31, "max_depth": 5},
    "use_missing_false": {
        "objective": "regression",
        "num_leaves": 15,
        "max_depth": 4,
        "use_missing": False,
    },
    "binary": {"objective": "binary", "num_leaves": 15, "max_depth": 4},
}


@pytest.mark.parametrize("kind", list(LGB_PARAMS))
def test_lightgbm_float_model_on_float_inputs_is_exact_without_walking(tmp_path, no_walk, kind):
    X, y = _floats(3000, seed=1, nan_fraction=0.05)
    if kind == "binary":
        y = y > np.median(y)
    booster = train(LGB_PARAMS[kind], X, y, 80)
    path = tmp_path / "m.txt"
    booster.save_model(str(path))
    evaluator = compile_trees(lgb_reader.read(path))
    assert evaluator.ranks is not None
    live, _ = _floats(900, seed=2, nan_fraction=0.1)
    live[:5] = 0.0  # exact zeros and thresholds hit exactly
    live[5:10] = evaluator.ranks["thresholds"][:5, None]
    native = lightgbm.Booster(model_file=str(path)).predict(live, num_threads=1)
    assert np.array_equal(evaluator.predict(live)[:, -1], native)


def test_xgboost_float_model_on_float_inputs_is_exact_without_walking(tmp_path, no_walk):
    X, y = _floats(3000, seed=3, nan_fraction=0.05)
    params = {"max_depth": 5, "eta": 0.1, "nthread": 1, "tree_method": "hist", "seed": 0}
    booster = xgboost.train(params, xgboost.DMatrix(X, y), 60)
    path = tmp_path / "m.json"
    booster.save_model(str(path))
    evaluator = compile_trees(xgb_reader.read(path, [f"f{i}" for i in range(10)]))
    assert evaluator.ranks is not None
    live, _ = _floats(900, seed=4, nan_fraction=0.1)
    # float32 threshold values exactly (XGBoost compares the float32-cast input with "<")
    live[:5] = evaluator.ranks["thresholds"][:5, None]
    native = xgboost.Booster(model_file=str(path))
    native.set_param({"nthread": 1})
    expected = np.asarray(native.inplace_predict(live), dtype=np.float64)
    assert np.array_equal(evaluator.predict(live)[:, 0], expected)


def test_model_trained_on_codes_has_no_rank_predicates(tmp_path):
    X, y = numerai_like(2000, 10, seed=5)
    booster = train({"objective": "regression", "num_leaves": 15}, X, y, 30)
    path = tmp_path / "m.txt"
    booster.save_model(str(path))
    assert compile_trees(lgb_reader.read(path)).ranks is None


def test_rank_strategy_equals_the_walk_on_integer_codes_too(tmp_path):
    X, y = _floats(3000, seed=6)
    booster = train({"objective": "regression", "num_leaves": 31, "max_depth": 5}, X, y, 50)
    path = tmp_path / "m.txt"
    booster.save_model(str(path))
    evaluator = compile_trees(lgb_reader.read(path))
    walk = compile_trees(lgb_reader.read(path), "walk")
    live = np.random.default_rng(7).integers(-3, 4, size=(500, 10)).astype(np.float64)
    live[::7] += 0.5  # a fraction in some rows: the block takes the rank path
    assert np.array_equal(evaluator.predict(live), walk.predict(live))
