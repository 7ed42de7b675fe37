"""TreeEnsemble IR -> builder.kernels.trees.TreeEnsembleEvaluator.

Strategy choice (stated heuristic, tested in tests/test_trees_kernel.py):
  * a tree of depth <= BITS_MAX_DEPTH without linear leaves is evaluated by the bit-sliced
    strategy ("bits"): padding to a complete tree costs 2**depth slots, which stays cheap up
    to depth 8 (a uint8 leaf index) and is where Numerai models live (depth 4-8);
  * deeper trees (e.g. leaf-wise LightGBM trees without max_depth) and linear trees use the
    level-synchronous walk ("walk"), the exact reference for any data.
  * "bits" needs inputs that are small non-negative integers or NaN; the evaluator checks each
    block of rows at predict time and walks the same trees when the check fails.
Consecutive trees of one output column with the same strategy form a chunk; accumulation order
is the tree order whatever the chunking.
"""

from __future__ import annotations

import copy

import numpy as np

from builder.errors import ArtifactError
from builder.ir import TreeEnsemble
from builder.kernels.transforms import TRANSFORMS
from builder.kernels.trees import MAX_CODE, NAN_CODE, TreeEnsembleEvaluator

BITS_MAX_DEPTH = 8
STRATEGIES = ("auto", "walk", "bits")


