"""`nmr build` / `nmr inspect` / `nmr runtimes` end to end: rebuild only what changed, --force,
--check for CI, outputs under build/<slot>/model.pkl, and the lock that records them."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from typer.testing import CliRunner

import builder.env as env_module
from builder.build import build_project
from builder.cli import app
from builder.config import load
from tests.buildkit import train_lightgbm, write_config, write_data

MODELS = """
alpha:
  artifact: artifacts/a.txt
  features: small
beta:
  artifact: artifacts/b.txt
  features: small
  postprocessing:
    - gaussianize_per_era: {}
    - rank_per_era: {}
"""

runner = CliRunner()


@pytest.fixture(scope="module")
def built_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("build") / "project"
    root.mkdir()
    sets = write_data(root)
    train_lightgbm(root, "a", sets["small"], seed=1)
    train_lightgbm(root, "b", sets["small"], seed=2)
    write_config(root, MODELS)
    result = runner.invoke(app, ["build", "-f", str(root / "numerai.yaml")])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture()
def project(built_template, tmp_path):
    """A fresh copy of the built project (pickles and lock included) for each test."""
    root = tmp_path / "project"
    shutil.copytree(built_template, root)
    return root


def _build(root, *args):
    return runner.invoke(app, ["build", "-f", str(root / "numerai.yaml"), *args])


def _lock(root):
    return json.loads((root / "numerai.lock").read_text())


def test_build_writes_each_slot_pickle_and_records_its_sha256(project):
    lock = _lock(project)
    assert sorted(lock["slots"]) == ["alpha", "beta"]
    for slot, entry in lock["slots"].items():
        data = (project / "build" / slot / "model.pkl").read_bytes()
        assert entry["pickle"] == {
            "path": f"build/{slot}/model.pkl",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        assert entry["inputs"]["runtime"] == "numerai_predict_py_3_12:a78dedd"
        assert entry["build"]["python_version"].startswith("3.12.")


def test_second_build_is_up_to_date_without_touching_any_env(project, monkeypatch):
    def no_env(*args, **kwargs):
        raise AssertionError("an up-to-date build must not need the runtime env")

    monkeypatch.setattr(env_module, "ensure_env", no_env)
    result = _build(project)
    assert result.exit_code == 0, result.output
    assert result.output.count("up to date") == 2


def test_changing_one_slot_rebuilds_only_that_slot(project):
    config = project / "numerai.yaml"
    config.write_text(config.read_text().replace("    - gaussianize_per_era: {}\n", ""))
    results = build_project(load(config))
    assert {r.slot: r.rebuilt for r in results} == {"alpha": False, "beta": True}
    assert results[1].changed == ("config_sha256",)


def test_force_rebuilds_every_slot_to_the_same_bytes(project):
    before = {slot: e["pickle"]["sha256"] for slot, e in _lock(project)["slots"].items()}
    results = build_project(load(project / "numerai.yaml"), force=True)
    assert all(r.rebuilt for r in results)
    assert {r.slot: r.sha256 for r in results} == before


def test_deleted_pickle_is_rebuilt_to_the_locked_bytes(project):
    locked = _lock(project)["slots"]["alpha"]["pickle"]["sha256"]
    (project / "build" / "alpha" / "model.pkl").unlink()
    results = build_project(load(project / "numerai.yaml"), slots=["alpha"])
    assert results[0].rebuilt and results[0].sha256 == locked


def test_check_passes_when_the_lock_matches(project):
    result = _build(project, "--check")
    assert result.exit_code == 0, result.output


def test_check_exits_1_naming_the_stale_slot_and_builds_nothing(project):
    with open(project / "artifacts" / "a.txt", "a") as handle:
        handle.write("\n")
    lock_before = (project / "numerai.lock").read_text()
    result = _build(project, "--check")
    assert result.exit_code == 1
    assert "alpha: out of date (artifacts)" in result.output
    assert "numerai.lock is out of date for alpha" in result.output
    assert (project / "numerai.lock").read_text() == lock_before


def test_unknown_slot_is_refused_listing_the_slots(project):
    result = _build(project, "gamma")
    assert result.exit_code == 1
    assert "no model slot 'gamma'" in result.output and "alpha, beta" in result.output


def test_removed_slot_leaves_the_lock_on_a_full_build(project):
    config = project / "numerai.yaml"
    write_config(project, MODELS.split("beta:")[0])
    assert "beta" in _lock(project)["slots"]
    build_project(load(config))
    assert list(_lock(project)["slots"]) == ["alpha"]


def test_inspect_shows_hash_signature_imports_and_bundle_summary(project):
    result = runner.invoke(app, ["inspect", str(project / "build" / "beta" / "model.pkl")])
    assert result.exit_code == 0, result.output
    sha = _lock(project)["slots"]["beta"]["pickle"]["sha256"]
    assert f"sha256:     {sha}" in result.output
    assert (
        "signature:  (live_features, live_benchmark_models) -> 2 argument(s), ok" in result.output
    )
    assert "imports:    " in result.output and "pandas" in result.output
    assert "model:      lightgbm artifacts/b.txt (regression, 12 trees" in result.output
    assert "post:       gaussianize_per_era, rank_per_era" in result.output


def test_runtimes_lists_every_tag_and_marks_the_default():
    result = runner.invoke(app, ["runtimes"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith("* numerai_predict_py_3_12:a78dedd") for line in lines)
    for tag in (
        "numerai_predict_py_3_10:19d1769",
        "numerai_predict_py_3_11:a78dedd",
        "numerai_predict_py_3_13:19d1769",
    ):
        assert any(line.startswith(f"  {tag}") for line in lines)


def test_a_lightgbm_file_cut_between_trees_fails_the_build_naming_the_config_line(project):
    artifact = project / "artifacts" / "a.txt"
    text = artifact.read_text()
    artifact.write_text(text[: text.index("Tree=6")])
    result = _build(project, "--force")
    assert result.exit_code == 1
    assert "numerai.yaml:" in result.output
    assert "models.alpha.artifact:" in result.output
    assert "truncated" in result.output


def test_build_builds_every_slot_it_can_and_reports_each_failing_slot_at_its_place(project):
    (project / "artifacts" / "a.txt").write_bytes(b"")  # alpha: empty artifact
    config = project / "numerai.yaml"
    config.write_text(
        config.read_text()
        + "  gamma:\n    artifact: artifacts/b.txt\n    features: medium\n",  # wrong features
        encoding="utf-8",
    )
    before = _lock(project)["slots"]["alpha"]
    result = _build(project, "--force")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line]
    assert errors[0].startswith(f"{config}:8:15: models.alpha.artifact: ")
    assert errors[1].startswith(f"{config}:17:15: models.gamma.artifact: ")
    assert "trained on 6 features" in errors[1]
    assert errors[2] == "error: 2 of 3 slot(s) failed to build: alpha, gamma"
    assert "beta: built build/beta/model.pkl" in result.stdout
    lock = _lock(project)["slots"]
    assert lock["alpha"] == before  # a failed slot keeps its previous entry, nothing new
    assert "gamma" not in lock
    assert (project / "build" / "beta" / "model.pkl").is_file()


def test_build_json_prints_a_document_with_each_failed_slot_and_exits_1(project):
    (project / "artifacts" / "a.txt").write_bytes(b"")
    result = _build(project, "--force", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    by_slot = {entry["slot"]: entry for entry in doc}
    assert by_slot["alpha"]["status"] == "failed"
    assert "models.alpha.artifact" in by_slot["alpha"]["error"]
    assert by_slot["beta"]["status"] == "built" and by_slot["beta"]["error"] is None


def test_build_json_prints_config_problems_as_a_document(project):
    config = project / "numerai.yaml"
    config.write_text(config.read_text().replace("features: small", "features: smal", 1))
    result = _build(project, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert "unknown feature set 'smal'" in doc["problems"][0]["message"]


def test_build_project_raises_build_failed_so_deploy_never_ships_a_failed_slot(project):
    from builder.build import BuildFailed

    (project / "artifacts" / "a.txt").write_bytes(b"")
    with pytest.raises(BuildFailed) as caught:
        build_project(load(project / "numerai.yaml"), force=True)
    assert [r.status for r in caught.value.results] == ["failed", "built"]
