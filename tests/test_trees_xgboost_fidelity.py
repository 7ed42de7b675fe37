"""Randomized fidelity: compiled XGBoost models equal xgboost's own predictions exactly.

Each test trains many small real models (seeded loops over depth, rounds, eta, sampling) and
compares ``compile_model(read(file)).predict`` with ``Booster.predict`` on three kinds of
input: Numerai-like int8 values, float values, and values with NaN.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from builder.artifacts import xgboost as xgb_reader
from builder.compile import compile_model
from tests.synthdata import feature_names, numerai_like

xgb = pytest.importorskip("xgboost")

N_FEATURES = 8
NAMES = feature_names(N_FEATURES)
DATA_KINDS = ("int8", "float", "nan")


def _data(kind: str, seed: int, n_rows: int = 300):
    if kind == "int8":
        X, y = numerai_like(n_rows, N_FEATURES, seed=seed)
    elif kind == "float":
        X, y = numerai_like(n_rows, N_FEATURES, seed=seed, float_noise=True)
    else:
        X, y = numerai_like(n_rows, N_FEATURES, seed=seed, nan_fraction=0.15)
    return X, y


def _test_rows(kind: str, seed: int) -> np.ndarray:
    """Fresh rows of the same kind (int8 inputs are passed as an int8 array, as live data)."""
    X, _ = _data(kind, seed + 10_000, n_rows=257)
    return X.astype(np.int8) if kind == "int8" else X


def _random_params(rng: np.random.Generator) -> dict:
    return {
        "max_depth": int(rng.integers(1, 7)),
        "eta": float(rng.choice([0.03, 0.1, 0.3, 1.0])),
        "subsample": float(rng.choice([1.0, 0.7])),
        "colsample_bynode": float(rng.choice([1.0, 0.6])),
        "min_child_weight": float(rng.choice([0.0, 1.0, 5.0])),
        "lambda": float(rng.choice([0.0, 1.0])),
        "nthread": 1,
        "seed": int(rng.integers(0, 1000)),
    }


def _train(params: dict, X, y, rounds: int):
    return xgb.train(params, xgb.DMatrix(X, y, feature_names=NAMES), rounds)


def _native(booster, X) -> np.ndarray:
    out = booster.predict(xgb.DMatrix(np.asarray(X, dtype=np.float64), feature_names=NAMES))
    return np.asarray(out, dtype=np.float64).reshape(len(X), -1)


def _ours(path, X) -> np.ndarray:
    return compile_model(xgb_reader.read(path)).predict(X)


def _assert_exact(ours: np.ndarray, native: np.ndarray, what: str):
    assert ours.shape == native.shape, what
    diff = np.max(np.abs(ours - native))
    assert diff == 0.0, f"{what}: max |ours - native| = {diff}"


def _check_objective(tmp_path, objective: str, label_fn, n_models: int, extra=None, rounds=(1, 12)):
    rng = np.random.default_rng(abs(hash(objective)) % 2**32)
    for i in range(n_models):
        kind = DATA_KINDS[i % 3]
        X, y = _data(kind, seed=i)
        params = {**_random_params(rng), "objective": objective, **(extra or {})}
        booster = _train(params, X, label_fn(y), int(rng.integers(rounds[0], rounds[1] + 1)))
        path = tmp_path / f"m{i}.{'ubj' if i % 2 else 'json'}"
        booster.save_model(path)
        Xt = _test_rows(kind, i)
        _assert_exact(_ours(path, Xt), _native(booster, Xt), f"{objective} model {i} ({kind})")


def test_xgboost_reg_squarederror_matches_native_exactly(tmp_path):
    _check_objective(tmp_path, "reg:squarederror", lambda y: y, n_models=18)


def test_xgboost_binary_logistic_probabilities_match_native_exactly(tmp_path):
    _check_objective(tmp_path, "binary:logistic", lambda y: (y > 0.5).astype(int), n_models=15)


def test_xgboost_multi_softprob_probabilities_match_native_exactly(tmp_path):
    _check_objective(
        tmp_path,
        "multi:softprob",
        lambda y: np.round(y * 4).astype(int),
        n_models=12,
        extra={"num_class": 5},
    )


def test_xgboost_multi_softmax_returns_native_class_index(tmp_path):
    _check_objective(
        tmp_path,
        "multi:softmax",
        lambda y: np.round(y * 2).astype(int),
        n_models=6,
        extra={"num_class": 3},
    )


def test_xgboost_count_poisson_matches_native_exactly(tmp_path):
    _check_objective(tmp_path, "count:poisson", lambda y: np.round(y * 6), n_models=12)


@pytest.mark.parametrize(
    "objective", ["reg:gamma", "reg:tweedie", "reg:logistic", "binary:logitraw"]
)
def test_xgboost_other_objectives_match_native_exactly(tmp_path, objective):
    labels = {
        "reg:gamma": lambda y: y + 0.1,
        "reg:tweedie": lambda y: y * 3,
        "reg:logistic": lambda y: y,
        "binary:logitraw": lambda y: (y > 0.5).astype(int),
    }[objective]
    _check_objective(tmp_path, objective, labels, n_models=6)


def test_xgboost_random_forest_num_parallel_tree_sums_trees_exactly(tmp_path):
    # XGBoost RF: num_parallel_tree trees per round, summed (each leaf carries eta)
    _check_objective(
        tmp_path,
        "reg:squarederror",
        lambda y: y,
        n_models=9,
        extra={"num_parallel_tree": 4, "subsample": 0.7, "colsample_bynode": 0.7, "eta": 1.0},
        rounds=(1, 3),
    )


def test_xgboost_boosted_random_forest_multiclass_matches_native(tmp_path):
    _check_objective(
        tmp_path,
        "multi:softprob",
        lambda y: np.round(y * 2).astype(int),
        n_models=4,
        extra={"num_class": 3, "num_parallel_tree": 3, "subsample": 0.8},
        rounds=(2, 4),
    )


def test_xgboost_dart_weight_drop_scaled_leaves_match_native_exactly(tmp_path):
    _check_objective(
        tmp_path,
        "binary:logistic",
        lambda y: (y > 0.5).astype(int),
        n_models=9,
        extra={"booster": "dart", "rate_drop": 0.4, "skip_drop": 0.0, "normalize_type": "tree"},
        rounds=(4, 12),
    )


def test_xgboost_dart_regression_forest_normalization_matches_native(tmp_path):
    _check_objective(
        tmp_path,
        "reg:squarederror",
        lambda y: y,
        n_models=6,
        extra={
            "booster": "dart",
            "rate_drop": 0.5,
            "normalize_type": "forest",
            "sample_type": "weighted",
        },
        rounds=(4, 10),
    )


def test_xgboost_json_and_ubj_files_compile_to_identical_predictions(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(6):
        X, y = _data(DATA_KINDS[i % 3], seed=50 + i)
        objective = ["reg:squarederror", "binary:logistic", "multi:softprob"][i % 3]
        params = {**_random_params(rng), "objective": objective}
        if objective == "multi:softprob":
            params["num_class"] = 3
        label = {
            "reg:squarederror": y,
            "binary:logistic": (y > 0.5) * 1,
            "multi:softprob": np.round(y * 2),
        }
        booster = _train(params, X, label[objective], 8)
        booster.save_model(tmp_path / "m.json")
        booster.save_model(tmp_path / "m.ubj")
        a = xgb_reader.read(tmp_path / "m.json")
        b = xgb_reader.read(tmp_path / "m.ubj")
        for field in (
            "threshold",
            "leaf_value",
            "split_feature",
            "left_child",
            "right_child",
            "init",
        ):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        Xt = _test_rows(DATA_KINDS[i % 3], 50 + i)
        np.testing.assert_array_equal(compile_model(a).predict(Xt), compile_model(b).predict(Xt))


def test_xgboost_user_base_score_becomes_the_exact_float32_margin(tmp_path):
    # base_score is stored in probability space; ProbToMargin (logit / log / identity) must
    # give exactly the float32 intercept xgboost adds. Checked on one-round models with
    # random base scores so the intercept dominates.
    rng = np.random.default_rng(11)
    X, y = _data("int8", seed=3)
    for i in range(30):
        objective = ["binary:logistic", "count:poisson", "reg:squarederror"][i % 3]
        base = float(rng.uniform(0.001, 0.999))
        if objective == "count:poisson":
            base = float(rng.uniform(0.01, 50.0))
        label = (y > 0.5).astype(int) if objective == "binary:logistic" else y * 3
        params = {"objective": objective, "base_score": base, "max_depth": 2, "nthread": 1}
        booster = _train(params, X, label, 1)
        booster.save_model(tmp_path / "m.json")
        ours = compile_model(xgb_reader.read(tmp_path / "m.json"))
        Xt = _test_rows("int8", i)
        margin = booster.predict(
            xgb.DMatrix(Xt.astype(np.float64), feature_names=NAMES), output_margin=True
        )
        np.testing.assert_array_equal(ours.predict_raw(Xt)[:, 0], margin.astype(np.float64))
        _assert_exact(ours.predict(Xt), _native(booster, Xt), f"{objective} base_score={base}")


def test_xgboost_vector_base_score_multiclass_intercepts_match_native(tmp_path):
    X, y = _data("nan", seed=8)
    label = np.round(y * 3).astype(int)
    booster = _train(
        {"objective": "multi:softprob", "num_class": 4, "max_depth": 3, "nthread": 1}, X, label, 3
    )
    booster.save_model(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["learner"]["learner_model_param"]["base_score"].count(",") == 3  # one per class
    Xt = _test_rows("nan", 8)
    _assert_exact(_ours(tmp_path / "m.json", Xt), _native(booster, Xt), "vector base_score")


def test_xgboost_early_stopping_model_predicts_best_iteration_rounds(tmp_path):
    X, y = _data("int8", seed=4, n_rows=400)
    dtrain = xgb.DMatrix(X[:300], y[:300], feature_names=NAMES)
    dvalid = xgb.DMatrix(X[300:], y[300:], feature_names=NAMES)
    booster = xgb.train(
        {"max_depth": 5, "eta": 0.9, "nthread": 1},
        dtrain,
        60,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=2,
        verbose_eval=False,
    )
    best = booster.best_iteration
    assert booster.num_boosted_rounds() > best + 1  # the file holds more rounds than are used
    booster.save_model(tmp_path / "m.ubj")
    ens = xgb_reader.read(tmp_path / "m.ubj")
    assert ens.n_trees == best + 1
    Xt = _test_rows("int8", 4)
    native = booster.predict(
        xgb.DMatrix(Xt.astype(np.float64), feature_names=NAMES), iteration_range=(0, best + 1)
    )
    _assert_exact(compile_model(ens).predict(Xt), native.reshape(-1, 1).astype(np.float64), "early")


def _categorical_frame(X: np.ndarray, cat_cols, categories) -> pd.DataFrame:
    # as a user would: values outside the training categories become NaN
    frame = pd.DataFrame(X, columns=NAMES)
    for j in cat_cols:
        known = np.where(np.isin(X[:, j], categories), X[:, j], np.nan)
        frame[NAMES[j]] = pd.Categorical(known, categories=categories)
    return frame


def test_xgboost_categorical_splits_from_pandas_categories_match_native(tmp_path):
    # In-set categories go RIGHT in XGBoost; the reader swaps children into the IR's
    # in-set-left rule. Category 4 never occurs in training: pandas turns it into NaN at
    # predict time, so it must take the default (missing) side, whichever side that is.
    rng = np.random.default_rng(21)
    defaults_seen = set()
    for i in range(10):
        kind = DATA_KINDS[i % 3]
        X, y = _data(kind, seed=200 + i)
        X[:, :2] = rng.integers(0, 4, size=(len(X), 2))  # categorical columns: values 0..3
        missing = np.zeros(len(X), dtype=bool)
        if kind == "nan":
            missing = rng.random(len(X)) < 0.3
            X[missing, 0] = np.nan
        # NaN rows get their own target level, so some splits learn "missing goes right"
        y = y + 0.3 * np.isin(X[:, 0], [1, 3]) - 0.2 * (X[:, 1] == 2) - 0.8 * missing
        params = {
            **_random_params(rng),
            "objective": "reg:squarederror",
            "max_cat_to_onehot": int(rng.choice([1, 8])),
        }
        frame = _categorical_frame(X, [0, 1], [0, 1, 2, 3])
        booster = xgb.train(params, xgb.DMatrix(frame, y, enable_categorical=True), 8)
        path = tmp_path / f"c{i}.json"
        booster.save_model(path)
        for tree in json.loads(path.read_text())["learner"]["gradient_booster"]["model"]["trees"]:
            defaults_seen.update(bool(tree["default_left"][n]) for n in tree["categories_nodes"])
        ens = xgb_reader.read(path)
        assert ens.is_categorical is not None and ens.is_categorical.any()
        Xt = _test_rows("int8", 200 + i).astype(np.float64)
        Xt[:, :2] = rng.integers(0, 5, size=(len(Xt), 2))
        Xt[rng.random(len(Xt)) < 0.1, 0] = np.nan
        native = booster.predict(
            xgb.DMatrix(_categorical_frame(Xt, [0, 1], [0, 1, 2, 3]), enable_categorical=True)
        )
        _assert_exact(
            compile_model(ens).predict(Xt), native.reshape(-1, 1).astype(np.float64), f"cat {i}"
        )
    assert defaults_seen == {True, False}  # both default sides were exercised


def test_xgboost_categorical_codes_with_feature_types_match_native(tmp_path):
    # Trained on a numpy array with feature_types 'c': the input value IS the category code,
    # codes in the split's set go right, everything else (unseen codes included) goes left.
    rng = np.random.default_rng(22)
    for i in range(6):
        X, y = _data(DATA_KINDS[i % 3], seed=300 + i)
        X[:, 0] = rng.integers(0, 4, size=len(X))
        y = y + 0.4 * np.isin(X[:, 0], [0, 2])
        types = ["c"] + ["q"] * (N_FEATURES - 1)
        params = {**_random_params(rng), "max_cat_to_onehot": 1}
        dtrain = xgb.DMatrix(
            X, y, feature_types=types, feature_names=NAMES, enable_categorical=True
        )
        booster = xgb.train(params, dtrain, 6)
        path = tmp_path / f"codes{i}.ubj"
        booster.save_model(path)
        Xt = _test_rows(DATA_KINDS[i % 3], 300 + i).astype(np.float64)
        Xt[:, 0] = rng.integers(0, 6, size=len(Xt))
        dtest = xgb.DMatrix(Xt, feature_types=types, feature_names=NAMES, enable_categorical=True)
        native = booster.predict(dtest).reshape(-1, 1).astype(np.float64)
        _assert_exact(_ours(path, Xt), native, f"codes {i}")


def test_native_predict_helper_equals_booster_predict(tmp_path):
    X, y = _data("nan", seed=9)
    booster = _train(
        {"objective": "multi:softprob", "num_class": 3, "nthread": 1}, X, np.round(y * 2), 4
    )
    booster.save_model(tmp_path / "m.json")
    Xt = _test_rows("nan", 9)
    np.testing.assert_array_equal(
        xgb_reader.native_predict(tmp_path / "m.json", Xt, NAMES), _native(booster, Xt)
    )


def test_xgboost_category_values_other_than_codes_map_through_the_encoder(tmp_path):
    # pandas categories [1, 2, 4, 7]: the trees split on codes 0..3; the compiled model sees
    # raw values, so the reader maps codes back to values (3.1+ ``cats`` encoder). Values the
    # encoder does not know (0, 3, 5, 6, 8) are missing for xgboost.
    rng = np.random.default_rng(23)
    cats = [1, 2, 4, 7]
    for i in range(6):
        X, y = _data(DATA_KINDS[i % 3], seed=250 + i)
        X[:, 0] = rng.choice(cats, size=len(X))
        missing = rng.random(len(X)) < 0.2
        X[missing, 0] = np.nan
        y = y + np.isin(X[:, 0], [2, 7]) - 0.5 * missing
        booster = xgb.train(
            {**_random_params(rng), "max_cat_to_onehot": 1},
            xgb.DMatrix(_categorical_frame(X, [0], cats), y, enable_categorical=True),
            6,
        )
        booster.save_model(tmp_path / "m.ubj")
        Xt = _test_rows("nan", 250 + i).astype(np.float64)
        Xt[:, 0] = rng.integers(0, 9, size=len(Xt))
        Xt[rng.random(len(Xt)) < 0.1, 0] = np.nan
        native = booster.predict(
            xgb.DMatrix(_categorical_frame(Xt, [0], cats), enable_categorical=True)
        )
        _assert_exact(
            _ours(tmp_path / "m.ubj", Xt), native.reshape(-1, 1).astype(np.float64), f"{i}"
        )


@pytest.mark.slow
def test_xgboost_larger_models_match_native_exactly(tmp_path):
    # Numerai-sized trees (depth up to 8, hundreds of rounds, 20 features, 3,000 rows): rare
    # float32 ties in accumulation or transforms would show up here first.
    names = feature_names(20)
    rng = np.random.default_rng(77)
    objectives = ["reg:squarederror", "binary:logistic", "multi:softprob", "count:poisson"]
    for i in range(8):
        kind = DATA_KINDS[i % 3]
        nan = 0.1 if kind == "nan" else 0.0
        X, y = numerai_like(1500, 20, seed=i, nan_fraction=nan, float_noise=kind == "float")
        objective = objectives[i % 4]
        label = {
            "reg:squarederror": y,
            "binary:logistic": (y > 0.5) * 1,
            "multi:softprob": np.round(y * 4),
            "count:poisson": np.round(y * 5),
        }[objective]
        params = {
            "objective": objective,
            "max_depth": int(rng.integers(4, 9)),
            "eta": float(rng.choice([0.01, 0.1])),
            "subsample": 0.8,
            "nthread": 1,
        }
        if objective == "multi:softprob":
            params["num_class"] = 5
        if i == 5:
            params.update(booster="dart", rate_drop=0.2)
        booster = xgb.train(params, xgb.DMatrix(X, label, feature_names=names), 150)
        booster.save_model(tmp_path / "big.ubj")
        Xt, _ = numerai_like(3000, 20, seed=i + 99, nan_fraction=nan, float_noise=kind == "float")
        if kind == "int8":
            Xt = Xt.astype(np.int8)
        native = booster.predict(xgb.DMatrix(Xt.astype(np.float64), feature_names=names))
        ours = compile_model(xgb_reader.read(tmp_path / "big.ubj")).predict(Xt)
        _assert_exact(ours, native.reshape(len(Xt), -1).astype(np.float64), f"{objective} {i}")
