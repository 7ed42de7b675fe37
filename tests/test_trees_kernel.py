"""The shipped tree kernel on hand-built TreeEnsemble IR: routing rules of builder/ir.py,
accumulation order and precision, strategy choice, fallbacks, pickling."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from builder.compile.trees import BITS_MAX_DEPTH, compile_trees
from builder.ir import TreeEnsemble
from builder.kernels import trees as kernel
from builder.kernels.transforms import TRANSFORMS, apply_transform


def stump(
    threshold=1.5,
    *,
    compare="<=",
    input_dtype="float64",
    default_left=False,
    nan_as_zero=False,
    zero_as_missing=False,
    left=-1.0,
    right=1.0,
    **extra,
):
    """One tree: root split on feature 0, two leaves."""
    return TreeEnsemble(
        library="test",
        feature_names=("f0", "f1"),
        tree_offsets=np.array([0, 3]),
        tree_class=np.array([0], dtype=np.int32),
        split_feature=np.array([0, -1, -1], dtype=np.int32),
        threshold=np.array([threshold, 0.0, 0.0]),
        left_child=np.array([1, -1, -1], dtype=np.int32),
        right_child=np.array([2, -1, -1], dtype=np.int32),
        default_left=np.array([default_left, False, False]),
        nan_as_zero=np.array([nan_as_zero, False, False]),
        zero_as_missing=np.array([zero_as_missing, False, False]),
        leaf_value=np.array([0.0, left, right]),
        n_outputs=1,
        init=np.zeros(1),
        compare=compare,
        input_dtype=input_dtype,
        **extra,
    )


def column(values):
    x = np.zeros((len(values), 2))
    x[:, 0] = values
    return x


def predict(ens, X, strategy="auto"):
    return compile_trees(ens, strategy).predict(X)[:, 0]


@pytest.mark.parametrize("strategy", ["walk", "auto"])
def test_less_equal_sends_threshold_value_left_and_less_than_sends_it_right(strategy):
    X = column([1.0, 2.0, 3.0])
    assert list(predict(stump(2.0), X, strategy)) == [-1, -1, 1]
    assert list(predict(stump(2.0, compare="<"), X, strategy)) == [-1, 1, 1]


def test_float32_input_cast_happens_before_the_compare():
    t = float(np.float32(0.1))
    x = t - 1e-12  # rounds to t in float32
    assert predict(stump(t, compare="<"), column([x]))[0] == -1.0
    assert predict(stump(t, compare="<", input_dtype="float32"), column([x]))[0] == 1.0


@pytest.mark.parametrize("strategy", ["walk", "auto"])
def test_nan_goes_to_default_side_unless_read_as_zero(strategy):
    X = column([np.nan])
    assert predict(stump(1.5, default_left=True), X, strategy)[0] == -1.0
    assert predict(stump(1.5, default_left=False), X, strategy)[0] == 1.0
    # NaN -> 0.0, then the ordinary compare: 0 <= -0.5 is false
    assert predict(stump(-0.5, default_left=True, nan_as_zero=True), X, strategy)[0] == 1.0


@pytest.mark.parametrize("strategy", ["walk", "auto"])
def test_zero_as_missing_sends_zero_tiny_and_nan_to_default_side(strategy):
    ens = stump(-0.5, default_left=True, nan_as_zero=True, zero_as_missing=True)
    X = column([0.0, 1e-36, -1e-36, np.nan, 1.0, -1.0])
    assert list(predict(ens, X, strategy)) == [-1, -1, -1, -1, 1, -1]


def categorical_stump(words, default_left=False):
    return stump(
        0.0,
        default_left=default_left,
        is_categorical=np.array([True, False, False]),
        cat_offsets=np.array([0, len(words), len(words), len(words)]),
        cat_words=np.array(words, dtype=np.uint32),
    )


@pytest.mark.parametrize("strategy", ["walk", "auto"])
def test_categorical_in_set_goes_left_and_anything_else_right(strategy):
    ens = categorical_stump([0b101, 0b10])  # categories 0, 2 and 33
    X = column([0, 1, 2, 33, 34, -0.5, 2.9, -1, 64, 1e12, np.nan])
    assert list(predict(ens, X, strategy)) == [-1, 1, -1, -1, 1, -1, -1, 1, 1, 1, 1]


def test_categorical_nan_follows_default_left():
    assert predict(categorical_stump([1], default_left=True), column([np.nan]))[0] == -1.0


def chain(n_trees, leaf, init=0.0, acc="float64", n_outputs=1, tree_class=None, **extra):
    """n_trees single-leaf trees with the given leaf values."""
    leaf = np.asarray(leaf, dtype=np.float64)
    return TreeEnsemble(
        library="test",
        feature_names=("f0",),
        tree_offsets=np.arange(n_trees + 1),
        tree_class=np.zeros(n_trees, np.int32) if tree_class is None else tree_class,
        split_feature=np.full(n_trees, -1, np.int32),
        threshold=np.zeros(n_trees),
        left_child=np.full(n_trees, -1, np.int32),
        right_child=np.full(n_trees, -1, np.int32),
        default_left=np.zeros(n_trees, bool),
        nan_as_zero=np.zeros(n_trees, bool),
        zero_as_missing=np.zeros(n_trees, bool),
        leaf_value=leaf,
        n_outputs=n_outputs,
        init=np.full(n_outputs, init),
        accumulate_dtype=acc,
        **extra,
    )


@pytest.mark.parametrize("acc", ["float64", "float32"])
def test_leaves_are_added_one_tree_at_a_time_from_init(acc):
    rng = np.random.default_rng(0)
    leaf = (rng.standard_normal(500) * 10.0 ** rng.integers(-6, 6, 500)).astype(acc)
    expected = np.array([0.25], dtype=acc)
    for v in leaf:
        expected = expected + v
    for strategy in ("walk", "auto"):
        raw = compile_trees(chain(500, leaf, 0.25, acc), strategy).predict_raw(np.zeros((3, 1)))
        assert raw.dtype == np.dtype(acc)
        assert np.array_equal(raw[:, 0], np.repeat(expected, 3))
    assert float(np.sum(leaf, dtype=acc) + np.dtype(acc).type(0.25)) != float(expected[0])


def test_average_divides_each_column_by_its_tree_count():
    ens = chain(
        5,
        [1, 10, 2, 20, 3],
        n_outputs=2,
        tree_class=np.array([0, 1, 0, 1, 0], np.int32),
        average=True,
    )
    assert list(compile_trees(ens).predict_raw(np.zeros((1, 1)))[0]) == [2.0, 15.0]


def random_ensemble(seed, n_trees=30, max_depth=6, categorical=True, compare="<="):
    """Random trees over 5 features with thresholds around the values 0..4 and all flags."""
    rng = np.random.default_rng(seed)
    cols = {k: [] for k in ("feat", "thr", "left", "right", "dl", "naz", "zam", "val", "cat")}
    words, cat_off, offsets = [], [0], [0]

    def node(depth):
        i = len(cols["feat"])
        for k in cols:
            cols[k].append(0)
        if depth == max_depth or (depth > 0 and rng.random() < 0.25):
            cols["feat"][i] = -1
            cols["val"][i] = rng.normal()
            cat_off.append(cat_off[-1])
            return i
        cols["feat"][i] = int(rng.integers(0, 5))
        cols["thr"][i] = float(rng.choice([-0.5, 0.0, 1e-36, 0.5, 1.0, 1.5, 2.0, 3.5, 4.0, 9.0]))
        cols["dl"][i] = bool(rng.random() < 0.5)
        cols["naz"][i] = bool(rng.random() < 0.5)
        cols["zam"][i] = bool(rng.random() < 0.3)
        is_cat = categorical and rng.random() < 0.2
        cols["cat"][i] = is_cat
        if is_cat:
            w = rng.integers(0, 2**32, size=int(rng.integers(1, 3)), dtype=np.uint64)
            words.extend(w.tolist())
        cat_off.append(len(words))
        local = i - offsets[-1]
        lc = node(depth + 1)
        rc = node(depth + 1)
        cols["left"][i], cols["right"][i] = lc - offsets[-1], rc - offsets[-1]
        assert local >= 0
        return i

    for _ in range(n_trees):
        node(0)
        offsets.append(len(cols["feat"]))
    n = len(cols["feat"])
    return TreeEnsemble(
        library="test",
        feature_names=tuple(f"f{i}" for i in range(5)),
        tree_offsets=np.array(offsets),
        tree_class=(np.arange(n_trees) % 2).astype(np.int32),
        split_feature=np.array(cols["feat"], np.int32),
        threshold=np.array(cols["thr"]),
        left_child=np.array(cols["left"], np.int32),
        right_child=np.array(cols["right"], np.int32),
        default_left=np.array(cols["dl"], bool),
        nan_as_zero=np.array(cols["naz"], bool),
        zero_as_missing=np.array(cols["zam"], bool),
        leaf_value=np.array(cols["val"]),
        n_outputs=2,
        init=np.array([0.5, -0.5]),
        compare=compare,
        is_categorical=np.array(cols["cat"], bool),
        cat_offsets=np.array(cat_off[: n + 1]),
        cat_words=np.array(words, dtype=np.uint32),
    )


def small_int_inputs(seed, n=300):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(n, 5)).astype(np.float64)
    with_nan = X.copy()
    with_nan[rng.random(X.shape) < 0.2] = np.nan
    wide = rng.integers(0, 40, size=(n, 5)).astype(np.int16)
    return [X, X.astype(np.int8), X.astype(np.int32), with_nan, with_nan.astype(np.float32), wide]


def test_bit_sliced_strategy_equals_the_walk_on_random_trees():
    for seed in range(40):
        ens = random_ensemble(seed, compare="<" if seed % 3 == 0 else "<=")
        walk, bits = compile_trees(ens, "walk"), compile_trees(ens, "auto")
        assert bits.strategies() == {"bits": 30}
        for X in small_int_inputs(seed):
            assert np.array_equal(bits.predict_raw(X), walk.predict_raw(X)), seed


def test_bit_sliced_strategy_falls_back_to_the_walk_for_other_values():
    ens = random_ensemble(3)
    walk, bits = compile_trees(ens, "walk"), compile_trees(ens, "auto")
    rng = np.random.default_rng(1)
    base = rng.integers(0, 5, size=(200, 5)).astype(np.float64)
    for bad in (0.5, -1.0, 63.0, 1e9, np.inf):
        X = base.copy()
        X[7, 2] = bad
        assert kernel._small_codes(X) is None
        assert np.array_equal(bits.predict_raw(X), walk.predict_raw(X))


def test_rows_are_evaluated_in_blocks_with_identical_results(monkeypatch):
    ens = random_ensemble(5)
    X = small_int_inputs(5, n=1000)[3]
    whole = compile_trees(ens).predict_raw(X)
    monkeypatch.setattr(kernel, "ROWS_PER_BLOCK", 130)
    monkeypatch.setattr(kernel, "PAIRS_PER_STEP", 1000)
    monkeypatch.setattr(kernel, "TREES_PER_BITS_STEP", 3)
    assert np.array_equal(compile_trees(ens).predict_raw(X), whole)
    assert np.array_equal(compile_trees(ens, "walk").predict_raw(X), whole)


def deep_chain_tree(depth):
    """A left-leaning chain of `depth` splits (leaf-wise LightGBM shape)."""
    n = 2 * depth + 1
    feat = np.full(n, -1, np.int32)
    left = np.full(n, -1, np.int32)
    right = np.full(n, -1, np.int32)
    for d in range(depth):
        feat[2 * d] = 0
        left[2 * d] = 2 * d + 2
        right[2 * d] = 2 * d + 1
    return dict(
        split_feature=feat,
        left_child=left,
        right_child=right,
        threshold=np.arange(n, dtype=np.float64) / 2,
        leaf_value=np.arange(n) * 1.0,
    )


@pytest.mark.parametrize("depth,kind", [(BITS_MAX_DEPTH, "bits"), (BITS_MAX_DEPTH + 1, "walk")])
def test_trees_up_to_depth_8_are_bit_sliced_and_deeper_ones_walked(depth, kind):
    t = deep_chain_tree(depth)
    n = len(t["split_feature"])
    ens = TreeEnsemble(
        library="test",
        feature_names=("f0",),
        tree_offsets=np.array([0, n]),
        tree_class=np.zeros(1, np.int32),
        default_left=np.zeros(n, bool),
        nan_as_zero=np.zeros(n, bool),
        zero_as_missing=np.zeros(n, bool),
        n_outputs=1,
        init=np.zeros(1),
        **t,
    )
    evaluator = compile_trees(ens)
    assert evaluator.strategies() == {kind: 1}
    X = np.arange(0, 12, 0.5)[:, None]
    assert np.array_equal(evaluator.predict(X), compile_trees(ens, "walk").predict(X))


def test_pandas_frame_columns_are_selected_by_name():
    import pandas as pd

    ens = stump(1.5)
    frame = pd.DataFrame({"f1": [9, 9], "f0": [1, 2], "era": ["1", "1"]})
    assert list(compile_trees(ens).predict(frame)[:, 0]) == [-1.0, 1.0]


def test_wrong_width_input_is_refused():
    with pytest.raises(ValueError, match="2 feature columns"):
        compile_trees(stump()).predict(np.zeros((3, 5)))


def test_numpy_reduce_over_trees_is_sequential_here():
    assert kernel._reduce_is_sequential()


def test_xgboost_sigmoid_is_float32_with_clamp():
    raw = np.array([[-100.0], [-1.5], [0.0], [0.3], [100.0]], dtype=np.float32)
    expected = []
    for v in raw[:, 0]:
        x = min(-v, np.float32(88.7))
        denom = np.float32(np.exp(np.float64(x))) + np.float32(1.0) + np.float32(1e-16)
        expected.append(np.float32(1.0) / np.float32(denom))
    out = apply_transform("xgboost_sigmoid", raw)
    assert np.array_equal(out[:, 0], np.array(expected, dtype=np.float64))


def test_lightgbm_softmax_rows_sum_to_one_and_keep_order():
    raw = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    out = apply_transform("lightgbm_softmax", raw)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert out[0].argmax() == 2 and out[1, 0] == 1.0


def test_transform_registry_names_the_documented_transforms():
    assert {
        "identity",
        "exp",
        "lightgbm_sigmoid",
        "lightgbm_softmax",
        "lightgbm_log1p_exp",
        "reg_sqrt",
        "xgboost_sigmoid",
        "xgboost_softmax",
        "xgboost_exp",
    } <= set(TRANSFORMS)
    with pytest.raises(ValueError, match="unknown tree output transform"):
        apply_transform("nope", np.zeros((1, 1)))


def test_pickled_evaluator_predicts_without_the_builder_package(tmp_path):
    import cloudpickle

    ens = random_ensemble(7)
    evaluator = compile_trees(ens)
    X = small_int_inputs(7)[3]
    cloudpickle.register_pickle_by_value(sys.modules["builder.kernels"])
    try:
        blob = cloudpickle.dumps(evaluator)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules["builder.kernels"])
    (tmp_path / "model.pkl").write_bytes(blob)
    np.save(tmp_path / "X.npy", X)
    script = (
        "import sys, pickle, numpy as np\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'builder' or name.startswith('builder.'):\n"
        "            raise ImportError('builder is not in the container')\n"
        "sys.meta_path.insert(0, Block())\n"
        "model = pickle.load(open(sys.argv[1], 'rb'))\n"
        "np.save(sys.argv[3], model.predict(np.load(sys.argv[2])))\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "model.pkl"),
            str(tmp_path / "X.npy"),
            str(tmp_path / "out.npy"),
        ],
        check=True,
    )
    assert np.array_equal(np.load(tmp_path / "out.npy"), evaluator.predict(X))


def test_mixed_depths_split_into_strategy_chunks_and_keep_tree_order():
    shallow, deep = deep_chain_tree(2), deep_chain_tree(BITS_MAX_DEPTH + 3)
    trees = [shallow, deep, deep, shallow, shallow, deep]
    offsets = np.cumsum([0] + [len(t["split_feature"]) for t in trees])
    n = int(offsets[-1])
    rng = np.random.default_rng(4)
    ens = TreeEnsemble(
        library="test",
        feature_names=("f0",),
        tree_offsets=offsets,
        tree_class=np.zeros(len(trees), np.int32),
        split_feature=np.concatenate([t["split_feature"] for t in trees]),
        threshold=np.concatenate([t["threshold"] for t in trees]),
        left_child=np.concatenate([t["left_child"] for t in trees]),
        right_child=np.concatenate([t["right_child"] for t in trees]),
        default_left=np.zeros(n, bool),
        nan_as_zero=np.zeros(n, bool),
        zero_as_missing=np.zeros(n, bool),
        leaf_value=rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n),
        n_outputs=1,
        init=np.zeros(1),
    )
    evaluator = compile_trees(ens)
    assert [c["kind"] for c in evaluator.classes[0]] == ["bits", "walk", "bits", "walk"]
    X = np.arange(0, 14)[:, None].astype(np.int8)
    assert np.array_equal(evaluator.predict_raw(X), compile_trees(ens, "walk").predict_raw(X))
