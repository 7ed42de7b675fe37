"""Randomized LightGBM fidelity: seeded random configurations (objective, shape, missing
handling, boosting mode, data kind) must all predict exactly what LightGBM predicts."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lightgbm_fidelity import data_variants, max_diff, train
from tests.synthdata import numerai_like

N_MODELS = 120


def random_config(seed):
    rng = np.random.default_rng(seed)
    objective = rng.choice(["regression", "regression", "binary", "multiclass", "poisson"])
    params = {
        "objective": str(objective),
        "num_leaves": int(rng.choice([3, 7, 15, 31, 63])),
        "max_depth": int(rng.choice([-1, 3, 5, 6, 8])),
        "learning_rate": float(rng.choice([0.01, 0.1, 0.5])),
        "feature_fraction": float(rng.choice([0.5, 1.0])),
        "zero_as_missing": bool(rng.random() < 0.2),
        "use_missing": bool(rng.random() < 0.85),
        "min_data_in_leaf": int(rng.choice([2, 5, 20])),
        "seed": seed,
    }
    boosting = rng.choice(["gbdt", "gbdt", "gbdt", "dart", "rf"])
    if boosting != "gbdt":
        params["boosting"] = str(boosting)
    if boosting == "rf":
        params.update(bagging_fraction=0.7, bagging_freq=1)
    if objective == "multiclass":
        params["num_class"] = 3
    data = {
        "n_features": int(rng.integers(3, 12)),
        "nan_fraction": float(rng.choice([0.0, 0.0, 0.1])),
        "float_noise": bool(rng.random() < 0.3),
        "rounds": int(rng.integers(2, 25)),
    }
    return params, data


def labels(objective, y):
    if objective == "binary":
        return y > 0.5
    if objective == "multiclass":
        return (y * 4).astype(int) % 3
    if objective == "poisson":
        return y * 3
    return y


@pytest.mark.parametrize("block", range(4))
def test_random_lightgbm_models_predict_exactly(block, tmp_path):
    failures = []
    for seed in range(block, N_MODELS, 4):
        params, data = random_config(seed)
        X, y = numerai_like(
            300,
            data["n_features"],
            seed=seed,
            nan_fraction=data["nan_fraction"],
            float_noise=data["float_noise"],
        )
        booster = train(params, X, labels(params["objective"], y), data["rounds"])
        inputs = list(data_variants(200, data["n_features"], seed).values())
        diff = max_diff(booster, tmp_path, inputs)
        if diff != 0.0:
            failures.append((seed, params, data, diff))
    assert failures == []
