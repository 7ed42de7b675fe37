"""Shared helpers for the ONNX compiler tests: tiny graph builders and the fidelity metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from builder.artifacts import onnx as onnx_reader
from builder.compile.onnx import compile_graph

FIXTURES = Path(__file__).parent / "fixtures" / "onnx"


def max_relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    """max |ours - ref| / max(|ref|, rms(ref)), elementwise.

    Elementwise relative error is meaningless for outputs that are ~0 by cancellation (any two
    float32 summation orders differ there), so values smaller than the output's RMS are
    measured against the RMS instead.
    """
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    rms = float(np.sqrt(np.mean(np.square(reference)))) or 1.0
    return float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), rms)))


def single_node_model(
    op: str,
    width: int = 6,
    extra_inputs: dict | None = None,
    domain: str = "",
    opset: int = 17,
    ml_opset: int = 3,
    input_type: int = TensorProto.FLOAT,
    n_outputs: int = 1,
    **attrs,
) -> onnx.ModelProto:
    """A graph x -> op(x, *extra constant inputs) -> y, with a dynamic batch dimension."""
    extra_inputs = extra_inputs or {}
    initializers = [
        numpy_helper.from_array(np.asarray(v), name) for name, v in extra_inputs.items()
    ]
    outputs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, ["x", *extra_inputs], outputs, domain=domain or None, **attrs)
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", input_type, ["N", width])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    if domain == "ai.onnx.ml":
        opsets.append(helper.make_opsetid("ai.onnx.ml", ml_opset))
    return helper.make_model(graph, opset_imports=opsets)


def mlp_model(sizes, activation: str = "Relu", seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """A Gemm/activation MLP with seeded random weights, built with onnx.helper directly."""
    rng = np.random.default_rng(seed)
    nodes, initializers, previous = [], [], "x"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        weight = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        bias = (rng.normal(size=n_out) * 0.1).astype(np.float32)
        initializers += [
            numpy_helper.from_array(weight, f"W{i}"),
            numpy_helper.from_array(bias, f"B{i}"),
        ]
        nodes.append(helper.make_node("Gemm", [previous, f"W{i}", f"B{i}"], [f"h{i}"], transB=1))
        previous = f"h{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node(activation, [previous], [f"a{i}"]))
            previous = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["N", sizes[-1]])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def ours_and_onnxruntime(
    model_or_path, X: np.ndarray, tmp_path: Path | None = None, feature_names=None
):
    """(our predictions, onnxruntime's) for a model proto or a .onnx path."""
    if isinstance(model_or_path, onnx.ModelProto):
        path = Path(tmp_path) / "model.onnx"
        onnx.save(model_or_path, str(path))
    else:
        path = Path(model_or_path)
    evaluator = compile_graph(onnx_reader.read(path, feature_names))
    return evaluator.predict(X), onnx_reader.native_predict(path, X, feature_names)


def order_violation(ours: np.ndarray, reference: np.ndarray) -> float:
    """The largest amount by which the reference disagrees with the order our output implies.

    Sort rows by our prediction; the reference must then be non-decreasing except for swaps
    of values closer than rounding. Returns max over rows of (max of earlier reference values
    - this reference value), 0.0 when the two orders agree exactly (ties included).
    """
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    in_our_order = reference[np.lexsort((reference, ours))]
    running_max = np.maximum.accumulate(in_our_order)
    return float(np.max(running_max - in_our_order))


def float32_ulp(values: np.ndarray) -> float:
    """One float32 ulp at the largest magnitude in values."""
    return float(np.spacing(np.float32(np.max(np.abs(values)))))
