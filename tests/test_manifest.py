"""Build manifests: the local store, numerai.lock, and numerai.lock's git history."""

from __future__ import annotations

import json

from builder import manifest
from tests.deploy_support import git as _git
from tests.deploy_support import sample_manifest as _made

SHA_OLD = "a4394b8b" + "0" * 56
SHA_NEW = "2690e3f9" + "1" * 56


def _write_lock(root, made: dict) -> None:
    lock = {"lock_version": 1, "slots": {"my_model": {"manifest": made}}}
    (root / "numerai.lock").write_text(json.dumps(lock), encoding="utf-8")


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


def test_several_pickles_are_found_in_one_pass_over_the_history(tmp_path):
    _git(tmp_path, "init", "-q")
    for sha in (SHA_OLD, SHA_NEW):
        _write_lock(tmp_path, _made(sha))
        _git(tmp_path, "add", "numerai.lock")
        _git(tmp_path, "commit", "-qm", sha[:8])
    (tmp_path / "numerai.lock").unlink()

    found = manifest.find_all(tmp_path, [SHA_OLD[:16], SHA_NEW[:16], "f" * 16])

    assert found[SHA_OLD[:16]][0]["pickle_sha256"] == SHA_OLD
    assert found[SHA_NEW[:16]][0]["pickle_sha256"] == SHA_NEW
    assert found["f" * 16] == (None, None)
