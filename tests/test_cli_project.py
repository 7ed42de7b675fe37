"""`nmr init`, `nmr validate` and `nmr data synth` as a user runs them."""

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
from tests.buildkit import train_lightgbm

runner = CliRunner()


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("example") / "demo"
    result = runner.invoke(app, ["init", "--example", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


def copy_of(example: Path, tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(example, target)
    return target


def test_init_example_builds_a_project_with_real_lightgbm_models(example):
    import lightgbm as lgb

    assert (example / "numerai.yaml").is_file()
    assert (example / "data" / "features.json").is_file()
    booster = lgb.Booster(model_file=str(example / "artifacts" / "lgbm_medium.txt"))
    sets = json.loads((example / "data" / "features.json").read_text())["feature_sets"]
    assert booster.feature_name() == sets["medium"]
    assert booster.num_trees() > 0


def test_init_example_then_validate_passes_in_a_real_process(tmp_path):
    nmr = [sys.executable, "-c", "from builder.cli import main; main()"]
    env = {**os.environ, "NMR_CONFIG": ""}
    created = subprocess.run(
        [*nmr, "init", "--example", "demo"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert created.returncode == 0, created.stderr
    checked = subprocess.run(
        [*nmr, "validate"], cwd=tmp_path / "demo", capture_output=True, text=True, env=env
    )
    assert checked.returncode == 0, checked.stderr
    assert "valid, 2 models" in checked.stdout
    assert "example_model" in checked.stdout and "example_ensemble" in checked.stdout


def test_validate_reports_each_problem_as_one_located_line_and_exits_1(example, tmp_path):
    project = copy_of(example, tmp_path)
    config = project / "numerai.yaml"
    config.write_text(
        config.read_text().replace("features: medium\n", "features: mediun\n", 1)
        + "  Bad-Slot: {artifact: artifacts/lgbm_small.txt, features: small}\n"
    )
    result = runner.invoke(app, ["validate", "-f", str(config)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"{config}:13:15: models.example_model.features: unknown feature set"
    )
    assert lines[1].startswith(f"{config}:24:3: models.Bad-Slot: 'Bad-Slot' is not a model slot")
    assert "Traceback" not in result.output


def test_validate_with_debug_shows_the_traceback(example, tmp_path):
    project = copy_of(example, tmp_path)
    (project / "numerai.yaml").write_text("version: 1\nmodels: []\n")
    result = runner.invoke(app, ["--debug", "validate", "-f", str(project / "numerai.yaml")])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr


def test_validate_json_lists_problems_with_their_places(example, tmp_path):
    project = copy_of(example, tmp_path)
    (project / "artifacts" / "lgbm_small.txt").unlink()
    result = runner.invoke(app, ["validate", "--json", "-f", str(project / "numerai.yaml")])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    (problem,) = payload["problems"]
    assert (problem["line"], problem["col"], problem["path"]) == (
        19,
        20,
        "models.example_ensemble.ensemble[1].artifact",
    )
    assert problem["message"].startswith("artifact file not found:")


def test_validate_json_describes_a_valid_project(example):
    result = runner.invoke(app, ["validate", "--json", "-f", str(example / "numerai.yaml")])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["problems"] == []
    ensemble = payload["models"][1]
    assert ensemble["slot"] == "example_ensemble" and ensemble["ensemble"] is True
    assert [m["n_features"] for m in ensemble["members"]] == [24, 8]
    assert ensemble["postprocessing"] == ["neutralize", "rank_per_era"]


def test_validate_finds_the_config_through_nmr_config(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NMR_CONFIG", str(example / "numerai.yaml"))
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output


def test_validate_without_any_config_says_how_to_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NMR_CONFIG", raising=False)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no numerai.yaml in")
    assert "nmr init" in result.stderr


def test_init_writes_a_commented_config_and_gitignore(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    config = (tmp_path / "new" / "numerai.yaml").read_text()
    assert config.count("#") > 10
    ignored = (tmp_path / "new" / ".gitignore").read_text().splitlines()
    assert "build/" in ignored and ".nmr/" in ignored


def test_init_config_validates_once_data_and_the_model_exist(tmp_path):
    project = tmp_path / "new"
    assert runner.invoke(app, ["init", str(project)]).exit_code == 0
    assert runner.invoke(app, ["data", "synth", str(project / "data"), "--small"]).exit_code == 0
    (project / "artifacts").mkdir()
    (project / "artifacts" / "model.txt").write_text("placeholder")
    result = runner.invoke(app, ["validate", "-f", str(project / "numerai.yaml")])
    assert result.exit_code == 1  # validate opens the artifact: a placeholder is no model
    assert "models.my_model.artifact: artifacts/model.txt: not a LightGBM model" in result.stderr
    sets = json.loads((project / "data" / "features.json").read_text())["feature_sets"]
    train_lightgbm(project, "model", sets["medium"])
    result = runner.invoke(app, ["validate", "-f", str(project / "numerai.yaml")])
    assert result.exit_code == 0, result.output
    assert "my_model" in result.stdout


def test_init_keeps_an_existing_gitignore_and_adds_only_missing_lines(tmp_path):
    (tmp_path / ".gitignore").write_text("secrets.env\nbuild/\n")
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["secrets.env", "build/"]
    assert lines.count("build/") == 1 and ".nmr/" in lines


def test_init_refuses_to_overwrite_an_existing_config_without_force(tmp_path):
    (tmp_path / "numerai.yaml").write_text("# mine\n")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "already exists; pass --force" in result.stderr
    assert (tmp_path / "numerai.yaml").read_text() == "# mine\n"
    assert runner.invoke(app, ["init", "--force", str(tmp_path)]).exit_code == 0


def test_init_example_without_lightgbm_names_the_extra_and_writes_nothing(tmp_path, monkeypatch):
    # An import of a module mapped to None raises ImportError: the same path as a missing extra.
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    result = runner.invoke(app, ["init", "--example", str(tmp_path / "demo")])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: nmr init --example trains a LightGBM model and needs the lightgbm extra: "
        "pip install 'nmr[lightgbm]'"
    )
    assert not (tmp_path / "demo").exists()


def test_data_synth_small_writes_the_files(tmp_path):
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "d"), "--small", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "8/24/60 features" in result.stdout
    assert (tmp_path / "d" / "live_benchmark_models.parquet").is_file()


def test_data_synth_refuses_small_with_scale(tmp_path):
    result = runner.invoke(app, ["data", "synth", str(tmp_path), "--small", "--scale", "0.5"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --small and --scale cannot be combined"


def test_data_synth_refuses_a_nan_fraction_outside_zero_to_one(tmp_path):
    result = runner.invoke(app, ["data", "synth", str(tmp_path), "--nan-fraction", "1.5"])
    assert result.exit_code == 1
    assert "--nan-fraction must be in [0, 1)" in result.stderr


def test_help_lists_this_stages_commands_with_one_line_descriptions():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "validate", "data"):
        assert command in result.stdout
    synth = runner.invoke(app, ["data", "--help"])
    assert "synth" in synth.stdout


def test_init_example_is_reproducible_for_a_seed(example, tmp_path):
    again = tmp_path / "again"
    assert runner.invoke(app, ["init", "--example", str(again)]).exit_code == 0
    for name in ("lgbm_medium.txt", "lgbm_small.txt"):
        assert (again / "artifacts" / name).read_bytes() == (
            example / "artifacts" / name
        ).read_bytes()
    assert (again / "data" / "train.parquet").read_bytes() == (
        example / "data" / "train.parquet"
    ).read_bytes()


def test_version_flag_alone_prints_the_version_and_exits_0():
    from builder import __version__

    result = runner.invoke(app, ["--version"])

    assert result.exit_code == 0, result.output
    assert result.output == f"nmr {__version__}\n"


def test_a_closed_output_pipe_stops_quietly_without_an_internal_error(example):
    # `nmr validate | head -1`: the reader is gone before nmr writes its output.
    proc = subprocess.Popen(
        [sys.executable, "-c", "from builder.cli import main; main()", "validate"],
        cwd=example,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)

    assert stderr == ""
    assert proc.returncode == 1


def test_debug_after_the_command_shows_the_traceback_like_debug_before_it(tmp_path):
    nmr = [sys.executable, "-c", "from builder.cli import main; main()"]
    env = {**os.environ, "NMR_CONFIG": ""}
    result = subprocess.run(
        [*nmr, "validate", "--debug", "-f", "missing.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "missing.yaml: no such file" in result.stderr
