"""Randomized fidelity: compiled scikit-learn tree models equal scikit-learn's own output.

Regressors are compared with ``predict``, classifiers with ``predict_proba``; every supported
estimator is trained many times (seeded hyperparameters) on int8-valued, float and NaN data
and loaded back from a joblib file, as ``nmr build`` does.
"""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pandas as pd
import pytest

from builder.artifacts import sklearn as sk_reader
from builder.compile import compile_model
from tests.synthdata import feature_names, numerai_like

ensemble = pytest.importorskip("sklearn.ensemble")
tree = pytest.importorskip("sklearn.tree")

N_FEATURES = 7
NAMES = feature_names(N_FEATURES)
DATA_KINDS = ("int8", "float", "nan")


@pytest.fixture(autouse=True)
def _one_thread():
    # HistGradientBoosting trains and predicts with OpenMP; on the shared CI cores its
    # spinning threads cost far more than they save on a few hundred rows.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _data(kind: str, seed: int, n_rows: int = 300):
    if kind == "int8":
        return numerai_like(n_rows, N_FEATURES, seed=seed)
    if kind == "float":
        return numerai_like(n_rows, N_FEATURES, seed=seed, float_noise=True)
    return numerai_like(n_rows, N_FEATURES, seed=seed, nan_fraction=0.15)


def _test_rows(kind: str, seed: int) -> np.ndarray:
    X, _ = _data(kind, seed + 10_000, n_rows=211)
    return X.astype(np.int8) if kind == "int8" else X


def _labels(y: np.ndarray, task: str) -> np.ndarray:
    if task == "binary":
        return (y > 0.5).astype(int)
    if task == "multiclass":
        return np.round(y * 4).astype(int)  # 5 classes
    return y + 0.1  # strictly positive, as the gamma / poisson losses require