def compile_trees(ens: TreeEnsemble, strategy: str = "auto") -> TreeEnsembleEvaluator:
    """Compile a tree ensemble into a picklable numpy evaluator.

    strategy: "auto" (the heuristic above), "walk" (reference traversal only) or "bits"
    (bit-sliced wherever the tree allows it, same as auto today).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown tree strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    if ens.transform not in TRANSFORMS:
        raise ArtifactError(f"unknown tree output transform {ens.transform!r}")
    acc_dtype = np.dtype(ens.accumulate_dtype)
    nodes, tree_root = _global_nodes(ens, acc_dtype)
    depth = _tree_depths(ens, nodes, tree_root)
    linear = _linear_arrays(ens)
    linear_tree = np.zeros(ens.n_trees, dtype=bool)
    if linear is not None:
        tree_of_node = np.repeat(np.arange(ens.n_trees), np.diff(ens.tree_offsets))
        linear_tree[tree_of_node[linear["is_linear"]]] = True

    use_bits = (depth <= BITS_MAX_DEPTH) & ~linear_tree
    if strategy == "walk":
        use_bits[:] = False
    predicates = node_pred = ranks = rank_node_pred = None
    if use_bits.any():
        predicates, node_pred = _predicates(
            nodes,
            feature_names=ens.feature_names,
            input_float32=ens.input_dtype == "float32",
            compare_lt=ens.compare == "<",
        )
        ranks, rank_node_pred = _ranks(
            nodes,
            feature_names=ens.feature_names,
            input_float32=ens.input_dtype == "float32",
            compare_lt=ens.compare == "<",
            n_code_predicates=len(predicates["masks"]),
        )

    classes = []
    for k in range(ens.n_outputs):
        trees = np.nonzero(ens.tree_class == k)[0]
        chunks = []
        for run in _runs(use_bits[trees]):
            ids = trees[run]
            kind = "bits" if use_bits[ids[0]] else "walk"
            d = int(depth[ids].max())
            chunk = {"kind": kind, "trees": tree_root[ids].astype(np.int32), "depth": d}
            if kind == "bits":
                chunk["node_pred"], chunk["leaf_values"] = _padded(
                    nodes, tree_root[ids], d, node_pred
                )
                if rank_node_pred is not None:
                    chunk["rank_node_pred"] = _padded(nodes, tree_root[ids], d, rank_node_pred)[0]
            chunks.append(chunk)
        classes.append(chunks)

    average_counts = None
    if ens.average:
        average_counts = np.bincount(ens.tree_class, minlength=ens.n_outputs).astype(acc_dtype)
        average_counts[average_counts == 0] = 1
    return TreeEnsembleEvaluator(
        feature_names=ens.feature_names,
        task=ens.task,
        n_raw=ens.n_outputs,
        input_float32=ens.input_dtype == "float32",
        compare_lt=ens.compare == "<",
        acc_dtype=acc_dtype,
        init=np.asarray(ens.init, dtype=acc_dtype).reshape(ens.n_outputs),
        average_counts=average_counts,
        transform=ens.transform,
        transform_params=ens.transform_params,
        nodes=nodes,
        linear=linear,
        classes=classes,
        predicates=predicates,
        ranks=ranks,
    )


def fold_preprocessing(bundle):
    """The bundle with its preprocessing folded into its tree members' predicates, when exact.

    fill_missing, clip and standardize act on each column alone, and on Numerai's features
    (integer codes, or NaN) a column has only MAX_CODE + 1 possible inputs. Those inputs are run
    through the slot's own step objects (the same numpy operations, on float64, that the bundle
    would run at predict time; elementwise IEEE results do not depend on the rest of the
    matrix), and each tree node's code set is computed from the values the trees would see. The
    kernel then reads the raw codes and the result is bit-identical. Each member keeps its
    columns' steps for the inputs the bit-sliced path does not take (non-integer floats, codes
    >= MAX_CODE, deep or linear trees): those are transformed and walked as before.

    Unchanged (not folded) when a step is not one of FOLDABLE_STEPS (its output may depend on
    other rows or columns), or a member is not a tree ensemble on the bit-sliced path.
    """
    from builder.kernels.bundle import Member

    steps = list(bundle.preprocessing)
    members = list(bundle.members)
    if not steps or not all(_foldable_step(step) for step in steps):
        return bundle
    if not all(
        isinstance(m.evaluator, TreeEnsembleEvaluator) and m.evaluator.predicates is not None
        for m in members
    ):
        return bundle
    folded = []
    for m in members:
        evaluator = fold_steps(m.evaluator, [_select(step, m.columns) for step in steps])
        folded.append(Member(evaluator, m.columns, m.task, m.weight))
    bundle.members = folded
    bundle.preprocessing_folded = True  # the members apply the steps now (see above)
    return bundle


def fold_steps(evaluator: TreeEnsembleEvaluator, steps: list) -> TreeEnsembleEvaluator:
    """A copy of the evaluator that takes raw inputs and applies ``steps`` (elementwise,
    parameters per input column) itself: folded into the bit-sliced predicates, run before
    the walk otherwise."""
    table = np.repeat(code_values()[:, None], len(evaluator.feature_names), axis=1)
    for step in steps:
        table = step.apply(table)
    predicates, node_pred = _predicates(
        evaluator.nodes,
        feature_names=evaluator.feature_names,
        input_float32=evaluator.input_float32,
        compare_lt=evaluator.compare_lt,
        table=np.ascontiguousarray(table.T),
    )
    classes = []
    for chunks in evaluator.classes:
        out = []
        for chunk in chunks:
            chunk = dict(chunk)
            if chunk["kind"] == "bits":
                chunk["node_pred"], chunk["leaf_values"] = _padded(
                    evaluator.nodes, chunk["trees"], chunk["depth"], node_pred
                )
            out.append(chunk)
        classes.append(out)
    folded = copy.copy(evaluator)
    folded.predicates = predicates
    folded.classes = classes
    folded.steps = list(steps)
    return folded


def code_values() -> np.ndarray:
    """The input value of each bit-sliced code: 0..MAX_CODE-1, and NaN for NAN_CODE."""
    values = np.arange(MAX_CODE + 1, dtype=np.float64)
    values[NAN_CODE] = np.nan
    return values


# Step names (builder.kernels.steps) whose output for a value depends on that value and its
# column's fitted parameters only.
FOLDABLE_STEPS = ("fill_missing", "clip", "standardize")


def _foldable_step(step) -> bool:
    from builder.kernels import steps as ks

    known = (ks.FillMissing, ks.Clip, ks.Standardize)
    return type(step) in known and step.name in FOLDABLE_STEPS


def _select(step, columns: np.ndarray):
    """The step restricted to some input columns (its per-column parameters sliced)."""
    from builder.kernels import steps as ks

    if isinstance(step, ks.FillMissing):
        return ks.FillMissing(step.values[columns])
    if isinstance(step, ks.Standardize):
        return ks.Standardize(step.mean[columns], step.scale[columns])
    return ks.Clip(step.lower, step.upper)


# ---------------------------------------------------------------------- helpers


def _global_nodes(ens: TreeEnsemble, acc_dtype) -> tuple[dict, np.ndarray]:
    """Node arrays with children as global indices; a leaf's children are itself."""
    offsets = np.asarray(ens.tree_offsets, dtype=np.int64)
    n_nodes = ens.n_nodes
    sizes = np.diff(offsets)
    if (sizes < 1).any():
        raise ArtifactError(f"tree {int(np.argmax(sizes < 1))} has no nodes")
    base = np.repeat(offsets[:-1], sizes)
    feature = np.asarray(ens.split_feature, dtype=np.int32)
    is_leaf = feature < 0
    own = np.arange(n_nodes, dtype=np.int64)
    left = np.where(is_leaf, own, base + np.asarray(ens.left_child, dtype=np.int64))
    right = np.where(is_leaf, own, base + np.asarray(ens.right_child, dtype=np.int64))
    end = np.repeat(offsets[1:], sizes)
    bad = ~is_leaf & ((left < base) | (left >= end) | (right < base) | (right >= end))
    if bad.any():
        raise ArtifactError(f"node {int(np.argmax(bad))} has a child outside its tree")
    if (feature >= len(ens.feature_names)).any():
        raise ArtifactError(
            f"a split uses feature {int(feature.max())} but the model has "
            f"{len(ens.feature_names)} features"
        )
    zam = np.asarray(ens.zero_as_missing, dtype=bool)
    # Leaves never read their threshold and internal nodes never read their value, so one
    # float64 array serves as both when the accumulation is double (a smaller pickle).
    payload = np.where(is_leaf, np.asarray(ens.leaf_value, dtype=np.float64), ens.threshold)
    value = payload if acc_dtype == np.float64 else np.asarray(ens.leaf_value).astype(acc_dtype)
    small = len(ens.feature_names) < np.iinfo(np.int16).max
    nodes = {
        "feature": feature.astype(np.int16) if small else feature,
        "threshold": payload,
        "left": left.astype(np.int32),
        "right": right.astype(np.int32),
        "default_left": np.asarray(ens.default_left, dtype=bool),
        "nan_as_zero": np.asarray(ens.nan_as_zero, dtype=bool),
        "zero_as_missing": zam,
        "any_zero_as_missing": bool(zam.any()),
        "value": value,
        "is_categorical": None,
        "cat_offsets": None,
        "cat_words": None,
    }
    if ens.is_categorical is not None and np.asarray(ens.is_categorical).any():
        nodes["is_categorical"] = np.asarray(ens.is_categorical, dtype=bool)
        nodes["cat_offsets"] = np.asarray(ens.cat_offsets, dtype=np.int64)
        nodes["cat_words"] = np.asarray(ens.cat_words, dtype=np.uint32)
    return nodes, offsets[:-1].copy()


