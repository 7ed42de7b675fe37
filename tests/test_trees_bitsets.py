"""The two ways of building the bit-sliced predicate bitsets (builder/kernels/trees.py):
per predicate (_direct_bits, wide inputs) and from per-feature bit planes (_plane_bits, narrow
inputs) must give the same bitsets, and both LightGBM's predictions, on every kind of split:
numeric, NaN to either side, zero-as-missing and categorical sets."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest

from builder.artifacts import lightgbm as lgb_reader
from builder.compile.trees import compile_trees
from builder.kernels import trees as kt
from tests.lightgbm_fidelity import train
from tests.synthdata import numerai_like

MODELS = {
    "nan": ({"objective": "regression", "num_leaves": 15}, {}),
    "zero_as_missing": ({"objective": "regression", "num_leaves": 15, "zero_as_missing": True}, {}),
    "categorical": (
        {"objective": "regression", "num_leaves": 15, "min_data_per_group": 5, "cat_smooth": 1},
        {"categorical_feature": [0, 1]},
    ),
}


def _model(tmp_path, kind: str):
    X, y = numerai_like(2000, 8, seed=11, nan_fraction=0.1)
    params, dataset = MODELS[kind]
    booster = train(params, X, y, 40, **dataset)
    path = tmp_path / f"{kind}.txt"
    booster.save_model(str(path))
    return compile_trees(lgb_reader.read(path)), lightgbm.Booster(model_file=str(path))


def _live(seed: int, nan: bool) -> np.ndarray:
    X, _ = numerai_like(777, 8, seed=seed, nan_fraction=0.2 if nan else 0.0)
    return X if nan else X.astype(np.int8)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("nan", [False, True], ids=["int8", "nan"])
def test_direct_and_plane_bitsets_are_identical(tmp_path, monkeypatch, kind, nan):
    evaluator, _ = _model(tmp_path, kind)
    X = _live(21, nan)
    monkeypatch.setattr(kt, "DIRECT_PREDICATES_PER_FEATURE", 0.0)
    planes = kt._predicate_bits(X, evaluator.predicates)
    monkeypatch.setattr(kt, "DIRECT_PREDICATES_PER_FEATURE", 1e9)
    direct = kt._predicate_bits(X, evaluator.predicates)
    words = (len(X) + 63) // 64
    # padding rows past the last live row may differ; compare the live rows' bits only
    tail = np.uint64((1 << (len(X) % 64)) - 1) if len(X) % 64 else ~np.uint64(0)
    for bits in (planes, direct):
        bits[:, words - 1] &= tail
    assert np.array_equal(planes, direct)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("factor", [0.0, 1e9], ids=["planes", "direct"])
def test_each_bitset_construction_matches_lightgbm(tmp_path, monkeypatch, kind, factor):
    evaluator, native = _model(tmp_path, kind)
    monkeypatch.setattr(kt, "DIRECT_PREDICATES_PER_FEATURE", factor)
    for nan in (False, True):
        X = _live(22, nan)
        expected = native.predict(np.asarray(X, dtype=np.float64), num_threads=1)
        assert np.array_equal(evaluator.predict(X)[:, 0], expected)


def test_category_words_lay_each_categorical_nodes_bitset_at_its_offsets():
    from builder.artifacts.forest import category_words

    offsets, words = category_words([False, True, False, True], [[5], [1, 2]])
    assert offsets.tolist() == [0, 0, 1, 1, 3]
    assert words.dtype == np.uint32 and words.tolist() == [5, 1, 2]


def test_category_words_of_a_forest_without_categories_are_empty():
    from builder.artifacts.forest import category_words

    offsets, words = category_words([False, False], [])
    assert offsets.tolist() == [0, 0, 0] and len(words) == 0
