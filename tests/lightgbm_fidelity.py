"""Shared helpers of the LightGBM fidelity tests (tests/test_trees_lightgbm_*.py).

Each helper trains a real, small LightGBM model, saves it as model text and as dump_model
JSON, reads both with builder.artifacts.lightgbm, compiles every evaluator strategy and
compares with LightGBM's own predictions (Booster loaded from the saved text, one thread).
"""

from __future__ import annotations

import json

import lightgbm
import numpy as np

from builder.artifacts import lightgbm as lgb_reader
from builder.compile.trees import compile_trees
from tests.synthdata import numerai_like

STRATEGIES = ("walk", "auto")


def train(params: dict, X: np.ndarray, y: np.ndarray, rounds: int, **dataset) -> lightgbm.Booster:
    base = {"verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "seed": 0}
    base.update(params)
    return lightgbm.train(base, lightgbm.Dataset(X, y, **dataset), rounds)


def save_both(booster: lightgbm.Booster, tmp_path, name: str = "model"):
    text = tmp_path / f"{name}.txt"
    booster.save_model(str(text))
    dump = tmp_path / f"{name}.json"
    dump.write_text(json.dumps(booster.dump_model()))
    return text, dump


def max_diff(booster: lightgbm.Booster, tmp_path, inputs, strategies=STRATEGIES) -> float:
    """Largest |ours - native| over both file formats, every strategy and every input."""
    text, dump = save_both(booster, tmp_path)
    native = lightgbm.Booster(model_file=str(text))
    worst = 0.0
    for path in (text, dump):
        ens = lgb_reader.read(path)
        for strategy in strategies:
            evaluator = compile_trees(ens, strategy)
            for X in inputs:
                theirs = np.asarray(native.predict(X, num_threads=1)).reshape(len(X), -1)
                ours = evaluator.predict(X)
                assert ours.shape == theirs.shape
                assert ours.dtype == np.float64
                diff = np.abs(ours - theirs)
                # NaN in both places counts as equal; NaN in one only is infinitely wrong
                both_nan = np.isnan(ours) & np.isnan(theirs)
                diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
                worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst


def data_variants(n_rows: int, n_features: int, seed: int) -> dict[str, np.ndarray]:
    """The three input kinds every model is checked on: int8 0..4, float, and with NaN."""
    ints, _ = numerai_like(n_rows, n_features, seed=seed + 1000)
    floats, _ = numerai_like(n_rows, n_features, seed=seed + 2000, float_noise=True)
    nans, _ = numerai_like(n_rows, n_features, seed=seed + 3000, nan_fraction=0.15)
    return {"int8": ints.astype(np.int8), "float": floats, "nan": nans}
