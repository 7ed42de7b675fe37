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


@pytest.fixture()
def project_copy(project, tmp_path, monkeypatch):
    """A private copy of the built example project, as the working directory."""
    copy = tmp_path / "proj"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    return copy


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
    (report,) = [
        line.split("report: ")[1] for line in done.output.splitlines() if "report: " in line
    ]
    assert Path(report).parent.name.startswith("nmr-test-")  # its own directory, never /tmp itself


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


def test_a_run_without_diagnostics_keeps_the_last_diagnostics_report(project_copy):
    copy = project_copy
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


def test_a_failed_run_keeps_the_last_diagnostics_report(project_copy):
    copy = project_copy
    report = copy / "build" / "example_model" / "report.html"
    assert invoke("test", "example_model").exit_code == 0
    diagnosed = report.read_text()
    done = invoke("test", "example_model", "--timeout", "0.01")
    assert done.exit_code == 1
    assert "reason: Timeout" in done.output
    assert report.read_text() == diagnosed


def test_each_run_writes_its_own_report(project_copy):
    copy = project_copy
    reports = copy / "build" / "example_model" / "reports"
    before = set(reports.glob("*.html"))
    for _ in range(2):
        assert invoke("test", "example_model", "--no-diagnostics").exit_code == 0
    assert len(set(reports.glob("*.html")) - before) == 2


# Runs in the runtime's Python: wraps each member's evaluator of a built pickle so that it is off
# by 0.5 on integer input only. The int8 path (live features kept as int8, no preprocessing) is
# broken; the float64 path, and the ranks the run ships, are not.
_BREAK_INT8 = r"""
import sys

import cloudpickle
import pandas as pd


class OffOnIntegers:
    def __init__(self, evaluator):
        self.evaluator = evaluator

    def predict(self, X):
        out = self.evaluator.predict(X)
        return out + 0.5 if X.dtype.kind in "iu" else out


model = pd.read_pickle(sys.argv[1])
for member in model.members:
    member.evaluator = OffOnIntegers(member.evaluator)
with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(model, handle)
"""


def test_fidelity_checks_the_int8_input_the_shipped_pickle_hands_its_members(in_project):
    done = invoke("test", "example_model", "--json")
    (slot,) = json.loads(done.output)
    assert [m["input_dtype"] for m in slot["fidelity"]["members"]] == ["int8"]


def test_a_pickle_broken_only_on_its_int8_path_fails_fidelity(project_copy):
    pickle = project_copy / "build" / "example_model" / "model.pkl"
    subprocess.run(
        [support.runtime_python(), "-c", _BREAK_INT8, str(pickle)], check=True, capture_output=True
    )
    done = invoke("test", "example_model")
    assert done.exit_code == 1
    assert "example_model: Pending -> Running -> Validating -> Success" in done.output
    assert (
        "FAIL fidelity: lgbm_medium.txt differs from lightgbm by 0.5 (tolerance 0) on the int8 "
        "input the pickle hands it" in done.output
    )


def _validation_lines(output: str) -> list[str]:
    """The rows of the validation table in `nmr test`'s text output."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "validation (" in line)
    return [line for line in lines[start : start + 14] if "│" in line]


def test_a_hand_made_pickle_is_scored_with_the_same_validation_table_as_a_slot(in_project):
    slot = invoke("test", "example_model")
    assert slot.exit_code == 0, slot.output
    pickle = in_project / "hand_made.pkl"
    shutil.copyfile(in_project / "build" / "example_model" / "model.pkl", pickle)
    from builder.config import load

    features = load(in_project / "numerai.yaml").models[0].features
    done = invoke("test", "--pickle", pickle, "--features", ",".join(features))
    assert done.exit_code == 0, done.output
    assert "validation (8 eras)" in done.output
    assert len(_validation_lines(slot.output)) >= 6
    assert _validation_lines(done.output) == _validation_lines(slot.output)
    report = in_project / "build" / "_pickles" / "hand_made" / "report.html"
    assert f"report: {report}" in done.output
    assert "<svg" in report.read_text()


def test_a_hand_made_pickle_is_scored_on_a_given_validation_file(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NMR_CONFIG", raising=False)
    python = support.runtime_python()
    source = "def predict(live_features):\n    return live_features[['feature_0000']].rank(pct=True).set_axis(['prediction'], axis=1)\n\nMODEL = predict\n"  # noqa: E501
    pickles = support.make_pickles(python, {"ranks": source}, tmp_path)
    validation = project / "data" / "validation.parquet"
    live = project / "data" / "live.parquet"
    done = invoke(
        "test", "--pickle", pickles["ranks"], "--live", live, "--validation", validation, "--json"
    )
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.output)
    assert result["validation"]["summary"]["eras"] == 8
    assert result["report"] is not None


def test_a_missing_validation_file_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.pkl").write_bytes(b"x")
    done = CliRunner().invoke(
        app,
        ["test", "--pickle", "model.pkl", "--live", "x.parquet", "--validation", "nope.parquet"],
    )
    assert done.exit_code == 1
    assert "--validation nope.parquet: no such file" in done.output


def test_the_stage_prints_nothing_and_tells_its_observer_each_step(in_project, capsys):
    from builder.testing import Observer, TestRequest, run_tests

    class Heard(Observer):
        def __init__(self):
            self.statuses, self.reports = [], []

        def status(self, name, status, first):
            self.statuses.append((name, status, first))

        def report(self, path, kept):
            self.reports.append(path)

    heard = Heard()
    (outcome,) = run_tests(TestRequest(slots=("example_model",), diagnostics=False), heard)
    assert capsys.readouterr().out == ""
    assert outcome.ok
    assert heard.statuses == [
        ("example_model", "Pending", True),
        ("example_model", "Running", False),
        ("example_model", "Validating", False),
        ("example_model", "Success", False),
    ]
    (report,) = heard.reports
    assert report.exists()
