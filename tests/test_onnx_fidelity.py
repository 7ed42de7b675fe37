"""Real exported models (skl2onnx, torch.onnx.export) match onnxruntime on a live-sized frame.

Fidelity promise (issue 6): max relative difference <= 1e-5 in float32, and the per-era order
of predictions is onnxruntime's. Two different float32 GEMMs (onnxruntime's MLAS, numpy's
OpenBLAS) sum in different orders, so predictions differ in the last bit or two; rows whose
onnxruntime predictions are within a few ulps of each other may swap. The order test therefore
asserts that every swap is between rows closer than 4 float32 ulps, and counts swaps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.onnx_helpers import (
    FIXTURES,
    float32_ulp,
    max_relative_difference,
    order_violation,
    ours_and_onnxruntime,
)
from tests.synthdata import numerai_like

LIVE_ROWS = 6_720
N_FEATURES = 20
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
TORCH_FIXTURES = sorted(p.name for p in FIXTURES.glob("torch_*.onnx"))


@pytest.fixture(scope="module")
def training():
    return numerai_like(n_rows=1500, n_features=N_FEATURES, seed=1)


@pytest.fixture(scope="module")
def live():
    X, _ = numerai_like(n_rows=LIVE_ROWS, n_features=N_FEATURES, seed=2)
    return X.astype(np.float32)


def _export(estimator, X_train, path):
    onx = to_onnx(
        estimator,
        X_train[:1].astype(np.float32),
        options={"zipmap": True} if hasattr(estimator, "predict_proba") else None,
    )
    path.write_bytes(onx.SerializeToString())
    return path


def _assert_faithful(ours, reference):
    assert ours.shape == reference.shape
    assert max_relative_difference(ours, reference) <= 1e-5
    for k in range(reference.shape[1]):
        assert order_violation(ours[:, k], reference[:, k]) <= 4 * float32_ulp(reference[:, k])


def test_skl2onnx_mlp_regressor_matches_onnxruntime(training, live, tmp_path):
    X, y = training
    model = MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=60, random_state=0).fit(X, y)
    ours, reference = ours_and_onnxruntime(_export(model, X, tmp_path / "m.onnx"), live)
    _assert_faithful(ours, reference)


def test_skl2onnx_scaler_mlp_pipeline_matches_onnxruntime(training, live, tmp_path):
    X, y = training
    model = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", max_iter=60, random_state=0),
    ).fit(X, y)
    ours, reference = ours_and_onnxruntime(_export(model, X, tmp_path / "m.onnx"), live)
    _assert_faithful(ours, reference)


def test_skl2onnx_imputer_scaler_mlp_pipeline_fills_nan_like_onnxruntime(tmp_path):
    X, y = numerai_like(n_rows=1500, n_features=N_FEATURES, seed=3, nan_fraction=0.05)
    model = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0),
    ).fit(X, y)
    live, _ = numerai_like(n_rows=LIVE_ROWS, n_features=N_FEATURES, seed=4, nan_fraction=0.05)
    ours, reference = ours_and_onnxruntime(
        _export(model, X, tmp_path / "m.onnx"), live.astype(np.float32)
    )
    _assert_faithful(ours, reference)


def test_skl2onnx_mlp_classifier_predicts_probabilities_not_zipmap(training, live, tmp_path):
    X, y = training
    model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=0).fit(
        X, (y > 0.5).astype(int)
    )
    path = _export(model, X, tmp_path / "m.onnx")
    ours, reference = ours_and_onnxruntime(path, live)
    assert ours.shape == (LIVE_ROWS, 2)
    _assert_faithful(ours, reference)
    np.testing.assert_allclose(ours, model.predict_proba(live), rtol=1e-4, atol=1e-6)


def test_skl2onnx_multiclass_classifier_task_is_multiclass(training, tmp_path):
    from builder.artifacts import onnx as onnx_reader
    from builder.compile.onnx import compile_graph

    X, y = training
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(
        X, (y * 4).astype(int)
    )
    evaluator = compile_graph(onnx_reader.read(_export(model, X, tmp_path / "m.onnx")))
    assert (evaluator.task, evaluator.n_outputs) == ("multiclass", 5)


@pytest.mark.parametrize("fixture", TORCH_FIXTURES)
def test_torch_export_matches_onnxruntime_on_live_frame(fixture):
    live, _ = numerai_like(n_rows=LIVE_ROWS, n_features=50, seed=5)
    ours, reference = ours_and_onnxruntime(FIXTURES / fixture, (live / 4).astype(np.float32))
    _assert_faithful(ours, reference)


@pytest.mark.parametrize("fixture", TORCH_FIXTURES)
def test_torch_export_per_era_ranks_differ_only_between_near_ties(fixture):
    # numerai_like bins are 0..4; torch models were warmed up on bins/4 + 0.3
    live, _ = numerai_like(n_rows=LIVE_ROWS, n_features=50, seed=6)
    ours, reference = ours_and_onnxruntime(FIXTURES / fixture, (live / 4 + 0.3).astype(np.float32))
    ranks = pd.DataFrame({"ours": ours[:, 0], "ref": reference[:, 0]}).rank(pct=True)
    swapped = int((ranks["ours"] != ranks["ref"]).sum())
    # A handful of near-ties swap: how many depends on the summation order of the BLAS builds
    # on both sides (13 with onnxruntime 1.2x, 18 with 1.32 and numpy 2.4); the order check
    # below is the guard against a real reordering.
    assert swapped <= LIVE_ROWS // 200
    assert order_violation(ours[:, 0], reference[:, 0]) <= 4 * float32_ulp(reference)
    assert ranks["ours"].corr(ranks["ref"], method="spearman") > 0.999999


def test_torchscript_shape_arithmetic_is_folded_away():
    from builder.artifacts import onnx as onnx_reader

    graph = onnx_reader.read(FIXTURES / "torch_mlp_torchscript_opset17.onnx")
    ops = [node.op for node in graph.nodes]
    assert "Reshape" in ops
    assert not {"Shape", "Gather", "Unsqueeze", "Concat", "Constant"} & set(ops)
    reshape = next(node for node in graph.nodes if node.op == "Reshape")
    assert graph.initializers[reshape.inputs[1]].tolist() == [-1, 32]


@pytest.mark.parametrize("fixture", TORCH_FIXTURES)
def test_torch_export_matches_torch_itself(fixture):
    from builder.compile import compile_artifact

    references = np.load(FIXTURES / "torch_reference_outputs.npz")
    evaluator = compile_artifact(FIXTURES / fixture, "onnx")
    ours = evaluator.predict(references["X"])
    assert max_relative_difference(ours, references[fixture]) <= 1e-5
