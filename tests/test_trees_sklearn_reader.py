"""The scikit-learn reader: which estimators it takes and the IR it builds from them."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from builder.artifacts import sklearn as sk_reader
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from tests.synthdata import feature_names, numerai_like

ensemble = pytest.importorskip("sklearn.ensemble")
tree = pytest.importorskip("sklearn.tree")

NAMES = feature_names(5)


@pytest.fixture(autouse=True)
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _fit(est, task="regression", seed=0, nan=0.0):
    X, y = numerai_like(300, 5, seed=seed, nan_fraction=nan)
    if task == "binary":
        y = (y > 0.5).astype(int)
    elif task == "multiclass":
        y = np.round(y * 2).astype(int)
    return est.fit(X, y)


def _read(tmp_path, est, names=NAMES):
    joblib.dump(est, tmp_path / "m.joblib")
    return sk_reader.read(tmp_path / "m.joblib", names)


def test_sklearn_trees_compare_float32_input_with_double_thresholds(tmp_path):
    ens = _read(tmp_path, _fit(tree.DecisionTreeRegressor(max_depth=3)))
    assert (ens.compare, ens.input_dtype, ens.accumulate_dtype) == ("<=", "float32", "float64")
    est = joblib.load(tmp_path / "m.joblib")
    internal = est.tree_.children_left != -1
    np.testing.assert_array_equal(ens.threshold[internal], est.tree_.threshold[internal])


def test_sklearn_missing_go_to_left_becomes_default_left(tmp_path):
    est = _fit(tree.DecisionTreeRegressor(max_depth=4, random_state=0), nan=0.2)
    ens = _read(tmp_path, est)
    internal = est.tree_.children_left != -1
    np.testing.assert_array_equal(
        ens.default_left[internal], est.tree_.missing_go_to_left[internal].astype(bool)
    )
    assert ens.default_left[internal].any()


def test_random_forest_classifier_is_one_ir_tree_per_class_averaged(tmp_path):
    est = _fit(
        ensemble.RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0), "multiclass"
    )
    ens = _read(tmp_path, est)
    assert ens.n_trees == 4 * 3 and ens.n_outputs == 3 and ens.average
    assert ens.tree_class.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ens.task == "multiclass" and ens.transform == "identity"
    first = est.estimators_[0].tree_
    leaves = first.children_left == -1
    np.testing.assert_array_equal(
        ens.leaf_value[ens.tree_offsets[4] : ens.tree_offsets[5]][leaves], first.value[leaves, 0, 1]
    )


def test_gradient_boosting_leaves_are_premultiplied_by_learning_rate_in_double(tmp_path):
    est = _fit(ensemble.GradientBoostingRegressor(n_estimators=3, learning_rate=0.37, max_depth=2))
    ens = _read(tmp_path, est)
    t = est.estimators_[1, 0].tree_
    leaves = t.children_left == -1
    got = ens.leaf_value[ens.tree_offsets[1] : ens.tree_offsets[2]][leaves]
    np.testing.assert_array_equal(got, 0.37 * t.value[leaves, 0, 0])
    assert ens.init[0] == pytest.approx(est.init_.constant_[0][0])
    assert not ens.default_left.any()  # predict_stages has no NaN branch: NaN compares false


def test_gradient_boosting_classifier_init_is_the_prior_log_odds(tmp_path):
    est = _fit(ensemble.GradientBoostingClassifier(n_estimators=2), "binary")
    ens = _read(tmp_path, est)
    p = est.init_.class_prior_[1]
    assert ens.init[0] == pytest.approx(np.log(p / (1 - p)), rel=1e-15)
    assert ens.transform == "sklearn_binary_expit" and ens.transform_params == {"scale": 1.0}


def test_gradient_boosting_zero_init_starts_from_zero(tmp_path):
    ens = _read(tmp_path, _fit(ensemble.GradientBoostingRegressor(n_estimators=2, init="zero")))
    assert ens.init.tolist() == [0.0]


def test_gradient_boosting_custom_init_estimator_is_not_supported_yet(tmp_path):
    from sklearn.linear_model import LinearRegression

    est = _fit(ensemble.GradientBoostingRegressor(n_estimators=2, init=LinearRegression()))
    with pytest.raises(NotSupportedYet, match="GradientBoosting init estimator LinearRegression"):
        _read(tmp_path, est)


def test_hist_gradient_boosting_baseline_and_float64_input(tmp_path):
    est = _fit(ensemble.HistGradientBoostingClassifier(max_iter=3), "multiclass", nan=0.1)
    ens = _read(tmp_path, est)
    assert ens.input_dtype == "float64" and ens.n_outputs == 3
    np.testing.assert_array_equal(ens.init, est._baseline_prediction.reshape(-1))
    assert ens.tree_class.tolist() == [0, 1, 2] * 3
    assert ens.transform == "sklearn_softmax"


def test_hist_gradient_boosting_log_link_uses_numpy_exp(tmp_path):
    X, y = numerai_like(300, 5, seed=1)
    est = ensemble.HistGradientBoostingRegressor(loss="poisson", max_iter=3).fit(X, y + 0.1)
    assert _read(tmp_path, est).transform == "sklearn_exp"


def test_hist_gradient_boosting_categorical_set_is_the_non_missing_side(tmp_path):
    # Negative, NaN and unknown categories follow missing_go_to_left; the IR sends anything
    # outside its set right, so when missing goes left the set must be the right-going known
    # categories and the children swapped.
    rng = np.random.default_rng(3)
    X, y = numerai_like(400, 5, seed=3)
    X[:, 0] = rng.integers(0, 6, len(X))
    X[rng.random(len(X)) < 0.2, 0] = np.nan
    y = y + np.isin(X[:, 0], [2, 5])
    est = ensemble.HistGradientBoostingRegressor(max_iter=5, categorical_features=[0]).fit(X, y)
    ens = _read(tmp_path, est)
    cat_nodes = np.flatnonzero(ens.is_categorical)
    assert len(cat_nodes)
    assert not ens.default_left[cat_nodes].any()
    assert (ens.split_feature[cat_nodes] == 0).all()


def test_hist_gradient_boosting_columns_are_mapped_back_from_categorical_first_order(tmp_path):
    # scikit-learn's preprocessor puts categorical columns first; IR features are model columns
    rng = np.random.default_rng(4)
    X, y = numerai_like(400, 5, seed=4)
    X[:, 3] = rng.integers(0, 4, len(X))
    y = y + 2.0 * (X[:, 3] == 1)
    est = ensemble.HistGradientBoostingRegressor(max_iter=3, categorical_features=[3]).fit(X, y)
    ens = _read(tmp_path, est)
    assert set(ens.split_feature[ens.is_categorical].tolist()) == {3}
    assert 3 not in set(ens.split_feature[(ens.split_feature >= 0) & ~ens.is_categorical].tolist())


@pytest.mark.parametrize(
    "make",
    [
        lambda: _fit(ensemble.AdaBoostRegressor(n_estimators=2)),
        lambda: _fit(
            __import__("sklearn.neighbors", fromlist=["KNeighborsRegressor"]).KNeighborsRegressor()
        ),
    ],
    ids=["AdaBoostRegressor", "KNeighborsRegressor"],
)
def test_unsupported_estimator_is_named(tmp_path, make):
    est = make()
    with pytest.raises(NotSupportedYet, match=f"scikit-learn estimator .*{type(est).__name__}"):
        _read(tmp_path, est)


def test_multi_output_regressor_is_not_supported_yet(tmp_path):
    X, y = numerai_like(200, 5, seed=5)
    est = tree.DecisionTreeRegressor(max_depth=2).fit(X, np.stack([y, -y], axis=1))
    with pytest.raises(NotSupportedYet, match="multi-output"):
        _read(tmp_path, est)


def test_sklearn_feature_names_come_from_the_fitted_frame(tmp_path):
    import pandas as pd

    X, y = numerai_like(200, 5, seed=6)
    est = tree.DecisionTreeRegressor(max_depth=2).fit(pd.DataFrame(X, columns=NAMES), y)
    assert _read(tmp_path, est, names=None).feature_names == tuple(NAMES)
    with pytest.raises(NmrError, match="including 'feature_0000', which the config does not list"):
        _read(tmp_path, est, names=["x"] + NAMES[1:])
    assert _read(tmp_path, est, names=NAMES[::-1]).feature_names == tuple(NAMES)


def test_sklearn_array_fitted_model_needs_config_names(tmp_path):
    est = _fit(tree.DecisionTreeRegressor(max_depth=2))
    with pytest.raises(NmrError, match="records no feature names"):
        _read(tmp_path, est, names=None)
    with pytest.raises(NmrError, match="trained on 5 features but the config lists 4"):
        _read(tmp_path, est, names=NAMES[:4])


def test_unreadable_pickle_is_an_artifact_error(tmp_path):
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ArtifactError, match="cannot unpickle"):
        sk_reader.read(tmp_path / "bad.pkl", NAMES)
    with pytest.raises(ArtifactError, match="file not found"):
        sk_reader.read(tmp_path / "missing.pkl", NAMES)


def test_pickled_booster_classifier_wrappers_are_not_supported_yet(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    for est in (
        lightgbm.LGBMClassifier(n_estimators=2, verbose=-1),
        xgboost.XGBClassifier(n_estimators=2),
    ):
        _fit(est, "binary")
        with pytest.raises(NotSupportedYet, match=f"pickled .*{type(est).__name__} .*save_model"):
            _read(tmp_path, est)
