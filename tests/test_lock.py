"""numerai.lock: which input changes invalidate a slot, and what the file may (not) contain."""

from __future__ import annotations

import json
import shutil

import pytest

import builder.lock as locks
import builder.pack as pack_module
from builder.config import load
from builder.pack import kernel_sources_digest
from tests.buildkit import train_lightgbm, write_config, write_data

BASE = """
m:
  artifact: artifacts/reg.txt
  features: small
  preprocessing:
    - standardize: {}
  postprocessing:
    - neutralize: {features: small, proportion: 0.5}
    - rank_per_era: {}
"""


@pytest.fixture()
def project_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lock")
    sets = write_data(root, nan_fraction=0.0)
    train_lightgbm(root, "reg", sets["small"])
    write_config(root, BASE)
    return root


def _inputs(root, models_yaml=BASE, runtime=None, kernels=None):
    project = load(write_config(root, models_yaml, runtime=runtime, name="variant.yaml"))
    return locks.slot_inputs(project, project.models[0], kernels or kernel_sources_digest())


def _changed(before, after):
    return locks.changed_inputs({"inputs": before}, after)


def test_unchanged_inputs_are_up_to_date(project_dir):
    assert _changed(_inputs(project_dir), _inputs(project_dir)) == []


def test_artifact_bytes_change_invalidates_artifacts(project_dir):
    before = _inputs(project_dir)
    with open(project_dir / "artifacts" / "reg.txt", "a") as handle:
        handle.write("\n")
    assert _changed(before, _inputs(project_dir)) == ["artifacts"]


def test_feature_list_change_invalidates_features_and_config(project_dir):
    before = _inputs(project_dir)
    after = _inputs(project_dir, BASE.replace("features: small\n  pre", "features: medium\n  pre"))
    assert _changed(before, after) == ["config_sha256", "features_sha256"]


def test_neutralizer_columns_count_as_feature_list(project_dir):
    before = _inputs(project_dir)
    after = _inputs(
        project_dir, BASE.replace("{features: small, proportion", "{features: medium, proportion")
    )
    assert "features_sha256" in _changed(before, after)


def test_step_parameter_change_invalidates_config(project_dir):
    before = _inputs(project_dir)
    after = _inputs(project_dir, BASE.replace("proportion: 0.5", "proportion: 0.75"))
    assert _changed(before, after) == ["config_sha256"]


def test_runtime_change_invalidates_runtime_python_and_pins(project_dir):
    before = _inputs(project_dir)
    after = _inputs(project_dir, runtime="numerai_predict_py_3_11:a78dedd")
    assert _changed(before, after) == ["config_sha256", "pins", "python", "runtime"]


def test_kernel_source_change_invalidates_kernels(project_dir, tmp_path, monkeypatch):
    before = _inputs(project_dir)
    kernels = tmp_path / "kernels"
    shutil.copytree(pack_module.KERNELS_DIR, kernels)
    with open(kernels / "steps.py", "a") as handle:
        handle.write("\n# changed\n")
    monkeypatch.setattr(pack_module, "KERNELS_DIR", kernels)
    assert _changed(before, _inputs(project_dir, kernels=kernel_sources_digest())) == [
        "kernels_sha256"
    ]


def test_nmr_version_change_invalidates_nmr(project_dir, monkeypatch):
    before = _inputs(project_dir)
    monkeypatch.setattr(locks, "__version__", "99.0.0")
    assert _changed(before, _inputs(project_dir)) == ["nmr"]


def test_train_data_change_invalidates_fitted_slots(project_dir):
    before = _inputs(project_dir)
    import pandas as pd

    train = pd.read_parquet(project_dir / "data" / "train.parquet")
    train.iloc[:10].to_parquet(project_dir / "data" / "train.parquet")
    assert _changed(before, _inputs(project_dir)) == ["train"]


def test_train_data_is_no_input_when_no_step_reads_it(project_dir):
    inputs = _inputs(project_dir, BASE.replace("    - standardize: {}\n", "    - clip: {max: 3}\n"))
    assert "train" not in inputs


def test_deploy_settings_do_not_invalidate_the_pickle(project_dir):
    before = _inputs(project_dir)
    after = _inputs(project_dir, BASE + "  deploy: {trigger: true, create: true}\n")
    assert _changed(before, after) == []


def test_slot_missing_from_lock_is_reported_as_such(project_dir):
    assert locks.changed_inputs(None, _inputs(project_dir)) == ["(not in lock)"]


def test_lock_text_has_sorted_keys_and_no_absolute_paths(project_dir):
    inputs = _inputs(project_dir)
    entry = locks.slot_entry(
        inputs, "3.12.1", {"numpy": "2.1.3"}, "build/m/model.pkl", "ab" * 32, 10
    )
    text = locks.render({"lock_version": 1, "slots": {"m": entry}})
    assert str(project_dir) not in text and "/tmp" not in text
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert inputs["artifacts"][0]["path"] == "artifacts/reg.txt"
    assert inputs["train"]["path"] == "data/train.parquet"


ENSEMBLE = """
m:
  ensemble:
    - {artifact: artifacts/reg.txt, weight: 0.7}
    - {artifact: artifacts/reg.txt, weight: 0.3}
  features: small
"""

ENSEMBLE_MEMBER_PRE = """
m:
  ensemble:
    - {artifact: artifacts/reg.txt, preprocessing: [fill_missing: {value: 2}]}
    - {artifact: artifacts/reg.txt}
  features: small
"""


def test_member_weight_change_invalidates_config(project_dir):
    before = _inputs(project_dir, ENSEMBLE)
    after = _inputs(project_dir, ENSEMBLE.replace("weight: 0.3", "weight: 0.4"))
    assert _changed(before, after) == ["config_sha256"]


def test_legacy_signature_change_invalidates_config(project_dir):
    before = _inputs(project_dir)
    after = _inputs(project_dir, BASE + "  deploy: {legacy_signature: true}\n")
    assert _changed(before, after) == ["config_sha256"]


@pytest.mark.parametrize("source", ["CHILD_SOURCE", "ENCODER_SOURCE"])
def test_packer_source_change_invalidates_kernels(project_dir, tmp_path, monkeypatch, source):
    before = _inputs(project_dir)
    changed = tmp_path / "packer.py"
    changed.write_bytes(getattr(pack_module, source).read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(pack_module, source, changed)
    assert _changed(before, _inputs(project_dir, kernels=kernel_sources_digest())) == [
        "kernels_sha256"
    ]


def test_lock_changes_when_a_members_own_preprocessing_changes(project_dir):
    before = _inputs(project_dir, ENSEMBLE_MEMBER_PRE)
    after = _inputs(project_dir, ENSEMBLE_MEMBER_PRE.replace("{value: 2}", "{value: 3}"))
    assert _changed(before, after) == ["config_sha256"]


def test_train_data_is_an_input_when_a_members_own_step_reads_it(project_dir):
    inputs = _inputs(project_dir, ENSEMBLE_MEMBER_PRE.replace("{value: 2}", "{strategy: median}"))
    assert inputs["train"]["path"] == "data/train.parquet"
    assert "train" not in _inputs(project_dir, ENSEMBLE_MEMBER_PRE)
