"""Build manifests: the local store, numerai.lock, and numerai.lock's git history."""

from __future__ import annotations

import json
import subprocess

from builder import manifest

SHA_OLD = "a4394b8b" + "0" * 56
SHA_NEW = "2690e3f9" + "1" * 56


def _made(sha: str, proportion: float = 0.5) -> dict:
    return manifest.make(
        slot="my_model",
        config={"postprocessing": [{"name": "neutralize", "params": {"proportion": proportion}}]},
        features=["feature_0001"],
        runtime="numerai_predict_py_3_12:a78dedd",
        image="numerai_predict_py_3_12",
        data_version="v5.2",
        artifacts=[],
        kernels_sha256="k" * 64,
        nmr_version="0.1.0",
        pickle_sha256=sha,
    )


def _write_lock(root, made: dict) -> None:
    lock = {"lock_version": 1, "slots": {"my_model": {"manifest": made}}}
    (root / "numerai.lock").write_text(json.dumps(lock), encoding="utf-8")


def _git(root, *args):
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def test_saved_manifest_is_found_by_the_hash_prefix_of_the_remote_filename(tmp_path):
    manifest.save(tmp_path, _made(SHA_OLD))
    found, where = manifest.find(tmp_path, SHA_OLD[:16])
    assert (found["pickle_sha256"], where) == (SHA_OLD, "store")


def test_the_store_is_git_ignored(tmp_path):
    manifest.save(tmp_path, _made(SHA_OLD))
    assert (tmp_path / ".nmr" / ".gitignore").read_text() == "*\n"


def test_without_a_store_the_manifest_comes_from_numerai_lock(tmp_path):
    _write_lock(tmp_path, _made(SHA_OLD))
    found, where = manifest.find(tmp_path, SHA_OLD[:16])
    assert (found["pickle_sha256"], where) == (SHA_OLD, "numerai.lock")


def test_an_older_pickle_is_found_in_the_git_history_of_numerai_lock(tmp_path):
    _git(tmp_path, "init", "-q")
    _write_lock(tmp_path, _made(SHA_OLD, 0.5))
    _git(tmp_path, "add", "numerai.lock")
    _git(tmp_path, "commit", "-qm", "first build")
    _write_lock(tmp_path, _made(SHA_NEW, 0.7))  # the working tree moved on, uncommitted

    found, where = manifest.find(tmp_path, SHA_OLD[:16])

    assert found["config"]["postprocessing"][0]["params"]["proportion"] == 0.5
    assert where.startswith("numerai.lock at ")


def test_a_pickle_built_elsewhere_has_no_manifest(tmp_path):
    _git(tmp_path, "init", "-q")
    _write_lock(tmp_path, _made(SHA_NEW))
    _git(tmp_path, "add", "numerai.lock")
    _git(tmp_path, "commit", "-qm", "build")
    assert manifest.find(tmp_path, SHA_OLD[:16]) == (None, None)
