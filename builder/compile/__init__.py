"""Compilers: IR -> evaluator objects built from ``builder.kernels`` classes.

``compile_model(ir)`` returns an evaluator whose class lives in ``builder/kernels`` (so it is
pickled by value and needs only numpy/pandas in the container). Every evaluator has:
  feature_names: tuple[str, ...]      input columns, model order
  n_outputs: int
  task: str                           "regression" | "binary" | "multiclass"
  predict(X: np.ndarray) -> np.ndarray  float64 (n_rows, n_outputs), equal to the native
                                      library's predict / predict_proba output; X is 2-D in
                                      model column order, any numeric dtype, NaN allowed.
"""

from __future__ import annotations

from pathlib import Path

from builder import ir


def compile_model(model):
    if isinstance(model, ir.TreeEnsemble):
        from builder.compile.trees import compile_trees

        return compile_trees(model)
    if isinstance(model, ir.Graph):
        from builder.compile.onnx import compile_graph

        return compile_graph(model)
    if isinstance(model, (ir.LinearModel, ir.MLP, ir.Pipeline, ir.Voting)):
        from builder.compile.dense import compile_dense

        return compile_dense(model)
    raise TypeError(f"cannot compile {type(model).__name__}")


def compile_artifact(path: Path, fmt: str, feature_names=None):
    """Read and compile one artifact file."""
    from builder.artifacts import read

    return compile_model(read(Path(path), fmt, feature_names))
