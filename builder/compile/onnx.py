"""ONNX compiler: a folded ``builder.ir.Graph`` -> ``builder.kernels.onnx.OnnxGraphEvaluator``.

The registry ``SUPPORTED_OPS`` (builder/compile/onnx_ops.py, one registration per op with its
build-time preparation and the kernel op it runs) is data: which ops (domain, opset range) nmr
evaluates. The build refuses any other op, naming the op, the node and the opset, and the op
table of docs/onnx.md is generated from the same tuple (builder/supported.py, written by
scripts/make_readme.py).

Compiling resolves everything that depends on the opset or on attribute defaults, so the
shipped kernel sees one normalised form per op, and plans the run: tensors are dropped after
their last use, and elementwise ops overwrite an input that nothing reads afterwards.
"""

from __future__ import annotations

import numpy as np

from builder import ir
from builder.compile.onnx_ops import SUPPORTED_OPS, OpSupport
from builder.errors import NmrError, NotSupportedYet
from builder.kernels.onnx import OnnxGraphEvaluator

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
        opset = graph.opsets.get(node.domain, 1)
        attrs, inputs = support.prepare(node, opset, constants)
        steps.append([support.kernel_op, tuple(inputs), tuple(node.outputs), attrs])
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
