"""Runtime envs: interpreter discovery, the missing-Python message, reuse and verification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import builder.env as env_module
from builder import runtimes
from builder.env import MARKER, ensure_env, find_python
from builder.errors import NmrError

DEFAULT = runtimes.default_tag()
PY312 = runtimes.get(DEFAULT).python


def _hide_all_pythons(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_missing_python_is_one_sentence_naming_the_version_and_both_fixes(monkeypatch, tmp_path):
    _hide_all_pythons(monkeypatch, tmp_path)
    with pytest.raises(NmrError) as error:
        ensure_env("numerai_predict_py_3_13:19d1769")
    message = str(error.value)
    assert message.startswith("Python 3.13 is not installed")
    assert "pyenv install 3.13" in message and "--python /path/to/python3.13" in message
    assert "\n" not in message


def test_missing_python_message_offers_path_for_commands_without_a_python_flag(
    monkeypatch, tmp_path
):
    # nmr plan / nmr apply build and test too but take no --python: PATH is their way in
    _hide_all_pythons(monkeypatch, tmp_path)
    with pytest.raises(NmrError, match=r"put python3\.13 on PATH, or pass --python .* nmr build"):
        ensure_env("numerai_predict_py_3_13:19d1769")


def test_python_of_another_minor_version_is_refused(tmp_path):
    other = find_python("3.11")
    assert other is not None, "the dev machine has pyenv 3.11"
    with pytest.raises(
        NmrError, match=rf"is Python 3\.11\.\d+ but runtime {DEFAULT} needs Python 3\.12"
    ):
        ensure_env(DEFAULT, python=other)


def test_python_option_that_is_not_an_interpreter_is_refused(tmp_path):
    fake = tmp_path / "python3.12"
    fake.write_text("not a program")
    with pytest.raises(NmrError, match="is not a runnable Python interpreter"):
        ensure_env(DEFAULT, python=fake)


def test_pyenv_root_versions_are_found_highest_patch_first_skipping_prereleases(
    monkeypatch, tmp_path
):
    real = find_python(PY312)
    root = tmp_path / "pyenv"
    for version in (f"{PY312}.0", f"{PY312}.9", f"{PY312}.10rc1"):
        (root / "versions" / version / "bin").mkdir(parents=True)
        (root / "versions" / version / "bin" / "python3").symlink_to(real)
    monkeypatch.setenv("PYENV_ROOT", str(root))
    assert find_python(PY312) == root / "versions" / f"{PY312}.9" / "bin" / "python3"


def test_existing_env_is_reused_without_reinstalling(monkeypatch):
    first = ensure_env(DEFAULT)

    def no_create(*args, **kwargs):
        raise AssertionError("the env was created again")

    monkeypatch.setattr(env_module, "_create", no_create)
    second = ensure_env(DEFAULT)
    assert second.path == first.path
    assert second.packages == first.packages
    assert second.python_version.startswith(PY312 + ".")


def test_env_holds_exactly_the_runtime_pins_of_the_bundle_packages():
    env = ensure_env(DEFAULT)
    pins = runtimes.get(DEFAULT).bundle_pins
    assert {name: env.packages[name] for name in pins} == pins
    # only the bundle packages and their dependencies: no nmr, no model library
    assert not {"lightgbm", "xgboost", "scikit-learn", "nmr", "typer"} & set(env.packages)


def test_env_whose_packages_drifted_is_not_accepted(tmp_path):
    # A directory with the completion marker but an interpreter lacking the pinned packages
    # (the bare base Python) must fail verification, so it gets rebuilt.
    base = find_python(PY312)
    fake = tmp_path / "env"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "python").symlink_to(base)
    (fake / MARKER).write_text("{}")
    assert env_module._verified(fake, runtimes.get(DEFAULT)) is None


def test_env_without_completion_marker_is_not_accepted():
    env = ensure_env(DEFAULT)
    assert env_module._verified(env.path, runtimes.get(DEFAULT)) is not None
    assert env_module._verified(env.path / "bin", runtimes.get(DEFAULT)) is None


def test_runtime_catalog_has_one_default_and_full_pin_lists():
    catalog = runtimes.runtimes()
    assert [r.tag for r in catalog if r.default] == ["numerai_predict_py_3_12:a78dedd"]
    sizes = {r.python: len(r.pins) for r in catalog}
    assert sizes == {"3.10": 128, "3.11": 135, "3.12": 135, "3.13": 169}
    assert runtimes.get("numerai_predict_py_3_12").tag == "numerai_predict_py_3_12:a78dedd"
    with pytest.raises(NmrError, match="unknown runtime 'numerai_predict_py_3_9'"):
        runtimes.get("numerai_predict_py_3_9")


@pytest.mark.slow
def test_concurrent_creation_builds_the_env_once(tmp_path):
    script = textwrap.dedent(
        """
        import json, sys
        from builder.env import ensure_env
        env = ensure_env(sys.argv[1])
        print(json.dumps({"path": str(env.path), "packages": env.packages}))
        """
    )
    environ = dict(os.environ, NMR_CACHE_DIR=str(tmp_path / "cache"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, DEFAULT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert results[0] == results[1]
    creations = sum(err.count("creating the Python") for _, err in outputs)
    assert creations == 1
