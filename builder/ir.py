"""Intermediate representation between artifact readers and compilers.

Plain dataclasses holding numpy arrays. Readers (``builder/artifacts``) produce them, compilers
(``builder/compile``) consume them. Nothing here ships inside the pickle.

TreeEnsemble semantics (one rule set for LightGBM, XGBoost and scikit-learn; readers translate
each library's conventions into it, see ../shared/COMPILERS.md):

* Nodes of all trees live in flat arrays; ``tree_offsets[t]:tree_offsets[t+1]`` are tree t's
  nodes, node 0 of each tree is its root, and child indices are local to the tree.
* A node is a leaf when ``split_feature == -1``; its value is ``leaf_value`` (already scaled
  by learning rate / DART weight / anything the library multiplies before accumulation, in
  the library's own precision, so the kernel only adds).
* Numeric split: ``x = input value cast to input_dtype`` ("float64" or "float32");
  then ``go_left = x <= threshold`` when ``compare == "<="`` or ``x < threshold`` when ``"<"``,
  compared in float64 (a float32 threshold stored in float64 compares identically).
* Missing values, per node: if x is NaN and ``nan_as_zero``: x becomes 0.0 (LightGBM
  missing_type None/Zero). If ``zero_as_missing`` and ``|x| <= 1e-35`` (LightGBM
  kZeroThreshold) or x is NaN (and not nan_as_zero), the row goes to the ``default_left`` side.
* Categorical split (``is_categorical``): NaN goes to the ``default_left`` side; otherwise
  v = int(x) (truncation); v in the node's category set goes left, anything else (negative,
  out of range, not in set) goes right. Readers swap children where the library sends the
  set to the right (XGBoost).
* Accumulation: ``raw[:, k] = init[k]``, then for t in tree order
  ``raw[rows, tree_class[t]] += leaf(t, row)`` in ``accumulate_dtype``; if ``average`` the
  sum is then divided by the number of trees of that class (random forests). Then
  ``transform`` (with ``transform_params``) maps raw scores to the native ``predict`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TreeEnsemble:
    library: str  # "lightgbm" | "xgboost" | "sklearn"
    feature_names: tuple[str, ...]  # the model's training column order
    tree_offsets: np.ndarray  # int64 [n_trees + 1]
    tree_class: np.ndarray  # int32 [n_trees]: output column each tree adds to
    split_feature: np.ndarray  # int32 [n_nodes], -1 for leaves
    threshold: np.ndarray  # float64 [n_nodes]
    left_child: np.ndarray  # int32 [n_nodes], local index, -1 for leaves
    right_child: np.ndarray  # int32 [n_nodes]
    default_left: np.ndarray  # bool [n_nodes]
    nan_as_zero: np.ndarray  # bool [n_nodes]
    zero_as_missing: np.ndarray  # bool [n_nodes]
    leaf_value: np.ndarray  # float64 [n_nodes] (0 for internal nodes)
    n_outputs: int
    init: np.ndarray  # [n_outputs] in accumulate_dtype
    compare: str = "<="  # "<=" | "<"
    input_dtype: str = "float64"  # "float64" | "float32"
    accumulate_dtype: str = "float64"  # "float64" | "float32"
    average: bool = False
    transform: str = "identity"
    transform_params: dict = field(default_factory=dict)
    # categorical splits: node -> slice of cat_words (uint32 bitset words, bit v = category v)
    is_categorical: np.ndarray | None = None  # bool [n_nodes]
    cat_offsets: np.ndarray | None = None  # int64 [n_nodes + 1] into cat_words
    cat_words: np.ndarray | None = None  # uint32
    # linear trees (LightGBM linear_tree): per leaf node a constant and coefficients
    linear: dict | None = None
    # what the native predict() returns: "regression" | "binary" | "multiclass"
    task: str = "regression"
    meta: dict = field(default_factory=dict)  # objective name, versions, counts (for reports)

    @property
    def n_trees(self) -> int:
        return len(self.tree_offsets) - 1

    @property
    def n_nodes(self) -> int:
        return len(self.split_feature)


@dataclass(frozen=True)
class GraphNode:
    op: str  # ONNX op type, e.g. "Gemm"
    domain: str  # "" for ai.onnx, "ai.onnx.ml"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict
    name: str = ""


@dataclass(frozen=True)
class Graph:
    """An ONNX graph after constant folding: numeric ops over named tensors."""

    input_name: str
    input_width: int | None
    output_names: tuple[str, ...]
    nodes: tuple[GraphNode, ...]
    initializers: dict  # name -> np.ndarray
    opsets: dict  # domain -> version
    feature_names: tuple[str, ...] = ()
    task: str = "regression"
    meta: dict = field(default_factory=dict)
