"""`nmr test`: built slots with diagnostics, any pickle with --pickle, exit codes, --json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.bad_pickles import support

pytest.importorskip("lightgbm")


# run_pickle's scratch directories go to pytest's tmp tree (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("scratch_in_tmp")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`nmr init --example` then `nmr build`: both slots in build/<slot>/model.pkl."""
    root = tmp_path_factory.mktemp("example") / "proj"
    done = CliRunner().invoke(app, ["init", "--example", str(root)])
    assert done.exit_code == 0, done.output
    done = CliRunner().invoke(app, ["build", "-f", str(root / "numerai.yaml")])
    assert done.exit_code == 0, done.output
    assert (root / "build" / "example_ensemble" / "model.pkl").exists()
    return root


@pytest.fixture()
def in_project(project, monkeypatch):
    monkeypatch.chdir(project)
    return project


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_testing_the_example_project_passes_with_diagnostics(in_project):
    done = invoke("test")
    assert done.exit_code == 0, done.output
    assert "example_model: Pending -> Running -> Validating -> Success" in done.output
    assert "example_ensemble: Pending -> Running -> Validating -> Success" in done.output
    assert "fidelity lgbm_medium.txt: max abs diff 0 over 500 rows (tolerance 0) ok" in done.output
    assert "validation (8 eras)" in done.output
    report = in_project / "build" / "example_model" / "report.html"
    assert "<svg" in report.read_text()


def test_json_output_carries_run_fidelity_and_validation(in_project):
    done = invoke("test", "example_model", "--json")
    assert done.exit_code == 0, done.output
    (slot,) = json.loads(done.output)
    assert slot["slot"] == "example_model"
    assert slot["ok"] is True
    assert slot["run"]["status"] == "Success"
    assert slot["run"]["rows"] == 500
    assert [m["max_abs_diff"] for m in slot["fidelity"]["members"]] == [0.0]
    assert slot["validation"]["summary"]["eras"] == 8


def test_a_slot_that_was_not_built_is_an_error_naming_nmr_build(in_project):
    slot_dir = in_project / "build" / "example_ensemble"
    moved = slot_dir.with_name("moved")
    shutil.move(slot_dir, moved)
    try:
        done = invoke("test", "example_ensemble")
    finally:
        shutil.move(moved, slot_dir)
    assert done.exit_code == 1
    assert "example_ensemble: Pending -> Error" in done.output
    assert (
        "build/example_ensemble/model.pkl not found: run `nmr build example_ensemble` first"
        in done.output
    )


def test_an_unknown_slot_is_one_error_line(in_project):
    done = CliRunner().invoke(app, ["test", "nope"])
    assert done.exit_code == 1
    assert "no model slot 'nope' in numerai.yaml" in done.output


def test_a_hand_made_bad_pickle_fails_with_its_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    python = support.runtime_python()
    pickles = support.make_pickles(
        python, {"none": support.corpus_source("returns_none")}, tmp_path
    )
    live = support.write_live(tmp_path / "live.parquet")
    done = invoke("test", "--pickle", str(pickles["none"]), "--live", str(live))
    assert done.exit_code == 1
    assert "none.pkl: Pending -> Running -> Failed" in done.output
    assert "reason: Pickle function is invalid - returned None" in done.output
    assert "    ERROR:root:Pickle function is invalid - returned None" in done.output


def test_pickle_mode_outside_a_project_needs_live_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NMR_CONFIG", raising=False)
    (tmp_path / "model.pkl").write_bytes(b"x")
    done = CliRunner().invoke(app, ["test", "--pickle", "model.pkl"])
    assert done.exit_code == 1
    assert "--live FILE is required outside a project with data.live" in done.output


def test_pickle_mode_inside_a_project_uses_its_live_data(in_project):
    pickle = in_project / "build" / "example_model" / "model.pkl"
    done = invoke("test", "--pickle", str(pickle), "--json")
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.output)
    assert result["run"]["rows"] == 500


