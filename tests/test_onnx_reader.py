"""Reading ONNX files: binding, folding, refusals with the place named, shipping by value."""

from __future__ import annotations

import subprocess
import sys

import cloudpickle
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import builder.kernels.onnx as onnx_kernel
from builder.artifacts import onnx as onnx_reader
from builder.compile import compile_artifact
from builder.compile.onnx import compile_graph
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from tests.onnx_helpers import max_relative_difference, mlp_model, ours_and_onnxruntime


def _save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _model(
    nodes, initializers=(), inputs=None, opset=17, out="y", in_type=TensorProto.FLOAT, width=6
):
    inputs = inputs or [helper.make_tensor_value_info("x", in_type, ["N", width])]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def test_input_width_must_equal_feature_count(tmp_path):
    path = _save(mlp_model([6, 4, 1]), tmp_path)
    with pytest.raises(NmrError, match=r"6 features wide.*feature list has 5 names"):
        onnx_reader.read(path, [f"f{i}" for i in range(5)])


def test_unsupported_op_names_op_node_and_opset(tmp_path):
    node = helper.make_node("HardSigmoid", ["x"], ["y"], name="gate_3")
    path = _save(_model([node]), tmp_path)
    with pytest.raises(
        NotSupportedYet, match=r"not supported yet: ONNX op HardSigmoid \(node 'gate_3', opset 17\)"
    ):
        compile_graph(onnx_reader.read(path))


def test_opset_newer_than_reviewed_is_not_supported(tmp_path):
    path = _save(_model([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=29), tmp_path)
    with pytest.raises(NotSupportedYet, match=r"Relu \(node 'r', opset 29\)"):
        compile_graph(onnx_reader.read(path))


def test_graph_with_two_inputs_is_not_supported(tmp_path):
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("a", "b")]
    path = _save(_model([helper.make_node("Add", ["a", "b"], ["y"])], inputs=inputs), tmp_path)
    with pytest.raises(NotSupportedYet, match=r"2 inputs \(a, b\)"):
        onnx_reader.read(path)


def test_file_that_is_not_onnx_is_an_artifact_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07 certainly not a protobuf model \xff\xff")
    with pytest.raises(ArtifactError, match="broken.onnx"):
        onnx_reader.read(path)


def test_constant_subgraphs_are_folded_into_weights(tmp_path):
    nodes = [
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2.0))),
        helper.make_node("Mul", ["w", "two"], ["w2"]),
        helper.make_node("Transpose", ["w2"], ["w2t"]),
        helper.make_node("MatMul", ["x", "w2t"], ["y"]),
    ]
    w = np.arange(18, dtype=np.float32).reshape(3, 6) / 10
    graph = onnx_reader.read(_save(_model(nodes, [_const("w", w)]), tmp_path))
    assert [n.op for n in graph.nodes] == ["MatMul"]
    np.testing.assert_array_equal(graph.initializers[graph.nodes[0].inputs[1]], (w * 2).T)


def test_batch_symbol_reshape_with_minus_one_folds_to_a_constant_target(tmp_path):
    # x (N, 6) -> (N, 2, 3) -> Reshape(Concat(Shape(h)[0], [-1])) -> (N, 6): torch's x.view(x.size(0), -1)
    nodes = [
        helper.make_node("Reshape", ["x", "s3"], ["h"]),
        helper.make_node("Shape", ["h"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "axis0"], ["batch1"]),
        helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["h", "target"], ["flat"]),
        helper.make_node("Relu", ["flat"], ["y"]),
    ]
    inits = [
        _const("s3", np.array([-1, 2, 3], np.int64)),
        _const("zero", np.array(0, np.int64)),
        _const("axis0", np.array([0], np.int64)),
        _const("minus1", np.array([-1], np.int64)),
    ]
    path = _save(_model(nodes, inits), tmp_path)
    graph = onnx_reader.read(path)
    assert [n.op for n in graph.nodes] == ["Reshape", "Reshape", "Relu"]
    assert graph.initializers[graph.nodes[1].inputs[1]].tolist() == [-1, 6]
    X = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    ours, reference = ours_and_onnxruntime(path, X)
    np.testing.assert_array_equal(ours, reference)


