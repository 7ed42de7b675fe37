"""`source:` slots: nmr imports the user's Python file in the runtime's own Python (with the
image's scikit-learn), pickles the function by value, records the source and every project
file it read while importing in numerai.lock, and `nmr test` runs the result as Numerai would."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from builder.pack import imported_globals
from tests.buildkit import copy_project
from tests.slotkit import built_project, lock, nmr

pytest.importorskip("catboost")
pytestmark = pytest.mark.slow  # creates the runtime env with scikit-learn on first use

MODELS = """
custom:
  source: src/predict.py
  features: small
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_project(tmp_path_factory, "source", MODELS)


@pytest.fixture()
def project(built, tmp_path):
    return copy_project(built, tmp_path)


def test_source_slot_is_packed_with_the_image_scikit_learn(built):
    entry = lock(built)["slots"]["custom"]
    assert entry["inputs"]["image_packages"] == {"scikit-learn": "1.6.1"}
    assert entry["build"]["packages"]["scikit-learn"] == "1.6.1"
    assert entry["build"]["python_version"].startswith("3.12.")


def test_source_slot_pickles_the_function_and_project_modules_by_value(built):
    data = (built / "build" / "custom" / "model.pkl").read_bytes()
    modules = {name.split(".")[0] for name in imported_globals(data)}
    assert "sklearn" in modules  # the fitted Ridge, by reference to the image's scikit-learn
    assert not modules & {"helpers", "src_predict", "predict", "builder", "__main__"}
    assert str(built).encode() not in data


def test_source_slot_lock_records_the_source_and_files_read_at_import(built):
    inputs = lock(built)["slots"]["custom"]["inputs"]
    assert inputs["source"]["path"] == "src/predict.py"
    assert inputs["source"]["function"] == "predict"
    assert [r["path"] for r in inputs["reads"]] == ["src/helpers.py", "src/ridge.npz"]


def test_source_slot_is_up_to_date_when_nothing_changed(project):
    result = nmr(project, "build", "--check")
    assert result.exit_code == 0, result.output
    assert "custom: up to date" in result.output


def test_source_slot_rebuilds_when_a_file_read_at_import_changes(project):
    with np.load(project / "src" / "ridge.npz") as old:
        arrays = {k: old[k] for k in old.files}
    arrays["y"] = arrays["y"][::-1].copy()
    np.savez(project / "src" / "ridge.npz", **arrays)
    check = nmr(project, "build", "--check")
    assert "custom: out of date (reads)" in check.output
    before = lock(project)["slots"]["custom"]["pickle"]["sha256"]
    assert nmr(project, "build").exit_code == 0
    assert lock(project)["slots"]["custom"]["pickle"]["sha256"] != before


def test_source_slot_rebuilds_when_an_imported_project_module_changes(project):
    helpers = project / "src" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("2.0", "1.0"))
    check = nmr(project, "build", "--check")
    assert "custom: out of date (reads)" in check.output


def test_source_slot_pickle_is_byte_identical_from_another_checkout_path(built, tmp_path):
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(built, other)
    result = nmr(other, "build", "--force")
    assert result.exit_code == 0, result.output
    ours = (built / "build" / "custom" / "model.pkl").read_bytes()
    assert (other / "build" / "custom" / "model.pkl").read_bytes() == ours


def test_source_slot_passes_nmr_test_in_the_numerai_predict_emulation(built):
    result = nmr(built, "test", "custom", "--json")
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout)
    assert outcome["run"]["status"] == "Success"
    assert outcome["env"]["added"]["scikit-learn"]["version"] == "1.6.1"


def test_source_slot_postprocessing_wraps_the_function_output(project):
    config = project / "numerai.yaml"
    config.write_text(
        config.read_text() + "    postprocessing:\n      - gaussianize_per_era: {}\n"
        "      - rank_per_era: {}\n"
    )
    assert nmr(project, "build").exit_code == 0
    result = nmr(project, "test", "custom", "--json", "--no-diagnostics")
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout)
    predictions = pd.read_csv(outcome["run"]["predictions_path"])["prediction"]
    assert predictions.between(0, 1, inclusive="right").all()
    data = (project / "build" / "custom" / "model.pkl").read_bytes()
    assert b"SourcePredict2" in data  # nmr's wrapper class, pickled by value


def test_source_slot_importing_a_module_the_image_lacks_fails_naming_the_slot(project):
    source = project / "src" / "predict.py"
    source.write_text("import not_a_real_package_xyz\n" + source.read_text())
    result = nmr(project, "build")
    assert result.exit_code == 1
    assert "models.custom.source:" in result.output
    assert "No module named 'not_a_real_package_xyz'" in result.output
    assert "Traceback" not in result.output


def test_source_slot_without_the_named_function_is_refused(project):
    config = project / "numerai.yaml"
    config.write_text(config.read_text() + "    function: no_such_function\n")
    result = nmr(project, "build")
    assert result.exit_code == 1
    assert "src/predict.py defines no function 'no_such_function'" in result.output
