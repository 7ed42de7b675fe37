"""LightGBM models (``save_model`` text and ``dump_model`` JSON) -> builder.ir.TreeEnsemble.

Semantics follow LightGBM v4 (``src/io/tree.cpp``, ``include/LightGBM/tree.h``):
numeric splits ``x <= threshold`` in double; ``decision_type`` bit 0 = categorical, bit 1 =
default_left, bits 2-3 = missing type (0 None, 1 Zero, 2 NaN); NaN reads as 0.0 unless the
missing type is NaN; categorical bitsets send the set to the left and NaN / negatives / values
beyond the bitset to the right; trees are summed in double in file order (tree j adds to class
j % num_tree_per_iteration), divided by the iteration count for random forests
(``average_output``), then the objective's ConvertOutput is applied.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from builder.artifacts import Support, bind_feature_names
from builder.artifacts.forest import category_bitset, category_words
from builder.errors import ArtifactError, NotSupportedYet
from builder.ir import TreeEnsemble

FORMAT = "lightgbm"
SUFFIXES = (".txt", ".lgb", ".json")

SUPPORT = (
    Support(
        "LightGBM",
        "model text, `dump_model` JSON; gbdt, dart, rf, goss; categorical splits, linear trees",
        "exact numpy trees (bit-sliced kernel)",
        0.0,
    ),
)

# objective name -> (IR transform, task); "sqrt" in the objective string overrides the
# regression transform (RegressionL2loss::ConvertOutput with sqrt_).
OBJECTIVES: dict[str, tuple[str, str]] = {
    "regression": ("identity", "regression"),
    "regression_l1": ("identity", "regression"),
    "huber": ("identity", "regression"),
    "fair": ("identity", "regression"),
    "quantile": ("identity", "regression"),
    "mape": ("identity", "regression"),
    "poisson": ("exp", "regression"),
    "gamma": ("exp", "regression"),
    "tweedie": ("exp", "regression"),
    "binary": ("lightgbm_sigmoid", "binary"),
    "multiclass": ("lightgbm_softmax", "multiclass"),
    "multiclassova": ("lightgbm_sigmoid", "multiclass"),
    "cross_entropy": ("lightgbm_sigmoid", "regression"),
    "cross_entropy_lambda": ("lightgbm_log1p_exp", "regression"),
    "lambdarank": ("identity", "regression"),
    "rank_xendcg": ("identity", "regression"),
    "custom": ("identity", "regression"),
    "none": ("identity", "regression"),
}

_CATEGORICAL = 1
_DEFAULT_LEFT = 2
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2


def read(path: Path, feature_names=None) -> TreeEnsemble:
    """Read a LightGBM model file (text, or the JSON of ``Booster.dump_model``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read LightGBM model ({exc.strerror})") from None
    head = data.lstrip()[:1]
    try:
        if head == b"{":
            model = _parse_json(json.loads(data), path)
        else:
            model = _parse_text(data.decode("utf-8"), path)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable LightGBM model ({exc})") from None
    return _to_ir(model, path, feature_names)


def native_predict(path: Path, X: np.ndarray, feature_names=None) -> np.ndarray:
    """LightGBM's own predictions for X (model column order), one thread: (rows, outputs)."""
    import lightgbm

    path = Path(path)
    if path.read_bytes().lstrip()[:1] == b"{":
        raise NotSupportedYet(f"native LightGBM predictions for dump_model JSON ({path.name})")
    booster = lightgbm.Booster(model_file=str(path))
    out = booster.predict(np.asarray(X), num_threads=1)
    return np.asarray(out, dtype=np.float64).reshape(len(X), -1)


# ---------------------------------------------------------------------- model text


def _parse_text(text: str, path: Path) -> dict:
    if "Tree=" not in text:
        raise ArtifactError(f"{path}: not a LightGBM model text (no 'Tree=' blocks)")
    body = text.split("end of trees", 1)
    header: dict[str, str] = {}
    trees: list[dict] = []
    current = header
    for line in body[0].splitlines():
        if not line or line.isspace():
            continue
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
            continue
        key, sep, value = line.partition("=")
        current[key.strip()] = value.strip() if sep else "1"  # bare "average_output"
    # LightGBM writes "end of trees" after the last tree and lists every tree's byte size in
    # the header (gbdt_model_text.cpp); a file cut short between trees would otherwise parse
    # as a smaller, wrong model.
    if len(body) < 2:
        raise ArtifactError(
            f"{path}: LightGBM model text is truncated (no 'end of trees' line after the trees)"
        )
    sizes = header.get("tree_sizes", "").split()
    if sizes and len(sizes) != len(trees):
        raise ArtifactError(
            f"{path}: LightGBM model text is truncated or damaged: its header lists "
            f"{len(sizes)} trees but the file holds {len(trees)}"
        )
    if "pandas_categorical:" in body[1]:
        pc = body[1].split("pandas_categorical:", 1)[1].strip().splitlines()[0]
        if pc not in ("null", "[]", ""):
            raise NotSupportedYet(f"LightGBM pandas categorical columns ({path.name})")
    return {
        "objective": header.get("objective", "custom"),
        "num_class": int(header.get("num_class", "1")),
        "num_tree_per_iteration": int(header.get("num_tree_per_iteration", "1")),
        "average_output": "average_output" in header,
        "feature_names": header.get("feature_names", "").split(),
        "max_feature_idx": int(header.get("max_feature_idx", "-1")),
        "forest": _text_forest(trees, path),
    }


def _text_forest(trees: list[dict], path: Path) -> dict:
    """All trees' arrays concatenated (parsed in one pass per field: 90k trees stay fast).

    Numbers go through Python's float() (correctly rounded), so the {:.17g} doubles of the
    file come back bit for bit."""
    num_leaves = np.array([int(t["num_leaves"]) for t in trees], dtype=np.int64)
    n_internal = np.maximum(num_leaves - 1, 0)

    def field(key, conv, dtype, expected):
        joined = " ".join(t.get(key, "") for t in trees)
        if conv is int:
            # C-level integer parsing (several times faster than int() per token); a bad
            # token stops it early, which the count check below reports
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                values = np.fromstring(joined, dtype=dtype, sep=" ") if joined.strip() else []
            values = np.asarray(values, dtype=dtype)
        else:
            parts = joined.split()
            values = np.fromiter(map(conv, parts), dtype=dtype, count=len(parts))
        if len(values) != expected.sum():
            counts = [len(t.get(key, "").split()) for t in trees]
            bad = next(i for i, c in enumerate(counts) if c != expected[i])
            raise ArtifactError(f"{path}: Tree={bad} has {counts[bad]} {key} values")
        return values

    forest = {
        "num_leaves": num_leaves,
        "leaf_value": field("leaf_value", float, np.float64, num_leaves),
        "split_feature": field("split_feature", int, np.int64, n_internal),
        "threshold": field("threshold", float, np.float64, n_internal),
        "decision_type": field("decision_type", int, np.int64, n_internal),
        "left_child": field("left_child", int, np.int64, n_internal),
        "right_child": field("right_child", int, np.int64, n_internal),
        "cat_sets": {},
        "linear": {},
    }
    for i, t in enumerate(trees):
        if int(t.get("num_cat", "0")) > 0:
            bounds = [int(v) for v in t["cat_boundaries"].split()]
            words = np.array([int(v) for v in t["cat_threshold"].split()], dtype=np.uint32)
            forest["cat_sets"][i] = [
                words[bounds[c] : bounds[c + 1]] for c in range(len(bounds) - 1)
            ]
        if t.get("is_linear", "0") == "1":
            counts = [int(v) for v in t.get("num_features", "").split()]
            feats = np.array([int(v) for v in t.get("leaf_features", "").split()], dtype=np.int64)
            coeff = np.array([float(v) for v in t.get("leaf_coeff", "").split()])
            splits = np.cumsum(counts)[:-1]
            forest["linear"][i] = {
                "const": np.array([float(v) for v in t["leaf_const"].split()]),
                "features": np.split(feats, splits),
                "coeff": np.split(coeff, splits),
            }
    return forest


# ---------------------------------------------------------------------- dump_model JSON


def _parse_json(doc: dict, path: Path) -> dict:
    if "tree_info" not in doc:
        raise ArtifactError(f"{path}: JSON without 'tree_info' is not a LightGBM dump_model")
    if doc.get("pandas_categorical"):
        raise NotSupportedYet(f"LightGBM pandas categorical columns ({path.name})")
    trees = [_json_tree(info) for info in doc["tree_info"]]
    forest = {
        "num_leaves": np.array([t["num_leaves"] for t in trees], dtype=np.int64),
        "cat_sets": {i: t["cat_sets"] for i, t in enumerate(trees) if t["cat_sets"]},
        "linear": {i: t["linear"] for i, t in enumerate(trees) if t["linear"] is not None},
    }
    for key in ("leaf_value", "split_feature", "threshold", "decision_type"):
        forest[key] = np.concatenate([t[key] for t in trees]) if trees else np.zeros(0)
    for key in ("left_child", "right_child"):
        forest[key] = np.concatenate([t[key] for t in trees]) if trees else np.zeros(0)
    return {
        "objective": doc.get("objective", "custom"),
        "num_class": int(doc.get("num_class", 1)),
        "num_tree_per_iteration": int(doc.get("num_tree_per_iteration", 1)),
        "average_output": bool(doc.get("average_output", False)),
        "feature_names": list(doc.get("feature_names", [])),
        "max_feature_idx": int(doc.get("max_feature_idx", -1)),
        "forest": forest,
    }


def _json_tree(info: dict) -> dict:
    num_leaves = int(info["num_leaves"])
    n_int = max(num_leaves - 1, 0)
    tree = {
        "num_leaves": num_leaves,
        "leaf_value": np.zeros(num_leaves),
        "split_feature": np.zeros(n_int, dtype=np.int64),
        "threshold": np.zeros(n_int),
        "decision_type": np.zeros(n_int, dtype=np.int64),
        "left_child": np.zeros(n_int, dtype=np.int64),
        "right_child": np.zeros(n_int, dtype=np.int64),
        "cat_sets": [],
        "linear": None,
    }
    linear = {
        "const": np.zeros(num_leaves),
        "features": [None] * num_leaves,
        "coeff": [None] * num_leaves,
    }
    is_linear = False
    stack = [info["tree_structure"]]
    while stack:
        node = stack.pop()
        if "split_index" not in node:
            leaf = int(node.get("leaf_index", 0))
            tree["leaf_value"][leaf] = float(node["leaf_value"])
            if "leaf_const" in node:
                is_linear = True
                linear["const"][leaf] = float(node["leaf_const"])
                linear["features"][leaf] = np.array(node["leaf_features"], dtype=np.int64)
                linear["coeff"][leaf] = np.array(node["leaf_coeff"], dtype=np.float64)
            continue
        i = int(node["split_index"])
        tree["split_feature"][i] = int(node["split_feature"])
        dt = _DEFAULT_LEFT if node.get("default_left") else 0
        missing = {"None": _MISSING_NONE, "Zero": _MISSING_ZERO, "NaN": _MISSING_NAN}
        dt |= missing[node.get("missing_type", "None")] << 2
        if node["decision_type"] == "==":
            dt |= _CATEGORICAL
            cats = [int(v) for v in str(node["threshold"]).split("||") if v != ""]
            tree["threshold"][i] = len(tree["cat_sets"])
            tree["cat_sets"].append(category_bitset(cats))
        elif node["decision_type"] == "<=":
            tree["threshold"][i] = float(node["threshold"])
        else:
            raise NotSupportedYet(f"LightGBM decision_type {node['decision_type']!r}")
        tree["decision_type"][i] = dt
        for side in ("left_child", "right_child"):
            child = node[side]
            if "split_index" in child:
                tree[side][i] = int(child["split_index"])
            else:
                tree[side][i] = ~int(child.get("leaf_index", 0))
            stack.append(child)
    if is_linear:
        for leaf in range(num_leaves):
            if linear["features"][leaf] is None:
                linear["const"][leaf] = tree["leaf_value"][leaf]
                linear["features"][leaf] = np.zeros(0, dtype=np.int64)
                linear["coeff"][leaf] = np.zeros(0)
        tree["linear"] = linear
    return tree


# ---------------------------------------------------------------------- to IR


def _to_ir(model: dict, path: Path, feature_names) -> TreeEnsemble:
    names = _feature_names(model, path, feature_names)
    objective = model["objective"].split()
    name = objective[0] if objective else "custom"
    params = dict(p.split(":", 1) for p in objective[1:] if ":" in p)
    if name not in OBJECTIVES:
        raise NotSupportedYet(f"LightGBM objective {name!r}")
    transform, task = OBJECTIVES[name]
    if "sqrt" in objective[1:] and transform == "identity":
        transform = "reg_sqrt"
    transform_params = {}
    if transform == "lightgbm_sigmoid":
        transform_params["sigmoid"] = float(params.get("sigmoid", "1"))

    forest = model["forest"]
    n_leaves = forest["num_leaves"]
    n_trees = len(n_leaves)
    if n_trees == 0:
        raise ArtifactError(f"{path}: the model has no trees")
    if (n_leaves < 1).any():
        raise ArtifactError(f"{path}: Tree={int(np.argmax(n_leaves < 1))} has no leaves")
    n_outputs = max(model["num_tree_per_iteration"], 1)

    # tree t: internal nodes 0..I-1, then leaf i at node I+i (root = node 0)
    n_int = np.maximum(n_leaves - 1, 0)
    sizes = n_int + n_leaves
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n_nodes = int(offsets[-1])
    int_tree = np.repeat(np.arange(n_trees), n_int)
    int_pos = (
        offsets[int_tree]
        + np.arange(len(int_tree))
        - np.repeat(np.concatenate([[0], np.cumsum(n_int)[:-1]]), n_int)
    )
    leaf_tree = np.repeat(np.arange(n_trees), n_leaves)
    leaf_local = np.arange(len(leaf_tree)) - np.repeat(
        np.concatenate([[0], np.cumsum(n_leaves)[:-1]]), n_leaves
    )
    leaf_pos = offsets[leaf_tree] + n_int[leaf_tree] + leaf_local

    dt = forest["decision_type"]
    is_cat = (dt & _CATEGORICAL) != 0
    missing = (dt >> 2) & 3
    lc, rc = forest["left_child"], forest["right_child"]
    base = n_int[int_tree]

    feat = np.full(n_nodes, -1, dtype=np.int32)
    thr = np.zeros(n_nodes)
    left = np.full(n_nodes, -1, dtype=np.int32)
    right = np.full(n_nodes, -1, dtype=np.int32)
    dl = np.zeros(n_nodes, dtype=bool)
    naz = np.zeros(n_nodes, dtype=bool)
    zam = np.zeros(n_nodes, dtype=bool)
    cat = np.zeros(n_nodes, dtype=bool)
    val = np.zeros(n_nodes)
    val[leaf_pos] = forest["leaf_value"]
    feat[int_pos] = forest["split_feature"]
    left[int_pos] = np.where(lc >= 0, lc, base + ~lc)
    right[int_pos] = np.where(rc >= 0, rc, base + ~rc)
    cat[int_pos] = is_cat
    dl[int_pos] = ((dt & _DEFAULT_LEFT) != 0) & ~is_cat  # categorical NaN goes right
    naz[int_pos] = (missing != _MISSING_NAN) & ~is_cat
    zam[int_pos] = (missing == _MISSING_ZERO) & ~is_cat
    thr[int_pos] = np.where(is_cat, 0.0, forest["threshold"])
    if len(feat) and feat.max() >= len(names):
        raise ArtifactError(f"{path}: a split uses feature {int(feat.max())} beyond the model's")

    # a categorical node's threshold indexes its tree's category sets (cat_boundaries)
    sets = []
    for k in np.nonzero(is_cat)[0]:
        t, c = int(int_tree[k]), int(forest["threshold"][k])
        tree_sets = forest["cat_sets"].get(t, [])
        if not 0 <= c < len(tree_sets):
            raise ArtifactError(f"{path}: Tree={t} names a missing category set {c}")
        sets.append(tree_sets[c])
    # cat marks the same nodes by position; int_pos ascends, so sets are in node order
    cat_offsets, cat_words = category_words(cat, sets)

    return TreeEnsemble(
        library="lightgbm",
        feature_names=tuple(names),
        tree_offsets=offsets.astype(np.int64),
        tree_class=(np.arange(n_trees) % n_outputs).astype(np.int32),
        split_feature=feat,
        threshold=thr,
        left_child=left,
        right_child=right,
        default_left=dl,
        nan_as_zero=naz,
        zero_as_missing=zam,
        leaf_value=val,
        n_outputs=n_outputs,
        init=np.zeros(n_outputs),
        compare="<=",
        input_dtype="float64",
        accumulate_dtype="float64",
        average=model["average_output"],
        transform=transform,
        transform_params=transform_params,
        is_categorical=cat,
        cat_offsets=cat_offsets,
        cat_words=cat_words,
        linear=_linear(forest, offsets, n_int, n_nodes, len(names), path),
        task=task,
        meta={
            "objective": model["objective"],
            "num_class": model["num_class"],
            "num_tree_per_iteration": model["num_tree_per_iteration"],
            "n_trees": n_trees,
        },
    )


def _linear(forest: dict, offsets, n_int, n_nodes: int, n_features: int, path: Path):
    """Linear-tree leaves in the kernel's node-indexed layout, or None."""
    if not forest["linear"]:
        return None
    is_linear = np.zeros(n_nodes, dtype=bool)
    const = np.zeros(n_nodes)
    counts = np.zeros(n_nodes, dtype=np.int64)
    feats, coeffs = [], []
    for t in sorted(forest["linear"]):
        lin = forest["linear"][t]
        first_leaf = int(offsets[t] + n_int[t])
        n_leaves = int(forest["num_leaves"][t])
        nodes = np.arange(first_leaf, first_leaf + n_leaves)
        is_linear[nodes] = True
        const[nodes] = lin["const"]
        for leaf in range(n_leaves):
            counts[first_leaf + leaf] = len(lin["features"][leaf])
            feats.append(np.asarray(lin["features"][leaf], dtype=np.int64))
            coeffs.append(np.asarray(lin["coeff"][leaf], dtype=np.float64))
    features = np.concatenate(feats).astype(np.int32)
    if len(features) and features.max() >= n_features:
        raise ArtifactError(f"{path}: a linear leaf uses a feature beyond the model's")
    return {
        "is_linear": is_linear,
        "const": const,
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "features": features,
        "coeff": np.concatenate(coeffs),
    }


def _feature_names(model: dict, path: Path, feature_names) -> list[str]:
    """The model's columns: LightGBM writes Column_0.. when trained without names, which count
    as no names (the config's list, if any, then names the columns in training order)."""
    names = list(model["feature_names"])
    width = model["max_feature_idx"] + 1
    generic = not names or all(n == f"Column_{i}" for i, n in enumerate(names))
    if generic and feature_names is None:
        return names or [f"Column_{i}" for i in range(width)]
    return bind_feature_names(
        [] if generic else names, feature_names, width or len(names), str(path)
    )
