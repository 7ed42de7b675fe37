"""LightGBM accumulation: double sum in tree order, multiclass interleaving, random-forest
averaging, DART / GOSS leaf scaling (docs/design/compilers.md §1.5, §7)."""

from __future__ import annotations

import numpy as np

from builder.artifacts import lightgbm as reader
from builder.compile.trees import compile_trees
from tests.lightgbm_fidelity import data_variants, max_diff, save_both, train
from tests.synthdata import numerai_like


def _inputs(seed, n_features=8):
    return list(data_variants(400, n_features, seed).values())


def test_lightgbm_random_forest_average_output_is_exact(tmp_path):
    for seed in range(4):
        X, y = numerai_like(500, 8, seed=seed)
        params = {
            "boosting": "rf",
            "bagging_fraction": 0.7,
            "bagging_freq": 1,
            "feature_fraction": 0.7,
            "num_leaves": 15,
        }
        booster = train(params, X, y, 30)
        text, _ = save_both(booster, tmp_path)
        assert reader.read(text).average
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


def test_lightgbm_random_forest_binary_is_exact(tmp_path):
    X, y = numerai_like(500, 8, seed=11)
    params = {"boosting": "rf", "objective": "binary", "bagging_fraction": 0.6, "bagging_freq": 1}
    booster = train(params, X, y > 0.5, 25)
    assert max_diff(booster, tmp_path, _inputs(11)) == 0.0


def test_lightgbm_dart_is_exact(tmp_path):
    for seed in range(4):
        X, y = numerai_like(500, 8, seed=seed)
        params = {"boosting": "dart", "drop_rate": 0.3, "num_leaves": 15, "learning_rate": 0.3}
        booster = train(params, X, y, 30)
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


def test_lightgbm_goss_is_exact(tmp_path):
    X, y = numerai_like(800, 8, seed=3)
    params = {"data_sample_strategy": "goss", "num_leaves": 15, "learning_rate": 0.2}
    booster = train(params, X, y, 30)
    assert max_diff(booster, tmp_path, _inputs(3)) == 0.0


def test_lightgbm_many_small_leaves_sum_in_tree_order(tmp_path):
    # 400 trees at learning rate 0.003: the running sum rounds at every step, so any other
    # summation order (pairwise, per-leaf grouping) shows up as a non-zero difference
    X, y = numerai_like(600, 10, seed=7)
    params = {"num_leaves": 31, "max_depth": 5, "learning_rate": 0.003}
    booster = train(params, X, y * 1000.0 + 1e6, 400)
    assert max_diff(booster, tmp_path, _inputs(7, 10)) == 0.0


def test_pairwise_summation_would_differ_from_native_order(tmp_path):
    # guards the test above: np.sum over trees (pairwise) is not what LightGBM computes
    X, y = numerai_like(600, 10, seed=7)
    params = {"num_leaves": 31, "max_depth": 5, "learning_rate": 0.003}
    booster = train(params, X, y * 1000.0 + 1e6, 400)
    text, _ = save_both(booster, tmp_path)
    ens = reader.read(text)
    evaluator = compile_trees(ens, "walk")
    Xi = data_variants(400, 10, 7)["int8"].astype(np.float64)
    chunk = evaluator.classes[0][0]
    leaves = evaluator._walk(Xi, chunk["trees"], chunk["depth"])
    per_row = np.ascontiguousarray(evaluator.nodes["value"][leaves].T)
    pairwise = per_row.sum(axis=1)  # reduction along the contiguous axis: pairwise
    native = booster.predict(Xi, num_threads=1)
    assert np.abs(pairwise - native).max() > 0.0
    assert np.abs(evaluator.predict(Xi)[:, 0] - native).max() == 0.0


def test_lightgbm_multiclass_trees_add_to_class_j_mod_k(tmp_path):
    X, y = numerai_like(600, 8, seed=2)
    labels = (y * 4).astype(int)  # 5 classes
    booster = train({"objective": "multiclass", "num_class": 5, "num_leaves": 7}, X, labels, 12)
    text, _ = save_both(booster, tmp_path)
    ens = reader.read(text)
    assert list(ens.tree_class[:10]) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    evaluator = compile_trees(ens)
    raw = evaluator.predict_raw(X)
    assert np.array_equal(raw, booster.predict(X, raw_score=True, num_threads=1))
    assert max_diff(booster, tmp_path, _inputs(2)) == 0.0


def test_lightgbm_single_leaf_trees_are_exact(tmp_path):
    # a constant target makes every tree a single leaf
    X, _ = numerai_like(200, 4, seed=1)
    booster = train({"objective": "regression"}, X, np.full(200, 0.37), 5)
    text, _ = save_both(booster, tmp_path)
    assert (reader.read(text).split_feature == -1).all()
    assert max_diff(booster, tmp_path, _inputs(1, 4)) == 0.0
