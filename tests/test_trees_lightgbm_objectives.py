"""LightGBM objectives: every ConvertOutput transform reproduced exactly (docs/design/compilers.md §1.5)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lightgbm_fidelity import data_variants, max_diff, train
from tests.synthdata import numerai_like

REGRESSION_OBJECTIVES = ["regression", "regression_l1", "huber", "fair", "quantile", "mape"]


def _inputs(seed, n_features=8):
    return list(data_variants(400, n_features, seed).values())


@pytest.mark.parametrize("objective", REGRESSION_OBJECTIVES)
def test_lightgbm_regression_objectives_are_identity_and_exact(objective, tmp_path):
    for seed in range(3):
        X, y = numerai_like(400, 8, seed=seed)
        booster = train({"objective": objective, "num_leaves": 7}, X, y + 0.1, 15)
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


def test_lightgbm_reg_sqrt_squares_with_sign_exactly(tmp_path):
    for seed in range(3):
        X, y = numerai_like(400, 8, seed=seed)
        booster = train({"objective": "regression", "reg_sqrt": True}, X, y - 0.5, 15)
        assert "sqrt" in booster.model_to_string().split("objective=")[1].splitlines()[0]
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


@pytest.mark.parametrize("objective", ["poisson", "gamma", "tweedie"])
def test_lightgbm_log_link_objectives_apply_exp_exactly(objective, tmp_path):
    for seed in range(3):
        X, y = numerai_like(400, 8, seed=seed)
        booster = train({"objective": objective, "num_leaves": 7}, X, y + 0.05, 20)
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


@pytest.mark.parametrize("sigmoid", [0.5, 1.0, 2.5])
def test_lightgbm_binary_sigmoid_parameter_is_honoured(sigmoid, tmp_path):
    for seed in range(3):
        X, y = numerai_like(400, 8, seed=seed)
        booster = train({"objective": "binary", "sigmoid": sigmoid}, X, y > 0.5, 20)
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


@pytest.mark.parametrize("objective", ["multiclass", "multiclassova"])
def test_lightgbm_multiclass_probabilities_are_exact(objective, tmp_path):
    for seed in range(3):
        X, y = numerai_like(500, 8, seed=seed)
        labels = (y * 4).astype(int) % 3
        params = {"objective": objective, "num_class": 3, "num_leaves": 7}
        booster = train(params, X, labels, 10)
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


@pytest.mark.parametrize("objective", ["cross_entropy", "cross_entropy_lambda"])
def test_lightgbm_cross_entropy_transforms_are_exact(objective, tmp_path):
    for seed in range(3):
        X, y = numerai_like(400, 8, seed=seed)
        booster = train({"objective": objective}, X, y, 15)
        assert max_diff(booster, tmp_path, _inputs(seed)) == 0.0


def test_lightgbm_lambdarank_scores_are_raw_and_exact(tmp_path):
    X, y = numerai_like(400, 8, seed=5)
    booster = train({"objective": "lambdarank"}, X, (y * 4).astype(int), 15, group=[40] * 10)
    assert max_diff(booster, tmp_path, _inputs(5)) == 0.0


def test_lightgbm_binary_predicts_one_probability_column(tmp_path):
    from builder.artifacts import lightgbm as reader
    from builder.compile.trees import compile_trees
    from tests.lightgbm_fidelity import save_both

    X, y = numerai_like(300, 6, seed=1)
    text, _ = save_both(train({"objective": "binary"}, X, y > 0.5, 5), tmp_path)
    evaluator = compile_trees(reader.read(text))
    assert (evaluator.task, evaluator.n_outputs) == ("binary", 1)
    out = evaluator.predict(X)
    assert out.shape == (300, 1) and np.all((out > 0) & (out < 1))
