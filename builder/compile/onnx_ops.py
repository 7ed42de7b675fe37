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

from builder.errors import NotSupportedYet

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
    """ai.onnx.ml tree ensembles: the reader's IR (builder/artifacts/onnx_trees.py) compiled by
    the tree compiler, plus what the kernel applies after the trees (base values, transform)."""
    from builder.artifacts.onnx_trees import read_tree_node
    from builder.compile.trees import compile_trees

    tree = read_tree_node(node)
    attrs = {
        "evaluator": compile_trees(tree.ensemble),
        "n_features": len(tree.ensemble.feature_names),
        "dtype": tree.dtype,
        "base_values": tree.base_values,
        "post_transform": tree.post_transform,
    }
    if node.op == "TreeEnsembleClassifier":
        attrs.update(
            binary_column=tree.binary_column,
            binary_complement=tree.binary_complement,
            labels=tree.labels,
        )
    return attrs, node.inputs


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
