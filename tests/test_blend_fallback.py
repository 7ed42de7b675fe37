"""blend_benchmark's on_missing, end to end: a real `nmr build` pickle run by the numerai-predict
emulation (builder.runner: predict.py's own order of events and its root-logger log) with a
benchmark file that lacks the column or some live ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.env import ensure_env
from builder.runner import FAILED, SUCCESS, run_pickle
from tests.buildkit import train_lightgbm, write_config, write_data

MODELS = """
skip_slot:
  artifact: artifacts/reg.txt
  features: small
  postprocessing:
    - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.4}
fail_slot:
  artifact: artifacts/reg.txt
  features: small
  postprocessing:
    - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.4, on_missing: fail}
"""


# run_pickle's scratch directories go to pytest's tmp tree (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("scratch_in_tmp")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend") / "project"
    root.mkdir()
    sets = write_data(root, nan_fraction=0.0)
    train_lightgbm(root, "reg", sets["small"])
    write_config(root, MODELS)
    result = CliRunner().invoke(app, ["build", "-f", str(root / "numerai.yaml")])
    assert result.exit_code == 0, result.output
    python = ensure_env("numerai_predict_py_3_12:a78dedd").python
    return root, sets, python


def _run(built, slot, benchmarks: pd.DataFrame, tmp_path):
    root, _, python = built
    path = tmp_path / "benchmarks.parquet"
    benchmarks.to_parquet(path)
    out = tmp_path / "out"
    out.mkdir()
    return run_pickle(
        root / "build" / slot / "model.pkl",
        python,
        root / "data" / "live.parquet",
        path,
        output_dir=out,
    )


def _predictions(run) -> pd.Series:
    return pd.read_csv(run.predictions_path, index_col=0)["prediction"]


def _plain_rank(built) -> pd.Series:
    """What the slot ships without blending: the per-era rank of LightGBM's own prediction."""
    import lightgbm as lgb

    root, sets, _ = built
    live = pd.read_parquet(root / "data" / "live.parquet")
    booster = lgb.Booster(model_file=str(root / "artifacts" / "reg.txt"))
    raw = pd.Series(booster.predict(live[sets["small"]].to_numpy(np.float64)), index=live.index)
    return raw.groupby(live["era"]).rank(pct=True)


def _benchmarks(built) -> pd.DataFrame:
    root = built[0]
    return pd.read_parquet(root / "data" / "live_benchmark_models.parquet")


def test_skip_without_the_column_succeeds_with_the_unblended_rank_and_logs_one_line(
    built, tmp_path
):
    benchmarks = _benchmarks(built).drop(columns=["v52_lgbm_ender20"])
    run = _run(built, "skip_slot", benchmarks, tmp_path)
    assert run.status == SUCCESS, run.log
    assert run.statuses == ["Pending", "Running", "Validating", "Success"]
    warnings = [line for line in run.log.splitlines() if line.startswith("WARNING:nmr:")]
    assert len(warnings) == 1
    assert "blend_benchmark skipped for 150 of 150 rows" in warnings[0]
    assert "no column 'v52_lgbm_ender20'" in warnings[0]
    # predict.py's order: the warning comes while predicting, before "Generated N predictions"
    lines = run.log.splitlines()
    predicting = next(i for i, x in enumerate(lines) if "Predicting on" in x)
    generated = next(i for i, x in enumerate(lines) if "Generated" in x)
    assert predicting < lines.index(warnings[0]) < generated
    got = _predictions(run)
    np.testing.assert_allclose(got.to_numpy(), _plain_rank(built).loc[got.index], atol=1e-12)


def test_skip_with_ids_missing_blends_the_others_and_ranks_the_rest_plainly(built, tmp_path):
    benchmarks = _benchmarks(built)
    dropped = benchmarks.index[:10]
    run = _run(built, "skip_slot", benchmarks.drop(index=dropped), tmp_path)
    assert run.status == SUCCESS, run.log
    assert "blend_benchmark skipped for 10 of 150 rows" in run.log
    got = _predictions(run)
    plain = _plain_rank(built)
    np.testing.assert_allclose(got.loc[dropped], plain.loc[dropped], atol=1e-12)
    kept = got.index.difference(dropped)
    bench_rank = benchmarks.loc[kept, "v52_lgbm_ender20"].rank(pct=True)  # one live era
    expected = 0.6 * plain.loc[kept] + 0.4 * bench_rank
    np.testing.assert_allclose(got.loc[kept], expected.loc[kept], atol=1e-12)


def test_skip_with_a_complete_file_blends_every_row_without_a_warning(built, tmp_path):
    run = _run(built, "skip_slot", _benchmarks(built), tmp_path)
    assert run.status == SUCCESS, run.log
    assert "WARNING:nmr" not in run.log
    got = _predictions(run)
    expected = 0.6 * _plain_rank(built) + 0.4 * _benchmarks(built)["v52_lgbm_ender20"].rank(
        pct=True
    )
    np.testing.assert_allclose(got, expected.loc[got.index], atol=1e-12)


def test_fail_without_the_column_fails_the_run_naming_the_column(built, tmp_path):
    benchmarks = _benchmarks(built).drop(columns=["v52_lgbm_ender20"])
    run = _run(built, "fail_slot", benchmarks, tmp_path)
    assert run.status == FAILED
    assert "live_benchmark_models has no column 'v52_lgbm_ender20'" in run.log


def test_fail_with_ids_missing_fails_the_run_counting_them(built, tmp_path):
    benchmarks = _benchmarks(built)
    run = _run(built, "fail_slot", benchmarks.drop(index=benchmarks.index[:10]), tmp_path)
    assert run.status == FAILED
    assert "lacks 10 live id(s) for column 'v52_lgbm_ender20'" in run.log


def test_on_missing_defaults_to_skip(built):
    from builder.bundle import make_bundle
    from builder.config import load

    project = load(built[0] / "numerai.yaml")
    [step] = make_bundle(project, project.model("skip_slot")).postprocessing
    assert step.on_missing == "skip"


def _drills(built, slot):
    import json

    root, _, _ = built
    result = CliRunner().invoke(
        app, ["test", slot, "--json", "-f", str(root / "numerai.yaml")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout)
    return {d["case"]: d for d in outcome["benchmark_drills"]}


def test_nmr_test_shows_skip_keeping_the_round_when_the_column_or_ids_are_missing(built):
    drills = _drills(built, "skip_slot")
    assert sorted(drills) == ["benchmark column missing", "benchmark ids missing"]
    for drill in drills.values():
        assert (drill["status"], drill["expected"]) == (SUCCESS, True)
        assert drill["detail"].startswith("WARNING:nmr:blend_benchmark skipped for ")


def test_nmr_test_shows_fail_losing_the_round_without_failing_the_test(built):
    drills = _drills(built, "fail_slot")
    assert {case: d["status"] for case, d in drills.items()} == {
        "benchmark column missing": FAILED,
        "benchmark ids missing": FAILED,
    }
    assert all(d["expected"] for d in drills.values())  # fail is the declared choice
    assert "v52_lgbm_ender20" in drills["benchmark column missing"]["detail"]
