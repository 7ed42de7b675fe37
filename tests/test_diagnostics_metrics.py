"""Validation metrics equal numerai-tools' own functions called directly (to 1e-9)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring

from builder.datasets import SynthSizes, synthesize
from builder.diagnostics import (
    default_bmc_benchmark,
    evaluate,
    max_drawdown,
    numerai_corr,
    series_stats,
)
from builder.errors import NmrError
from tests import numerai_reference

TOL = 1e-9
# 6 validation eras: the newest 4 have no 60-day targets yet (builder/datasets.py)
SIZES = SynthSizes(
    n_all=24,
    n_medium=12,
    n_small=6,
    train_eras=2,
    validation_eras=6,
    rows_per_era=120,
    live_rows=50,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Synthetic v5.2-shaped validation data (5% NaN feature cells, unresolved 60-day targets)
    and id-indexed predictions built from a few features plus noise."""
    root = tmp_path_factory.mktemp("metrics")
    synthesize(root, seed=5, sizes=SIZES, nan_fraction=0.05)
    validation = pd.read_parquet(root / "validation.parquet")
    features = [c for c in validation.columns if c.startswith("feature_")][:8]
    rng = np.random.default_rng(1)
    score = validation[features].fillna(2).to_numpy() @ rng.normal(size=len(features))
    predictions = pd.DataFrame(
        {
            "era": validation["era"],
            "prediction": score + 4 * validation["target"] + rng.normal(size=len(validation)),
        },
        index=validation.index,
    )
    members = pd.DataFrame(
        {"lgbm": predictions["prediction"] + rng.normal(size=len(validation)), "noise": 0.0},
        index=validation.index,
    )
    members["noise"] = rng.random(len(validation))
    return {
        "root": root,
        "validation": validation,
        "features": features,
        "predictions": predictions,
        "members": members,
        "benchmarks": pd.read_parquet(root / "validation_benchmark_models.parquet"),
    }


@pytest.fixture(scope="module")
def result(data):
    return evaluate(
        data["predictions"],
        data["root"] / "validation.parquet",
        data["root"] / "validation_benchmark_models.parquet",
        features=data["features"],
        data_version="v5.2",
        member_predictions=data["members"],
        member_weights={"lgbm": 2.0, "noise": 1.0},
    )


@pytest.fixture(scope="module")
def reference(data):
    return numerai_reference.per_era(
        data["predictions"],
        data["validation"],
        data["features"],
        data["benchmarks"],
        "v52_lgbm_ender20",
    )


@pytest.mark.parametrize("metric", ["corr", "bmc", "fnc", "exposure"])
def test_per_era_metric_equals_numerai_tools(result, reference, metric):
    assert list(result.per_era.index) == list(reference.index)
    np.testing.assert_allclose(
        result.per_era[metric].astype(float), reference[metric].astype(float), rtol=0, atol=TOL
    )


def test_per_target_corr_equals_numerai_tools_for_every_target_column(result, reference, data):
    aux = [c for c in data["validation"].columns if c.startswith("target_")]
    assert result.targets == aux and len(aux) == 8
    for name in aux:
        np.testing.assert_allclose(
            result.per_era[f"corr_{name}"].astype(float),
            reference[f"corr_{name}"].astype(float),
            rtol=0,
            atol=TOL,
            equal_nan=True,
        )


def test_unresolved_targets_give_nan_eras_not_an_error(result):
    # the synthetic 60-day targets are missing in the newest validation eras
    assert result.per_era["corr_target_ender_60"].isna().any()
    assert result.summary["targets"]["target_ender_60"]["eras"] < result.summary["eras"]


def test_correlation_with_each_benchmark_column_equals_numerai_tools(result, reference, data):
    columns = [c for c in data["benchmarks"].columns if c != "era"]
    assert result.benchmark_columns == columns
    for column in columns:
        np.testing.assert_allclose(
            result.per_era[f"corr_with_{column}"].astype(float),
            reference[f"corr_with_{column}"].astype(float),
            rtol=0,
            atol=TOL,
        )


def test_bmc_uses_the_data_versions_main_benchmark_by_default(result):
    assert result.bmc_benchmark == "v52_lgbm_ender20"
    assert result.summary["bmc_benchmark"] == "v52_lgbm_ender20"


def test_bmc_follows_the_configured_benchmark_column(data, result):
    other = evaluate(
        data["predictions"],
        data["root"] / "validation.parquet",
        data["benchmarks"],
        features=data["features"],
        bmc_benchmark="v52_lgbm_teager2b60",
    )
    ref = numerai_reference.per_era(
        data["predictions"],
        data["validation"],
        data["features"],
        data["benchmarks"],
        "v52_lgbm_teager2b60",
    )
    np.testing.assert_allclose(other.per_era["bmc"], ref["bmc"], rtol=0, atol=TOL)
    assert not np.allclose(other.per_era["bmc"], result.per_era["bmc"])


def test_a_configured_benchmark_column_that_is_missing_is_an_error_listing_the_columns(data):
    with pytest.raises(NmrError, match="'v52_lgbm_nope' is not in .*v52_lgbm_ender20"):
        evaluate(
            data["predictions"],
            data["root"] / "validation.parquet",
            data["benchmarks"],
            features=data["features"],
            bmc_benchmark="v52_lgbm_nope",
        )


