"""The op registry is data: docs/onnx.md's table is generated from it and every entry has a kernel."""

from __future__ import annotations

from pathlib import Path

from builder.compile.onnx import SUPPORTED_OPS, supported_op
from builder.kernels.onnx import op_names
from builder.supported import TABLE_BEGIN, TABLE_END, op_table_markdown, with_op_table

ONNX_PAGE = Path(__file__).parents[1] / "docs" / "onnx.md"


def test_docs_op_table_is_the_generated_one():
    text = ONNX_PAGE.read_text()
    block = text.split(TABLE_BEGIN)[1].split(TABLE_END)[0]
    assert block.strip() == op_table_markdown().strip()


def test_op_table_regeneration_replaces_only_the_marked_block():
    text = with_op_table(f"intro\n{TABLE_BEGIN}\nstale\n{TABLE_END}\noutro\n")
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "stale" not in text and "| Gemm | ai.onnx |" in text


def test_op_table_lists_every_registered_op_once():
    rows = [line for line in op_table_markdown().splitlines()[2:]]
    assert len(rows) == len(SUPPORTED_OPS)


def test_every_registration_names_an_op_the_kernel_implements():
    named = {s.kernel_op for s in SUPPORTED_OPS if s.kernel_op is not None}
    assert named - set(op_names()) == set()


def test_every_kernel_op_is_registered():
    assert set(op_names()) - {s.kernel_op for s in SUPPORTED_OPS} == set()


def test_only_the_op_the_reader_drops_has_no_kernel():
    assert [s.op for s in SUPPORTED_OPS if s.kernel_op is None] == ["ZipMap"]


def test_each_op_is_registered_once():
    keys = [(s.domain, s.op) for s in SUPPORTED_OPS]
    assert len(keys) == len(set(keys))


def test_issue_op_list_is_covered():
    issue_ops = (
        "Gemm MatMul Add Sub Mul Div Neg Relu LeakyRelu Elu Selu Sigmoid Tanh Softmax LogSoftmax "
        "Erf Gelu Softplus Clip Sqrt Pow Exp Log Abs ReduceMean ReduceSum LayerNormalization "
        "BatchNormalization Flatten Reshape Transpose Concat Squeeze Unsqueeze Identity Dropout "
        "Cast Constant Slice Split Where Min Max"
    ).split()
    assert [op for op in issue_ops if supported_op(op, "", 20) is None] == []
    ml_ops = "Scaler Imputer Normalizer ZipMap TreeEnsembleRegressor TreeEnsembleClassifier".split()
    assert [op for op in ml_ops if supported_op(op, "ai.onnx.ml", 3) is None] == []
    assert supported_op("TreeEnsemble", "ai.onnx.ml", 5) is not None


def test_opset_bounds_are_enforced():
    assert supported_op("Gelu", "", 19) is None
    assert supported_op("Gelu", "", 20) is not None
    assert supported_op("Relu", "", 29) is None
    assert supported_op("Relu", "ai.onnx.ml", 3) is None
