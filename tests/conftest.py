"""Fixtures more than one test file uses (one definition each; a file's own fixtures stay in it)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

# Feature sets of the small projects the config tests write (data/features.json). "small" lists
# its columns out of training order on purpose: the loader must keep a set's order as written.
CONFIG_FEATURE_SETS = {
    "small": ["feature_b", "feature_a"],
    "medium": ["feature_a", "feature_b", "feature_c"],
    "all": ["feature_a", "feature_b", "feature_c", "feature_d"],
}


@pytest.fixture
def config_project(tmp_path: Path) -> Path:
    """A directory a numerai.yaml can be written into: data/features.json with
    CONFIG_FEATURE_SETS, and placeholder artifacts (the loader only checks that they exist)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "features.json").write_text(
        json.dumps({"feature_sets": CONFIG_FEATURE_SETS, "targets": ["target"]})
    )
    (tmp_path / "artifacts").mkdir()
    for name in ("a.txt", "b.txt", "m.onnx", "s.pkl"):
        (tmp_path / "artifacts" / name).write_text("placeholder: the loader only checks existence")
    return tmp_path


@pytest.fixture
def scratch_in_tmp(tmp_path, monkeypatch):
    """run_pickle's scratch directories (and default output) go to pytest's tmp tree."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(scope="session")
def python():
    """The default runtime's interpreter (its venv is created once and cached)."""
    from tests.bad_pickles import support

    return support.runtime_python()
