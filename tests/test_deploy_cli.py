"""`nmr plan/apply/status/logs --sandbox` on the README's example project, end to end.

The first apply (module fixture) builds the example's two slots, tests them with the
numerai-predict emulation, and deploys them to the embedded sandbox. Tests that change the
project work on a copy: the sandbox state lives in the copy's .nmr/, so copies are independent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app

pytest.importorskip("lightgbm")


def _nmr(project: Path, *args: str):
    result = CliRunner().invoke(app, [*args, "-f", str(project / "numerai.yaml")])
    return result


def _text(result) -> str:
    return result.stdout + (result.stderr or "")  # CliRunner results and CompletedProcess


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from builder.config.scaffold import example_project

    project = tmp_path_factory.mktemp("deploy") / "example"
    example_project(project)
    # The apply's own temporary directory, so a test can check that nothing is left in it.
    scratch = project.parent / "tmp"
    scratch.mkdir()
    # The README's main job, as a user types it: a real process, config found from the cwd.
    first = subprocess.run(
        [
            sys.executable,
            "-c",
            "from builder.cli import main; main()",
            "apply",
            "--sandbox",
            "--yes",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert first.returncode == 0, first.stdout + first.stderr
    return project, first


@pytest.fixture
def copy(deployed, tmp_path):
    project, _ = deployed
    target = tmp_path / "example"
    shutil.copytree(project, target)
    return target


def _puts(project: Path) -> int:
    import sqlite3

    with sqlite3.connect(project / ".nmr" / "sandbox" / "sandbox.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM puts").fetchone()[0]


def _retrain_small_model(project: Path) -> None:
    """Change an artifact's bytes the way retraining does (a different LightGBM model)."""
    import lightgbm as lgb

    from tests.synthdata import numerai_like

    names = json.loads((project / "data" / "features.json").read_text())["feature_sets"]["small"]
    X, y = numerai_like(n_rows=300, n_features=len(names), seed=7)
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 4, "verbose": -1, "seed": 7},
        lgb.Dataset(X, y, feature_name=names),
        num_boost_round=5,
    )
    booster.save_model(str(project / "artifacts" / "lgbm_small.txt"))


def test_first_apply_creates_validates_and_assigns_every_slot(deployed):
    project, first = deployed
    assert "Apply complete: 2 applied, 0 failed." in first.stdout
    status = _nmr(project, "status", "--sandbox", "--json")
    slots = json.loads(status.stdout)["slots"]
    assert [(s["slot"], s["validation_status"]) for s in slots] == [
        ("example_model", "validated"),
        ("example_ensemble", "validated"),
    ]
    lock = json.loads((project / "numerai.lock").read_text())
    for slot in slots:
        assert lock["slots"][slot["slot"]]["pickle"]["sha256"].startswith(
            slot["pickle_sha256_prefix"]
        )


def test_apply_leaves_no_run_directories_in_the_temporary_directory(deployed):
    # apply runs each pickle twice (the local test, then the sandbox's validation); both runs
    # used to keep a /tmp/nmr-run-* directory with the predictions CSV, one per run, forever.
    project, _ = deployed
    assert sorted(p.name for p in (project.parent / "tmp").iterdir()) == []


def test_second_apply_prints_no_changes_and_uploads_nothing(copy):
    puts = _puts(copy)
    again = _nmr(copy, "apply", "--sandbox", "--yes")
    assert again.exit_code == 0, _text(again)
    assert "No changes." in again.stdout
    assert _puts(copy) == puts


def test_plan_detailed_exitcode_is_0_without_changes_and_2_with_changes(copy):
    assert _nmr(copy, "plan", "--sandbox", "--detailed-exitcode").exit_code == 0
    _retrain_small_model(copy)
    changed = _nmr(copy, "plan", "--sandbox", "--detailed-exitcode")
    assert changed.exit_code == 2, _text(changed)
    assert re.search(
        r"~ example_ensemble\s+upload and assign [0-9a-f]{16} -> [0-9a-f]{16}", changed.stdout
    )
    assert "example_model" not in changed.stdout.split("nmr will perform")[1]


