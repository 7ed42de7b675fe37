"""Validation metrics: numerai_corr as numerai-tools defines it, drawdown, summary, report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from builder.diagnostics import max_drawdown, numerai_corr, score, tie_kept_rank, write_report


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numerai_corr_matches_numerai_tools(seed):
    scoring = pytest.importorskip("numerai_tools.scoring")
    rng = np.random.default_rng(seed)
    n = 500
    target = rng.integers(0, 5, n) / 4.0
    predictions = np.round(rng.random(n) + 0.3 * target, 2)  # rounding makes ties
    ids = [f"n{i}" for i in range(n)]
    reference = scoring.numerai_corr(
        pd.DataFrame({"p": predictions}, index=ids), pd.Series(target, index=ids, name="target")
    )["p"]
    assert numerai_corr(predictions, target) == pytest.approx(reference, abs=1e-12)


def test_numerai_corr_of_a_perfect_ranking_is_high_and_of_its_reverse_is_its_negative():
    target = np.repeat([0.0, 0.25, 0.5, 0.75, 1.0], 20)
    assert numerai_corr(target, target) > 0.9
    assert numerai_corr(-target, target) == pytest.approx(-numerai_corr(target, target))


def test_tie_kept_rank_averages_ties_and_centers_ranks():
    assert tie_kept_rank(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [0.75, 0.125, 0.75, 0.375]


def test_max_drawdown_is_the_largest_fall_from_the_cumulative_peak():
    # cumulative: 0.1, 0.3, 0.0, 0.05, 0.4 -> peak 0.3 then 0.0: drawdown 0.3
    assert max_drawdown(np.array([0.1, 0.2, -0.3, 0.05, 0.35])) == pytest.approx(0.3)
    assert max_drawdown(np.array([0.1, 0.1])) == 0.0
    # a loss in the very first era counts from the zero start
    assert max_drawdown(np.array([-0.2, 0.1])) == pytest.approx(0.2)


def per_era_frame(corr_by_era: dict[str, float], n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for era, strength in corr_by_era.items():
        target = rng.integers(0, 5, n) / 4.0
        prediction = strength * target + rng.normal(size=n)
        ids = [f"{era}_{i}" for i in range(n)]
        frames.append(
            pd.DataFrame({"era": era, "prediction": prediction, "target": target}, index=ids)
        )
    return pd.concat(frames)


def test_summary_has_mean_std_sharpe_drawdown_exposure_and_benchmark_corr():
    predictions = per_era_frame({"0001": 5.0, "0002": 0.0, "0003": 5.0})
    benchmarks = pd.DataFrame(
        {"v52_lgbm_ender20": predictions["prediction"] * 2}, index=predictions.index
    )
    report = score(predictions, {"0001": 0.1, "0002": 0.3, "0003": 0.2}, benchmarks)
    s = report.summary
    corr = report.per_era["corr"].to_numpy()
    assert s["eras"] == 3
    assert s["corr_mean"] == pytest.approx(corr.mean())
    assert s["corr_std"] == pytest.approx(corr.std())
    assert s["sharpe"] == pytest.approx(corr.mean() / corr.std())
    assert s["max_feature_exposure"] == 0.3
    assert s["benchmark_corr"]["v52_lgbm_ender20"] == pytest.approx(1.0)
    assert corr[0] > 0.3 and abs(corr[1]) < 0.2


def test_report_is_one_offline_html_file_with_svg_plots(tmp_path):
    predictions = per_era_frame({"0001": 5.0, "0002": -1.0, "0003": 5.0})
    report = score(predictions, {})
    path = write_report(tmp_path / "report.html", "my_model", validation=report)
    text = path.read_text()
    assert text.count("<svg") == 2  # cumulative corr + per-era bars
    assert "cumulative corr" in text and "corr per era" in text
    assert "<script" not in text and "http" not in text.replace("http://www.w3.org/2000/svg", "")
    assert text.count("<rect") == 3
    assert "#cf222e" in text  # the negative era is drawn red


def test_report_says_what_was_not_run(tmp_path):
    text = write_report(tmp_path / "r.html", "slot").read_text()
    assert "no data.validation configured" in text
    assert "not checked" in text


def test_nan_corr_eras_do_not_break_the_summary():
    predictions = per_era_frame({"0001": 5.0, "0002": 5.0})
    predictions.loc[predictions["era"] == "0002", "prediction"] = 1.0  # constant: corr NaN
    report = score(predictions, {})
    assert math.isnan(report.per_era.loc["0002", "corr"])
    assert report.summary["eras"] == 2
    assert math.isfinite(report.summary["corr_mean"])