def test_input_of_any_numeric_dtype_is_cast_to_the_graph_input_type(tmp_path):
    path = _save(
        _model(
            [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
            in_type=TensorProto.DOUBLE,
        ),
        tmp_path,
    )
    evaluator = compile_graph(onnx_reader.read(path))
    X = np.arange(12, dtype=np.int8).reshape(2, 6)
    y = evaluator.predict(X)
    assert y.dtype == np.float64 and y.shape == (2, 6)
    np.testing.assert_array_equal(y, X)


def test_predict_refuses_a_matrix_of_the_wrong_width(tmp_path):
    evaluator = compile_graph(onnx_reader.read(_save(mlp_model([6, 4, 1]), tmp_path)))
    with pytest.raises(ValueError, match="expected 6 feature columns, got 7"):
        evaluator.predict(np.zeros((3, 7), dtype=np.float32))


def test_dropout_in_training_mode_is_not_supported(tmp_path):
    node = helper.make_node("Dropout", ["x", "ratio", "train"], ["y"], name="drop")
    inits = [_const("ratio", np.float32(0.5)), _const("train", np.array(True))]
    with pytest.raises(NotSupportedYet, match="Dropout in training mode"):
        compile_graph(onnx_reader.read(_save(_model([node], inits), tmp_path)))


def test_compile_artifact_dispatches_onnx_and_keeps_feature_names(tmp_path):
    path = _save(mlp_model([6, 4, 2]), tmp_path)
    names = [f"feature_{i}" for i in range(6)]
    evaluator = compile_artifact(path, "onnx", names)
    assert evaluator.feature_names == tuple(names)
    assert (evaluator.n_outputs, evaluator.task) == (2, "regression")


def test_evaluator_runs_from_a_by_value_pickle_without_builder(tmp_path):
    path = _save(mlp_model([6, 8, 1], activation="Tanh"), tmp_path)
    evaluator = compile_graph(onnx_reader.read(path))
    cloudpickle.register_pickle_by_value(onnx_kernel)
    try:
        payload = cloudpickle.dumps(evaluator)
    finally:
        cloudpickle.unregister_pickle_by_value(onnx_kernel)
    (tmp_path / "model.pkl").write_bytes(payload)
    X = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    script = (
        "import pickle, sys, numpy as np\n"
        "assert 'builder' not in sys.modules\n"
        "m = pickle.load(open('model.pkl', 'rb'))\n"
        "np.save('y.npy', m.predict(np.load('X.npy')))\n"
        "assert not any(k == 'builder' or k.startswith('builder.') for k in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, check=True)
    assert max_relative_difference(np.load(tmp_path / "y.npy"), evaluator.predict(X)) == 0.0


def test_predict_takes_a_dataframe_in_the_models_column_order(tmp_path):
    import pandas as pd

    names = [f"feature_{i}" for i in range(6)]
    evaluator = compile_graph(onnx_reader.read(_save(mlp_model([6, 4, 1]), tmp_path), names))
    X = np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32)
    shuffled = pd.DataFrame(X, columns=names)[names[::-1]].assign(era="0001")
    np.testing.assert_array_equal(evaluator.predict(shuffled), evaluator.predict(X))


def test_export_with_a_fixed_batch_of_one_predicts_any_number_of_rows(tmp_path):
    model = mlp_model([6, 4, 1])
    for value_info in (*model.graph.input, *model.graph.output):
        value_info.type.tensor_type.shape.dim[0].dim_value = 1  # traced without dynamic axes
    path = _save(model, tmp_path)
    X = np.random.default_rng(3).normal(size=(7, 6)).astype(np.float32)
    ours, reference = ours_and_onnxruntime(path, X)
    assert ours.shape == (7, 1)
    assert max_relative_difference(ours, reference) <= 1e-6
