"""recipes/: each example project trains, validates, builds and passes `nmr test` as its README says.

Every recipe is copied to a temporary directory and its train.py run there in a real process,
exactly as a user would (`python train.py`), once per recipe (module-scoped fixtures). The
quick tests check what train.py produced and that `nmr validate` accepts it; the slow ones run
the README's `nmr build` and `nmr test`, and one deploys to the embedded sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES_DIR = REPO / "recipes"
# What each recipe promises (its README and the task it answers): the slot, the members as
# (format, feature set, artifact), and the preprocessing and postprocessing steps, in order.
RECIPES = {
    "lightgbm-small": {
        "slot": "recipe_lgbm_small",
        "members": [("lightgbm", "small", "artifacts/lgbm_small.txt")],
        "preprocessing": [],
        "postprocessing": ["rank_per_era"],
    },
    "xgboost": {
        "slot": "recipe_xgboost",
        "members": [("xgboost", "medium", "artifacts/xgb_medium.ubj")],
        "preprocessing": ["fill_missing", "clip"],
        "postprocessing": ["rank_per_era"],
    },
    "ensemble": {
        "slot": "recipe_ensemble",
        "members": [
            ("lightgbm", "medium", "artifacts/lgbm_medium.txt"),
            ("xgboost", "small", "artifacts/xgb_small.json"),
        ],
        "preprocessing": [],
        "postprocessing": ["neutralize", "blend_benchmark", "rank_per_era"],
    },
    "sklearn-pipeline": {
        "slot": "recipe_sklearn_pipeline",
        "members": [("sklearn", "medium", "artifacts/pipeline_medium.joblib")],
        "preprocessing": [],
        "postprocessing": ["rank_per_era"],
    },
    "onnx-mlp": {
        "slot": "recipe_onnx_mlp",
        "members": [("onnx", "medium", "artifacts/mlp_medium.onnx")],
        "preprocessing": [],
        "postprocessing": ["rank_per_era"],
    },
}
README_COMMANDS = "python train.py && nmr validate && nmr build && nmr test"
NMR = [sys.executable, "-c", "from builder.cli import main; main()"]
# What train.py, nmr build/test/apply write into a recipe (recipes/.gitignore lists them).
GENERATED = {"data", "artifacts", "build", ".nmr", "__pycache__", "numerai.lock"}


@pytest.fixture(scope="module", params=sorted(RECIPES))
def trained(request, tmp_path_factory) -> tuple[str, Path]:
    """A copy of one recipe after its train.py ran in it."""
    name = request.param
    project = tmp_path_factory.mktemp("recipes") / name
    shutil.copytree(RECIPES_DIR / name, project, ignore=_generated_outputs)
    run = _run([sys.executable, "train.py"], project)
    assert run.returncode == 0, run.stderr
    return name, project


def test_train_writes_the_artifacts_numerai_yaml_names(trained):
    name, project = trained
    for _, _, artifact in RECIPES[name]["members"]:
        assert (project / artifact).stat().st_size > 0, artifact
    assert (project / "data" / "features.json").is_file()
    assert (project / "data" / "live.parquet").is_file()


def test_train_writes_only_paths_the_recipes_gitignore_ignores(trained):
    name, project = trained
    shipped = {p.name for p in (RECIPES_DIR / name).iterdir()} - GENERATED
    generated = {p.name for p in project.iterdir()} - shipped
    assert generated <= {"data", "artifacts", "__pycache__"}
    ignored = _git_check_ignore([f"recipes/{name}/{entry}/x" for entry in generated])
    assert ignored == {f"recipes/{name}/{entry}/x" for entry in generated}


def test_numerai_yaml_validates_after_training_and_configures_what_the_recipe_shows(trained):
    name, project = trained
    result = _run([*NMR, "validate", "--json"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == []
    [model] = report["models"]
    expected = RECIPES[name]
    assert model["slot"] == expected["slot"]
    assert [
        (m["format"], m["feature_set"], Path(m["artifact"]).relative_to(project).as_posix())
        for m in model["members"]
    ] == expected["members"]
    assert model["preprocessing"] == expected["preprocessing"]
    assert model["postprocessing"] == expected["postprocessing"]


def test_numerai_yaml_fails_validation_before_training_naming_the_missing_artifact(tmp_path):
    project = tmp_path / "lightgbm-small"
    shutil.copytree(RECIPES_DIR / "lightgbm-small", project, ignore=_generated_outputs)
    result = _run([*NMR, "validate"], project)
    assert result.returncode == 1
    assert "artifacts/lgbm_small.txt" in result.stdout + result.stderr


def test_every_recipe_ships_numerai_yaml_train_py_and_a_readme_with_the_commands():
    for name in RECIPES:
        folder = RECIPES_DIR / name
        assert (folder / "numerai.yaml").is_file(), name
        assert (folder / "train.py").is_file(), name
        readme = (folder / "README.md").read_text(encoding="utf-8")
        assert README_COMMANDS in readme, name
        assert "nmr apply --sandbox" in readme, name


def test_recipes_index_links_every_recipe_folder():
    index = (RECIPES_DIR / "README.md").read_text(encoding="utf-8")
    folders = sorted(p.name for p in RECIPES_DIR.iterdir() if p.is_dir())
    assert folders == sorted([*RECIPES, "github-actions"])
    for folder in folders:
        assert f"]({folder}/)" in index, folder


@pytest.mark.slow
def test_train_is_deterministic_same_seed_same_artifact_bytes(trained, tmp_path):
    name, project = trained
    again = tmp_path / name
    shutil.copytree(RECIPES_DIR / name, again, ignore=_generated_outputs)
    run = _run([sys.executable, "train.py"], again)
    assert run.returncode == 0, run.stderr
    for _, _, artifact in RECIPES[name]["members"]:
        assert _sha256(again / artifact) == _sha256(project / artifact), artifact


@pytest.mark.slow
def test_recipe_builds_and_passes_nmr_test_with_exact_fidelity(trained):
    name, project = trained
    slot = RECIPES[name]["slot"]
    built = _run([*NMR, "build", "--json"], project)
    assert built.returncode == 0, built.stdout + built.stderr
    [result] = json.loads(built.stdout)
    assert result["slot"] == slot and (project / result["pickle"]).is_file()

    tested = _run([*NMR, "test", "--json"], project)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    [outcome] = json.loads(tested.stdout)
    assert outcome["slot"] == slot and outcome["ok"], outcome["problems"]
    assert outcome["run"]["statuses"] == ["Pending", "Running", "Validating", "Success"]
    fidelity = outcome["fidelity"]["members"]
    assert [m["format"] for m in fidelity] == [fmt for fmt, _, _ in RECIPES[name]["members"]]
    for member in fidelity:
        assert member["ok"], member
        if member["tolerance"] == 0.0:  # trees are exact; matrix products are tolerance-close
            assert member["max_abs_diff"] == 0.0, member


@pytest.mark.slow
# One deploy covers the READMEs' deploy commands; the ensemble is the recipe with the most parts.
@pytest.mark.parametrize("trained", ["ensemble"], indirect=True)
def test_ensemble_recipe_deploys_to_the_embedded_sandbox_and_a_second_apply_changes_nothing(
    trained,
):
    _, project = trained
    first = _run([*NMR, "apply", "--sandbox", "--yes"], project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Apply complete: 1 applied, 0 failed." in first.stdout
    second = _run([*NMR, "apply", "--sandbox", "--yes"], project)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes." in second.stdout


# --- helpers ---------------------------------------------------------------------------------


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # NMR_CONFIG would override the walk-up config discovery the README's commands rely on.
    env = {k: v for k, v in os.environ.items() if k != "NMR_CONFIG"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def _generated_outputs(directory: str, names: list[str]) -> list[str]:
    """Leave out what a developer's own run of the recipe left behind in the checkout."""
    return [n for n in names if n in GENERATED]


def _git_check_ignore(paths: list[str]) -> set[str]:
    if not paths:
        return set()
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True
    )
    return set(result.stdout.split())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
