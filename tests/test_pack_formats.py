"""`nmr build` for every artifact kind: the pickle runs in the bare runtime env (numpy, pandas,
cloudpickle, pyarrow at the image's pins; no nmr, no model library) and reproduces the native
library's predictions (bit for bit for trees, float tolerance for ONNX)."""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestClassifier
from sklearn.neural_network import MLPRegressor

from builder import runtimes
from builder.artifacts import reader
from builder.build import build_project
from builder.config import load
from builder.env import ensure_env
from tests.buildkit import run_pickle_in_env, train_lightgbm, write_config, write_data

SLOTS = """
lgbm_multiclass:
  artifact: artifacts/multi.txt
  features: small
  postprocessing: []
xgb_regression:
  artifact: artifacts/xgb.json
  format: xgboost
  features: small
  postprocessing: []
sk_hgb:
  artifact: artifacts/hgb.joblib
  features: small
  postprocessing: []
sk_forest_binary:
  artifact: artifacts/forest.joblib
  features: small
  postprocessing: []
onnx_mlp:
  artifact: artifacts/mlp.onnx
  features: small
  preprocessing:
    - fill_missing: {value: 2}
  postprocessing: []
"""

# slot -> (artifact, format, task, fill value before the native model or None)
NATIVE = {
    "lgbm_multiclass": ("multi.txt", "lightgbm", "multiclass", None),
    "xgb_regression": ("xgb.json", "xgboost", "regression", None),
    "sk_hgb": ("hgb.joblib", "sklearn", "regression", None),
    "sk_forest_binary": ("forest.joblib", "sklearn", "binary", None),
    "onnx_mlp": ("mlp.onnx", "onnx", "regression", 2.0),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    sets = write_data(root, nan_fraction=0.05)
    small = sets["small"]
    train = pd.read_parquet(root / "data" / "train.parquet")
    X, y = train[small].to_numpy(dtype=np.float64), train["target"].to_numpy()
    art = root / "artifacts"

    train_lightgbm(root, "multi", small, objective="multiclass", num_class=5, n_trees=6)
    booster = xgb.train(
        {"max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 0},
        xgb.DMatrix(X, y, feature_names=small),
        num_boost_round=8,
    )
    booster.save_model(str(art / "xgb.json"))
    hgb = HistGradientBoostingRegressor(max_iter=10, max_leaf_nodes=7, random_state=0)
    joblib.dump(hgb.fit(pd.DataFrame(X, columns=small), y), art / "hgb.joblib")
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)
    joblib.dump(forest.fit(pd.DataFrame(X, columns=small), y > 0.5), art / "forest.joblib")
    _write_onnx_mlp(np.nan_to_num(X, nan=2.0), y, art / "mlp.onnx")

    write_config(root, SLOTS)
    project = load(root / "numerai.yaml")
    results = build_project(project)
    return root, small, {r.slot: r for r in results}


def _write_onnx_mlp(X, y, path):
    from skl2onnx import to_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y)
    onx = to_onnx(mlp, X[:1].astype(np.float32), target_opset=17)
    path.write_bytes(onx.SerializeToString())


def _one_column(raw, task):
    if task == "binary":
        return raw[:, -1]
    if task == "multiclass":
        return raw @ np.arange(raw.shape[1]) / (raw.shape[1] - 1)
    return raw[:, 0]


@pytest.mark.parametrize("slot", list(NATIVE))
def test_built_pickle_reproduces_the_native_model_in_the_bare_runtime_env(built, slot, tmp_path):
    root, small, results = built
    result = results[slot]
    assert result.rebuilt and result.pickle_path == root / "build" / slot / "model.pkl"
    env = ensure_env(runtimes.default_tag())
    live_path = root / "data" / "live.parquet"
    out_path = tmp_path / "out.parquet"
    info = run_pickle_in_env(
        env.python,
        result.pickle_path,
        live_path,
        root / "data" / "live_benchmark_models.parquet",
        out_path,
    )
    assert info["arity"] == 2 and not info["builder_loaded"]

    artifact, fmt, task, fill = NATIVE[slot]
    live = pd.read_parquet(live_path)
    X = live[small]
    if fill is not None:
        X = X.fillna(fill)
    raw = reader(fmt).native_predict(root / "artifacts" / artifact, X.to_numpy(np.float64), small)
    expected = _one_column(np.asarray(raw, dtype=np.float64), task)
    got = pd.read_parquet(out_path)["prediction"]
    assert got.index.equals(live.index)
    if fmt == "onnx":
        np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got.to_numpy(), expected)


def test_multiclass_output_is_expected_class_in_unit_interval(built, tmp_path):
    root, small, results = built
    env = ensure_env(runtimes.default_tag())
    out_path = tmp_path / "out.parquet"
    run_pickle_in_env(
        env.python,
        results["lgbm_multiclass"].pickle_path,
        root / "data" / "live.parquet",
        root / "data" / "live_benchmark_models.parquet",
        out_path,
    )
    values = pd.read_parquet(out_path)["prediction"]
    assert values.between(0, 1).all() and values.std() > 0