def test_a_missing_default_benchmark_skips_bmc_with_a_note_and_never_substitutes(data):
    bench = data["benchmarks"].drop(columns=["v52_lgbm_ender20"])
    other = evaluate(
        data["predictions"],
        data["root"] / "validation.parquet",
        bench,
        features=data["features"],
        data_version="v5.2",
    )
    assert other.bmc_benchmark is None
    assert other.per_era["bmc"].isna().all()
    assert any("BMC not computed" in n and "'v52_lgbm_ender20'" in n for n in other.notes)


def test_default_benchmark_follows_the_data_version():
    assert default_bmc_benchmark("v5.2") == "v52_lgbm_ender20"
    assert default_bmc_benchmark("v5.3") == "v53_lgbm_ender20"


def test_each_ensemble_member_has_its_corr_and_its_contribution_to_the_blend(data, result):
    frame = data["validation"].join(data["members"]).join(data["predictions"][["prediction"]])
    for era, rows in frame.groupby("era"):
        rows = rows.sort_index()
        for name in ("lgbm", "noise"):
            expected_corr = scoring.numerai_corr(rows[[name]], rows["target"]).iloc[0]
            expected_contribution = scoring.correlation_contribution(
                rows[[name]], rows["prediction"], rows["target"]
            ).iloc[0]
            assert result.per_era.loc[era, f"member_{name}_corr"] == pytest.approx(
                expected_corr, abs=TOL
            )
            assert result.per_era.loc[era, f"member_{name}_contribution"] == pytest.approx(
                expected_contribution, abs=TOL
            )
    members = {m["name"]: m for m in result.summary["members"]}
    assert members["lgbm"]["weight"] == 2.0
    assert members["lgbm"]["corr"]["mean"] > members["noise"]["corr"]["mean"]


def test_summary_is_mean_std_sharpe_and_drawdown_of_each_per_era_series(result):
    for key in ("corr", "bmc", "fnc"):
        values = result.per_era[key].astype(float)
        stats = result.summary[key]
        assert stats["mean"] == pytest.approx(values.mean(), abs=TOL)
        assert stats["std"] == pytest.approx(values.std(ddof=0), abs=TOL)
        assert stats["sharpe"] == pytest.approx(scoring.sharpe_ratio(values), abs=TOL)
        assert stats["max_drawdown"] == pytest.approx(max_drawdown(values.to_numpy()), abs=TOL)
    assert result.summary["corr_mean"] == result.summary["corr"]["mean"]
    assert result.summary["max_feature_exposure"] == pytest.approx(result.per_era["exposure"].max())


def test_sharpe_uses_the_std_numerai_tools_uses():
    values = pd.Series([0.01, 0.03, -0.02, 0.04])
    assert series_stats(values)["sharpe"] == pytest.approx(scoring.sharpe_ratio(values), abs=1e-15)
    assert series_stats(values)["sharpe"] == pytest.approx(values.mean() / values.std(ddof=0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numerai_corr_of_arrays_matches_numerai_tools(seed):
    rng = np.random.default_rng(seed)
    n = 500
    target = rng.integers(0, 5, n) / 4.0
    predictions = np.round(rng.random(n) + 0.3 * target, 2)  # rounding makes ties
    ids = [f"n{i:04d}" for i in range(n)]
    reference = scoring.numerai_corr(
        pd.DataFrame({"p": predictions}, index=ids), pd.Series(target, index=ids, name="target")
    )["p"]
    assert numerai_corr(predictions, target) == pytest.approx(reference, abs=1e-12)


def test_max_drawdown_is_the_largest_fall_from_the_cumulative_peak():
    # cumulative: 0.1, 0.3, 0.0, 0.05, 0.4 -> peak 0.3 then 0.0: drawdown 0.3
    assert max_drawdown(np.array([0.1, 0.2, -0.3, 0.05, 0.35])) == pytest.approx(0.3)
    assert max_drawdown(np.array([0.1, 0.1])) == 0.0
    # a loss in the very first era counts from the zero start
    assert max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(0.2)


def test_a_constant_prediction_era_is_nan_and_does_not_break_the_summary(data):
    predictions = data["predictions"].copy()
    first = predictions["era"].iloc[0]
    predictions.loc[predictions["era"] == first, "prediction"] = 0.5
    other = evaluate(
        predictions,
        data["root"] / "validation.parquet",
        features=data["features"],
    )
    assert math.isnan(other.per_era.loc[first, "corr"])
    assert math.isfinite(other.summary["corr_mean"])
    assert other.summary["eras"] == len(other.per_era)


def test_eras_whose_main_target_is_unresolved_are_nan_and_left_out_of_the_summary(data, tmp_path):
    # Numerai's newest validation eras have no target yet
    validation = data["validation"].copy()
    last = validation["era"].iloc[-1]
    validation.loc[validation["era"] == last, "target"] = np.nan
    validation.to_parquet(tmp_path / "validation.parquet")
    other = evaluate(
        data["predictions"],
        tmp_path / "validation.parquet",
        data["benchmarks"],
        features=data["features"],
    )
    assert other.per_era.loc[last, ["corr", "bmc", "fnc"]].isna().all()
    assert other.summary["corr"]["eras"] == other.summary["eras"] - 1
    resolved = other.per_era["corr"].drop(last)
    assert other.summary["corr"]["mean"] == pytest.approx(resolved.mean(), abs=TOL)
