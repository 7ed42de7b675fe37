"""ONNX-ML tree ensemble nodes -> ``builder.ir.TreeEnsemble`` (the tree reader of ONNX graphs).

The ONNX reader (builder/artifacts/onnx.py) keeps ai.onnx.ml tree nodes in the graph; the ONNX
compiler asks this module for each node's IR and compiles it with the tree compiler, so a tree
inside an ONNX graph runs on the same kernels as a LightGBM or XGBoost model. Like the other
tree readers it builds per-tree node arrays and joins them with builder/artifacts/forest.py.

onnxruntime semantics (tree_ensemble_aggregator.h): thresholds and score accumulation in the
node's precision (float32 for opsets 1-4) in tree order, base_values added after aggregation,
then post_transform. The true branch is the left child; BRANCH_GT / BRANCH_GTE are the negations
of LEQ / LT, so their children swap. NaN compares false and takes the false branch unless the
node's missing value tracks the true branch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from builder import ir
from builder.artifacts.forest import concat_trees, node_fields
from builder.errors import NmrError, NotSupportedYet


@dataclass(frozen=True)
class TreeNode:
    """One tree node of a graph read: its IR and what is applied after the trees."""

    ensemble: ir.TreeEnsemble
    dtype: str  # the split and score precision
    base_values: np.ndarray | None  # added after aggregation (None: none)
    post_transform: str  # NONE, LOGISTIC or SOFTMAX
    # TreeEnsembleClassifier only: scores of class 1 alone (a binary model's single column),
    # whether P(class 0) is 1 - P(class 1), and the class labels
    binary_column: bool = False
    binary_complement: bool = False
    labels: np.ndarray | None = None


def read_tree_node(node: ir.GraphNode) -> TreeNode:
    """The IR of an ai.onnx.ml TreeEnsemble (opset 5), TreeEnsembleRegressor or
    TreeEnsembleClassifier (opsets 1-4) node; unsupported settings raise NotSupportedYet."""
    if node.op == "TreeEnsemble":
        return _read_v5(node)
    return _read_v3(node)


def _read_v3(node) -> TreeNode:
    """TreeEnsembleRegressor / TreeEnsembleClassifier (ai.onnx.ml 1-4)."""
    a = node.attrs
    prefix = "class" if node.op == "TreeEnsembleClassifier" else "target"
    if (
        a.get("nodes_values_as_tensor") is not None
        or a.get(f"{prefix}_weights_as_tensor") is not None
    ):
        raise NotSupportedYet(f"double-precision tree attributes (node {node.name!r})")
    aggregate = a.get("aggregate_function", "SUM")
    post = a.get("post_transform", "NONE")
    if aggregate not in ("SUM", "AVERAGE"):
        raise NotSupportedYet(f"tree aggregate_function {aggregate} (node {node.name!r})")
    if post not in ("NONE", "LOGISTIC", "SOFTMAX"):
        raise NotSupportedYet(f"tree post_transform {post} (node {node.name!r})")
    base_values = [float(v) for v in a.get("base_values", [])]
    if node.op == "TreeEnsembleClassifier":
        labels = a.get("classlabels_int64s") or a.get("classlabels_strings")
        n_targets = len(labels)
    else:
        labels = None
        n_targets = int(a.get("n_targets", 1))
    target_ids = np.asarray(a[f"{prefix}_ids"], dtype=np.int64)
    used_targets = sorted(set(target_ids.tolist()))
    binary_column = node.op == "TreeEnsembleClassifier" and n_targets == 2 and used_targets == [0]
    if binary_column:
        if len(base_values) > 1:
            raise NotSupportedYet(f"one-column binary trees with two base_values ({node.name!r})")
        n_scores = 1
    else:
        n_scores = n_targets
    ensemble = _tree_ensemble_ir(node, prefix, n_scores, aggregate == "AVERAGE")
    base = None
    if any(base_values):  # added after aggregation, as onnxruntime does, not as the start value
        base = np.zeros(n_scores, dtype=np.float32)
        base[: len(base_values)] = np.asarray(base_values[:n_scores], dtype=np.float32)
    tree = TreeNode(ensemble, "float32", base, post)
    if node.op == "TreeEnsembleClassifier":
        weights = np.asarray(a["class_weights"], dtype=np.float32)
        tree = dataclasses.replace(
            tree,
            binary_column=binary_column,
            binary_complement=bool((weights >= 0).all()),
            labels=np.asarray(labels),
        )
    return tree


# ai.onnx.ml opset 5 TreeEnsemble encodes enums as integers (onnx/defs/traditionalml/defs.cc)
_TREE5_MODES = {0: "BRANCH_LEQ", 1: "BRANCH_LT", 2: "BRANCH_GTE", 3: "BRANCH_GT"}
_TREE5_AGGREGATE = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
_TREE5_POST = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}


def _read_v5(node) -> TreeNode:
    """TreeEnsemble (ai.onnx.ml 5): leaves in their own arrays, splits typed like the input."""
    a = node.attrs
    aggregate = _TREE5_AGGREGATE.get(int(a.get("aggregate_function", 1)), "?")
    post = _TREE5_POST.get(int(a.get("post_transform", 0)), "?")
    if aggregate not in ("SUM", "AVERAGE"):
        raise NotSupportedYet(f"tree aggregate_function {aggregate} (node {node.name!r})")
    if post not in ("NONE", "LOGISTIC", "SOFTMAX"):
        raise NotSupportedYet(f"tree post_transform {post} (node {node.name!r})")
    codes = [int(m) for m in np.asarray(a["nodes_modes"]).reshape(-1)]
    unsupported = sorted({c for c in codes if c not in _TREE5_MODES})
    if unsupported:
        raise NotSupportedYet(f"TreeEnsemble node modes {unsupported} (node {node.name!r})")
    splits = np.asarray(a["nodes_splits"])
    dtype = np.dtype(splits.dtype)
    if dtype.kind != "f" or dtype.itemsize < 4:
        raise NotSupportedYet(f"TreeEnsemble with {dtype} splits (node {node.name!r})")
    n_targets = int(a.get("n_targets", 1))
    # rewrite to the opset-3 layout: leaves become nodes after the branch nodes, one tree id
    # per root; then reuse the same translation
    n_branches = len(codes)
    leaf_targets = [int(t) for t in a["leaf_targetids"]]
    leaf_weights = np.asarray(a["leaf_weights"]).astype(np.float64).reshape(-1)
    roots = [int(r) for r in a["tree_roots"]]
    tree_of = {}
    for t, root in enumerate(roots):
        stack = [root]
        while stack:
            i = stack.pop()
            tree_of[i] = t
            for child, is_leaf in (
                (a["nodes_truenodeids"][i], a["nodes_trueleafs"][i]),
                (a["nodes_falsenodeids"][i], a["nodes_falseleafs"][i]),
            ):
                if is_leaf:
                    tree_of[n_branches + int(child)] = t
                else:
                    stack.append(int(child))
    ids = sorted(tree_of, key=lambda i: (tree_of[i], i))
    tracks = a.get("nodes_missing_value_tracks_true") or [0] * n_branches

    def child(i, side):
        leaf = a[f"nodes_{side}leafs"][i]
        return (
            n_branches + int(a[f"nodes_{side}nodeids"][i])
            if leaf
            else int(a[f"nodes_{side}nodeids"][i])
        )

    v3 = {
        "nodes_treeids": [tree_of[i] for i in ids],
        "nodes_nodeids": ids,
        "nodes_featureids": [int(a["nodes_featureids"][i]) if i < n_branches else 0 for i in ids],
        "nodes_values": [float(splits[i]) if i < n_branches else 0.0 for i in ids],
        "nodes_modes": [_TREE5_MODES[codes[i]] if i < n_branches else "LEAF" for i in ids],
        "nodes_truenodeids": [child(i, "true") if i < n_branches else 0 for i in ids],
        "nodes_falsenodeids": [child(i, "false") if i < n_branches else 0 for i in ids],
        "nodes_missing_value_tracks_true": [int(tracks[i]) if i < n_branches else 0 for i in ids],
        "target_treeids": [tree_of[i] for i in ids if i >= n_branches],
        "target_nodeids": [i for i in ids if i >= n_branches],
        "target_ids": [leaf_targets[i - n_branches] for i in ids if i >= n_branches],
        "target_weights": [leaf_weights[i - n_branches] for i in ids if i >= n_branches],
    }
    as_v3 = ir.GraphNode(node.op, node.domain, node.inputs, node.outputs, v3, node.name)
    ensemble = _tree_ensemble_ir(
        as_v3, "target", n_targets, aggregate == "AVERAGE", precision=dtype.name
    )
    return TreeNode(ensemble, dtype.name, None, post)


def _tree_ensemble_ir(
    node, prefix: str, n_scores: int, average: bool, precision: str = "float32"
) -> ir.TreeEnsemble:
    """The IR of an opset-1/3 style tree node; ``precision`` is the split/score dtype."""
    a = node.attrs
    tree_ids = np.asarray(a["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(a["nodes_nodeids"], dtype=np.int64)
    features = np.asarray(a["nodes_featureids"], dtype=np.int64)
    values = np.asarray(a["nodes_values"], dtype=precision).astype(np.float64)
    modes = list(a["nodes_modes"])
    true_ids = np.asarray(a["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(a["nodes_falsenodeids"], dtype=np.int64)
    tracks_true = np.asarray(
        a.get("nodes_missing_value_tracks_true") or [0] * len(node_ids), dtype=bool
    )
    branch_modes = {m for m in modes if m != "LEAF"}
    if branch_modes <= {"BRANCH_LEQ", "BRANCH_GT"}:
        compare = "<="
    elif branch_modes <= {"BRANCH_LT", "BRANCH_GTE"}:
        compare = "<"
    else:
        raise NotSupportedYet(f"tree node modes {sorted(branch_modes)} (node {node.name!r})")
    weights: dict = {}  # (tree, node, target) -> summed weight
    for t, n, k, w in zip(
        a[f"{prefix}_treeids"],
        a[f"{prefix}_nodeids"],
        a[f"{prefix}_ids"],
        a[f"{prefix}_weights"],
        strict=False,
    ):
        key = (int(t), int(n), int(k))
        zero = np.dtype(precision).type(0)
        weights[key] = weights.get(key, zero) + np.dtype(precision).type(w)
    index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=False))}
    a_nodes = (features, values, modes, true_ids, false_ids, tracks_true)
    trees = sorted(set(tree_ids.tolist()))
    parts, tree_class = [], []
    for k in range(n_scores):
        for t in trees:
            order = _tree_order(t, tree_ids, node_ids, true_ids, false_ids, index, modes)
            parts.append(_tree_part(t, k, order, index, a_nodes, weights))
            tree_class.append(k)
    n_features = int(features.max()) + 1 if len(features) else 1
    return ir.TreeEnsemble(
        library="onnx",
        feature_names=tuple(f"f{i}" for i in range(n_features)),
        tree_class=np.asarray(tree_class, dtype=np.int32),
        **node_fields(concat_trees(parts)),
        n_outputs=n_scores,
        init=np.zeros(n_scores, dtype=precision),
        compare=compare,
        input_dtype=precision,
        accumulate_dtype=precision,
        average=average,
        meta={"source": "onnx", "node": node.name},
    )


def _tree_part(t, k, order, index, a_nodes, weights) -> dict:
    """Tree t's node arrays for score k in ``concat_trees``' layout, nodes in ``order`` (root
    first), children local to the tree."""
    features, values, modes, true_ids, false_ids, tracks_true = a_nodes
    local = {nid: i for i, nid in enumerate(order)}
    n = len(order)
    part = {
        "split_feature": np.full(n, -1, dtype=np.int32),
        "threshold": np.zeros(n),
        "left": np.full(n, -1, dtype=np.int32),
        "right": np.full(n, -1, dtype=np.int32),
        "default_left": np.zeros(n, dtype=bool),
        "leaf_value": np.zeros(n),
        "is_categorical": np.zeros(n, dtype=bool),
        "cat_sets": None,
    }
    for j, nid in enumerate(order):
        i = index[(t, nid)]
        if modes[i] == "LEAF":
            part["leaf_value"][j] = float(weights.get((t, nid, k), 0.0))
            continue
        # true branch = left; GT/GTE are the negations of LEQ/LT, so swap the children
        swap = modes[i] in ("BRANCH_GT", "BRANCH_GTE")
        true_child, false_child = local[int(true_ids[i])], local[int(false_ids[i])]
        part["split_feature"][j] = int(features[i])
        part["threshold"][j] = float(values[i])
        part["left"][j] = false_child if swap else true_child
        part["right"][j] = true_child if swap else false_child
        # NaN compares false in onnxruntime and goes to the false branch unless the node's
        # missing value tracks the true branch
        part["default_left"][j] = bool(tracks_true[i]) != swap
    return part


def _tree_order(t, tree_ids, node_ids, true_ids, false_ids, index, modes) -> list:
    """Node ids of tree t, root first (the root is the node no other node points to)."""
    mine = node_ids[tree_ids == t]
    children = set()
    for nid in mine:
        i = index[(t, int(nid))]
        if modes[i] != "LEAF":
            children.update((int(true_ids[i]), int(false_ids[i])))
    roots = [int(n) for n in mine if int(n) not in children]
    if len(roots) != 1:
        raise NmrError(f"ONNX tree {t} has {len(roots)} roots")
    order, stack = [], [roots[0]]
    while stack:
        nid = stack.pop()
        order.append(nid)
        i = index[(t, nid)]
        if modes[i] != "LEAF":
            stack += [int(false_ids[i]), int(true_ids[i])]
    return order
