"""LightGBM models (``save_model`` text and ``dump_model`` JSON) -> builder.ir.TreeEnsemble.

Semantics follow ../shared/COMPILERS.md §1 (LightGBM v4 ``src/io/tree.cpp``, ``tree.h``):
numeric splits ``x <= threshold`` in double; ``decision_type`` bit 0 = categorical, bit 1 =
default_left, bits 2-3 = missing type (0 None, 1 Zero, 2 NaN); NaN reads as 0.0 unless the
missing type is NaN; categorical bitsets send the set to the left and NaN / negatives / values
beyond the bitset to the right; trees are summed in double in file order (tree j adds to class
j % num_tree_per_iteration), divided by the iteration count for random forests
(``average_output``), then the objective's ConvertOutput is applied.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from builder.errors import ArtifactError, NotSupportedYet
from builder.ir import TreeEnsemble

FORMAT = "lightgbm"
SUFFIXES = (".txt", ".lgb", ".json")

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
        if isinstance(exc, ArtifactError):
            raise
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
    if "end of trees" not in text and "Tree=" not in text:
        raise ArtifactError(f"{path}: not a LightGBM model text (no 'Tree=' blocks)")
    body = text.split("end of trees", 1)
    lines = body[0].splitlines()
    header: dict[str, str] = {}
    trees: list[dict] = []
    current = header
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
            continue
        key, sep, value = line.partition("=")
        current[key] = value if sep else "1"  # bare "average_output" means true
    if len(body) > 1 and "pandas_categorical:" in body[1]:
        pc = body[1].split("pandas_categorical:", 1)[1].strip().splitlines()[0]
        if pc not in ("null", "[]", ""):
            raise NotSupportedYet(f"LightGBM pandas categorical columns ({path.name})")
    model = {
        "objective": header.get("objective", "custom"),
        "num_class": int(header.get("num_class", "1")),
        "num_tree_per_iteration": int(header.get("num_tree_per_iteration", "1")),
        "average_output": "average_output" in header,
        "feature_names": header.get("feature_names", "").split(),
        "max_feature_idx": int(header.get("max_feature_idx", "-1")),
        "trees": [_text_tree(t, i, path) for i, t in enumerate(trees)],
    }
    return model


def _text_tree(t: dict, index: int, path: Path) -> dict:
    def ints(key, dtype=np.int64):
        return np.array(t.get(key, "").split(), dtype=dtype)

    def floats(key):
        return np.array([float(v) for v in t.get(key, "").split()], dtype=np.float64)

    num_leaves = int(t["num_leaves"])
    tree = {
        "num_leaves": num_leaves,
        "leaf_value": floats("leaf_value"),
        "split_feature": ints("split_feature"),
        "threshold": floats("threshold"),
        "decision_type": ints("decision_type"),
        "left_child": ints("left_child"),
        "right_child": ints("right_child"),
        "cat_sets": [],
        "linear": None,
    }
    if len(tree["leaf_value"]) != num_leaves:
        raise ArtifactError(f"{path}: Tree={index} has {len(tree['leaf_value'])} leaf values")
    if int(t.get("num_cat", "0")) > 0:
        bounds = ints("cat_boundaries")
        words = ints("cat_threshold", np.uint64).astype(np.uint32)
        tree["cat_sets"] = [words[bounds[c] : bounds[c + 1]] for c in range(len(bounds) - 1)]
    if t.get("is_linear", "0") == "1":
        counts = ints("num_features")
        feats = ints("leaf_features")
        coeff = floats("leaf_coeff")
        splits = np.cumsum(counts)[:-1]
        tree["linear"] = {
            "const": floats("leaf_const"),
            "features": np.split(feats, splits),
            "coeff": np.split(coeff, splits),
        }
    return tree


# ---------------------------------------------------------------------- dump_model JSON


def _parse_json(doc: dict, path: Path) -> dict:
    if "tree_info" not in doc:
        raise ArtifactError(f"{path}: JSON without 'tree_info' is not a LightGBM dump_model")
    if doc.get("pandas_categorical"):
        raise NotSupportedYet(f"LightGBM pandas categorical columns ({path.name})")
    trees = []
    for info in doc["tree_info"]:
        trees.append(_json_tree(info, path))
    return {
        "objective": doc.get("objective", "custom"),
        "num_class": int(doc.get("num_class", 1)),
        "num_tree_per_iteration": int(doc.get("num_tree_per_iteration", 1)),
        "average_output": bool(doc.get("average_output", False)),
        "feature_names": list(doc.get("feature_names", [])),
        "max_feature_idx": int(doc.get("max_feature_idx", -1)),
        "trees": trees,
    }


def _json_tree(info: dict, path: Path) -> dict:
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
        dt |= {"None": _MISSING_NONE, "Zero": _MISSING_ZERO, "NaN": _MISSING_NAN}[
            node.get("missing_type", "None")
        ] << 2
        if node["decision_type"] == "==":
            dt |= _CATEGORICAL
            cats = [int(v) for v in str(node["threshold"]).split("||") if v != ""]
            tree["threshold"][i] = len(tree["cat_sets"])
            tree["cat_sets"].append(_bitset(cats))
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


def _bitset(cats: list[int]) -> np.ndarray:
    words = np.zeros(max(cats) // 32 + 1 if cats else 1, dtype=np.uint32)
    for c in cats:
        words[c // 32] |= np.uint32(1 << (c % 32))
    return words


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

    k = model["num_tree_per_iteration"]
    n_outputs = max(k, 1)
    trees = model["trees"]
    if not trees:
        raise ArtifactError(f"{path}: the model has no trees")

    parts = {key: [] for key in ("feat", "thr", "left", "right", "dl", "naz", "zam", "val", "cat")}
    cat_sets: list[np.ndarray] = []
    lin = {"is_linear": [], "const": [], "counts": [], "features": [], "coeff": []}
    any_linear = any(t["linear"] is not None for t in trees)
    offsets = [0]
    for t_index, t in enumerate(trees):
        _append_tree(t, parts, cat_sets, lin if any_linear else None, path, t_index)
        offsets.append(offsets[-1] + max(2 * t["num_leaves"] - 1, 1))
    n_nodes = offsets[-1]
    is_cat = np.concatenate(parts["cat"])
    cat_node_sets = [s for s in cat_sets]
    cat_offsets = np.zeros(n_nodes + 1, dtype=np.int64)
    if is_cat.any():
        lengths = np.zeros(n_nodes, dtype=np.int64)
        lengths[np.nonzero(is_cat)[0]] = [len(s) for s in cat_node_sets]
        cat_offsets[1:] = np.cumsum(lengths)
        cat_words = np.concatenate(cat_node_sets).astype(np.uint32)
    else:
        cat_words = np.zeros(0, dtype=np.uint32)
    linear = None
    if any_linear:
        counts = np.concatenate(lin["counts"])
        linear = {
            "is_linear": np.concatenate(lin["is_linear"]),
            "const": np.concatenate(lin["const"]),
            "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "features": np.concatenate(lin["features"]).astype(np.int32),
            "coeff": np.concatenate(lin["coeff"]),
        }
        if len(linear["features"]) and linear["features"].max() >= len(names):
            raise ArtifactError(f"{path}: a linear leaf uses a feature beyond the model's")
    return TreeEnsemble(
        library="lightgbm",
        feature_names=tuple(names),
        tree_offsets=np.array(offsets, dtype=np.int64),
        tree_class=(np.arange(len(trees)) % n_outputs).astype(np.int32),
        split_feature=np.concatenate(parts["feat"]).astype(np.int32),
        threshold=np.concatenate(parts["thr"]),
        left_child=np.concatenate(parts["left"]).astype(np.int32),
        right_child=np.concatenate(parts["right"]).astype(np.int32),
        default_left=np.concatenate(parts["dl"]),
        nan_as_zero=np.concatenate(parts["naz"]),
        zero_as_missing=np.concatenate(parts["zam"]),
        leaf_value=np.concatenate(parts["val"]),
        n_outputs=n_outputs,
        init=np.zeros(n_outputs),
        compare="<=",
        input_dtype="float64",
        accumulate_dtype="float64",
        average=model["average_output"],
        transform=transform,
        transform_params=transform_params,
        is_categorical=is_cat,
        cat_offsets=cat_offsets,
        cat_words=cat_words,
        linear=linear,
        task=task,
        meta={
            "objective": model["objective"],
            "num_class": model["num_class"],
            "num_tree_per_iteration": k,
            "n_trees": len(trees),
        },
    )


def _append_tree(t: dict, parts: dict, cat_sets: list, lin: dict | None, path: Path, index: int):
    """Tree t in IR layout: internal nodes 0..L-2, leaf i at node L-1+i (root = node 0)."""
    L = t["num_leaves"]
    if L <= 1:
        n_int, leaf_base = 0, 0
    else:
        n_int, leaf_base = L - 1, L - 1
    n = n_int + L
    feat = np.full(n, -1, dtype=np.int64)
    thr = np.zeros(n)
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    dl = np.zeros(n, dtype=bool)
    naz = np.zeros(n, dtype=bool)
    zam = np.zeros(n, dtype=bool)
    cat = np.zeros(n, dtype=bool)
    val = np.zeros(n)
    val[leaf_base:] = t["leaf_value"]
    if n_int:
        dt = t["decision_type"]
        feat[:n_int] = t["split_feature"]
        lc, rc = t["left_child"], t["right_child"]
        left[:n_int] = np.where(lc >= 0, lc, leaf_base + ~lc)
        right[:n_int] = np.where(rc >= 0, rc, leaf_base + ~rc)
        is_cat = (dt & _CATEGORICAL) != 0
        missing = (dt >> 2) & 3
        cat[:n_int] = is_cat
        dl[:n_int] = ((dt & _DEFAULT_LEFT) != 0) & ~is_cat  # categorical NaN goes right
        naz[:n_int] = (missing != _MISSING_NAN) & ~is_cat
        zam[:n_int] = (missing == _MISSING_ZERO) & ~is_cat
        thr[:n_int] = np.where(is_cat, 0.0, t["threshold"])
        for i in np.nonzero(is_cat)[0]:
            c = int(t["threshold"][i])
            if not 0 <= c < len(t["cat_sets"]):
                raise ArtifactError(f"{path}: Tree={index} node {i} names a missing category set")
            cat_sets.append(np.asarray(t["cat_sets"][c], dtype=np.uint32))
    for key, arr in zip(parts, (feat, thr, left, right, dl, naz, zam, val, cat), strict=True):
        parts[key].append(arr)
    if lin is not None:
        is_lin = np.zeros(n, dtype=bool)
        const = np.zeros(n)
        counts = np.zeros(n, dtype=np.int64)
        feats, coeffs = [], []
        if t["linear"] is not None:
            is_lin[leaf_base:] = True
            const[leaf_base:] = t["linear"]["const"]
            for leaf in range(L):
                f = np.asarray(t["linear"]["features"][leaf], dtype=np.int64)
                counts[leaf_base + leaf] = len(f)
                feats.append(f)
                coeffs.append(np.asarray(t["linear"]["coeff"][leaf], dtype=np.float64))
        lin["is_linear"].append(is_lin)
        lin["const"].append(const)
        lin["counts"].append(counts)
        lin["features"].append(np.concatenate(feats) if feats else np.zeros(0, dtype=np.int64))
        lin["coeff"].append(np.concatenate(coeffs) if coeffs else np.zeros(0))


def _feature_names(model: dict, path: Path, feature_names) -> list[str]:
    names = list(model["feature_names"])
    width = model["max_feature_idx"] + 1
    if not names:
        names = [f"Column_{i}" for i in range(width)]
    if feature_names is None:
        return names
    given = list(feature_names)
    if len(given) != len(names):
        raise ArtifactError(
            f"{path}: the model has {len(names)} features but {len(given)} feature names were given"
        )
    generic = all(n == f"Column_{i}" for i, n in enumerate(names))
    if not generic and given != names:
        first = next(i for i, (a, b) in enumerate(zip(given, names, strict=True)) if a != b)
        raise ArtifactError(
            f"{path}: feature {first} is {names[first]!r} in the model but "
            f"{given[first]!r} was given"
        )
    return given
