"""The op registry is data: the README table is generated from it and every entry has a kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from builder.compile.onnx import (
    SUPPORTED_OPS,
    TABLE_BEGIN,
    TABLE_END,
    op_table_markdown,
    supported_op,
    write_op_table,
)
from builder.kernels.onnx import op_names

README_SECTION = Path(__file__).parents[1] / "docs" / "onnx.md"


def test_readme_op_table_is_the_generated_one():
    text = README_SECTION.read_text()
    block = text.split(TABLE_BEGIN)[1].split(TABLE_END)[0]
    assert block.strip() == op_table_markdown().strip()


def test_write_op_table_replaces_only_the_marked_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{TABLE_BEGIN}\nstale\n{TABLE_END}\noutro\n")
    write_op_table(page)
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "stale" not in text and "| Gemm | ai.onnx |" in text


def test_markdown_flag_prints_the_table():
    result = subprocess.run(
        [sys.executable, "-m", "builder.compile.onnx", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.stdout == op_table_markdown()


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
