"""ai.onnx.ml tree ensembles run through the tree compiler's kernels, as onnxruntime runs them.

onnxruntime accumulates tree scores in float32 in tree order and adds base_values afterwards;
with the same order our regressors are bit-identical to it. Classifier probabilities go
through a float32 logistic/softmax and agree to an ulp.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from builder.artifacts import onnx as onnx_reader
from builder.compile.onnx import compile_graph
from builder.errors import NotSupportedYet
from tests.onnx_helpers import max_relative_difference, ours_and_onnxruntime
from tests.synthdata import numerai_like

LIVE_ROWS = 6_720


@pytest.fixture(scope="module")
def data():
    X, y = numerai_like(n_rows=1500, n_features=20, seed=1)
    live, _ = numerai_like(n_rows=LIVE_ROWS, n_features=20, seed=2)
    return X, y, live.astype(np.float32)


def _convert(model, X, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())
    return path


REGRESSORS = {
    "decision_tree": lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
    "random_forest": lambda: RandomForestRegressor(20, max_depth=6, random_state=0),
    "gradient_boosting": lambda: GradientBoostingRegressor(
        n_estimators=50, max_depth=4, random_state=0
    ),
    "scaler_gradient_boosting": lambda: make_pipeline(
        StandardScaler(), GradientBoostingRegressor(n_estimators=30, random_state=0)
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_tree_regressor_is_bit_identical_to_onnxruntime(name, data, tmp_path):
    X, y, live = data
    ours, reference = ours_and_onnxruntime(
        _convert(REGRESSORS[name]().fit(X, y), X, tmp_path), live
    )
    np.testing.assert_array_equal(ours, reference)


def test_imputer_random_forest_pipeline_routes_nan_like_onnxruntime(tmp_path):
    X, y = numerai_like(n_rows=1500, n_features=20, seed=3, nan_fraction=0.05)
    live, _ = numerai_like(n_rows=LIVE_ROWS, n_features=20, seed=4, nan_fraction=0.05)
    model = make_pipeline(
        SimpleImputer(), RandomForestRegressor(10, max_depth=5, random_state=0)
    ).fit(X, y)
    ours, reference = ours_and_onnxruntime(_convert(model, X, tmp_path), live.astype(np.float32))
    np.testing.assert_array_equal(ours, reference)


CLASSIFIERS = {
    "random_forest_binary": (lambda: RandomForestClassifier(10, max_depth=5, random_state=0), 2),
    "random_forest_5_classes": (lambda: RandomForestClassifier(10, max_depth=5, random_state=0), 5),
    "gradient_boosting_binary": (
        lambda: GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0),
        2,
    ),
    "gradient_boosting_5_classes": (
        lambda: GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0),
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_tree_classifier_probabilities_match_onnxruntime(name, data, tmp_path):
    X, y, live = data
    make, n_classes = CLASSIFIERS[name]
    labels = (y > 0.5).astype(int) if n_classes == 2 else (y * 4).astype(int)
    model = make().fit(X, labels)
    ours, reference = ours_and_onnxruntime(_convert(model, X, tmp_path), live)
    assert ours.shape == (LIVE_ROWS, n_classes)
    assert max_relative_difference(ours, reference) <= 1e-6
    np.testing.assert_allclose(ours, model.predict_proba(live), atol=1e-5)


def _hand_tree(mode: str, tracks_true: int, tmp_path):
    # one split on feature 1 at 0.5 with leaves 10 (true branch) and 20 (false branch)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["x"],
        ["y"],
        domain="ai.onnx.ml",
        n_targets=1,
        nodes_treeids=[0, 0, 0],
        nodes_nodeids=[0, 1, 2],
        nodes_featureids=[1, 0, 0],
        nodes_values=[0.5, 0.0, 0.0],
        nodes_modes=[mode, "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 0],
        nodes_falsenodeids=[2, 0, 0],
        nodes_missing_value_tracks_true=[tracks_true, 0, 0],
        target_treeids=[0, 0],
        target_nodeids=[1, 2],
        target_ids=[0, 0],
        target_weights=[10.0, 20.0],
        name="hand",
    )
    graph = helper.make_graph(
        [node],
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    path = tmp_path / f"{mode}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("mode", ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT"])
@pytest.mark.parametrize("tracks_true", [0, 1])
def test_split_modes_and_missing_tracking_route_like_onnxruntime(mode, tracks_true, tmp_path):
    x1 = np.array([0.0, 0.5, np.nextafter(np.float32(0.5), np.float32(1)), 1.0, np.nan, -np.inf])
    X = np.stack([np.zeros_like(x1), x1], axis=1).astype(np.float32)
    ours, reference = ours_and_onnxruntime(_hand_tree(mode, tracks_true, tmp_path), X)
    np.testing.assert_array_equal(ours, reference)


def test_equality_split_mode_is_not_supported(tmp_path):
    with pytest.raises(NotSupportedYet, match=r"tree node modes \['BRANCH_EQ'\]"):
        compile_graph(onnx_reader.read(_hand_tree("BRANCH_EQ", 0, tmp_path)))


def _as_tree_ensemble_v5(path, tmp_path, dtype=np.float32):
    """Rewrite a TreeEnsembleRegressor (ml opset 3) model as a TreeEnsemble (ml opset 5) one."""
    model = onnx.load(str(path))
    old = next(n for n in model.graph.node if n.op_type == "TreeEnsembleRegressor")
    a = {attr.name: helper.get_attribute_value(attr) for attr in old.attribute}
    modes = [m.decode() for m in a["nodes_modes"]]
    keys = list(zip(a["nodes_treeids"], a["nodes_nodeids"], strict=True))
    leaf_keys = [k for k, m in zip(keys, modes, strict=True) if m == "LEAF"]
    branch_keys = [k for k, m in zip(keys, modes, strict=True) if m != "LEAF"]
    leaf_index = {k: i for i, k in enumerate(leaf_keys)}
    branch_index = {k: i for i, k in enumerate(branch_keys)}
    weight = dict(
        zip(
            zip(a["target_treeids"], a["target_nodeids"], strict=True),
            a["target_weights"],
            strict=True,
        )
    )
    codes = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3}
    pos = {k: i for i, k in enumerate(keys)}
    fields = {f: [] for f in ("true", "trueleaf", "false", "falseleaf", "feature", "split", "mode")}
    for t, n in branch_keys:
        i = pos[(t, n)]
        for side, ids in (("true", a["nodes_truenodeids"]), ("false", a["nodes_falsenodeids"])):
            child = (t, ids[i])
            is_leaf = child in leaf_index
            fields[side].append(leaf_index[child] if is_leaf else branch_index[child])
            fields[side + "leaf"].append(int(is_leaf))
        fields["feature"].append(a["nodes_featureids"][i])
        fields["split"].append(a["nodes_values"][i])
        fields["mode"].append(codes[modes[i]])
    roots = [branch_index[(t, 0)] for t in sorted(set(a["nodes_treeids"]))]
    new = helper.make_node(
        "TreeEnsemble",
        list(old.input),
        list(old.output),
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=1,
        post_transform=0,
        tree_roots=roots,
        nodes_featureids=fields["feature"],
        nodes_splits=numpy_helper.from_array(np.asarray(fields["split"], dtype=dtype)),
        nodes_modes=numpy_helper.from_array(np.asarray(fields["mode"], dtype=np.uint8)),
        nodes_truenodeids=fields["true"],
        nodes_trueleafs=fields["trueleaf"],
        nodes_falsenodeids=fields["false"],
        nodes_falseleafs=fields["falseleaf"],
        leaf_targetids=[0] * len(leaf_keys),
        leaf_weights=numpy_helper.from_array(
            np.asarray([weight[k] for k in leaf_keys], dtype=dtype)
        ),
    )
    graph = helper.make_graph(
        [new],
        "v5",
        [
            helper.make_tensor_value_info(
                "X", onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), ["N", 20]
            )
        ],
        [
            helper.make_tensor_value_info(
                old.output[0], onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), ["N", 1]
            )
        ],
    )
    v5 = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)]
    )
    out = tmp_path / "v5.onnx"
    onnx.save(v5, str(out))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tree_ensemble_opset5_matches_onnxruntime(dtype, data, tmp_path):
    X, y, live = data
    model = RandomForestRegressor(10, max_depth=5, random_state=0).fit(X, y)
    path = _as_tree_ensemble_v5(_convert(model, X, tmp_path), tmp_path, dtype)
    assert [n.op_type for n in onnx.load(str(path)).graph.node] == ["TreeEnsemble"]
    ours, reference = ours_and_onnxruntime(path, live.astype(dtype))
    np.testing.assert_array_equal(ours, reference)
