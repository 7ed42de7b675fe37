"""`nmr build --check` (for CI) on a built ensemble project: a change to a member's weight, to
legacy_signature or to the code that packs the pickle inside the runtime makes it exit 1."""

from __future__ import annotations

import pytest

import builder.pack as pack_module
from tests.buildkit import copy_project, nmr_cli, train_lightgbm, write_config, write_data

MODELS = """
blend:
  ensemble:
    - {artifact: artifacts/a.txt, weight: 0.7}
    - {artifact: artifacts/b.txt, weight: 0.3}
  features: small
"""


@pytest.fixture(scope="module")
def built_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("check") / "project"
    root.mkdir()
    sets = write_data(root)
    train_lightgbm(root, "a", sets["small"], seed=1)
    train_lightgbm(root, "b", sets["small"], seed=2)
    write_config(root, MODELS)
    result = nmr_cli("build", "-f", root / "numerai.yaml")
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture()
def project(built_template, tmp_path):
    return copy_project(built_template, tmp_path)


def _check(root):
    return nmr_cli("build", "--check", "-f", root / "numerai.yaml")


def test_check_passes_on_the_built_ensemble(project):
    result = _check(project)
    assert result.exit_code == 0, result.output


def test_check_exits_1_when_only_a_member_weight_changed(project):
    write_config(project, MODELS.replace("weight: 0.3", "weight: 0.4"))
    result = _check(project)
    assert result.exit_code == 1
    assert "blend: out of date (config_sha256)" in result.output


def test_check_exits_1_when_only_legacy_signature_changed(project):
    write_config(project, MODELS + "  deploy: {legacy_signature: true}\n")
    result = _check(project)
    assert result.exit_code == 1
    assert "blend: out of date (config_sha256)" in result.output


def test_check_exits_1_when_only_the_in_runtime_packer_changed(project, tmp_path, monkeypatch):
    packer = tmp_path / "pack_child.py"
    packer.write_bytes(pack_module.CHILD_SOURCE.read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(pack_module, "CHILD_SOURCE", packer)
    result = _check(project)
    assert result.exit_code == 1
    assert "blend: out of date (kernels_sha256)" in result.output
