"""Randomized fidelity: Pipeline preprocessing steps repeat scikit-learn's transform arithmetic.

Each supported step (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, SimpleImputer
with every strategy and add_indicator, PCA with and without whitening) is fitted with seeded
options in front of a Ridge and compared with ``Pipeline.predict``; float64, int8 and float32
inputs (float32 stays float32 through the steps, as in scikit-learn).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.sklearn_fidelity import BOUND, NAMES, compiled, data, held_out, native, relative_error

lm = pytest.importorskip("sklearn.linear_model")
pipeline = pytest.importorskip("sklearn.pipeline")
pre = pytest.importorskip("sklearn.preprocessing")
impute = pytest.importorskip("sklearn.impute")
decomposition = pytest.importorskip("sklearn.decomposition")


def _check(tmp_path, make_step, n_models=4, nan_fraction=0.0, seed_base=0):
    rng = np.random.default_rng(seed_base)
    for i in range(n_models):
        kind = ("int8", "float")[i % 2] if nan_fraction == 0 else "float"
        X, y = data(kind, seed=i, nan_fraction=nan_fraction)
        est = pipeline.make_pipeline(make_step(rng), lm.Ridge(alpha=0.5))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        error = relative_error(est, tmp_path, held_out(kind, i, nan_fraction=nan_fraction))
        assert error <= BOUND, f"{est.steps[0][1]!r} model {i}: relative error {error:.3g}"


def test_standard_scaler_subtracts_mean_then_divides_by_scale(tmp_path):
    def make(rng):
        return pre.StandardScaler(
            with_mean=bool(rng.random() < 0.7), with_std=bool(rng.random() < 0.7)
        )

    _check(tmp_path, make, n_models=6)


def test_minmax_scaler_multiplies_adds_and_clips(tmp_path):
    def make(rng):
        low = float(rng.choice([-1.0, 0.0]))
        return pre.MinMaxScaler(feature_range=(low, 1.0), clip=bool(rng.random() < 0.5))

    _check(tmp_path, make, n_models=6)


def test_maxabs_scaler_divides_by_the_largest_magnitude(tmp_path):
    _check(tmp_path, lambda rng: pre.MaxAbsScaler())


def test_maxabs_scaler_clip_bounds_the_output_to_minus_one_one(tmp_path):
    import inspect

    if "clip" not in inspect.signature(pre.MaxAbsScaler).parameters:
        pytest.skip("MaxAbsScaler has no clip option in this scikit-learn")
    X, y = data("float", seed=13)
    est = pipeline.make_pipeline(pre.MaxAbsScaler(clip=True), lm.Ridge()).fit(X, y)
    Xt = held_out("float", 13) * 3  # far outside the fitted range: clipping decides
    assert relative_error(est, tmp_path, Xt) <= BOUND


def test_robust_scaler_centers_on_the_median_and_divides_by_the_iqr(tmp_path):
    def make(rng):
        return pre.RobustScaler(
            with_centering=bool(rng.random() < 0.7),
            with_scaling=bool(rng.random() < 0.7),
            quantile_range=(float(rng.choice([10.0, 25.0])), 75.0),
        )

    _check(tmp_path, make, n_models=6)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_simple_imputer_fills_missing_values_with_its_statistics(strategy, tmp_path):
    def make(rng):
        return impute.SimpleImputer(strategy=strategy, fill_value=float(rng.integers(-1, 5)))

    _check(tmp_path, make, nan_fraction=0.15)


def test_simple_imputer_add_indicator_appends_the_missing_mask_columns(tmp_path):
    _check(tmp_path, lambda rng: impute.SimpleImputer(add_indicator=True), nan_fraction=0.1)


def test_simple_imputer_drops_a_column_that_was_empty_in_fit_unless_told_to_keep_it(tmp_path):
    X, y = data("float", seed=5, nan_fraction=0.1)
    X[:, 2] = np.nan
    Xt = held_out("float", 5, nan_fraction=0.1)
    for keep in (False, True):
        est = pipeline.make_pipeline(
            impute.SimpleImputer(keep_empty_features=keep, add_indicator=True), lm.Ridge()
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Skipping features without any observed values"
            est.fit(X, y)
        assert relative_error(est, tmp_path, Xt) <= BOUND


def test_simple_imputer_with_a_numeric_missing_value_replaces_that_value(tmp_path):
    _check(tmp_path, lambda rng: impute.SimpleImputer(missing_values=0.0, strategy="median"))


def test_pca_projects_then_subtracts_the_projected_mean_and_whitens(tmp_path):
    def make(rng):
        return decomposition.PCA(
            n_components=int(rng.integers(1, 7)),
            whiten=bool(rng.random() < 0.5),
            svd_solver=str(rng.choice(["full", "covariance_eigh"])),
        )

    _check(tmp_path, make, n_models=6)


def test_steps_chain_in_pipeline_order(tmp_path):
    def make(rng):
        return pipeline.make_pipeline(
            impute.SimpleImputer(strategy="median"),
            pre.RobustScaler(),
            pre.StandardScaler(),
            decomposition.PCA(4, whiten=True),
            pre.MinMaxScaler(),
        )

    _check(tmp_path, make, nan_fraction=0.1)


def test_float32_input_stays_float32_through_the_steps_as_in_sklearn(tmp_path):
    X, y = data("float", seed=9)
    est = pipeline.make_pipeline(
        pre.StandardScaler(), pre.MinMaxScaler(), pre.MaxAbsScaler(), lm.Ridge()
    ).fit(X, y)
    Xt = held_out("float", 9).astype(np.float32)
    ours = compiled(est, tmp_path).predict(Xt)
    theirs = native(est, Xt)
    # Same float32 rounding of the scaled values, so no more than BLAS order apart.
    assert np.max(np.abs(ours - theirs)) <= BOUND * np.max(np.abs(theirs))
    as_float64 = native(est, Xt.astype(np.float64))
    assert np.max(np.abs(theirs - as_float64)) > BOUND * np.max(np.abs(theirs))
    assert NAMES


def test_simple_imputer_fills_with_statistics_rounded_to_the_dtype_it_was_fitted_on(tmp_path):
    # transform casts statistics_ to the fit data's dtype (_fill_dtype) before filling, so a
    # mean fitted on float32 data fills float64 input with the float32-rounded mean.
    X, y = data("float", seed=12, nan_fraction=0.2)
    est = pipeline.make_pipeline(impute.SimpleImputer(), lm.Ridge(alpha=1e-6))
    est.fit(X.astype(np.float32), y)
    statistics = est[0].statistics_
    assert np.any(statistics.astype(np.float32).astype(np.float64) != statistics)
    assert relative_error(est, tmp_path, held_out("float", 12, nan_fraction=0.3)) <= BOUND


def test_incremental_pca_transforms_as_pca(tmp_path):
    def make(rng):
        return decomposition.IncrementalPCA(
            n_components=int(rng.integers(1, 7)), whiten=bool(rng.random() < 0.5), batch_size=50
        )

    _check(tmp_path, make)
