"""Intermediate representation between artifact readers and compilers.

Plain dataclasses holding numpy arrays. Readers (``builder/artifacts``) produce them, compilers
(``builder/compile``) consume them. Nothing here ships inside the pickle.

TreeEnsemble semantics (one rule set for LightGBM, XGBoost and scikit-learn; readers translate
each library's conventions into it, see docs/design/compilers.md):

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


# ---------------------------------------------------------------------------------------------
# scikit-learn dense models and pipelines (builder/artifacts/sklearn_models.py reads them).
#
# Semantics are scikit-learn's own ``predict`` / ``transform`` arithmetic, operation for
# operation, so the compiled evaluator differs only by BLAS summation order (a dot product's
# partial sums depend on the BLAS build and the input's memory layout; see
# builder/kernels/dense.py). Arrays are stored exactly as the estimator holds them.


@dataclass(frozen=True)
class LinearModel:
    """``y = link(X @ coef + intercept)`` (LinearModel._decision_function, GLM links)."""

    estimator: str  # class name, e.g. "Ridge"
    feature_names: tuple[str, ...]
    coef: np.ndarray  # [n_features], float64 (float32 when fitted on float32)
    intercept: np.ndarray  # [] or [1], added as stored
    link: str = "identity"  # "identity" | "exp" (Poisson/Gamma/Tweedie LogLink.inverse)
    task: str = "regression"
    meta: dict = field(default_factory=dict)

    @property
    def accepts_nan(self) -> bool:
        return False  # scikit-learn refuses NaN input; X @ coef would spread it


@dataclass(frozen=True)
class MLP:
    """MLPRegressor._forward_pass_fast: per layer ``a = a @ W; a += b``, then the activation
    (hidden layers) or the output activation (last layer)."""

    estimator: str
    feature_names: tuple[str, ...]
    coefs: tuple[np.ndarray, ...]  # [n_in, n_out] per layer
    intercepts: tuple[np.ndarray, ...]  # [n_out] per layer
    activation: str  # "identity" | "logistic" | "tanh" | "relu"
    out_activation: str = "identity"  # "identity" | "exp" (loss="poisson")
    task: str = "regression"
    meta: dict = field(default_factory=dict)

    @property
    def accepts_nan(self) -> bool:
        return False


@dataclass(frozen=True)
class Transform:
    """One fitted preprocessing step of a Pipeline.

    kind and params (arrays as the transformer stores them):
      "standard_scaler": mean (or None), scale (or None)     X -= mean; X /= scale
      "minmax_scaler":   scale, min, clip (lo, hi) or None   X *= scale; X += min; clip
      "maxabs_scaler":   scale, clip (bool)                  X /= scale; clip to [-1, 1]
      "robust_scaler":   center (or None), scale (or None)   X -= center; X /= scale
      "simple_imputer":  statistics, missing (float, NaN allowed), keep (column indices kept),
                         indicator (column indices of the missing indicator, or None)
      "pca":             mean, components, whiten_scale (or None)
    """

    kind: str
    name: str  # the step's name in the Pipeline
    params: dict
    n_in: int
    n_out: int

    @property
    def accepts_nan(self) -> bool:
        return self.kind != "pca"  # scalers keep NaN, imputers replace it, PCA refuses it

    @property
    def removes_nan(self) -> bool:
        p = self.params
        return self.kind == "simple_imputer" and bool(np.isnan(p.get("missing", 0.0)))


@dataclass(frozen=True)
class Pipeline:
    """``Pipeline.predict``: each Transform in order, then the final model (any IR model)."""

    feature_names: tuple[str, ...]
    steps: tuple[Transform, ...]
    final: object
    final_name: str = ""
    task: str = "regression"
    meta: dict = field(default_factory=dict)

    @property
    def accepts_nan(self) -> bool:
        for step in self.steps:
            if step.removes_nan:
                return True
            if not step.accepts_nan:
                return False
        return accepts_nan(self.final)


@dataclass(frozen=True)
class Voting:
    """VotingRegressor.predict: ``np.average`` of the members' predictions (weights optional)."""

    feature_names: tuple[str, ...]
    members: tuple[object, ...]  # IR models, all reading the same columns
    names: tuple[str, ...]
    weights: np.ndarray | None  # float64 [n_members] or None (plain mean)
    task: str = "regression"
    meta: dict = field(default_factory=dict)

    @property
    def accepts_nan(self) -> bool:
        return all(accepts_nan(member) for member in self.members)


def accepts_nan(model) -> bool:
    """Whether the compiled model gives scikit-learn's / the native library's answer when its
    input holds NaN. False for linear models, MLPs and anything reaching them without an
    imputer first: their evaluator raises on NaN, so a slot feeding them NaN needs
    ``fill_missing`` preprocessing. Tree ensembles and ONNX graphs route or propagate NaN."""
    flag = getattr(model, "accepts_nan", None)
    return True if flag is None else bool(flag)
