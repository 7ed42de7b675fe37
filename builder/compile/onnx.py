"""ONNX compiler: a folded ``builder.ir.Graph`` -> ``builder.kernels.onnx.OnnxGraphEvaluator``.

The registry ``SUPPORTED_OPS`` is data: which ops (domain, opset range) nmr evaluates. The
build refuses any other op, naming the op, the node and the opset, and the README's op table
is generated from the same tuple (``python -m builder.compile.onnx --markdown``).

Compiling resolves everything that depends on the opset or on attribute defaults, so the
shipped kernel sees one normalised form per op, and plans the run: tensors are dropped after
their last use, and elementwise ops overwrite an input that nothing reads afterwards.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builder import ir
from builder.errors import NmrError, NotSupportedYet
from builder.kernels.onnx import OnnxGraphEvaluator, op_names

# the newest opsets whose op definitions were checked against this compiler (onnx 1.23)
AI_ONNX_MAX = 28
AI_ONNX_ML_MAX = 5


@dataclass(frozen=True)
class OpSupport:
    op: str
    domain: str  # "" is ai.onnx
    min_opset: int
    max_opset: int
    notes: str = ""

    @property
    def domain_label(self) -> str:
        return self.domain or "ai.onnx"


def _core(op: str, min_opset: int = 7, notes: str = "") -> OpSupport:
    return OpSupport(op, "", min_opset, AI_ONNX_MAX, notes)


def _ml(op: str, min_opset: int = 1, max_opset: int = AI_ONNX_ML_MAX, notes: str = "") -> OpSupport:
    return OpSupport(op, "ai.onnx.ml", min_opset, max_opset, notes)


SUPPORTED_OPS: tuple[OpSupport, ...] = (
    _core("Gemm", notes="alpha, beta, transA, transB"),
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
    _core("LeakyRelu"),
    _core("Elu", notes="alpha * (exp(x) - 1) in float32, as onnxruntime"),
    _core("Selu"),
    _core("Sigmoid", notes="stable form, float64 then rounded"),
    _core("Tanh"),
    _core("Softmax", 1, "opset < 13 coerces to 2-D at axis"),
    _core("LogSoftmax", 1, "opset < 13 coerces to 2-D at axis"),
    _core("Erf", 9, "vectorized, within 1 float32 ulp of math.erf"),
    _core("Gelu", 20, "approximate none and tanh"),
    _core("Softplus"),
    _core("Clip", 6, "min/max as attributes (< 11) or inputs"),
    _core("ReduceMean", 1, "axes as attribute (< 18) or input"),
    _core("ReduceSum", 1, "axes as attribute (< 13) or input"),
    _core("LayerNormalization", 17, "float64 statistics, rounded once"),
    _core("BatchNormalization", 7, "inference only; folded to x * a + b at build time"),
    _core("Flatten", 1),
    _core("Reshape", 5, "allowzero; batch-size arithmetic folded at build time"),
    _core("Transpose", 1),
    _core("Concat", 4),
    _core("Squeeze", 1, "axes as attribute (< 13) or input"),
    _core("Unsqueeze", 1, "axes as attribute (< 13) or input"),
    _core("Identity", 1),
    _core("Dropout", 7, "inference: identity"),
    _core("Cast", 6, "numeric types"),
    _core("Constant", 1, "folded at build time"),
    _core("Slice", 1, "starts/ends as attributes (< 10) or inputs"),
    _core("Split", 2, "split as attribute (< 13), input, or num_outputs (18)"),
    _core("Where", 9),
    _core("Min", 8),
    _core("Max", 8),
    _core("Shape", 1, "folded at build time where the batch size is the only unknown"),
    _core("Gather", 1, "shape arithmetic"),
    _ml("Scaler", notes="(x - offset) * scale, float32 output"),
    _ml("Imputer", notes="float and int64 replacement values"),
    _ml("Normalizer", notes="MAX, L1, L2"),
    _ml("ZipMap", notes="dropped: predictions are the probability tensor"),
    _ml("TreeEnsembleRegressor", max_opset=5, notes="through the tree compiler's kernels"),
    _ml("TreeEnsembleClassifier", max_opset=5, notes="through the tree compiler's kernels"),
    _ml("TreeEnsemble", 5, notes="through the tree compiler's kernels"),
)

_REGISTRY = {(s.domain, s.op): s for s in SUPPORTED_OPS}

# ops whose output may be a view of (or the same array as) their first input
_VIEW_OPS = {
    "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Slice",
    "Split", "Clip", "ReduceMean", "ReduceSum",
}  # fmt: skip
_INPLACE_UNARY = {"Neg", "Abs", "Sqrt", "Exp", "Log", "Relu", "Tanh"}
_INPLACE_BINARY = {"Add", "Sub", "Mul", "Div"}


def compile_graph(graph: ir.Graph) -> OnnxGraphEvaluator:
    """The numpy evaluator for a folded graph; unsupported ops raise NotSupportedYet."""
    constants = dict(graph.initializers)
    steps = []
    for node in graph.nodes:
        support = supported_op(node.op, node.domain, graph.opsets.get(node.domain, 1))
        if support is None:
            opset = graph.opsets.get(node.domain, "?")
            label = f"{node.domain}::{node.op}" if node.domain else node.op
            raise NotSupportedYet(f"ONNX op {label} (node {node.name!r}, opset {opset})")
        prepare = _PREPARE.get(node.op, _no_attrs)
        opset = graph.opsets.get(node.domain, 1)
        attrs, inputs = prepare(node, opset, constants)
        steps.append([node.op, tuple(inputs), tuple(node.outputs), attrs])
    output_name = graph.output_names[0]
    planned = _plan(steps, constants, graph.input_name, output_name)
    evaluator = OnnxGraphEvaluator(
        feature_names=graph.feature_names,
        n_outputs=graph.meta.get("n_outputs") or 0,
        task=graph.task,
        input_name=graph.input_name,
        input_dtype=graph.meta.get("input_dtype", "float32"),
        input_width=graph.input_width,
        output_name=output_name,
        steps=planned,
        constants={k: v for k, v in constants.items() if _is_used(k, planned)},
    )
    _settle_width(evaluator, graph)
    return evaluator


def supported_op(op: str, domain: str, opset: int) -> OpSupport | None:
    """The registry entry covering ``op`` at ``opset``, or None."""
    support = _REGISTRY.get((domain, op))
    if support is None or not support.min_opset <= opset <= support.max_opset:
        return None
    return support


def op_table_markdown() -> str:
    """The README table of supported ops, generated from SUPPORTED_OPS."""
    lines = ["| op | domain | opsets | notes |", "|---|---|---|---|"]
    for s in sorted(SUPPORTED_OPS, key=lambda s: (s.domain, s.op)):
        lines.append(f"| {s.op} | {s.domain_label} | {s.min_opset}–{s.max_opset} | {s.notes} |")
    return "\n".join(lines) + "\n"


TABLE_BEGIN = (
    "<!-- onnx-op-table:begin (generated by python -m builder.compile.onnx --markdown) -->"
)
TABLE_END = "<!-- onnx-op-table:end -->"


def write_op_table(path: Path) -> None:
    """Replace the generated block between TABLE_BEGIN and TABLE_END in a markdown file."""
    text = path.read_text()
    head, sep, rest = text.partition(TABLE_BEGIN)
    _, sep2, tail = rest.partition(TABLE_END)
    if not sep or not sep2:
        raise NmrError(f"{path}: no generated op-table markers")
    path.write_text(f"{head}{TABLE_BEGIN}\n{op_table_markdown()}{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder.compile.onnx")
    parser.add_argument("--markdown", action="store_true", help="print the supported-op table")
    parser.add_argument("--write", type=Path, help="update the table inside this markdown file")
    args = parser.parse_args(argv)
    if args.write:
        write_op_table(args.write)
    elif args.markdown:
        sys.stdout.write(op_table_markdown())
    else:
        parser.print_help()
    return 0


# ---------------------------------------------------------------------------------------------
# planning: liveness and in-place reuse


def _plan(steps: list, constants: dict, input_name: str, output_name: str) -> tuple:
    last_use: dict = {}
    for i, (_, inputs, outputs, _) in enumerate(steps):
        for name in inputs:
            if name:
                last_use[name] = i
        for name in outputs:
            last_use.setdefault(name, i)  # produced and never read: dead at once
    root: dict = {}
    for op, inputs, outputs, _ in steps:
        for name in outputs:
            root[name] = root.get(inputs[0], inputs[0]) if op in _VIEW_OPS and inputs else name
    members: dict = {}
    for name, r in root.items():
        members.setdefault(r, []).append(name)

    def reusable(name: str, i: int) -> bool:
        r = root.get(name)
        if r is None or r in constants or r == input_name:
            return False
        group = members.get(r, []) + [r]
        return all(last_use.get(g, -1) <= i and g != output_name for g in group)

    planned = []
    for i, (op, inputs, outputs, attrs) in enumerate(steps):
        if (op in _INPLACE_UNARY or op in _INPLACE_BINARY) and inputs and reusable(inputs[0], i):
            attrs = {**attrs, "inplace": True}
        dead = tuple(
            name
            for name in dict.fromkeys([*inputs, *outputs])
            if name
            and name not in constants
            and name != input_name
            and name != output_name
            and last_use.get(name) == i
        )
        planned.append((op, inputs, outputs, attrs, dead))
    return tuple(planned)


def _is_used(name: str, steps: tuple) -> bool:
    return any(name in inputs for _, inputs, _, _, _ in steps)


def _settle_width(evaluator: OnnxGraphEvaluator, graph: ir.Graph) -> None:
    """Run the graph on two zero rows: checks it runs, and fixes n_outputs and the task."""
    width = graph.input_width
    if width is None:
        if not evaluator.n_outputs:
            raise NmrError(
                f"{graph.meta.get('source', 'ONNX model')}: the input width is not fixed in the "
                "graph; list the model's features so nmr can bind them"
            )
        return
    try:
        y = evaluator.predict(np.zeros((2, width), dtype=evaluator.input_dtype))
    except Exception as error:
        raise NmrError(
            f"{graph.meta.get('source', 'ONNX model')}: the compiled graph fails on a 2-row "
            f"batch ({type(error).__name__}: {error})"
        ) from None
    evaluator.n_outputs = int(y.shape[1])
    if graph.meta.get("classifier"):
        evaluator.task = "binary" if evaluator.n_outputs == 2 else "multiclass"


# ---------------------------------------------------------------------------------------------
# per-op attribute normalisation: (node, opset, constants) -> (kernel attrs, input names)


def _no_attrs(node, opset, constants):
    return {}, node.inputs


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


def _tree_op(node, opset, constants):
    from builder.compile.onnx_trees import prepare_tree_op

    return prepare_tree_op(node, opset, constants)


_PREPARE = {
    "Gemm": _gemm,
    "LeakyRelu": _alpha(0.01),
    "Elu": _alpha(1.0),
    "Selu": _selu,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Gelu": _gelu,
    "Clip": _clip,
    "ReduceMean": _reduce(18),
    "ReduceSum": _reduce(13),
    "LayerNormalization": _layer_normalization,
    "BatchNormalization": _batch_normalization,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Squeeze": _axes_attr,
    "Unsqueeze": _axes_attr,
    "Dropout": _dropout,
    "Cast": _cast,
    "Constant": _constant,
    "Slice": _slice,
    "Split": _split,
    "Shape": _shape,
    "Gather": _gather,
    "Scaler": _scaler,
    "Imputer": _imputer,
    "Normalizer": _normalizer,
    "TreeEnsemble": _tree_op,
    "TreeEnsembleRegressor": _tree_op,
    "TreeEnsembleClassifier": _tree_op,
}

# every registered op except ZipMap (dropped by the reader) must have a kernel
assert {s.op for s in SUPPORTED_OPS} - {"ZipMap"} <= set(op_names()), "registry/kernel mismatch"


if __name__ == "__main__":
    raise SystemExit(main())
