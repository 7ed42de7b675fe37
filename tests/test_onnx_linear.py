"""skl2onnx linear models (LinearRegressor / LinearClassifier) match onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.onnx_helpers import max_relative_difference, ours_and_onnxruntime
from tests.synthdata import numerai_like

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    X, y = numerai_like(n_rows=1500, n_features=20, seed=1)
    live, _ = numerai_like(n_rows=6_720, n_features=20, seed=2)
    return X, y, live.astype(np.float32)


def _convert(model, X, tmp_path):
    path = tmp_path / "linear.onnx"
    path.write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())
    return path


def test_ridge_pipeline_matches_onnxruntime(data, tmp_path):
    X, y, live = data
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    ours, reference = ours_and_onnxruntime(_convert(model, X, tmp_path), live)
    assert max_relative_difference(ours, reference) <= 1e-5


@pytest.mark.parametrize("n_classes", [2, 5])
def test_logistic_regression_probabilities_match_onnxruntime(n_classes, data, tmp_path):
    X, y, live = data
    labels = (y > 0.5).astype(int) if n_classes == 2 else (y * 4).astype(int)
    model = LogisticRegression(max_iter=200).fit(X, labels)
    ours, reference = ours_and_onnxruntime(_convert(model, X, tmp_path), live)
    assert ours.shape == (live.shape[0], n_classes)
    assert max_relative_difference(ours, reference) <= 1e-5
    np.testing.assert_allclose(ours, model.predict_proba(live), atol=1e-5)
