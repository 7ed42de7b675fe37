"""Shared helpers of the CatBoost fidelity tests: train small real CatBoostRegressor models on
Numerai-shaped data, save them in each file form nmr reads, and compare the compiled
evaluator with CatBoost's own ``RawFormulaVal`` bit for bit."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from builder.artifacts import catboost as cb_reader
from builder.compile import compile_model
from builder.compile.trees import compile_trees
from tests.synthdata import feature_names, numerai_like

N_FEATURES = 8
NAMES = feature_names(N_FEATURES)
DATA_KINDS = ("int8", "float", "nan")
FORMS = ("cbm", "json", "pickle")


def data(kind: str, seed: int, n_rows: int = 400):
    if kind == "int8":
        return numerai_like(n_rows, N_FEATURES, seed=seed)
    if kind == "float":
        return numerai_like(n_rows, N_FEATURES, seed=seed, float_noise=True)
    return numerai_like(n_rows, N_FEATURES, seed=seed, nan_fraction=0.15)


def test_rows(kind: str, seed: int, n_rows: int = 300) -> np.ndarray:
    """Fresh rows of the same kind; int8 rows as an int8 array, as live data arrives."""
    X, _ = data(kind, seed + 10_000, n_rows=n_rows)
    return X.astype(np.int8) if kind == "int8" else X


def train(X, y, **params):
    from catboost import CatBoostRegressor

    params = {
        "iterations": 20,
        "depth": 4,
        "verbose": 0,
        "thread_count": 1,
        "allow_writing_files": False,
        "random_seed": 0,
        **params,
    }
    model = CatBoostRegressor(**params)
    model.fit(pd.DataFrame(X, columns=NAMES), y)
    return model


def save(model, directory: Path, form: str, name: str = "model") -> Path:
    """The model as a .cbm file, a CatBoost JSON file or a pickle of the object."""
    directory.mkdir(parents=True, exist_ok=True)
    if form == "cbm":
        path = directory / f"{name}.cbm"
        model.save_model(str(path))
    elif form == "json":
        path = directory / f"{name}.json"
        model.save_model(str(path), format="json")
    else:
        path = directory / f"{name}.pkl"
        path.write_bytes(pickle.dumps(model))
    return path


def native(path: Path, X) -> np.ndarray:
    return cb_reader.native_predict(path, np.asarray(X, dtype=np.float64), NAMES)


def ours(path: Path, X, strategy: str = "auto") -> np.ndarray:
    ens = cb_reader.read(path)
    evaluator = compile_model(ens) if strategy == "auto" else compile_trees(ens, strategy)
    return evaluator.predict(X)


def assert_exact(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, what
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert same.all(), f"{what}: max |ours - native| = {diff}"
