"""Step math of builder/kernels/steps.py against plain numpy / pandas / scipy references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, rankdata

from builder.kernels import steps as ks
from tests.numerai_reference import rank_per_era


def _live(n_rows=300, n_features=5, eras=("0001", "0002", "0003"), seed=0, nan_fraction=0.0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(n_rows, n_features)).astype(np.float64)
    if nan_fraction:
        X[rng.random(X.shape) < nan_fraction] = np.nan
    names = [f"feature_{i}" for i in range(n_features)]
    frame = pd.DataFrame(
        X, columns=names, index=pd.Index([f"id{i:05d}" for i in range(n_rows)], name="id")
    )
    if eras:
        frame.insert(0, "era", rng.choice(list(eras), size=n_rows))
    return frame, names


def test_fill_missing_replaces_only_nan_with_each_columns_value():
    X = np.array([[np.nan, 1.0], [2.0, np.nan], [3.0, 4.0]])
    out = ks.FillMissing(np.array([10.0, 20.0])).apply(X)
    np.testing.assert_array_equal(out, [[10.0, 1.0], [2.0, 20.0], [3.0, 4.0]])


def test_clip_bounds_values_and_keeps_nan():
    X = np.array([[-1.0, 5.0], [np.nan, 2.0]])
    out = ks.Clip(0.0, 4.0).apply(X)
    np.testing.assert_array_equal(out, [[0.0, 4.0], [np.nan, 2.0]])


def test_clip_with_only_an_upper_bound_leaves_low_values():
    out = ks.Clip(None, 1.0).apply(np.array([[-3.0, 3.0]]))
    np.testing.assert_array_equal(out, [[-3.0, 1.0]])


def test_standardize_matches_column_z_scores():
    rng = np.random.default_rng(1)
    X = rng.normal(3, 2, size=(50, 3))
    mean, std = X.mean(axis=0), X.std(axis=0)
    out = ks.Standardize(mean, std).apply(X)
    reference = (pd.DataFrame(X) - pd.DataFrame(X).mean()) / pd.DataFrame(X).std(ddof=0)
    np.testing.assert_allclose(out, reference.to_numpy(), rtol=0, atol=1e-12)


def test_rank_per_era_is_percentile_rank_with_ties_averaged():
    live, _ = _live()
    rng = np.random.default_rng(2)
    p = rng.integers(0, 10, size=len(live)).astype(float)  # many ties
    ctx = ks.Context(live)
    out = ks.RankPerEra().apply(p, ctx)
    np.testing.assert_allclose(out, rank_per_era(p, live["era"].to_numpy()), atol=1e-15)
    assert 0 < out.min() and out.max() <= 1.0


def test_rank_per_era_without_era_column_ranks_the_whole_frame():
    live, _ = _live(eras=None)
    p = np.random.default_rng(3).normal(size=len(live))
    out = ks.RankPerEra().apply(p, ks.Context(live))
    np.testing.assert_allclose(out, rankdata(p) / len(p), atol=1e-15)


def test_gaussianize_per_era_is_normal_quantile_of_centered_ranks():
    live, _ = _live()
    p = np.random.default_rng(4).integers(0, 20, size=len(live)).astype(float)
    eras = live["era"].to_numpy()
    out = ks.GaussianizePerEra().apply(p, ks.Context(live))
    reference = np.empty(len(p))
    for era in np.unique(eras):
        rows = eras == era
        reference[rows] = norm.ppf((rankdata(p[rows]) - 0.5) / rows.sum())
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-12)


def test_neutralize_full_proportion_leaves_no_linear_exposure_per_era():
    live, names = _live()
    rng = np.random.default_rng(5)
    p = live[names].to_numpy() @ rng.normal(size=len(names)) + rng.normal(size=len(live))
    out = ks.Neutralize(tuple(names[:3]), 1.0).apply(p, ks.Context(live))
    for era, rows in live.groupby("era").indices.items():
        E = live[names[:3]].to_numpy()[rows]
        residual = out[rows] - out[rows].mean()
        exposure = (E - E.mean(axis=0)).T @ residual
        np.testing.assert_allclose(exposure, 0.0, atol=1e-8, err_msg=era)
        assert out[rows].mean() == pytest.approx(p[rows].mean(), abs=1e-10)


def test_neutralize_matches_least_squares_with_intercept_reference():
    live, names = _live(seed=6)
    rng = np.random.default_rng(7)
    p = rng.normal(size=len(live)) + live[names[0]].to_numpy()
    proportion = 0.5
    out = ks.Neutralize(tuple(names[:2]), proportion).apply(p, ks.Context(live))
    reference = np.empty(len(p))
    for _, rows in live.groupby("era").indices.items():
        design = np.column_stack([np.ones(len(rows)), live[names[:2]].to_numpy()[rows]])
        coef = np.linalg.pinv(design) @ p[rows]
        fitted_features = design[:, 1:] @ coef[1:]
        fitted_features -= fitted_features.mean()
        reference[rows] = p[rows] - proportion * fitted_features
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-9)


def test_neutralize_fills_nan_exposures_with_the_era_mean():
    live, names = _live(nan_fraction=0.2, seed=8)
    p = np.random.default_rng(9).normal(size=len(live))
    out = ks.Neutralize(tuple(names[:2]), 1.0).apply(p, ks.Context(live))
    assert np.isfinite(out).all()
    filled = live.copy()
    for col in names[:2]:
        filled[col] = live.groupby("era")[col].transform(lambda s: s.fillna(s.mean()))
    np.testing.assert_allclose(
        out, ks.Neutralize(tuple(names[:2]), 1.0).apply(p, ks.Context(filled)), atol=1e-12
    )


def test_blend_benchmark_reindexes_benchmarks_to_live_ids_and_mixes_ranks():
    live, _ = _live()
    rng = np.random.default_rng(10)
    p = rng.normal(size=len(live))
    bench = pd.DataFrame({"v52_lgbm_ender20": rng.random(len(live))}, index=live.index)
    shuffled = bench.sample(frac=1.0, random_state=0)  # another order, same ids
    out = ks.BlendBenchmark("v52_lgbm_ender20", 0.2).apply(p, ks.Context(live, shuffled))
    eras = live["era"].to_numpy()
    reference = 0.8 * rank_per_era(p, eras) + 0.2 * rank_per_era(
        bench["v52_lgbm_ender20"].to_numpy(), eras
    )
    np.testing.assert_allclose(out, reference, atol=1e-15)


def test_blend_benchmark_missing_column_names_it():
    live, _ = _live()
    bench = pd.DataFrame({"v52_lgbm_cyrusd20": 0.5}, index=live.index)
    with pytest.raises(ValueError, match="no column 'v52_lgbm_ender20'.*v52_lgbm_cyrusd20"):
        ks.BlendBenchmark("v52_lgbm_ender20", 0.5, on_missing="fail").apply(
            np.zeros(len(live)), ks.Context(live, bench)
        )


def test_blend_benchmark_missing_live_id_names_it():
    live, _ = _live()
    bench = pd.DataFrame({"b": 0.5}, index=live.index).drop(index="id00007")
    with pytest.raises(ValueError, match="lacks 1 live id.*id00007"):
        ks.BlendBenchmark("b", 0.5, on_missing="fail").apply(
            np.zeros(len(live)), ks.Context(live, bench)
        )


def test_blend_benchmark_skip_without_the_column_ships_the_plain_rank_and_logs_it(caplog):
    live, _ = _live()
    p = np.random.default_rng(11).normal(size=len(live))
    bench = pd.DataFrame({"v52_lgbm_cyrusd20": 0.5}, index=live.index)
    with caplog.at_level("WARNING", logger="nmr"):
        out = ks.BlendBenchmark("v52_lgbm_ender20", 0.5).apply(p, ks.Context(live, bench))
    np.testing.assert_array_equal(out, rank_per_era(p, live["era"].to_numpy()))
    [record] = caplog.records
    assert record.name == "nmr" and record.levelname == "WARNING"
    assert f"skipped for {len(live)} of {len(live)} rows" in record.getMessage()
    assert "no column 'v52_lgbm_ender20'" in record.getMessage()


def test_blend_benchmark_skip_blends_the_rows_that_have_a_benchmark_only(caplog):
    live, _ = _live()
    rng = np.random.default_rng(12)
    p = rng.normal(size=len(live))
    bench = pd.DataFrame({"b": rng.random(len(live))}, index=live.index)
    bench = bench.drop(index=["id00003", "id00007"])
    with caplog.at_level("WARNING", logger="nmr"):
        out = ks.BlendBenchmark("b", 0.25).apply(p, ks.Context(live, bench))
    eras = live["era"].to_numpy()
    ranked = rank_per_era(p, eras)
    has = ~live.index.isin(["id00003", "id00007"])
    expected = ranked.copy()
    expected[has] = 0.75 * ranked[has] + 0.25 * rank_per_era(
        bench["b"].reindex(live.index[has]).to_numpy(), eras[has]
    )
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert "skipped for 2 of" in caplog.records[0].getMessage()
    assert "lacks a value for 2 live id(s)" in caplog.records[0].getMessage()


def test_blend_benchmark_skip_with_every_id_present_equals_fail_mode(caplog):
    live, _ = _live()
    rng = np.random.default_rng(13)
    p = rng.normal(size=len(live))
    bench = pd.DataFrame({"b": rng.random(len(live))}, index=live.index)
    ctx = ks.Context(live, bench)
    with caplog.at_level("WARNING", logger="nmr"):
        skip = ks.BlendBenchmark("b", 0.3, on_missing="skip").apply(p, ctx)
    np.testing.assert_array_equal(
        skip, ks.BlendBenchmark("b", 0.3, on_missing="fail").apply(p, ctx)
    )
    assert caplog.records == []


def test_to_one_column_binary_takes_probability_of_class_one():
    proba = np.array([[0.9, 0.1], [0.3, 0.7]])
    np.testing.assert_array_equal(ks.to_one_column(proba, "binary"), [0.1, 0.7])
    np.testing.assert_array_equal(ks.to_one_column(proba[:, 1:], "binary"), [0.1, 0.7])


def test_to_one_column_multiclass_is_expected_class_scaled_to_unit_interval():
    proba = np.array([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0], [0.2, 0.2, 0.2, 0.2, 0.2]])
    np.testing.assert_allclose(ks.to_one_column(proba, "multiclass"), [0.0, 1.0, 0.5])


def test_to_one_column_regression_takes_first_output():
    np.testing.assert_array_equal(
        ks.to_one_column(np.array([[1.5, 9], [2.5, 9]]), "regression"), [1.5, 2.5]
    )
