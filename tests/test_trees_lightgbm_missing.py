"""LightGBM missing values: missing_type None / Zero / NaN, default_left, use_missing=false
(docs/design/compilers.md §1.2)."""

from __future__ import annotations

import numpy as np

from builder.artifacts import lightgbm as reader
from tests.lightgbm_fidelity import data_variants, max_diff, save_both, train
from tests.synthdata import numerai_like


def _missing_types(booster, tmp_path):
    text, _ = save_both(booster, tmp_path, "probe")
    ens = reader.read(text)
    internal = ens.split_feature >= 0
    return {
        "nan": bool((internal & ~ens.nan_as_zero).any()),
        "zero": bool(ens.zero_as_missing[internal].any()),
    }


def test_lightgbm_nan_missing_type_routes_nan_to_default_side(tmp_path):
    for seed in range(6):
        X, y = numerai_like(500, 8, seed=seed, nan_fraction=0.2)
        booster = train({"objective": "regression", "num_leaves": 15}, X, y, 20)
        assert _missing_types(booster, tmp_path)["nan"]
        inputs = list(data_variants(400, 8, seed).values())
        assert max_diff(booster, tmp_path, inputs) == 0.0


def test_lightgbm_none_missing_type_reads_nan_as_zero(tmp_path):
    # trained without NaN: missing_type None, a NaN at predict time is routed as 0.0 (#6139)
    for seed in range(4):
        X, y = numerai_like(500, 8, seed=seed)
        booster = train({"objective": "regression", "num_leaves": 15}, X, y, 20)
        assert _missing_types(booster, tmp_path) == {"nan": False, "zero": False}
        X_nan, _ = numerai_like(400, 8, seed=seed + 50, nan_fraction=0.3)
        assert max_diff(booster, tmp_path, [X_nan]) == 0.0


def test_lightgbm_zero_as_missing_routes_zero_to_default_side(tmp_path):
    for seed in range(6):
        X, y = numerai_like(500, 8, seed=seed, nan_fraction=0.1 * (seed % 2))
        params = {"objective": "regression", "num_leaves": 15, "zero_as_missing": True}
        booster = train(params, X, y, 20)
        assert _missing_types(booster, tmp_path)["zero"]
        inputs = list(data_variants(400, 8, seed).values())
        tiny = inputs[1].copy()
        tiny[::3, :] = 1e-36  # |x| <= kZeroThreshold counts as zero
        inputs.append(tiny)
        assert max_diff(booster, tmp_path, inputs) == 0.0


def test_lightgbm_use_missing_false_ignores_missing_handling(tmp_path):
    for seed in range(4):
        X, y = numerai_like(500, 8, seed=seed, nan_fraction=0.2)
        params = {"objective": "regression", "num_leaves": 15, "use_missing": False}
        booster = train(params, X, y, 20)
        assert _missing_types(booster, tmp_path) == {"nan": False, "zero": False}
        inputs = list(data_variants(400, 8, seed).values())
        assert max_diff(booster, tmp_path, inputs) == 0.0


def test_lightgbm_all_nan_rows_and_columns_are_exact(tmp_path):
    X, y = numerai_like(500, 8, seed=3, nan_fraction=0.2)
    booster = train({"objective": "binary", "num_leaves": 15}, X, y > 0.5, 20)
    probe = np.full((50, 8), np.nan)
    probe[25:, 2] = 3.0
    assert max_diff(booster, tmp_path, [probe]) == 0.0
