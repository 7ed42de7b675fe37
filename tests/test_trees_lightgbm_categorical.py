"""LightGBM categorical splits: bitset in set -> left; NaN, negatives, values beyond the
bitset -> right; fractions truncate toward zero (docs/design/compilers.md §1.3)."""

from __future__ import annotations

import numpy as np

from builder.artifacts import lightgbm as reader
from tests.lightgbm_fidelity import max_diff, save_both, train


def _categorical_data(seed, n_rows=600, n_cats=12):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(n_rows, 6)).astype(np.float64)
    X[:, 0] = rng.integers(0, n_cats, size=n_rows)
    X[:, 1] = rng.integers(0, 40, size=n_rows)  # more than one bitset word
    effect = rng.normal(size=n_cats)[X[:, 0].astype(int)] + 0.1 * (X[:, 1] % 7)
    y = effect + X[:, 2] * 0.3 + rng.normal(scale=0.3, size=n_rows)
    return X, y


def _probe_inputs(seed):
    rng = np.random.default_rng(seed + 99)
    X, _ = _categorical_data(seed + 7, n_rows=300)
    odd = X.copy()
    odd[:, 0] = rng.choice([-3.0, -0.5, 0.5, 2.9, 11.99, 12.0, 31.0, 32.0, 1e10, np.nan], 300)
    odd[:, 1] = rng.choice([-1.0, 0.0, 33.7, 39.0, 64.0, 1e6, -1e6, np.nan], 300)
    return [X, X.astype(np.int8), odd]


def test_lightgbm_categorical_sets_route_left_and_the_rest_right(tmp_path):
    for seed in range(6):
        X, y = _categorical_data(seed)
        params = {
            "objective": "regression",
            "num_leaves": 15,
            "min_data_per_group": 5,
            "cat_smooth": 1.0,
            "max_cat_to_onehot": 4 if seed % 2 else 32,
        }
        booster = train(params, X, y, 20, categorical_feature=[0, 1])
        text, _ = save_both(booster, tmp_path, "probe")
        ens = reader.read(text)
        assert ens.is_categorical.any()
        assert max_diff(booster, tmp_path, _probe_inputs(seed)) == 0.0


def test_lightgbm_categorical_training_nan_still_sends_nan_right(tmp_path):
    for seed in range(3):
        X, y = _categorical_data(seed)
        X[::5, 0] = np.nan
        params = {"objective": "binary", "num_leaves": 7, "min_data_per_group": 5}
        booster = train(params, X, y > np.median(y), 15, categorical_feature=[0])
        assert max_diff(booster, tmp_path, _probe_inputs(seed)) == 0.0


def test_lightgbm_multiclass_categorical_is_exact(tmp_path):
    X, y = _categorical_data(4)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    params = {"objective": "multiclass", "num_class": 3, "min_data_per_group": 5}
    booster = train(params, X, labels, 8, categorical_feature=[0])
    assert max_diff(booster, tmp_path, _probe_inputs(4)) == 0.0
