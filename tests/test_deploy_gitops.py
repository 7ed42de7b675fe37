"""A pull request against a deployed project: `nmr plan` names every changed input.

The module fixture deploys the README's example project to its embedded sandbox and commits it
(numerai.yaml, numerai.lock, artifacts) to git, the way a GitOps repository holds it. The pull
request then edits numerai.yaml three ways: a step parameter (neutralize.proportion 0.5 -> 0.7),
a new step (fill_missing), and a new model file for the other slot.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from tests.buildkit import train_lightgbm
from tests.deploy_support import git as _git

pytest.importorskip("lightgbm")


def _nmr(project: Path, *args: str):
    return CliRunner().invoke(app, [*args, "-f", str(project / "numerai.yaml")])


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
    (project / "first-apply.txt").write_text(result.stdout, encoding="utf-8")
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


def test_apply_ends_with_one_outcome_line_per_slot(deployed):
    output = (deployed / "first-apply.txt").read_text(encoding="utf-8")
    assert "  example_model: applied: uploaded and assigned" in output
    assert "  example_ensemble: applied: uploaded and assigned" in output


def test_plan_format_other_than_text_markdown_json_is_refused(deployed):
    result = _nmr(deployed, "plan", "--sandbox", "--format", "yaml")
    assert result.exit_code == 1
    assert "--format 'yaml' is not one of: text, markdown, json" in result.output


def _sandbox_webhook(project: Path, slot: str) -> None:
    """A compute webhook on a slot that already runs a pickle (set outside the API's rules)."""
    import sqlite3

    with sqlite3.connect(project / ".nmr" / "sandbox" / "sandbox.sqlite") as db:
        (model_id,) = db.execute("SELECT id FROM models WHERE name = ?", (slot,)).fetchone()
        db.execute(
            "INSERT INTO submission_webhooks VALUES (?, ?)", (model_id, "https://hooks.example/x")
        )


def _assigned(project: Path, slot: str) -> str:
    import sqlite3

    with sqlite3.connect(project / ".nmr" / "sandbox" / "sandbox.sqlite") as db:
        return db.execute(
            "SELECT p.filename FROM models m JOIN pickles p ON p.id = m.assigned_pickle_id"
            " WHERE m.name = ?",
            (slot,),
        ).fetchone()[0]


@pytest.fixture
def hooked(deployed, tmp_path):
    """A copy whose ensemble slot has a webhook and a changed neutralize proportion."""
    project = tmp_path / "hooked"
    shutil.copytree(deployed, project)
    _sandbox_webhook(project, "example_ensemble")
    config = project / "numerai.yaml"
    config.write_text(config.read_text().replace("proportion: 0.5}", "proportion: 0.7}"))
    return project


def test_cli_plan_shows_the_webhook_slot_and_apply_refuses_it_keeping_its_pickle(hooked):
    before = _assigned(hooked, "example_ensemble")
    plan = _nmr(hooked, "plan", "--sandbox")
    assert "  ! example_ensemble: compute webhook set; the upload would be refused" in plan.stdout

    applied = _nmr(hooked, "apply", "--sandbox", "--yes")

    assert applied.exit_code == 1
    assert "models.example_ensemble.deploy.disable_webhook: true" in applied.output
    assert _assigned(hooked, "example_ensemble") == before


def test_cli_apply_with_disable_webhook_clears_it_and_deploys(hooked):
    config = hooked / "numerai.yaml"
    config.write_text(
        config.read_text().replace(
            "      - rank_per_era: {}\n",
            "      - rank_per_era: {}\n    deploy:\n      disable_webhook: true\n",
            1,
        )
    )
    before = _assigned(hooked, "example_ensemble")

    applied = _nmr(hooked, "apply", "--sandbox", "--yes")

    assert applied.exit_code == 0, applied.output
    assert "example_ensemble: clearing the compute webhook (deploy.disable_webhook: true)" in (
        applied.stdout
    )
    assert _assigned(hooked, "example_ensemble") != before


def test_status_says_which_slot_has_a_compute_webhook(hooked):
    rows = json.loads(_nmr(hooked, "status", "--sandbox", "--json").stdout)["slots"]
    assert {row["slot"]: row["compute_webhook"] for row in rows} == {
        "example_model": False,
        "example_ensemble": True,
    }
