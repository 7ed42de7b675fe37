"""`pickle:` slots: a pickle made elsewhere is never rebuilt; nmr scans its imports against the
runtime's image, ships its exact bytes, records its hash in numerai.lock, and `nmr test` runs it
in the numerai-predict emulation with the image packages it imports."""

from __future__ import annotations

import hashlib
import json
import pickle

import pytest

from tests.buildkit import copy_project
from tests.slotkit import built_project, lock, nmr

pytest.importorskip("catboost")
pytestmark = pytest.mark.slow  # creates the runtime env with scikit-learn on first use

MODELS = """
legacy:
  pickle: legacy/model.pkl
  features: small
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return built_project(tmp_path_factory, "pickle", MODELS)


@pytest.fixture()
def project(built, tmp_path):
    return copy_project(built, tmp_path)


def test_pickle_slot_ships_the_file_byte_for_byte(built):
    original = (built / "legacy" / "model.pkl").read_bytes()
    assert (built / "build" / "legacy" / "model.pkl").read_bytes() == original


def test_pickle_slot_lock_records_the_file_hash(built):
    entry = lock(built)["slots"]["legacy"]
    digest = hashlib.sha256((built / "legacy" / "model.pkl").read_bytes()).hexdigest()
    assert entry["inputs"]["pickle"] == {"path": "legacy/model.pkl", "sha256": digest}
    assert entry["pickle"]["sha256"] == digest


def test_pickle_slot_build_output_says_it_was_shipped_as_is(project):
    result = nmr(project, "build", "--force")
    assert result.exit_code == 0, result.output
    assert "shipped as is (a pickle: slot)" in result.output


def test_pickle_slot_is_rebuilt_only_when_the_file_changes(project):
    path = project / "legacy" / "model.pkl"
    path.write_bytes(path.read_bytes())  # rewritten, same bytes (new mtime)
    assert "legacy: up to date" in nmr(project, "build", "--check").output
    path.write_bytes(pickle.dumps(print, protocol=5))  # another pickle
    assert "legacy: out of date (pickle)" in nmr(project, "build", "--check").output


def test_pickle_slot_passes_nmr_test_with_the_image_scikit_learn(built):
    result = nmr(built, "test", "legacy", "--json")
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.stdout)
    assert outcome["run"]["status"] == "Success"
    assert outcome["env"]["added"]["scikit-learn"]["version"] == "1.6.1"


def test_pickle_slot_importing_a_module_the_image_lacks_fails_the_build(project):
    # protocol 0 text: GLOBAL "not_in_image_xyz.Model", then call it with no arguments
    (project / "legacy" / "model.pkl").write_bytes(b"cnot_in_image_xyz\nModel\n)R.")
    result = nmr(project, "build")
    assert result.exit_code == 1
    assert "models.legacy.pickle: the pickle imports not_in_image_xyz" in result.output
    assert "does not have" in result.output


def test_pickle_slot_referring_to_main_is_refused_with_the_source_alternative(project):
    (project / "legacy" / "model.pkl").write_bytes(b"c__main__\nMyModel\n)R.")
    result = nmr(project, "build")
    assert result.exit_code == 1
    assert "__main__.MyModel" in result.output
    assert "source: slot" in result.output


def test_pickle_slot_that_is_not_a_pickle_is_one_clear_error(project):
    (project / "legacy" / "model.pkl").write_bytes(b"this is not a pickle")
    result = nmr(project, "build")
    assert result.exit_code == 1
    assert "model.pkl is not a pickle file" in result.output
    assert "Traceback" not in result.output


def test_every_failing_pickle_slot_is_reported_and_the_good_one_still_builds(project):
    config = project / "numerai.yaml"
    config.write_text(
        config.read_text()
        + "  bad_a:\n    pickle: legacy/a.pkl\n  bad_b:\n    pickle: legacy/b.pkl\n"
    )
    (project / "legacy" / "a.pkl").write_bytes(b"not a pickle")
    (project / "legacy" / "b.pkl").write_bytes(b"cnot_in_image_xyz\nModel\n)R.")
    (project / "build").rename(project / "old-build")
    result = nmr(project, "build")
    assert result.exit_code == 1
    assert "models.bad_a.pickle: a.pkl is not a pickle file" in result.output
    assert "models.bad_b.pickle: the pickle imports not_in_image_xyz" in result.output
    assert (project / "build" / "legacy" / "model.pkl").is_file()
