"""XGBoost ``save_model`` files (``.json`` and ``.ubj``) -> ``TreeEnsemble``.

The reader parses the document itself (JSON, or UBJSON via ``builder.artifacts.ubjson``), so
the xgboost package is needed only by ``native_predict``. Layouts of XGBoost 1.7 through 3.x
are accepted. The rules translated here (from XGBoost's ``src/tree`` and ``src/predictor``):

* splits are ``x < split_condition`` with x and the condition in float32;
* NaN goes to the ``default_left`` side;
* categorical splits send the listed categories to the *right* (``common::Decision`` returns
  "go left" when the category does not match), so children are swapped into the IR's
  "in set -> left" convention;
* leaf values live in ``split_conditions`` (a union in ``RegTree::Node``), already multiplied
  by eta; DART multiplies each tree by ``weight_drop[t]`` in float32 (``OptionalWeights``);
* the output buffer is float32, initialised with ``ProbToMargin(base_score)``, and trees add
  to column ``tree_info[t]`` in tree order (``cpu_predictor.cc``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from builder.artifacts import Support, bind_feature_names, damaged_model, ubjson
from builder.artifacts.forest import category_bitset, concat_trees, node_fields
from builder.errors import ArtifactError, NotSupportedYet
from builder.ir import TreeEnsemble

FORMAT = "xgboost"
SUFFIXES = (".json", ".ubj")

SUPPORT = (
    Support(
        "XGBoost",
        "`save_model` JSON / UBJSON (1.7-3.x); gbtree, dart",
        "exact numpy trees",
        0.0,
    ),
)

# objective -> (ProbToMargin kind, output transform, task, native predict output)
OBJECTIVES: dict[str, tuple[str, str, str, str]] = {
    "reg:squarederror": ("identity", "identity", "regression", "prediction"),
    "reg:linear": ("identity", "identity", "regression", "prediction"),  # pre-1.0 alias
    "reg:logistic": ("logit", "xgboost_sigmoid", "regression", "prediction in (0, 1)"),
    "binary:logistic": ("logit", "xgboost_sigmoid", "binary", "P(class 1)"),
    # binary:logitraw adds base_score to the margin untransformed (measured with xgboost 1.7.6,
    # 2.1.4 and 3.2.0: the predicted margin minus the sum of leaves equals base_score)
    "binary:logitraw": ("identity", "identity", "regression", "margin (log-odds)"),
    "multi:softprob": ("identity", "xgboost_softmax", "multiclass", "class probabilities"),
    "multi:softmax": ("identity", "xgboost_argmax", "regression", "class index (as a float)"),
    "count:poisson": ("log", "xgboost_exp", "regression", "expected count"),
    "reg:gamma": ("log", "xgboost_exp", "regression", "expected value"),
    "reg:tweedie": ("log", "xgboost_exp", "regression", "expected value"),
}


def read(path: Path, feature_names=None) -> TreeEnsemble:
    """Read an XGBoost ``save_model`` file (.json or .ubj) into a ``TreeEnsemble``.

    ``feature_names`` (from the user's config) names the model's columns when the file records
    none; when the file records names, the config must name the same columns (any order: the
    IR keeps the model's order and the evaluator selects columns by name).
    """
    path = Path(path)
    doc = load_document(path)
    with damaged_model(
        path, "XGBoost", "booster.save_model", (KeyError, IndexError, TypeError, AttributeError)
    ):
        return ensemble_from_document(doc, feature_names, source=path.name)


def native_predict(path: Path, X: np.ndarray, feature_names) -> np.ndarray:
    """XGBoost's own predictions for X (columns in the model's order), ``(n_rows, n_outputs)``
    float64, single thread.

    Matches what ``read`` compiles: all trees, or ``best_iteration + 1`` rounds when the file
    records an early-stopping ``best_iteration`` (as the sklearn wrapper's ``predict`` does).
    """
    import pandas as pd
    import xgboost as xgb

    path = Path(path)
    doc = load_document(path)
    learner = doc["learner"]
    booster = xgb.Booster(params={"nthread": 1}, model_file=str(path))
    X = np.asarray(X, dtype=np.float64)
    names = list(feature_names) if feature_names is not None else None
    types = list(learner.get("feature_types") or [])
    recorded = list(learner.get("feature_names") or [])
    if "c" in types:
        encoders = _category_values(learner, len(types))
        if all(e is None for e in encoders):
            # trained on category codes directly (numpy input with feature_types)
            dmat = xgb.DMatrix(X, feature_types=types, enable_categorical=True, nthread=1)
        else:
            frame = pd.DataFrame(
                X, columns=recorded or names or [f"f{i}" for i in range(X.shape[1])]
            )
            for j, t in enumerate(types):
                if t == "c" and encoders[j] is not None:
                    # values the encoder does not know become NaN (missing), as in pandas
                    known = np.where(np.isin(X[:, j], encoders[j]), X[:, j], np.nan)
                    frame[frame.columns[j]] = pd.Categorical(known, categories=encoders[j])
            dmat = xgb.DMatrix(frame, enable_categorical=True, nthread=1)
    else:
        dmat = xgb.DMatrix(X, feature_names=recorded or None, nthread=1)
    end = _best_rounds(learner)
    out = booster.predict(dmat, iteration_range=(0, end or 0), validate_features=False)
    out = np.asarray(out, dtype=np.float64)
    return out.reshape(len(X), -1)


def load_document(path: Path) -> dict:
    """The ``save_model`` document as a dict (UBJSON typed arrays come back as numpy arrays)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read XGBoost model ({exc.strerror})") from exc
    if _looks_like_ubjson(data):
        doc = ubjson.loads(data, source=str(path))
    else:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(
                f"{path}: not an XGBoost save_model file (neither JSON nor UBJSON); for an old "
                "binary model, load it with xgboost and re-save it as model.ubj"
            ) from exc
    if not isinstance(doc, dict) or "learner" not in doc:
        raise ArtifactError(f"{path}: not an XGBoost save_model document (no 'learner' key)")
    return doc


def ensemble_from_document(doc: dict, feature_names=None, source: str = "model") -> TreeEnsemble:
    """Translate a parsed ``save_model`` document into the IR (see the module docstring)."""
    learner = doc["learner"]
    version = tuple(int(v) for v in doc.get("version", ()))
    objective = str(learner.get("objective", {}).get("name", ""))
    if objective not in OBJECTIVES:
        raise NotSupportedYet(f"XGBoost objective {objective!r} ({source})")
    margin_kind, transform, task, returns = OBJECTIVES[objective]

    mparam = learner.get("learner_model_param", {})
    num_class = int(mparam.get("num_class", 0) or 0)
    num_target = int(mparam.get("num_target", 1) or 1)
    if num_target > 1:
        raise NotSupportedYet(f"XGBoost multi-target model (num_target={num_target}) ({source})")
    n_groups = max(num_class, 1)
    num_feature = int(mparam.get("num_feature", 0) or 0)

    gbm, weight_drop = _unwrap_booster(learner["gradient_booster"], source)
    model = gbm["model"]
    trees = model["trees"]
    gparam = model.get("gbtree_model_param", {})
    num_parallel_tree = int(gparam.get("num_parallel_tree", 1) or 1)
    tree_info = np.asarray(model.get("tree_info", []), dtype=np.int64)
    if len(tree_info) != len(trees):
        raise ArtifactError(
            f"{source}: tree_info has {len(tree_info)} entries for {len(trees)} trees"
        )
    if len(trees) and (tree_info.min() < 0 or tree_info.max() >= n_groups):
        raise ArtifactError(f"{source}: tree_info names an output outside 0..{n_groups - 1}")

    indptr = model.get("iteration_indptr")
    if indptr is None or len(indptr) == 0:
        per_round = num_parallel_tree * n_groups
        indptr = list(range(0, len(trees) + 1, per_round))
        if indptr[-1] != len(trees):
            indptr.append(len(trees))
    indptr = [int(v) for v in indptr]
    n_trees = len(trees)
    best = _best_rounds(learner)
    if best is not None and best < len(indptr) - 1:
        n_trees = indptr[best]

    names = _feature_names(learner, feature_names, num_feature, source)
    types = list(learner.get("feature_types") or [])
    encoders = _category_values(learner, len(names)) if "c" in types else None

    init = _margin(_base_score(mparam, n_groups, source), margin_kind, objective, source)

    parts = [
        _tree_arrays(
            trees[t], float(weight_drop[t]) if weight_drop is not None else None, encoders, source
        )
        for t in range(n_trees)
    ]
    ens = concat_trees(parts)
    meta = {
        "objective": objective,
        "xgboost_version": ".".join(str(v) for v in version),
        "booster": "dart" if weight_drop is not None else "gbtree",
        "num_parallel_tree": num_parallel_tree,
        "rounds": len(indptr) - 1,
        "rounds_used": best if best is not None else len(indptr) - 1,
        "predict_returns": returns,
    }
    return TreeEnsemble(
        library="xgboost",
        feature_names=tuple(names),
        tree_class=tree_info[:n_trees].astype(np.int32),
        **node_fields(ens),
        n_outputs=n_groups,
        init=init,
        compare="<",
        input_dtype="float32",
        accumulate_dtype="float32",
        average=False,
        transform=transform,
        transform_params={},
        task=task,
        meta=meta,
    )


# ---------------------------------------------------------------------------------------------
# helpers


def _looks_like_ubjson(data: bytes) -> bool:
    # A JSON document starts with '{' then whitespace or '"'; UBJSON's object '{' is followed
    # by a length marker for the first key (or '$' / '#' / '}').
    head = data.lstrip()[:2]
    return len(head) == 2 and head[0:1] == b"{" and head[1:2] in b"iUIlL$#}"


def _unwrap_booster(gb: dict, source: str) -> tuple[dict, np.ndarray | None]:
    """The gbtree dict and DART weights (None for plain gbtree), across layouts.

    Up to 3.2 DART is its own ``gradient_booster`` ``{"name": "dart", "gbtree": {...},
    "weight_drop": [...]}``; 3.3 moved DART state into GBTree, so also look for
    ``weight_drop`` beside and inside the ``model`` dict.
    """
    name = gb.get("name")
    if name == "gblinear":
        raise NotSupportedYet(f"XGBoost booster 'gblinear' ({source})")
    if name == "dart":
        inner = gb.get("gbtree", gb)
        weights = gb.get("weight_drop", inner.get("weight_drop"))
        if weights is None:
            weights = inner.get("model", {}).get("weight_drop")
        return inner, np.asarray(weights if weights is not None else [], dtype=np.float32)
    if name != "gbtree":
        raise NotSupportedYet(f"XGBoost booster {name!r} ({source})")
    weights = gb.get("weight_drop")
    if weights is None:
        weights = gb.get("model", {}).get("weight_drop")
    if weights is not None and len(weights):
        return gb, np.asarray(weights, dtype=np.float32)
    return gb, None


def _best_rounds(learner: dict) -> int | None:
    """Rounds the sklearn wrapper's predict uses: best_iteration + 1 when recorded."""
    attrs = learner.get("attributes") or {}
    if "best_iteration" in attrs:
        return int(attrs["best_iteration"]) + 1
    return None


def _feature_names(learner: dict, given, num_feature: int, source: str) -> list[str]:
    return bind_feature_names(learner.get("feature_names"), given, num_feature, source)


def _base_score(mparam: dict, n_groups: int, source: str) -> np.ndarray:
    """``base_score`` as float32 per output: "5E-1", "[5E-1]" or "[a,b,c]" (3.1+)."""
    raw = mparam.get("base_score", "0.5")
    if isinstance(raw, (list, tuple, np.ndarray)):
        values = [float(v) for v in raw]
    else:
        text = str(raw).strip()
        if text.startswith("["):
            body = text[1:-1].strip()
            values = [float(v) for v in re.split(r"[,\s]+", body) if v] if body else []
        else:
            values = [float(text)]
    if len(values) == 1:
        values = values * n_groups  # a scalar is broadcast to every output (HandleOldFormat)
    if len(values) != n_groups:
        raise ArtifactError(f"{source}: base_score has {len(values)} values for {n_groups} outputs")
    return np.asarray(values, dtype=np.float32)


def _margin(base: np.ndarray, kind: str, objective: str, source: str) -> np.ndarray:
    """ProbToMargin in float32 (``logistic_obj.h``, ``*_obj.h``).

    The library computes ``-logf(1.0f / x - 1.0f)`` and ``logf(x)`` on float32 values. Each
    log is evaluated here in double and rounded once to float32, which is the correctly
    rounded logf; glibc's logf is correctly rounded too (tests check the intercept against
    xgboost's own zero-tree prediction).
    """
    if kind == "identity":
        return base.astype(np.float32)
    out = np.empty_like(base, dtype=np.float32)
    for k, x in enumerate(base):
        x = np.float32(x)
        if kind == "logit":
            if not 0.0 < x < 1.0:
                raise ArtifactError(
                    f"{source}: base_score {float(x)} is outside (0, 1) for {objective}"
                )
            inner = np.float32(np.float32(1.0) / x) - np.float32(1.0)
            out[k] = -np.float32(math.log(float(np.float32(inner))))
        else:  # log
            if not x > 0.0:
                raise ArtifactError(
                    f"{source}: base_score {float(x)} must be positive for {objective}"
                )
            out[k] = np.float32(math.log(float(x)))
    return out


def _category_values(learner: dict, n_features: int) -> list[np.ndarray | None]:
    """Per feature, the raw category values the model's category codes index (3.1+ ``cats``).

    None where the model keeps no encoder (trained on codes directly: numpy input with
    ``feature_types``), in which case codes are the raw values.
    """
    out: list[np.ndarray | None] = [None] * n_features
    cats = learner.get("gradient_booster", {})
    cats = cats.get("model", cats.get("gbtree", {}).get("model", {})).get("cats") or {}
    enc = cats.get("enc") or []
    for j, entry in enumerate(enc[:n_features]):
        if not isinstance(entry, dict):
            continue
        values = entry.get("values")
        if values is None or len(values) == 0:
            continue
        if "offsets" in entry and len(entry.get("offsets") or []):
            raise NotSupportedYet(f"XGBoost string categories (feature {j})")
        arr = np.asarray(values, dtype=np.float64)
        if np.any(arr < 0) or np.any(arr != np.floor(arr)):
            raise NotSupportedYet(
                f"XGBoost categories that are not non-negative integers (feature {j})"
            )
        out[j] = arr.astype(np.int64)
    return out


def _tree_arrays(tree: dict, weight: float | None, encoders, source: str) -> dict:
    tparam = tree.get("tree_param", {})
    size_leaf_vector = int(tparam.get("size_leaf_vector", 1) or 1)
    if size_leaf_vector > 1:
        raise NotSupportedYet(
            f"XGBoost vector-leaf trees (multi_strategy=multi_output_tree) ({source})"
        )
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    cond = np.asarray(tree["split_conditions"], dtype=np.float32)
    feat = np.asarray(tree["split_indices"], dtype=np.int64)
    dleft = np.asarray(tree["default_left"], dtype=np.int64).astype(bool)
    n = len(left)
    split_type = tree.get("split_type")
    split_type = np.zeros(n, np.int64) if split_type is None else np.asarray(split_type, np.int64)
    if len(split_type) == 0:
        split_type = np.zeros(n, np.int64)

    # Keep only nodes reachable from the root: pruned nodes can stay in the arrays
    # (RegTree counts them in num_deleted) and must not reach the kernel.
    internal = left != -1
    children = np.sort(np.concatenate([left[internal], right[internal]]))
    if len(children) == n - 1 and np.array_equal(children, np.arange(1, n)):
        order = np.arange(n, dtype=np.int64)  # every node is some node's child: all reachable
    else:
        order = _reachable(left, right)
    remap = np.full(n, -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    left, right = left[order], right[order]
    cond, feat, dleft, split_type = cond[order], feat[order], dleft[order], split_type[order]
    is_leaf = left == -1

    leaf = np.where(is_leaf, cond, np.float32(0.0)).astype(np.float32)
    if weight is not None and weight != 1.0:
        leaf = (leaf * np.float32(weight)).astype(np.float32)
    lc = np.where(is_leaf, -1, remap[np.where(is_leaf, 0, left)])
    rc = np.where(is_leaf, -1, remap[np.where(is_leaf, 0, right)])
    threshold = np.where(is_leaf, 0.0, cond.astype(np.float64))
    split_feature = np.where(is_leaf, -1, feat)

    is_cat = (split_type == 1) & ~is_leaf
    cat_sets: list[np.ndarray] = [np.empty(0, np.uint32)] * len(order)
    if is_cat.any():
        nodes = np.asarray(tree["categories_nodes"], dtype=np.int64)
        segments = np.asarray(tree["categories_segments"], dtype=np.int64)
        sizes = np.asarray(tree["categories_sizes"], dtype=np.int64)
        categories = np.asarray(tree["categories"], dtype=np.int64)
        by_node = {
            int(nd): categories[s : s + z] for nd, s, z in zip(nodes, segments, sizes, strict=True)
        }
        for new in np.flatnonzero(is_cat):
            old = int(order[new])
            matching = by_node.get(old, np.empty(0, np.int64))
            f = int(feat[new])
            values = encoders[f] if encoders is not None and f < len(encoders) else None
            cset, to_left, dl = _categorical_node(matching, values, bool(dleft[new]))
            cat_sets[new] = category_bitset(cset)
            if not to_left:  # the library's "right" child receives the set: swap
                lc[new], rc[new] = rc[new], lc[new]
            dleft[new] = dl
    return {
        "split_feature": split_feature.astype(np.int32),
        "threshold": threshold,
        "left": lc.astype(np.int32),
        "right": rc.astype(np.int32),
        "default_left": dleft,
        "leaf_value": leaf.astype(np.float64),
        "is_categorical": is_cat,
        "cat_sets": cat_sets,
    }


def _categorical_node(matching: np.ndarray, values: np.ndarray | None, default_left: bool):
    """(IR set, whether the set's side is the library's left child, IR default_left).

    Without an encoder the input is the category code itself: codes in ``matching`` go right,
    every other value (negative, out of range, unmatched) goes left, NaN to the default side.
    With an encoder (3.1+ ``cats``), the input is the raw value; the library maps it to a code
    and any value it does not know becomes missing (default side). Choosing the set so that
    "not in set" is the default side reproduces both rules with the IR's single bitset.
    """
    if values is None:
        # IR: set -> library's right child; other values -> library's left.
        return matching, False, not default_left
    matching = matching[(matching >= 0) & (matching < len(values))]
    if default_left:
        # library-right (matching values) is the set; unknown values fall to the left default.
        return values[matching], False, False
    # default right: the set is the known values that go left; unknown values go right.
    others = np.setdiff1d(np.arange(len(values)), matching)
    return values[others], True, False


def _reachable(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Node ids reachable from root 0, ascending (so the root stays first)."""
    n = len(left)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    frontier = np.zeros(1, dtype=np.int64)
    while len(frontier):
        seen[frontier] = True
        internal = frontier[left[frontier] != -1]
        frontier = np.concatenate([left[internal], right[internal]])
        frontier = frontier[(frontier >= 0) & (frontier < n)]
        frontier = frontier[~seen[frontier]]
    return np.flatnonzero(seen).astype(np.int64)
