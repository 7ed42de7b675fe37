"""CatBoost float borders: a split is ``float32(x) > border`` with a float32 border, so a value
equal to the border goes left, and a double just above a border that rounds to it in float32
goes left too, exactly as CatBoost routes it."""

from __future__ import annotations

import numpy as np
import pytest

from builder.artifacts import catboost as cb_reader
from tests import catboost_fidelity as cf

pytest.importorskip("catboost")


def _border_rows(path) -> np.ndarray:
    """Rows made of every border of the model, and the doubles either side of each."""
    doc = cb_reader.load_document(path)
    values = []
    for feature in doc["features_info"]["float_features"]:
        for border in feature["borders"]:
            b = float(np.float32(border))
            values += [b, np.nextafter(b, np.inf), np.nextafter(b, -np.inf), b + 1e-9, b - 1e-9]
    values = np.array(values)
    rng = np.random.default_rng(0)
    return rng.choice(values, size=(2000, cf.N_FEATURES))


def test_catboost_values_at_and_around_borders_route_like_catboost(tmp_path):
    X, y = cf.data("float", seed=600, n_rows=800)
    path = cf.save(cf.train(X, y, depth=6, iterations=30, border_count=254), tmp_path, "cbm")
    rows = _border_rows(path)
    want = cf.native(path, rows)
    for strategy in ("walk", "bits"):
        cf.assert_exact(cf.ours(path, rows, strategy), want, strategy)


def test_catboost_value_equal_to_a_border_goes_left(tmp_path):
    X, y = cf.data("int8", seed=601)
    ens = cb_reader.read(cf.save(cf.train(X, y, depth=1, iterations=1), tmp_path, "cbm"))
    feature, border = int(ens.split_feature[0]), float(ens.threshold[0])
    at, above = np.zeros((2, cf.N_FEATURES)), np.zeros((2, cf.N_FEATURES))
    at[:, feature], above[:, feature] = border, border + 0.5
    from builder.compile import compile_model

    evaluator = compile_model(ens)
    leaf_left, leaf_right = ens.leaf_value[1], ens.leaf_value[2]
    assert evaluator.predict_raw(at)[0, 0] == leaf_left
    assert evaluator.predict_raw(above)[0, 0] == leaf_right