@pytest.mark.slow
def test_changed_artifact_applies_exactly_one_upload(copy):
    _retrain_small_model(copy)
    puts = _puts(copy)
    result = _nmr(copy, "apply", "--sandbox", "--yes")
    assert result.exit_code == 0, _text(result)
    assert "Apply complete: 1 applied, 0 failed." in result.stdout
    assert _puts(copy) == puts + 1


@pytest.mark.slow
def test_saved_plan_applies_without_prompting(copy):
    _retrain_small_model(copy)
    saved = copy / "plan.json"
    assert _nmr(copy, "plan", "--sandbox", "-out", str(saved)).exit_code == 0
    result = CliRunner().invoke(app, ["apply", str(saved), "-f", str(copy / "numerai.yaml")])
    assert result.exit_code == 0, _text(result)
    assert "1 applied" in result.stdout


@pytest.mark.slow
def test_saved_plan_is_refused_after_the_remote_state_changed(copy):
    _retrain_small_model(copy)
    saved = copy / "plan.json"
    assert _nmr(copy, "plan", "--sandbox", "-out", str(saved)).exit_code == 0
    assert _nmr(copy, "apply", "--sandbox", "--yes").exit_code == 0  # someone applies first
    result = CliRunner().invoke(app, ["apply", str(saved), "-f", str(copy / "numerai.yaml")])
    assert result.exit_code == 1
    assert "stale plan: the remote state of slot 'example_ensemble' changed" in _text(result)


def test_apply_without_a_terminal_and_without_yes_refuses(copy):
    _retrain_small_model(copy)
    puts = _puts(copy)
    result = _nmr(copy, "apply", "--sandbox")
    assert result.exit_code == 1
    assert "pass --yes" in _text(result)
    assert _puts(copy) == puts


def test_plan_json_is_versioned_and_target_limits_it_to_one_slot(copy):
    result = _nmr(copy, "plan", "--sandbox", "--json", "--target", "example_model")
    payload = json.loads(result.stdout)
    assert payload["format_version"] == 1
    assert [c["slot"] for c in payload["changes"]] == ["example_model"]


def test_logs_show_the_status_sequence_and_the_container_log(deployed):
    project, _ = deployed
    result = _nmr(project, "logs", "example_model", "--sandbox")
    assert result.exit_code == 0, _text(result)
    assert re.search(r"pending.*running.*validating.*success", result.stdout, flags=re.S)
    assert "Generated" in result.stdout and "predictions" in result.stdout


def test_the_secret_key_never_appears_in_output_plan_or_lock(deployed, copy):
    project, first = deployed
    secret = json.loads((copy / ".nmr" / "sandbox" / "credentials.json").read_text())["secret_key"]
    _retrain_small_model(copy)
    plan = _nmr(copy, "plan", "--sandbox", "--json", "-out", str(copy / "plan.json"))
    applied = CliRunner().invoke(
        app, ["--debug", "apply", "--sandbox", "--yes", "-f", str(copy / "numerai.yaml")]
    )
    status = _nmr(copy, "status", "--sandbox")
    assert applied.exit_code == 0, _text(applied)
    for text in (_text(first), _text(plan), _text(applied), _text(status)):
        assert secret not in text
    assert secret not in (copy / "plan.json").read_text()
    assert secret not in (copy / "numerai.lock").read_text()


def test_plan_no_build_reads_hashes_from_the_lock_and_defers_changed_slots(copy):
    assert "No changes." in _nmr(copy, "plan", "--sandbox", "--no-build").stdout
    _retrain_small_model(copy)
    result = _nmr(copy, "plan", "--sandbox", "--no-build")
    assert result.exit_code == 0, _text(result)
    assert re.search(
        r"~ example_ensemble\s+upload and assign [0-9a-f]{16} -> \(known after build\)",
        result.stdout,
    )


@pytest.mark.parametrize("command", [["plan"], ["apply", "--yes"]])
def test_missing_api_keys_fail_before_anything_is_built(copy, monkeypatch, command):
    monkeypatch.delenv("NUMERAI_PUBLIC_ID", raising=False)
    monkeypatch.delenv("NUMERAI_SECRET_KEY", raising=False)
    shutil.rmtree(copy / "build")

    result = _nmr(copy, *command)

    assert result.exit_code == 1
    assert "Numerai API keys are missing" in _text(result)
    assert not (copy / "build").exists()
