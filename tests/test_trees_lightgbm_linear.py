"""LightGBM linear trees: leaf_const + sum coeff * x; a NaN in a leaf's features falls back
to the plain leaf value (docs/design/compilers.md §1.4)."""

from __future__ import annotations

import numpy as np

from builder.artifacts import lightgbm as reader
from builder.compile.trees import compile_trees
from tests.lightgbm_fidelity import data_variants, max_diff, save_both, train
from tests.synthdata import numerai_like


def test_lightgbm_linear_trees_are_exact_with_and_without_nan(tmp_path):
    for seed in range(5):
        X, y = numerai_like(600, 6, seed=seed, float_noise=True, nan_fraction=0.05 * (seed % 2))
        params = {"objective": "regression", "linear_tree": True, "num_leaves": 7}
        booster = train(params, X, y + X[:, 0] * 0.2, 15)
        inputs = list(data_variants(300, 6, seed).values())
        assert max_diff(booster, tmp_path, inputs) == 0.0


def test_lightgbm_linear_binary_model_is_exact(tmp_path):
    X, y = numerai_like(600, 6, seed=9, float_noise=True)
    params = {"objective": "binary", "linear_tree": True, "num_leaves": 5}
    booster = train(params, X, y > 0.5, 10)
    assert max_diff(booster, tmp_path, list(data_variants(300, 6, 9).values())) == 0.0


def test_lightgbm_linear_trees_are_walked_not_bit_sliced(tmp_path):
    X, y = numerai_like(600, 6, seed=2, float_noise=True)
    booster = train({"objective": "regression", "linear_tree": True}, X, y, 5)
    text, _ = save_both(booster, tmp_path)
    evaluator = compile_trees(reader.read(text))
    assert evaluator.strategies() == {"walk": 5}
    assert np.isfinite(evaluator.predict(X)).all()
