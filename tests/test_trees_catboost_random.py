"""Randomized fidelity: compiled CatBoostRegressor models equal CatBoost's own RawFormulaVal
bit for bit, for every file form (.cbm, JSON, pickle), depth, learning rate and input kind
(Numerai int8 bins, floats, NaN), on both tree strategies."""

from __future__ import annotations

import numpy as np
import pytest

from tests import catboost_fidelity as cf

pytest.importorskip("catboost")


def _random_params(rng: np.random.Generator) -> dict:
    return {
        "depth": int(rng.integers(1, 9)),
        "iterations": int(rng.integers(1, 40)),
        "learning_rate": float(rng.choice([0.03, 0.1, 0.5])),
        "l2_leaf_reg": float(rng.choice([0.0, 3.0])),
        "border_count": int(rng.choice([8, 254])),
        "random_seed": int(rng.integers(0, 1000)),
    }


@pytest.mark.parametrize("form", cf.FORMS)
def test_catboost_random_models_match_raw_formula_val_exactly(tmp_path, form):
    rng = np.random.default_rng(11)
    for i in range(9):
        kind = cf.DATA_KINDS[i % 3]
        X, y = cf.data(kind, seed=i)
        params = _random_params(rng)
        path = cf.save(cf.train(X, y, **params), tmp_path / f"m{i}", form)
        rows = cf.test_rows(kind, seed=i)
        cf.assert_exact(cf.ours(path, rows), cf.native(path, rows), f"{form} {kind} {params}")


def test_catboost_walk_strategy_matches_bits_strategy_and_native(tmp_path):
    rng = np.random.default_rng(12)
    for i in range(6):
        kind = cf.DATA_KINDS[i % 3]
        X, y = cf.data(kind, seed=100 + i)
        path = cf.save(cf.train(X, y, **_random_params(rng)), tmp_path / f"m{i}", "cbm")
        rows = cf.test_rows(kind, seed=100 + i)
        want = cf.native(path, rows)
        cf.assert_exact(cf.ours(path, rows, "walk"), want, f"walk {kind}")
        cf.assert_exact(cf.ours(path, rows, "bits"), want, f"bits {kind}")


def test_catboost_deep_trees_beyond_the_bit_sliced_depth_match(tmp_path):
    X, y = cf.data("nan", seed=7, n_rows=600)
    path = cf.save(cf.train(X, y, depth=10, iterations=8), tmp_path, "cbm")
    rows = cf.test_rows("nan", seed=7)
    cf.assert_exact(cf.ours(path, rows), cf.native(path, rows), "depth 10")


def test_catboost_many_trees_accumulate_in_tree_order(tmp_path):
    """Hundreds of small leaves: any other summation order than CatBoost's shows up."""
    X, y = cf.data("int8", seed=8, n_rows=1500)
    path = cf.save(cf.train(X, y, depth=6, iterations=400, learning_rate=0.02), tmp_path, "cbm")
    rows = cf.test_rows("int8", seed=8, n_rows=2000)
    cf.assert_exact(cf.ours(path, rows), cf.native(path, rows), "400 trees")


def test_catboost_json_file_compiles_to_the_saved_model_exactly(tmp_path):
    """The JSON's digits are the model's doubles: the compiled JSON equals the in-memory model
    (and its .cbm) bit for bit, whatever catboost's own JSON number parser makes of them."""
    rng = np.random.default_rng(13)
    for i in range(6):
        kind = cf.DATA_KINDS[i % 3]
        X, y = cf.data(kind, seed=200 + i)
        model = cf.train(X, y, **_random_params(rng))
        json_path = cf.save(model, tmp_path / f"m{i}", "json")
        rows = cf.test_rows(kind, seed=200 + i)
        want = np.asarray(
            model.predict(rows.astype(np.float64), prediction_type="RawFormulaVal"),
            dtype=np.float64,
        ).reshape(-1, 1)
        cf.assert_exact(cf.ours(json_path, rows), want, f"json vs in-memory {kind}")