def _tree_depths(ens: TreeEnsemble, nodes: dict, roots: np.ndarray) -> np.ndarray:
    """Number of splits on the longest root-to-leaf path of every tree."""
    depth = np.zeros(ens.n_trees, dtype=np.int64)
    tree = np.arange(ens.n_trees)
    frontier = roots.astype(np.int64)
    d = 0
    while len(frontier):
        internal = nodes["feature"][frontier] >= 0
        frontier, tree = frontier[internal], tree[internal]
        if not len(frontier):
            break
        d += 1
        depth[tree] = d
        if d > ens.n_nodes:
            raise ArtifactError("a tree has a cycle")
        frontier = np.concatenate([nodes["left"][frontier], nodes["right"][frontier]])
        tree = np.concatenate([tree, tree])
    return depth


def _linear_arrays(ens: TreeEnsemble) -> dict | None:
    """The IR's ``linear`` dict (LightGBM linear_tree) with fixed dtypes, or None.

    Layout (node-indexed, flat node space): is_linear bool[n_nodes], const f64[n_nodes],
    offsets int64[n_nodes+1] into features int32 (model column) / coeff f64.
    """
    if not ens.linear:
        return None
    lin = ens.linear
    return {
        "is_linear": np.asarray(lin["is_linear"], dtype=bool),
        "const": np.asarray(lin["const"], dtype=np.float64),
        "offsets": np.asarray(lin["offsets"], dtype=np.int64),
        "features": np.asarray(lin["features"], dtype=np.int64),
        "coeff": np.asarray(lin["coeff"], dtype=np.float64),
    }