def _native(est, X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = est.predict_proba(X) if hasattr(est, "classes_") else est.predict(X)
    return np.asarray(out, dtype=np.float64).reshape(len(X), -1)


def _check(tmp_path, make, task: str, n_models: int, kinds=DATA_KINDS):
    rng = np.random.default_rng(abs(hash((make.__name__, task))) % 2**32)
    for i in range(n_models):
        kind = kinds[i % len(kinds)]
        X, y = _data(kind, seed=i)
        est = make(rng).fit(X, _labels(y, task))
        path = tmp_path / f"m{i}.joblib"
        joblib.dump(est, path)
        Xt = _test_rows(kind, i)
        ours = compile_model(sk_reader.read(path, NAMES)).predict(Xt)
        native = _native(est, Xt)
        assert ours.shape == native.shape
        diff = np.max(np.abs(ours - native))
        assert diff == 0.0, f"{type(est).__name__} {task} model {i} ({kind}): max diff {diff}"


def _tree_params(rng) -> dict:
    return {
        "max_depth": int(rng.choice([2, 4, 6, 12])),
        "min_samples_leaf": int(rng.choice([1, 5])),
        "max_features": rng.choice([None, 0.6]),
        "random_state": int(rng.integers(0, 1000)),
    }


def _decision_tree_regressor(rng):
    return tree.DecisionTreeRegressor(**_tree_params(rng))


def _decision_tree_classifier(rng):
    return tree.DecisionTreeClassifier(**_tree_params(rng))


def _random_forest_regressor(rng):
    return ensemble.RandomForestRegressor(
        n_estimators=int(rng.integers(2, 15)), **_tree_params(rng)
    )


def _random_forest_classifier(rng):
    return ensemble.RandomForestClassifier(
        n_estimators=int(rng.integers(2, 15)), **_tree_params(rng)
    )


def _extra_trees_regressor(rng):
    return ensemble.ExtraTreesRegressor(n_estimators=int(rng.integers(2, 15)), **_tree_params(rng))


def _extra_trees_classifier(rng):
    return ensemble.ExtraTreesClassifier(n_estimators=int(rng.integers(2, 15)), **_tree_params(rng))


def _gb_params(rng) -> dict:
    return {
        "n_estimators": int(rng.integers(1, 25)),
        "learning_rate": float(rng.choice([0.05, 0.1, 0.3, 1.0])),
        "max_depth": int(rng.integers(1, 6)),
        "subsample": float(rng.choice([1.0, 0.8])),
        "random_state": int(rng.integers(0, 1000)),
    }


def _gradient_boosting_regressor(rng):
    loss = str(rng.choice(["squared_error", "absolute_error", "huber", "quantile"]))
    init = "zero" if rng.random() < 0.25 else None
    return ensemble.GradientBoostingRegressor(loss=loss, init=init, **_gb_params(rng))


def _gradient_boosting_classifier(rng):
    init = "zero" if rng.random() < 0.25 else None
    return ensemble.GradientBoostingClassifier(init=init, **_gb_params(rng))


def _gradient_boosting_exponential(rng):
    return ensemble.GradientBoostingClassifier(loss="exponential", **_gb_params(rng))


def _hgb_params(rng) -> dict:
    return {
        "max_iter": int(rng.integers(1, 30)),
        "learning_rate": float(rng.choice([0.05, 0.1, 0.5])),
        "max_leaf_nodes": int(rng.choice([4, 15, 31])),
        "max_depth": rng.choice([None, 3]),
        "early_stopping": False,
        "random_state": int(rng.integers(0, 1000)),
    }


def _hist_gradient_boosting_regressor(rng):
    loss = str(rng.choice(["squared_error", "absolute_error", "gamma", "poisson"]))
    return ensemble.HistGradientBoostingRegressor(loss=loss, **_hgb_params(rng))


def _hist_gradient_boosting_classifier(rng):
    return ensemble.HistGradientBoostingClassifier(**_hgb_params(rng))


def test_decision_tree_regressor_matches_native_exactly(tmp_path):
    _check(tmp_path, _decision_tree_regressor, "regression", n_models=12)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_decision_tree_classifier_proba_matches_native_exactly(tmp_path, task):
    _check(tmp_path, _decision_tree_classifier, task, n_models=9)


def test_random_forest_regressor_average_matches_native_exactly(tmp_path):
    _check(tmp_path, _random_forest_regressor, "regression", n_models=12)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_random_forest_classifier_proba_matches_native_exactly(tmp_path, task):
    _check(tmp_path, _random_forest_classifier, task, n_models=9)


def test_extra_trees_regressor_matches_native_exactly(tmp_path):
    _check(tmp_path, _extra_trees_regressor, "regression", n_models=9)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_extra_trees_classifier_proba_matches_native_exactly(tmp_path, task):
    _check(tmp_path, _extra_trees_classifier, task, n_models=9)


# GradientBoosting* refuse NaN input natively, so only int8 and float data apply.
def test_gradient_boosting_regressor_every_loss_matches_native_exactly(tmp_path):
    _check(tmp_path, _gradient_boosting_regressor, "regression", 16, kinds=("int8", "float"))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_gradient_boosting_classifier_proba_matches_native_exactly(tmp_path, task):
    _check(tmp_path, _gradient_boosting_classifier, task, 10, kinds=("int8", "float"))


def test_gradient_boosting_exponential_loss_proba_matches_native_exactly(tmp_path):
    _check(tmp_path, _gradient_boosting_exponential, "binary", 6, kinds=("int8", "float"))


def test_hist_gradient_boosting_regressor_every_link_matches_native_exactly(tmp_path):
    _check(tmp_path, _hist_gradient_boosting_regressor, "regression", n_models=16)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_hist_gradient_boosting_classifier_proba_matches_native_exactly(tmp_path, task):
    _check(tmp_path, _hist_gradient_boosting_classifier, task, n_models=9)


def test_hist_gradient_boosting_categorical_bitsets_match_native_exactly(tmp_path):
    # Categorical columns (values 0..5 in training) go through scikit-learn's OrdinalEncoder;
    # values never seen in training (6, 7) and NaN take each node's missing direction.
    rng = np.random.default_rng(31)
    missing_left_seen = set()
    for i in range(12):
        kind = DATA_KINDS[i % 3]
        X, y = _data(kind, seed=400 + i)
        X[:, :2] = rng.integers(0, 6, size=(len(X), 2))
        if kind == "nan":
            X[rng.random(len(X)) < 0.1, 0] = np.nan
        y = y + 0.4 * np.isin(X[:, 0], [1, 4]) - 0.3 * np.isin(X[:, 1], [0, 5])
        task = ["regression", "binary", "multiclass"][i % 3]
        make = (
            ensemble.HistGradientBoostingRegressor
            if task == "regression"
            else ensemble.HistGradientBoostingClassifier
        )
        est = make(categorical_features=[0, 1], **_hgb_params(rng)).fit(X, _labels(y / 1.5, task))
        for predictor in (p for it in est._predictors for p in it):
            nodes = predictor.nodes
            cat = nodes["is_categorical"].astype(bool) & ~nodes["is_leaf"].astype(bool)
            missing_left_seen.update(nodes["missing_go_to_left"][cat].astype(bool).tolist())
        joblib.dump(est, tmp_path / "hgb.joblib")
        Xt = _test_rows("int8", 400 + i).astype(np.float64)
        Xt[:, :2] = rng.integers(0, 8, size=(len(Xt), 2))
        Xt[rng.random(len(Xt)) < 0.05, 1] = np.nan
        ours = compile_model(sk_reader.read(tmp_path / "hgb.joblib", NAMES)).predict(Xt)
        native = _native(est, Xt)
        assert np.max(np.abs(ours - native)) == 0.0, f"categorical HGB model {i} ({task})"
    assert missing_left_seen == {True, False}  # both missing directions were exercised


def test_hist_gradient_boosting_category_values_other_than_codes_match_native(tmp_path):
    # categories {1, 2, 4, 7}: scikit-learn's OrdinalEncoder turns them into codes 0..3 before
    # the trees; the reader maps the bitsets back to raw values. Unknown values go missing.
    rng = np.random.default_rng(33)
    for i in range(6):
        X, y = _data(DATA_KINDS[i % 3], seed=450 + i)
        X[:, 0] = rng.choice([1, 2, 4, 7], size=len(X))
        y = y + np.isin(X[:, 0], [2, 7])
        est = ensemble.HistGradientBoostingRegressor(categorical_features=[0], **_hgb_params(rng))
        est.fit(X, y)
        joblib.dump(est, tmp_path / "hgb.joblib")
        Xt = _test_rows("float", 450 + i)
        Xt[:, 0] = rng.integers(0, 9, size=len(Xt))
        Xt[rng.random(len(Xt)) < 0.1, 0] = np.nan
        ours = compile_model(sk_reader.read(tmp_path / "hgb.joblib", NAMES)).predict(Xt)
        assert np.max(np.abs(ours - _native(est, Xt))) == 0.0, f"model {i}"


def test_hist_gradient_boosting_pandas_category_dtype_matches_native(tmp_path):
    # categorical_features="from_dtype": categories come from the frame's category dtype
    rng = np.random.default_rng(32)
    X, y = _data("int8", seed=500)
    frame = pd.DataFrame(X, columns=NAMES)
    frame[NAMES[0]] = pd.Categorical(X[:, 0].astype(int), categories=[0, 1, 2, 3, 4])
    y = y + 0.5 * np.isin(X[:, 0], [0, 3])
    est = ensemble.HistGradientBoostingRegressor(**_hgb_params(rng)).fit(frame, y)
    joblib.dump(est, tmp_path / "hgb.joblib")
    Xt = _test_rows("int8", 500).astype(np.float64)
    test_frame = pd.DataFrame(Xt, columns=NAMES)
    test_frame[NAMES[0]] = pd.Categorical(Xt[:, 0].astype(int), categories=[0, 1, 2, 3, 4])
    ens = sk_reader.read(tmp_path / "hgb.joblib")
    assert ens.feature_names == tuple(NAMES)
    ours = compile_model(ens).predict(Xt)
    native = est.predict(test_frame).reshape(-1, 1)
    assert np.max(np.abs(ours - native)) == 0.0


def test_plain_pickle_file_reads_like_joblib(tmp_path):
    import pickle

    X, y = _data("nan", seed=600)
    est = ensemble.RandomForestRegressor(n_estimators=4, max_depth=4, random_state=0).fit(X, y)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    Xt = _test_rows("nan", 600)
    ours = compile_model(sk_reader.read(tmp_path / "m.pkl", NAMES)).predict(Xt)
    assert np.max(np.abs(ours - _native(est, Xt))) == 0.0


def test_native_predict_helper_uses_predict_proba_for_classifiers(tmp_path):
    X, y = _data("int8", seed=700)
    est = ensemble.RandomForestClassifier(n_estimators=3, random_state=0, n_jobs=2).fit(
        X, _labels(y, "multiclass")
    )
    joblib.dump(est, tmp_path / "m.joblib")
    Xt = _test_rows("int8", 700)
    got = sk_reader.native_predict(tmp_path / "m.joblib", Xt, NAMES)
    np.testing.assert_array_equal(got, est.predict_proba(Xt.astype(np.float64)))


def test_pickled_xgboost_and_lightgbm_regressors_match_their_predict(tmp_path):
    # XGBRegressor / XGBRFRegressor / LGBMRegressor pickles are read through their booster;
    # early stopping cuts at best_iteration in both the wrapper's predict and the reader.
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(41)
    for i in range(6):
        kind = DATA_KINDS[i % 3]
        X, y = _data(kind, seed=800 + i, n_rows=400)
        frame = pd.DataFrame(X, columns=NAMES)
        if i % 3 == 0:
            est = xgboost.XGBRegressor(
                n_estimators=40,
                max_depth=int(rng.integers(2, 6)),
                learning_rate=0.5,
                early_stopping_rounds=2,
                n_jobs=1,
            )
            est.fit(frame[:300], y[:300], eval_set=[(frame[300:], y[300:])], verbose=False)
        elif i % 3 == 1:
            est = xgboost.XGBRFRegressor(n_estimators=int(rng.integers(2, 8)), n_jobs=1).fit(
                frame, y
            )
        else:
            est = lightgbm.LGBMRegressor(
                n_estimators=int(rng.integers(2, 30)), verbose=-1, n_jobs=1
            )
            est.fit(frame, y)
        joblib.dump(est, tmp_path / "w.pkl")
        Xt = _test_rows(kind, 800 + i)
        ours = compile_model(sk_reader.read(tmp_path / "w.pkl", NAMES)).predict(Xt)
        native = np.asarray(
            est.predict(pd.DataFrame(Xt.astype(np.float64), columns=NAMES)), dtype=np.float64
        )
        assert np.max(np.abs(ours - native.reshape(-1, 1))) == 0.0, f"{type(est).__name__} {i}"


@pytest.mark.slow
def test_sklearn_larger_ensembles_match_native_exactly(tmp_path):
    # Numerai-sized ensembles (20 features, 1,500 training rows, 3,000 test rows)
    names = feature_names(20)
    makers = [
        lambda: ensemble.RandomForestRegressor(60, max_depth=10, random_state=0),
        lambda: ensemble.ExtraTreesClassifier(40, random_state=0),
        lambda: ensemble.GradientBoostingRegressor(n_estimators=150, max_depth=4, random_state=0),
        lambda: ensemble.GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0),
        lambda: ensemble.HistGradientBoostingRegressor(max_iter=150, random_state=0),
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=40, random_state=0),
    ]
    for i, make in enumerate(makers):
        est = make()
        kind = "float" if type(est).__name__.startswith("Gradient") else DATA_KINDS[i % 3]
        nan = 0.1 if kind == "nan" else 0.0
        X, y = numerai_like(1500, 20, seed=i, nan_fraction=nan, float_noise=kind == "float")
        est.fit(X, np.round(y * 4).astype(int) if hasattr(est, "predict_proba") else y)
        joblib.dump(est, tmp_path / "big.joblib")
        Xt, _ = numerai_like(3000, 20, seed=i + 99, nan_fraction=nan, float_noise=kind == "float")
        if kind == "int8":
            Xt = Xt.astype(np.int8)
        ours = compile_model(sk_reader.read(tmp_path / "big.joblib", names)).predict(Xt)
        diff = np.max(np.abs(ours - _native(est, Xt)))
        assert diff == 0.0, f"{type(est).__name__}: max diff {diff}"
