"""A pull request against a deployed project: `nmr plan` names every changed input.

The module fixture deploys the README's example project to its embedded sandbox and commits it
(numerai.yaml, numerai.lock, artifacts) to git, the way a GitOps repository holds it. The pull
request then edits numerai.yaml three ways: a step parameter (neutralize.proportion 0.5 -> 0.7),
a new step (fill_missing), and a new model file for the other slot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.buildkit import train_lightgbm

pytest.importorskip("lightgbm")


def _nmr(project: Path, *args: str):
    return CliRunner().invoke(app, [*args, "-f", str(project / "numerai.yaml")])


def _git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def _edit_like_a_pull_request(project: Path) -> None:
    config = project / "numerai.yaml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("proportion: 0.5}", "proportion: 0.7}")
    text = text.replace(
        "    features: medium        # members that name no features use these\n",
        "    features: medium        # members that name no features use these\n"
        "    preprocessing:\n      - fill_missing: {value: 2}\n",
    )
    text = text.replace(
        "  example_model:\n    artifact: artifacts/lgbm_medium.txt",
        "  example_model:\n    artifact: artifacts/lgbm_big.txt",
    )
    config.write_text(text, encoding="utf-8")
    medium = json.loads((project / "data" / "features.json").read_text())["feature_sets"]
    train_lightgbm(project, "lgbm_big", medium["medium"], objective="huber", n_trees=90)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from builder.config.scaffold import example_project

    project = tmp_path_factory.mktemp("gitops") / "example"
    example_project(project)
    result = _nmr(project, "apply", "--sandbox", "--yes")
    assert result.exit_code == 0, result.output
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "deployed")
    return project


@pytest.fixture(scope="module")
def pull_request(deployed, tmp_path_factory):
    """The edited copy and its plan in the three formats."""
    project = tmp_path_factory.mktemp("pr") / "example"
    shutil.copytree(deployed, project)
    _edit_like_a_pull_request(project)
    text = _nmr(project, "plan", "--sandbox")
    assert text.exit_code == 0, text.output
    as_json = _nmr(project, "plan", "--sandbox", "--json")
    markdown = _nmr(project, "plan", "--sandbox", "--format", "markdown")
    return project, text.stdout, json.loads(as_json.stdout), markdown.stdout


def test_plan_text_names_a_changed_step_parameter_with_before_and_after(pull_request):
    _, text, _, _ = pull_request
    assert "~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7" in text


def test_plan_text_names_a_new_step_with_its_parameters(pull_request):
    _, text, _, _ = pull_request
    assert "+ preprocessing[0]: fill_missing {value: 2}" in text


def test_plan_text_names_a_new_model_file_with_its_summary(pull_request):
    _, text, _, _ = pull_request
    assert (
        "- artifact artifacts/lgbm_medium.txt: lightgbm, regression, 60 trees, 24 features" in text
    )
    assert "+ artifact artifacts/lgbm_big.txt: lightgbm, huber, 90 trees, 24 features" in text


def test_plan_text_lists_each_slots_changes_under_that_slot(pull_request):
    _, text, _, _ = pull_request
    lines = text.splitlines()
    model = next(i for i, line in enumerate(lines) if line.startswith("  ~ example_model "))
    ensemble = next(i for i, line in enumerate(lines) if line.startswith("  ~ example_ensemble "))
    model_block = "\n".join(lines[model:ensemble])
    assert "lgbm_big.txt" in model_block and "proportion" not in model_block


def test_plan_json_carries_each_change_as_path_before_after(pull_request):
    _, _, payload, _ = pull_request
    details = {c["slot"]: c["details"] for c in payload["changes"]}
    ensemble = {
        (d["path"], json.dumps(d["before"]), json.dumps(d["after"]))
        for d in details["example_ensemble"]
    }
    assert ("postprocessing[0].neutralize.proportion", "0.5", "0.7") in ensemble
    assert (
        "preprocessing[0]",
        "null",
        json.dumps({"name": "fill_missing", "params": {"value": 2}}),
    ) in ensemble
    added = next(d for d in details["example_model"] if d["op"] == "+")
    assert added["path"] == "artifact artifacts/lgbm_big.txt"
    assert added["after"]["summary"]["trees"] == 90 and added["before"] is None


def test_plan_markdown_has_a_summary_line_and_one_collapsible_section_per_slot(pull_request):
    _, _, _, markdown = pull_request
    assert markdown.splitlines()[0].startswith("**nmr plan**: 0 to create, 2 to update")
    assert markdown.count("<details>") == 2 and markdown.count("</details>") == 2
    assert "~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7" in markdown
    assert "+ preprocessing[0]: fill_missing {value: 2}" in markdown
    assert "+ artifact artifacts/lgbm_big.txt" in markdown


def test_a_checkout_without_the_local_store_reads_previous_inputs_from_git_history(
    pull_request, tmp_path
):
    project, text, _, _ = pull_request
    runner = tmp_path / "runner"
    shutil.copytree(project, runner)
    shutil.rmtree(runner / ".nmr" / "manifests")  # a CI runner has only the checkout
    # numerai.lock in the work tree now describes the new build; the deployed one is committed.
    result = _nmr(runner, "plan", "--sandbox")
    assert result.exit_code == 0, result.output
    assert "~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7" in result.stdout


def test_a_pickle_built_elsewhere_is_said_to_have_unknown_inputs(pull_request, tmp_path):
    project, _, _, _ = pull_request
    runner = tmp_path / "elsewhere"
    shutil.copytree(project, runner)
    shutil.rmtree(runner / ".nmr" / "manifests")
    shutil.rmtree(runner / ".git")
    result = _nmr(runner, "plan", "--sandbox")
    assert result.exit_code == 0, result.output
    assert "(previous inputs unknown (built elsewhere))" in result.stdout
    assert "proportion" not in result.stdout
