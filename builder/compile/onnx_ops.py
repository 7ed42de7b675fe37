"""The ONNX op registry: one registration per op, carrying what is supported and both halves.

``SUPPORTED_OPS`` holds one ``OpSupport`` per op: domain, opset range and notes (what
``nmr supported`` and docs/onnx.md print), the build-time ``prepare`` function that normalises a
node's attributes for its opset, and the name of the numpy implementation in
builder/kernels/onnx.py that ships. The kernels stay in builder/kernels (only that package
ships, and it never imports the builder); tests/test_onnx_registry.py checks that every
registration names a kernel op and that every kernel op is registered.

Add an op: write its kernel in builder/kernels/onnx.py (``_OPS``), a ``prepare`` here when it
has attributes to resolve, and one line in ``SUPPORTED_OPS`` (at the bottom: it names the
functions above it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from builder import ir
from builder.errors import NmrError, NotSupportedYet

# the newest opsets whose op definitions were checked against this compiler (onnx 1.23)
AI_ONNX_MAX = 28
AI_ONNX_ML_MAX = 5


def _no_attrs(node, opset, constants):
    return {}, node.inputs


@dataclass(frozen=True)
class OpSupport:
    """One ONNX op nmr evaluates: what is supported and both halves of how.

    ``prepare`` (build time) resolves the opset- and attribute-dependent parts of a node into the
    kernel's normalised attributes: ``(node, opset, constants) -> (attrs, input names)``.
    ``kernel`` names the implementation in builder/kernels/onnx.py (``op_names()``) that runs
    them in the pickle: "" for the op's own name, None for an op the reader drops.
    """

    op: str
    domain: str  # "" is ai.onnx
    min_opset: int
    max_opset: int
    notes: str = ""
    prepare: Callable = _no_attrs
    kernel: str | None = ""

    @property
    def domain_label(self) -> str:
        return self.domain or "ai.onnx"

    @property
    def kernel_op(self) -> str | None:
        return self.op if self.kernel == "" else self.kernel


def _core(op: str, min_opset: int = 7, notes: str = "", **halves) -> OpSupport:
    return OpSupport(op, "", min_opset, AI_ONNX_MAX, notes, **halves)


def _ml(
    op: str, min_opset: int = 1, max_opset: int = AI_ONNX_ML_MAX, notes: str = "", **halves
) -> OpSupport:
    return OpSupport(op, "ai.onnx.ml", min_opset, max_opset, notes, **halves)


# ---------------------------------------------------------------------------------------------
# per-op attribute normalisation: (node, opset, constants) -> (kernel attrs, input names)


def _gemm(node, opset, constants):
    a = node.attrs
    attrs = {
        "alpha": float(a.get("alpha", 1.0)),
        "beta": float(a.get("beta", 1.0)),
        "transA": int(a.get("transA", 0)),
        "transB": int(a.get("transB", 0)),
    }
    return attrs, node.inputs


def _alpha(default):
    def prepare(node, opset, constants):
        return {"alpha": float(node.attrs.get("alpha", default))}, node.inputs

    return prepare


def _selu(node, opset, constants):
    a = node.attrs
    return {
        "alpha": float(a.get("alpha", 1.67326319217681884765625)),
        "gamma": float(a.get("gamma", 1.05070102214813232421875)),
    }, node.inputs


def _softmax(node, opset, constants):
    if opset < 13:
        return {"axis": int(node.attrs.get("axis", 1)), "coerce_2d": True}, node.inputs
    return {"axis": int(node.attrs.get("axis", -1)), "coerce_2d": False}, node.inputs


def _gelu(node, opset, constants):
    return {"approximate": node.attrs.get("approximate", "none")}, node.inputs


def _clip(node, opset, constants):
    if opset >= 11:
        return {}, node.inputs
    lo = np.float32(node.attrs.get("min", -np.inf))
    hi = np.float32(node.attrs.get("max", np.inf))
    lo_name, hi_name = f"{node.outputs[0]}__nmr_min", f"{node.outputs[0]}__nmr_max"
    constants[lo_name], constants[hi_name] = np.asarray(lo), np.asarray(hi)
    return {}, (node.inputs[0], lo_name, hi_name)


def _reduce(axes_attr_until: int):
    def prepare(node, opset, constants):
        a = node.attrs
        axes = a.get("axes") if opset < axes_attr_until else None
        attrs = {
            "axes": tuple(int(x) for x in axes) if axes is not None else None,
            "keepdims": int(a.get("keepdims", 1)),
            "noop_with_empty_axes": int(a.get("noop_with_empty_axes", 0)),
        }
        return attrs, node.inputs

    return prepare


def _layer_normalization(node, opset, constants):
    a = node.attrs
    return {
        "axis": int(a.get("axis", -1)),
        "epsilon": float(a.get("epsilon", 1e-5)),
        "stash_type": int(a.get("stash_type", 1)),
    }, node.inputs


def _batch_normalization(node, opset, constants):
    a = node.attrs
    if int(a.get("training_mode", 0)):
        raise NotSupportedYet(f"BatchNormalization in training mode (node {node.name!r})")
    if opset < 9 and int(a.get("spatial", 1)) != 1:
        raise NotSupportedYet(f"BatchNormalization with spatial=0 (node {node.name!r})")
    if len([o for o in node.outputs if o]) > 1:
        raise NotSupportedYet(f"BatchNormalization with running-statistics outputs ({node.name!r})")
    x, scale, bias, mean, var = node.inputs[:5]
    missing = [n for n in (scale, bias, mean, var) if n not in constants]
    if missing:
        raise NotSupportedYet(
            f"BatchNormalization with non-constant parameters {missing} (node {node.name!r})"
        )
    dtype = constants[scale].dtype
    # onnxruntime folds the same way in the tensor's dtype (batch_norm.h): a = scale / sqrt(var
    # + eps), b = bias - mean * a
    eps = dtype.type(a.get("epsilon", 1e-5))
    factor = constants[scale] / np.sqrt(constants[var] + eps)
    shift = constants[bias] - constants[mean] * factor
    a_name, b_name = f"{node.outputs[0]}__nmr_bn_a", f"{node.outputs[0]}__nmr_bn_b"
    constants[a_name], constants[b_name] = factor.astype(dtype), shift.astype(dtype)
    return {}, (x, a_name, b_name)


def _flatten(node, opset, constants):
    return {"axis": int(node.attrs.get("axis", 1))}, node.inputs


def _reshape(node, opset, constants):
    return {"allowzero": int(node.attrs.get("allowzero", 0))}, node.inputs


def _transpose(node, opset, constants):
    perm = node.attrs.get("perm")
    return {"perm": tuple(int(p) for p in perm) if perm is not None else None}, node.inputs


def _concat(node, opset, constants):
    return {"axis": int(node.attrs["axis"])}, node.inputs


def _axes_attr(node, opset, constants):
    axes = node.attrs.get("axes") if opset < 13 else None
    return {"axes": [int(a) for a in axes] if axes is not None else None}, node.inputs


def _dropout(node, opset, constants):
    if opset >= 12 and len(node.inputs) > 2 and node.inputs[2]:
        training = constants.get(node.inputs[2])
        if training is None or bool(np.asarray(training)):
            raise NotSupportedYet(f"Dropout in training mode (node {node.name!r})")
    if opset < 7 and not int(node.attrs.get("is_test", 0)):
        raise NotSupportedYet(f"Dropout in training mode (node {node.name!r})")
    return {}, node.inputs[:1]


def _cast(node, opset, constants):
    from onnx import helper

    to = np.dtype(helper.tensor_dtype_to_np_dtype(int(node.attrs["to"])))
    if to.kind not in "fiub":
        raise NotSupportedYet(f"Cast to {to} (node {node.name!r})")
    return {"to": to.name}, node.inputs


def _constant(node, opset, constants):
    return {"value": np.asarray(node.attrs["value"])}, ()


def _slice(node, opset, constants):
    if opset >= 10:
        return {}, node.inputs
    a = node.attrs
    names = []
    for key in ("starts", "ends", "axes"):
        if key in a:
            name = f"{node.outputs[0]}__nmr_{key}"
            constants[name] = np.asarray(a[key], dtype=np.int64)
            names.append(name)
    return {}, (node.inputs[0], *names)


def _split(node, opset, constants):
    a = node.attrs
    split = a.get("split") if opset < 13 else None
    num_outputs = int(a.get("num_outputs", len(node.outputs)))
    return {
        "axis": int(a.get("axis", 0)),
        "split": [int(s) for s in split] if split is not None else None,
        "num_outputs": num_outputs,
    }, node.inputs


def _shape(node, opset, constants):
    return {"start": int(node.attrs.get("start", 0)), "end": node.attrs.get("end")}, node.inputs


def _gather(node, opset, constants):
    return {"axis": int(node.attrs.get("axis", 0))}, node.inputs


def _scaler(node, opset, constants):
    a = node.attrs
    return {
        "offset": np.asarray(a.get("offset", [0.0]), dtype=np.float32),
        "scale": np.asarray(a.get("scale", [1.0]), dtype=np.float32),
    }, node.inputs


def _imputer(node, opset, constants):
    a = node.attrs
    if a.get("imputed_value_floats"):
        values = np.asarray(a["imputed_value_floats"], dtype=np.float32)
        replaced = float(a.get("replaced_value_float", 0.0))
    else:
        values = np.asarray(a.get("imputed_value_int64s", [0]), dtype=np.int64)
        replaced = int(a.get("replaced_value_int64", 0))
    return {"imputed_values": values, "replaced_value": replaced}, node.inputs


def _normalizer(node, opset, constants):
    return {"norm": node.attrs.get("norm", "MAX")}, node.inputs


def _linear(node, opset, constants):
    """LinearRegressor / LinearClassifier: scores = X @ coefficients.T + intercepts, float32."""
    a = node.attrs
    post = a.get("post_transform", "NONE")
    allowed = ("NONE",) if node.op == "LinearRegressor" else ("NONE", "LOGISTIC", "SOFTMAX")
    if post not in allowed:
        raise NotSupportedYet(f"{node.op} post_transform {post} (node {node.name!r})")
    intercepts = np.asarray(a.get("intercepts", [0.0]), dtype=np.float32)
    coefficients = np.asarray(a["coefficients"], dtype=np.float32)
    if node.op == "LinearRegressor":
        n_scores = int(a.get("targets", 1))
    else:
        labels = a.get("classlabels_ints") or a.get("classlabels_strings")
        n_scores = len(labels)
        if coefficients.size // max(len(intercepts), 1) * n_scores != coefficients.size:
            # onnxruntime expands a single binary score row into two columns; not modelled
            raise NotSupportedYet(f"LinearClassifier with one score row for {n_scores} classes")
    attrs = {
        "coefficients": np.ascontiguousarray(coefficients.reshape(n_scores, -1).T),
        "intercepts": np.broadcast_to(intercepts, (n_scores,)).astype(np.float32),
        "post_transform": post,
    }
    if node.op == "LinearClassifier":
        attrs["labels"] = np.asarray(labels)
    return attrs, node.inputs


def _tree_op(node, opset, constants):
    """ai.onnx.ml tree ensembles -> builder.ir.TreeEnsemble -> the tree compiler's evaluator.

    onnxruntime semantics (tree_ensemble_aggregator.h): float32 thresholds and float32 score
    accumulation in tree order, base_values added after aggregation, then post_transform.
    """
    from builder.compile.trees import compile_trees

    if node.op == "TreeEnsemble":
        return _tree_ensemble5(node, opset, constants)
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
    attrs = {
        "evaluator": compile_trees(ensemble),
        "n_features": len(ensemble.feature_names),
        "dtype": "float32",
        "base_values": base,
        "post_transform": post,
    }
    if node.op == "TreeEnsembleClassifier":
        weights = np.asarray(a["class_weights"], dtype=np.float32)
        attrs.update(
            binary_column=binary_column,
            binary_complement=bool((weights >= 0).all()),
            labels=np.asarray(labels),
        )
    return attrs, node.inputs


# ai.onnx.ml opset 5 TreeEnsemble encodes enums as integers (onnx/defs/traditionalml/defs.cc)
_TREE5_MODES = {0: "BRANCH_LEQ", 1: "BRANCH_LT", 2: "BRANCH_GTE", 3: "BRANCH_GT"}
_TREE5_AGGREGATE = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
_TREE5_POST = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}


def _tree_ensemble5(node, opset, constants):
    """TreeEnsemble (ai.onnx.ml 5): leaves in their own arrays, splits typed like the input."""
    from builder.compile.trees import compile_trees

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
    attrs = {
        "evaluator": compile_trees(ensemble),
        "n_features": len(ensemble.feature_names),
        "dtype": dtype.name,
        "base_values": None,
        "post_transform": post,
    }
    return attrs, node.inputs


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
    trees = sorted(set(tree_ids.tolist()))
    columns: dict = {
        key: [] for key in ("feature", "threshold", "left", "right", "default_left", "leaf")
    }
    offsets, tree_class = [0], []
    for k in range(n_scores):
        for t in trees:
            order = _tree_order(t, tree_ids, node_ids, true_ids, false_ids, index, modes)
            local = {nid: i for i, nid in enumerate(order)}
            for nid in order:
                i = index[(t, nid)]
                if modes[i] == "LEAF":
                    columns["feature"].append(-1)
                    columns["threshold"].append(0.0)
                    columns["left"].append(-1)
                    columns["right"].append(-1)
                    columns["default_left"].append(False)
                    columns["leaf"].append(float(weights.get((t, nid, k), 0.0)))
                    continue
                # true branch = left; GT/GTE are the negations of LEQ/LT, so swap the children
                swap = modes[i] in ("BRANCH_GT", "BRANCH_GTE")
                true_child, false_child = local[int(true_ids[i])], local[int(false_ids[i])]
                columns["feature"].append(int(features[i]))
                columns["threshold"].append(float(values[i]))
                columns["left"].append(false_child if swap else true_child)
                columns["right"].append(true_child if swap else false_child)
                # NaN compares false in onnxruntime and goes to the false branch unless the
                # node's missing value tracks the true branch
                columns["default_left"].append(bool(tracks_true[i]) != swap)
                columns["leaf"].append(0.0)
            offsets.append(offsets[-1] + len(order))
            tree_class.append(k)
    n_nodes = offsets[-1]
    n_features = int(features.max()) + 1 if len(features) else 1
    init = np.zeros(n_scores, dtype=precision)
    return ir.TreeEnsemble(
        library="onnx",
        feature_names=tuple(f"f{i}" for i in range(n_features)),
        tree_offsets=np.asarray(offsets, dtype=np.int64),
        tree_class=np.asarray(tree_class, dtype=np.int32),
        split_feature=np.asarray(columns["feature"], dtype=np.int32),
        threshold=np.asarray(columns["threshold"], dtype=np.float64),
        left_child=np.asarray(columns["left"], dtype=np.int32),
        right_child=np.asarray(columns["right"], dtype=np.int32),
        default_left=np.asarray(columns["default_left"], dtype=bool),
        nan_as_zero=np.zeros(n_nodes, dtype=bool),
        zero_as_missing=np.zeros(n_nodes, dtype=bool),
        leaf_value=np.asarray(columns["leaf"], dtype=np.float64),
        n_outputs=n_scores,
        init=init,
        compare=compare,
        input_dtype=precision,
        accumulate_dtype=precision,
        average=average,
        meta={"source": "onnx", "node": node.name},
    )


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


# ---------------------------------------------------------------------------------------------
# the registry

SUPPORTED_OPS: tuple[OpSupport, ...] = (
    _core("Gemm", notes="alpha, beta, transA, transB", prepare=_gemm),
    _core("MatMul", 1, "numpy matmul (BLAS sgemm)"),
    _core("Add"),
    _core("Sub"),
    _core("Mul"),
    _core("Div", notes="integer division truncates toward zero"),
    _core("Neg"),
    _core("Abs"),
    _core("Sqrt"),
    _core("Pow", notes="exponent 2 is squared exactly"),
    _core("Exp"),
    _core("Log"),
    _core("Relu"),
    _core("LeakyRelu", prepare=_alpha(0.01)),
    _core("Elu", notes="alpha * (exp(x) - 1) in float32, as onnxruntime", prepare=_alpha(1.0)),
    _core("Selu", prepare=_selu),
    _core("Sigmoid", notes="stable form, float64 then rounded"),
    _core("Tanh"),
    _core("Softmax", 1, "opset < 13 coerces to 2-D at axis", prepare=_softmax),
    _core("LogSoftmax", 1, "opset < 13 coerces to 2-D at axis", prepare=_softmax),
    _core("Erf", 9, "vectorized, within 1 float32 ulp of math.erf"),
    _core("Gelu", 20, "approximate none and tanh", prepare=_gelu),
    _core("Softplus"),
    _core("Clip", 6, "min/max as attributes (< 11) or inputs", prepare=_clip),
    _core("ReduceMean", 1, "axes as attribute (< 18) or input", prepare=_reduce(18)),
    _core("ReduceSum", 1, "axes as attribute (< 13) or input", prepare=_reduce(13)),
    _core(
        "LayerNormalization", 17, "float64 statistics, rounded once", prepare=_layer_normalization
    ),
    _core(
        "BatchNormalization",
        7,
        "inference only; folded to x * a + b at build time",
        prepare=_batch_normalization,
    ),
    _core("Flatten", 1, prepare=_flatten),
    _core("Reshape", 5, "allowzero; batch-size arithmetic folded at build time", prepare=_reshape),
    _core("Transpose", 1, prepare=_transpose),
    _core("Concat", 4, prepare=_concat),
    _core("Squeeze", 1, "axes as attribute (< 13) or input", prepare=_axes_attr),
    _core("Unsqueeze", 1, "axes as attribute (< 13) or input", prepare=_axes_attr),
    _core("Identity", 1),
    _core("Dropout", 7, "inference: identity", prepare=_dropout),
    _core("Cast", 6, "numeric types", prepare=_cast),
    _core("Constant", 1, "folded at build time", prepare=_constant),
    _core("Slice", 1, "starts/ends as attributes (< 10) or inputs", prepare=_slice),
    _core("Split", 2, "split as attribute (< 13), input, or num_outputs (18)", prepare=_split),
    _core("Where", 9),
    _core("Min", 8),
    _core("Max", 8),
    _core(
        "Shape", 1, "folded at build time where the batch size is the only unknown", prepare=_shape
    ),
    _core("Gather", 1, "shape arithmetic", prepare=_gather),
    _ml("Scaler", notes="(x - offset) * scale, float32 output", prepare=_scaler),
    _ml("Imputer", notes="float and int64 replacement values", prepare=_imputer),
    _ml("Normalizer", notes="MAX, L1, L2", prepare=_normalizer),
    _ml("ZipMap", notes="dropped: predictions are the probability tensor", kernel=None),
    _ml("LinearRegressor", notes="post_transform NONE", prepare=_linear),
    _ml(
        "LinearClassifier",
        notes="post_transform NONE, LOGISTIC, SOFTMAX; one score per class",
        prepare=_linear,
    ),
    _ml(
        "TreeEnsemble",
        5,
        notes="float/double splits, LEQ/LT/GTE/GT, SUM/AVERAGE; via the tree compiler's kernels",
        prepare=_tree_op,
    ),
    _ml(
        "TreeEnsembleRegressor",
        max_opset=4,
        notes="SUM/AVERAGE, NONE/LOGISTIC/SOFTMAX; via the tree compiler's kernels",
        prepare=_tree_op,
    ),
    _ml(
        "TreeEnsembleClassifier",
        max_opset=4,
        notes="SUM/AVERAGE, NONE/LOGISTIC/SOFTMAX; via the tree compiler's kernels",
        prepare=_tree_op,
    ),
)
