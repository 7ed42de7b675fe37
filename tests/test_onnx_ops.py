"""Every registered op, alone in a graph, matches onnxruntime (float32, max relative 1e-5)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from builder.artifacts import onnx as onnx_reader
from builder.compile.onnx import compile_graph
from tests.onnx_helpers import max_relative_difference

RNG = np.random.default_rng(7)
W6 = RNG.normal(size=6).astype(np.float32)
POSITIVE = np.abs(W6) + np.float32(0.5)


def _graph(nodes, initializers=None, opset=17, ml=False, width=6, in_type=TensorProto.FLOAT):
    out = nodes[-1].output[0]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", in_type, ["N", width])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset)] + (
        [helper.make_opsetid("ai.onnx.ml", 3)] if ml else []
    )
    return helper.make_model(graph, opset_imports=opsets)


def _node(op, inputs=("x",), out="y", **attrs):
    domain = "ai.onnx.ml" if op in ("Scaler", "Imputer", "Normalizer") else None
    return helper.make_node(op, list(inputs), [out], domain=domain, **attrs)


def _unary(op, opset=17, **attrs):
    return _graph([_node(op, **attrs)], opset=opset)


def _with_const(op, value, opset=17, **attrs):
    return _graph([_node(op, ("x", "c"), **attrs)], {"c": value}, opset=opset)


CASES = {
    "Relu": _unary("Relu"),
    "Neg": _unary("Neg"),
    "Abs": _unary("Abs"),
    "Exp": _unary("Exp"),
    "Tanh": _unary("Tanh"),
    "Sigmoid": _unary("Sigmoid"),
    "Erf": _unary("Erf"),
    "Softplus": _unary("Softplus"),
    "Identity": _unary("Identity"),
    "Sqrt": _graph([_node("Abs", out="a"), _node("Sqrt", ("a",))]),
    "Log": _graph(
        [_node("Abs", out="a"), _node("Add", ("a", "c"), out="b"), _node("Log", ("b",))],
        {"c": POSITIVE},
    ),
    "LeakyRelu": _unary("LeakyRelu", alpha=0.2),
    "Elu": _unary("Elu", alpha=0.7),
    "Selu": _unary("Selu"),
    "Softmax-13": _unary("Softmax", axis=1),
    "Softmax-11": _unary("Softmax", opset=11),
    "LogSoftmax-13": _unary("LogSoftmax"),
    "LogSoftmax-11": _unary("LogSoftmax", opset=11),
    "Gelu-none": _unary("Gelu", opset=20),
    "Gelu-tanh": _unary("Gelu", opset=20, approximate="tanh"),
    "Clip-11": _graph(
        [_node("Clip", ("x", "lo", "hi"))], {"lo": np.float32(-0.5), "hi": np.float32(0.7)}
    ),
    "Clip-6": _unary("Clip", opset=6, min=-0.5, max=0.7),
    "Pow-2": _with_const("Pow", np.float32(2.0)),
    "Pow-3": _with_const("Pow", np.float32(3.0)),
    "Add": _with_const("Add", W6),
    "Sub": _with_const("Sub", W6),
    "Mul": _with_const("Mul", W6),
    "Div": _with_const("Div", POSITIVE),
    "Min": _with_const("Min", W6),
    "Max": _with_const("Max", W6),
    "MatMul": _with_const("MatMul", RNG.normal(size=(6, 3)).astype(np.float32)),
    "Gemm": _graph(
        [_node("Gemm", ("x", "w", "c"), alpha=0.5, beta=2.0, transB=1)],
        {
            "w": RNG.normal(size=(3, 6)).astype(np.float32),
            "c": RNG.normal(size=3).astype(np.float32),
        },
    ),
    "ReduceMean-17": _unary("ReduceMean", axes=[1]),
    "ReduceMean-18": _with_const("ReduceMean", np.array([1], np.int64), opset=18),
    "ReduceSum-13": _with_const("ReduceSum", np.array([1], np.int64), keepdims=0),
    "ReduceSum-11": _unary("ReduceSum", opset=11, axes=[1]),
    "LayerNormalization": _graph(
        [_node("LayerNormalization", ("x", "s", "b"), epsilon=1e-3)],
        {"s": POSITIVE, "b": W6},
    ),
    "BatchNormalization": _graph(
        [_node("BatchNormalization", ("x", "s", "b", "m", "v"), epsilon=1e-3)],
        {"s": POSITIVE, "b": W6, "m": W6[::-1].copy(), "v": POSITIVE[::-1].copy()},
    ),
    "Flatten": _graph(
        [_node("Unsqueeze", ("x", "ax"), out="u"), _node("Flatten", ("u",))],
        {"ax": np.array([1], np.int64)},
    ),
    "Reshape": _with_const("Reshape", np.array([0, 2, 3], np.int64)),
    "Transpose": _graph(
        [_node("Transpose", perm=[1, 0], out="t"), _node("Transpose", ("t",), perm=[1, 0])]
    ),
    "Concat": _graph([_node("Concat", ("x", "x"), axis=1)]),
    "Squeeze-13": _graph(
        [_node("Unsqueeze", ("x", "ax"), out="u"), _node("Squeeze", ("u", "ax"))],
        {"ax": np.array([2], np.int64)},
    ),
    "Squeeze-11": _graph(
        [_node("Unsqueeze", axes=[2], out="u"), _node("Squeeze", ("u",), axes=[2])], opset=11
    ),
    "Dropout": _unary("Dropout"),
    "Cast": _graph(
        [_node("Cast", to=TensorProto.DOUBLE, out="d"), _node("Cast", ("d",), to=TensorProto.FLOAT)]
    ),
    "Slice-13": _graph(
        [_node("Slice", ("x", "s", "e", "a"))],
        {"s": np.array([1], np.int64), "e": np.array([5], np.int64), "a": np.array([1], np.int64)},
    ),
    "Slice-9": _unary("Slice", opset=9, starts=[1], ends=[5], axes=[1]),
    "Split-13": _graph(
        [helper.make_node("Split", ["x", "sp"], ["p", "q"], axis=1), _node("Mul", ("p", "q"))],
        {"sp": np.array([3, 3], np.int64)},
    ),
    "Split-18": _graph(
        [
            helper.make_node("Split", ["x"], ["p", "q"], axis=1, num_outputs=2),
            _node("Sub", ("p", "q")),
        ],
        opset=18,
    ),
    "Where": _graph([_node("Where", ("c", "x", "w"))], {"c": W6 > 0, "w": W6}),
    "Scaler": _graph([_node("Scaler", offset=W6.tolist(), scale=POSITIVE.tolist())], ml=True),
    "Imputer": _graph(
        [_node("Imputer", imputed_value_floats=W6.tolist(), replaced_value_float=float("nan"))],
        ml=True,
    ),
    "Normalizer-L1": _graph([_node("Normalizer", norm="L1")], ml=True),
    "Normalizer-L2": _graph([_node("Normalizer", norm="L2")], ml=True),
    "Normalizer-MAX": _graph([_node("Normalizer", norm="MAX")], ml=True),
}


def _inputs(n_rows=64):
    X = RNG.normal(scale=2.0, size=(n_rows, 6)).astype(np.float32)
    X[0] = 0.0
    X[1, :3] = np.nan  # only the Imputer case sees NaN rows (sliced off for the others)
    return X


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case, tmp_path):
    model = CASES[case]
    path = tmp_path / "op.onnx"
    onnx.save(model, str(path))
    X = _inputs()
    if not case.startswith("Imputer"):
        X = X[2:]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (reference,) = session.run(None, {"x": X})
    evaluator = compile_graph(onnx_reader.read(path))
    ours = evaluator.run(X)
    assert ours.shape == reference.shape
    assert ours.dtype == reference.dtype
    assert max_relative_difference(ours, reference) <= 1e-5


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_softmax_before_opset_13_flattens_3d_input_at_axis_as_onnxruntime_does(op, axis, tmp_path):
    # opset < 13: the input is coerced to 2-D (prod(shape[:axis]), prod(shape[axis:])) and the
    # softmax runs over the whole second dimension, not only along `axis`
    model = _graph(
        [_node("Reshape", ("x", "shape"), out="cube"), _node(op, ("cube",), axis=axis)],
        {"shape": np.array([0, 2, 3], np.int64)},
        opset=11,
    )
    path = tmp_path / "op.onnx"
    onnx.save(model, str(path))
    X = _inputs()[2:]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (reference,) = session.run(None, {"x": X})
    ours = compile_graph(onnx_reader.read(path)).run(X)
    assert ours.shape == reference.shape == (len(X), 2, 3)
    assert max_relative_difference(ours, reference) <= 1e-5