def _runs(flags: np.ndarray) -> list[np.ndarray]:
    """Index ranges of consecutive equal values."""
    if len(flags) == 0:
        return []
    cuts = np.nonzero(np.diff(flags.astype(np.int8)))[0] + 1
    bounds = np.concatenate([[0], cuts, [len(flags)]])
    return [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _predicates(
    nodes: dict, *, feature_names, input_float32: bool, compare_lt: bool, table=None
) -> tuple[dict, np.ndarray]:
    """Distinct (feature, codes going right) predicates and each node's predicate index.

    The code sets come from the kernel's own routing function applied to the values
    0..MAX_CODE-1 and NaN, so the bit-sliced path cannot disagree with the walk. ``table``
    (features, MAX_CODE + 1) gives, per feature, the value the trees see for each code instead
    (folded preprocessing, see fold_preprocessing).
    """
    probe_eval = _probe_evaluator(nodes, feature_names, input_float32, compare_lt)
    probe = code_values()
    if input_float32:
        probe = probe.astype(np.float32).astype(np.float64)
        if table is not None:
            table = table.astype(np.float32).astype(np.float64)
    internal = np.nonzero(nodes["feature"] >= 0)[0]
    # nodes that route identically: same threshold and flags (categorical nodes stand alone)
    cat = (
        nodes["is_categorical"][internal]
        if nodes["is_categorical"] is not None
        else np.zeros(len(internal), dtype=bool)
    )
    # On the codes, a numeric node's routing depends on its threshold only through how many
    # of the values 0..MAX_CODE-1 pass the compare (searchsorted runs the same compare), so
    # nodes sharing that count and the three flags route identically.
    thr = nodes["threshold"][internal]
    flags = (
        nodes["default_left"][internal].astype(np.int64)
        + 2 * nodes["nan_as_zero"][internal]
        + 4 * nodes["zero_as_missing"][internal]
    )
    if table is None:
        side = "left" if compare_lt else "right"
        passing = np.searchsorted(probe[:NAN_CODE], thr, side=side)
        passing = np.where(np.isnan(thr), 0, passing).astype(np.int64)
    else:
        # each feature has its own code values: nodes route alike when feature, threshold
        # and flags agree
        _, thr_rank = np.unique(thr, return_inverse=True)
        feat = nodes["feature"][internal].astype(np.int64)
        passing = thr_rank.ravel().astype(np.int64) * (len(feature_names) + 1) + feat
    keys = passing * 8 + flags
    keys = np.where(cat, -1 - np.arange(len(internal)), keys)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    reps = internal[first]
    masks = np.zeros(len(reps), dtype=np.uint64)
    weights = np.uint64(1) << np.arange(MAX_CODE + 1, dtype=np.uint64)
    for a in range(0, len(reps), 4096):
        rep = reps[a : a + 4096]
        node = np.repeat(rep[:, None], len(probe), axis=1)
        if table is None:
            x = np.broadcast_to(probe, node.shape).copy()
        else:
            x = table[nodes["feature"][rep].astype(np.intp)]
        go_right = ~probe_eval._decide(node, x)
        masks[a : a + len(rep)] = np.bitwise_or.reduce(
            np.where(go_right, weights, np.uint64(0)), axis=1
        )
    node_mask = masks[inverse.ravel()]
    node_feat = nodes["feature"][internal].astype(np.int64)
    # predicate 0 is "always left" (mask 0), also used by padding slots
    unique_masks, mask_id = np.unique(node_mask, return_inverse=True)
    pair_key = node_feat * len(unique_masks) + mask_id.ravel()
    upairs, pinv = np.unique(pair_key, return_inverse=True)
    pinv = pinv.ravel()
    pair_feat = upairs // len(unique_masks)
    pair_mask = unique_masks[upairs % len(unique_masks)]
    used_features, slot = np.unique(pair_feat, return_inverse=True)
    pred_masks = np.concatenate([[np.uint64(0)], pair_mask.astype(np.uint64)])
    pred_slot = np.concatenate([[0], slot.ravel()]).astype(np.intp)
    node_pred = np.zeros(len(nodes["feature"]), dtype=np.int32)
    node_pred[internal] = np.where(node_mask == 0, 0, pinv + 1)
    predicates = {
        "features": used_features.astype(np.intp),
        "feature_slot": pred_slot,
        "masks": pred_masks,
    }
    return predicates, node_pred


def _ranks(
    nodes: dict, *, feature_names, input_float32: bool, compare_lt: bool, n_code_predicates: int
) -> tuple[dict | None, np.ndarray | None]:
    """Threshold-rank predicates (kernel: _rank_bits) and each node's predicate index, or
    (None, None) when the model does not need them or they would not be exact.

    Needed when the thresholds are finer than the codes 0..MAX_CODE-1 can tell apart (more
    distinct (feature, threshold) splits than code predicates: a model trained on non-integer
    inputs); a model trained on codes keeps the smaller pickle and walks the rare fractional
    input. Not exact, so not built, when a split is categorical (a set, not an interval) or
    treats zero as missing (zero is then no longer ordered with its neighbours).
    """
    internal = np.nonzero(nodes["feature"] >= 0)[0]
    if nodes["is_categorical"] is not None or nodes["any_zero_as_missing"] or not len(internal):
        return None, None
    feat = nodes["feature"][internal].astype(np.int64)
    thr = nodes["threshold"][internal]
    if np.isnan(thr).any():
        return None, None
    pairs, pair_of_node = np.unique(np.stack([feat, thr]), axis=1, return_inverse=True)
    if pairs.shape[1] <= n_code_predicates:
        return None, None
    pair_feat = pairs[0].astype(np.int64)
    used, slot = np.unique(pair_feat, return_inverse=True)
    slot = slot.ravel()
    offsets = np.searchsorted(pair_feat, used, side="left")
    offsets = np.append(offsets, len(pair_feat)).astype(np.int64)
    if np.diff(offsets).max() >= np.iinfo(np.uint16).max:
        return None, None
    # pairs are sorted by feature, then threshold: a pair's position within its feature is
    # its threshold's index j, and the split sends code >= j + 1 right
    cut = (np.arange(pairs.shape[1]) - offsets[slot] + 1).astype(np.uint16)
    # NaN: the kernel's own routing of a NaN at every node (default side, or as zero)
    probe_eval = _probe_evaluator(nodes, feature_names, input_float32, compare_lt)
    nan_right = ~probe_eval._decide(internal, np.full(len(internal), np.nan))
    keys = pair_of_node.ravel().astype(np.int64) * 2 + nan_right
    ukeys, pred_of_node = np.unique(keys, return_inverse=True)
    pair, right = ukeys // 2, (ukeys % 2).astype(bool)
    # predicate 0 is "always left" (cut above every code), used by padding slots
    ranks = {
        "features": used.astype(np.intp),
        "thresholds": pairs[1].astype(np.float64),
        "offsets": offsets,
        "side": "right" if compare_lt else "left",
        "slot": np.concatenate([[0], slot[pair]]).astype(np.intp),
        "cut": np.concatenate([[np.iinfo(np.uint16).max], cut[pair]]).astype(np.uint16),
        "nan_right": np.concatenate([[False], right]),
    }
    rank_node_pred = np.zeros(len(nodes["feature"]), dtype=np.int32)
    rank_node_pred[internal] = pred_of_node.ravel() + 1
    # the kernel walks features in order and fills each one's predicates as one block: the
    # predicates are already sorted by (feature, threshold) after "always left"
    ranks["first"] = np.searchsorted(ranks["slot"][1:], np.arange(len(used) + 1)) + 1
    ranks["first"][0] = 0  # feature 0's block also covers predicate 0 (cut above all codes)
    return ranks, rank_node_pred


def _probe_evaluator(nodes, feature_names, input_float32, compare_lt) -> TreeEnsembleEvaluator:
    """An evaluator over the nodes whose routing function (_decide) compile steps call."""
    return TreeEnsembleEvaluator(
        feature_names=feature_names,
        task="regression",
        n_raw=1,
        input_float32=input_float32,
        compare_lt=compare_lt,
        acc_dtype=np.float64,
        init=np.zeros(1),
        average_counts=None,
        transform="identity",
        transform_params={},
        nodes=nodes,
        linear=None,
        classes=[],
        n_outputs=1,
    )


def _padded(nodes: dict, roots: np.ndarray, depth: int, node_pred: np.ndarray):
    """Trees padded to complete depth: predicate per heap slot and value per leaf slot."""
    t = len(roots)
    preds = np.zeros((t, (1 << depth) - 1), dtype=np.int32)
    cur = roots.astype(np.int64)[:, None]
    for d in range(depth):
        is_leaf = nodes["feature"][cur] < 0
        level = np.where(is_leaf, 0, node_pred[cur])
        # bit-reversed slot order within the level (the kernel's multiplexer needs it)
        preds[:, (1 << d) - 1 : (1 << (d + 1)) - 1] = level[:, _bit_reversed(d)]
        nxt = np.empty((t, cur.shape[1] * 2), dtype=np.int64)
        nxt[:, 0::2] = nodes["left"][cur]
        nxt[:, 1::2] = nodes["right"][cur]
        cur = nxt
    leaf_values = nodes["value"][cur]
    return preds, np.ascontiguousarray(leaf_values)


def _bit_reversed(bits: int) -> np.ndarray:
    """Permutation r -> the index whose `bits`-bit binary form is r's reversed."""
    r = np.arange(1 << bits)
    out = np.zeros_like(r)
    for k in range(bits):
        out |= ((r >> k) & 1) << (bits - 1 - k)
    return out
