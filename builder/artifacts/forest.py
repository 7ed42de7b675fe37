"""Helpers the tree readers share: per-tree node arrays -> the flat arrays of ir.TreeEnsemble."""

from __future__ import annotations

import numpy as np


def category_bitset(values) -> np.ndarray:
    """uint32 words with bit v set for every category v (one zero word for an empty set)."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0:
        return np.zeros(1, dtype=np.uint32)
    words = np.zeros(int(values.max()) // 32 + 1, dtype=np.uint32)
    for v in values:
        words[v // 32] |= np.uint32(1) << np.uint32(v % 32)
    return words


def category_words(node_is_categorical, sets) -> tuple[np.ndarray, np.ndarray]:
    """``cat_offsets`` (one more than the node count) and ``cat_words`` of ir.TreeEnsemble:
    node i's bitset is ``cat_words[cat_offsets[i]:cat_offsets[i + 1]]``, empty for numeric
    nodes. ``sets``: the bitset words of each categorical node, in node order."""
    node_is_categorical = np.asarray(node_is_categorical, dtype=bool)
    sets = [np.asarray(words, dtype=np.uint32) for words in sets]
    lengths = np.zeros(len(node_is_categorical), dtype=np.int64)
    lengths[node_is_categorical] = [len(words) for words in sets]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    words = np.concatenate(sets) if sets else np.zeros(0, dtype=np.uint32)
    return offsets, words


def concat_trees(parts: list[dict]) -> dict:
    """Concatenate per-tree node arrays in tree order.

    Each part holds split_feature, threshold, left, right, default_left, leaf_value and
    is_categorical arrays (children local to the tree), and cat_sets: None when the tree has
    no categorical split, else one entry per node whose categorical entries are bitset words
    (``category_bitset``).
    """
    sizes = np.asarray([len(p["split_feature"]) for p in parts], dtype=np.int64)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])

    def cat(key, dtype):
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.concatenate([p[key] for p in parts]).astype(dtype)

    is_cat = cat("is_categorical", bool)
    has_cat = bool(is_cat.any())
    cat_offsets = cat_words = None
    if has_cat:
        sets = [
            p["cat_sets"][i]
            for p in parts
            for i, categorical in enumerate(p["is_categorical"])
            if categorical
        ]
        cat_offsets, cat_words = category_words(is_cat, sets)
    return {
        "offsets": offsets,
        "split_feature": cat("split_feature", np.int32),
        "threshold": cat("threshold", np.float64),
        "left": cat("left", np.int32),
        "right": cat("right", np.int32),
        "default_left": cat("default_left", bool),
        "leaf_value": cat("leaf_value", np.float64),
        "is_categorical": is_cat,
        "has_cat": has_cat,
        "cat_offsets": cat_offsets,
        "cat_words": cat_words,
    }


def node_fields(ens: dict) -> dict:
    """The node arguments of ``ir.TreeEnsemble`` for ``concat_trees``' output, for readers
    whose format has no zero-as-missing or NaN-reads-as-zero rule (XGBoost, scikit-learn)."""
    n_nodes = len(ens["split_feature"])
    return {
        "tree_offsets": ens["offsets"],
        "split_feature": ens["split_feature"],
        "threshold": ens["threshold"],
        "left_child": ens["left"],
        "right_child": ens["right"],
        "default_left": ens["default_left"],
        "nan_as_zero": np.zeros(n_nodes, dtype=bool),
        "zero_as_missing": np.zeros(n_nodes, dtype=bool),
        "leaf_value": ens["leaf_value"],
        "is_categorical": ens["is_categorical"] if ens["has_cat"] else None,
        "cat_offsets": ens["cat_offsets"] if ens["has_cat"] else None,
        "cat_words": ens["cat_words"] if ens["has_cat"] else None,
    }