def test_the_nmr_console_script_exits_1_when_a_pickle_times_out(tmp_path):
    python = support.runtime_python()
    pickles = support.make_pickles(python, {"sleeps": support.corpus_source("sleeps")}, tmp_path)
    live = support.write_live(tmp_path / "live.parquet")
    nmr = Path(sys.executable).with_name("nmr")
    done = subprocess.run(
        [
            str(nmr),
            "test",
            "--pickle",
            str(pickles["sleeps"]),
            "--live",
            str(live),
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NMR_CONFIG": "", "TMPDIR": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "sleeps.pkl: Pending -> Running -> Failed" in done.stdout
    assert "reason: Timeout" in done.stdout


def test_without_live_data_a_synthetic_live_era_with_the_slot_features_is_used(
    project, tmp_path, monkeypatch
):
    copy = tmp_path / "proj"
    shutil.copytree(project, copy)
    (copy / "data" / "live.parquet").unlink()
    (copy / "data" / "live_benchmark_models.parquet").unlink()
    monkeypatch.chdir(copy)
    done = invoke("test", "example_model", "--no-diagnostics")
    assert done.exit_code == 0, done.output
    assert "rows 6720" in done.output
    assert "note: benchmark models synthesized for the live ids (none given)" in done.output
    assert list((copy / "build" / "example_model" / "test").glob("live-*.synthetic.parquet"))


def test_a_pickle_that_no_longer_matches_its_artifact_fails_fidelity(
    project, tmp_path, monkeypatch
):
    """Retrain the artifact after building: the built pickle now disagrees with native LightGBM."""
    import lightgbm
    import pandas as pd

    from builder.config import load

    copy = tmp_path / "proj"
    shutil.copytree(project, copy)
    model = load(copy / "numerai.yaml").model("example_model")
    features = list(model.features)
    train = pd.read_parquet(copy / "data" / "train.parquet", columns=[*features, "target"])
    booster = lightgbm.train(
        {"objective": "regression", "num_leaves": 7, "verbose": -1, "seed": 1},
        lightgbm.Dataset(train[features].to_numpy(float), train["target"], feature_name=features),
        num_boost_round=5,
    )
    booster.save_model(str(copy / "artifacts" / "lgbm_medium.txt"))
    monkeypatch.chdir(copy)
    done = invoke("test", "example_model")
    assert done.exit_code == 1
    assert "example_model: Pending -> Running -> Validating -> Success" in done.output
    assert "FAIL fidelity: lgbm_medium.txt differs from lightgbm by " in done.output


def test_a_run_without_diagnostics_keeps_the_last_diagnostics_report(
    project, tmp_path, monkeypatch
):
    copy = tmp_path / "proj"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    report = copy / "build" / "example_model" / "report.html"
    assert invoke("test", "example_model").exit_code == 0
    diagnosed = report.read_text()
    assert "max abs diff" in diagnosed  # the fidelity table
    done = invoke("test", "example_model", "--no-diagnostics")
    assert done.exit_code == 0, done.output
    assert report.read_text() == diagnosed
    this_run = sorted((copy / "build" / "example_model" / "reports").glob("*.html"))[-1]
    assert "not checked" in this_run.read_text()
    assert f"report: {this_run} ({report} keeps the last diagnostics)" in done.output


def test_a_failed_run_keeps_the_last_diagnostics_report(project, tmp_path, monkeypatch):
    copy = tmp_path / "proj"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    report = copy / "build" / "example_model" / "report.html"
    assert invoke("test", "example_model").exit_code == 0
    diagnosed = report.read_text()
    done = invoke("test", "example_model", "--timeout", "0.01")
    assert done.exit_code == 1
    assert "reason: Timeout" in done.output
    assert report.read_text() == diagnosed


def test_each_run_writes_its_own_report(project, tmp_path, monkeypatch):
    copy = tmp_path / "proj"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    reports = copy / "build" / "example_model" / "reports"
    before = set(reports.glob("*.html"))
    for _ in range(2):
        assert invoke("test", "example_model", "--no-diagnostics").exit_code == 0
    assert len(set(reports.glob("*.html")) - before) == 2
