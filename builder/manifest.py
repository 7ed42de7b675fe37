"""Build manifests: what one slot's pickle was made from, in words a reviewer reads.

A manifest is plain JSON: the slot's normalized configuration (features with their count, each
step with its parameters, ensemble weights), the runtime tag and its image, the data version,
each artifact's path, sha256 and a human summary (format, objective, trees, features; for ONNX
the ops and input/output shapes), and the digest of the kernel sources that ship in the pickle.

Every build writes it twice:
- into the content-addressed store ``<project>/.nmr/manifests/<pickle sha256>.json`` (git-ignored,
  local), and
- into the slot's entry of numerai.lock (key ``manifest``), which is committed, so a CI runner
  that has only a checkout finds the manifest of an older pickle in the git history of
  numerai.lock.

``find(project_root, sha_prefix)`` (``find_all`` for several) looks a pickle up by the hash
prefix nmr puts in uploaded filenames: the store first, then numerai.lock as it is now, then every committed version of
numerai.lock (``git log`` + ``git show <rev>:<path>``). ``nmr plan`` diffs the manifest found for
the remote slot's pickle against the one of the new build (builder.deploy.diff).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

MANIFEST_VERSION = 1
STORE_DIR = Path(".nmr") / "manifests"
LOCK_NAME = "numerai.lock"
# How many commits of numerai.lock a lookup reads at most: enough for years of deploys, and it
# bounds the time of a plan in a repository with a long history.
GIT_HISTORY_LIMIT = 500


def make(
    *,
    slot: str,
    config: dict,
    features: list[str],
    runtime: str,
    image: str,
    data_version: str,
    artifacts: list[dict],
    kernels_sha256: str,
    nmr_version: str,
    pickle_sha256: str,
) -> dict:
    """A manifest from already-normalized parts (``config`` as builder.lock.normalized_config)."""
    members = [
        {key: member[key] for key in ("artifact", "format", "weight") if key in member}
        | {"features": len(member.get("features") or [])}
        for member in config.get("members", [])
    ]
    return {
        "manifest_version": MANIFEST_VERSION,
        "slot": slot,
        "pickle_sha256": pickle_sha256,
        "config": {
            "features": {"count": len(features), "names": list(features)},
            "members": members,
            "ensemble": bool(config.get("ensemble")),
            "preprocessing": config.get("preprocessing", []),
            "postprocessing": config.get("postprocessing", []),
            "raw_output": bool(config.get("raw_output")),
            "legacy_signature": bool(config.get("legacy_signature")),
        },
        "runtime": {"tag": runtime, "image": image},
        "data_version": data_version,
        "artifacts": artifacts,
        "kernels_sha256": kernels_sha256,
        "nmr": nmr_version,
    }


def for_build(project, model, inputs: dict, compiled, pickle_sha256: str) -> dict:
    """The manifest of a slot just built: ``inputs`` from builder.lock.slot_inputs, ``compiled``
    the slot's builder.bundle.CompiledMember list (their IR gives the artifact summaries)."""
    from builder import __version__, runtimes
    from builder.lock import normalized_config

    runtime = runtimes.get(model.runtime)
    features = list(model.features)
    if not features:  # the artifacts carry the names (no features: in numerai.yaml)
        features = list(dict.fromkeys(name for c in compiled for name in c.model_ir.feature_names))
    artifacts = [
        {
            "path": locked.get("path"),
            "format": locked.get("format"),
            "sha256": locked.get("sha256"),
            "summary": artifact_summary(c.model_ir, c.member.format),
        }
        for locked, c in zip(inputs.get("artifacts") or [], compiled, strict=False)
    ]
    return make(
        slot=model.slot,
        config=normalized_config(project, model),
        features=features,
        runtime=runtime.tag,
        image=runtime.tag.partition(":")[0],
        data_version=model.deploy.data_version or project.data.version,
        artifacts=artifacts,
        kernels_sha256=inputs.get("kernels_sha256"),
        nmr_version=__version__,
        pickle_sha256=pickle_sha256,
    )


def artifact_summary(model_ir, fmt: str) -> dict:
    """What a reviewer wants to know about a model file, read from its IR (no arrays)."""
    from builder import ir

    summary: dict = {"format": fmt, "task": getattr(model_ir, "task", None)}
    meta = getattr(model_ir, "meta", {}) or {}
    if isinstance(model_ir, ir.TreeEnsemble):
        summary["objective"] = meta.get("objective") or meta.get("estimator")
        summary["trees"] = int(model_ir.n_trees)
        summary["features"] = len(model_ir.feature_names)
    elif isinstance(model_ir, ir.Graph):
        ops = Counter(
            f"{node.domain}.{node.op}" if node.domain else node.op for node in model_ir.nodes
        )
        summary["ops"] = dict(sorted(ops.items()))
        summary["inputs"] = {model_ir.input_name: ["N", model_ir.input_width]}
        summary["outputs"] = {name: ["N", meta.get("n_outputs")] for name in model_ir.output_names}
        summary["features"] = model_ir.input_width
    return {key: value for key, value in summary.items() if value is not None}


def store_path(project_root: Path, sha256: str) -> Path:
    return Path(project_root) / STORE_DIR / f"{sha256}.json"


def save(project_root: Path, manifest: dict) -> Path:
    """Write ``manifest`` into the store under its pickle's sha256 (atomic, idempotent)."""
    path = store_path(project_root, manifest["pickle_sha256"])
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent.parent / ".gitignore"
    if not ignore.exists():
        # .nmr/ is local state (sandbox, caches, manifests): keep it out of commits.
        ignore.write_text("*\n", encoding="utf-8")
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def find(project_root: Path, sha_prefix: str) -> tuple[dict | None, str | None]:
    """The manifest of the pickle whose sha256 starts with ``sha_prefix`` and where it was
    found ("store", "numerai.lock", "numerai.lock at <rev>"), or (None, None)."""
    return find_all(project_root, [sha_prefix])[sha_prefix]


def find_all(project_root: Path, sha_prefixes) -> dict[str, tuple[dict | None, str | None]]:
    """``find`` for several prefixes, reading the git history of numerai.lock at most once."""
    root = Path(project_root)
    lock = root / LOCK_NAME
    lock_text = lock.read_text(encoding="utf-8") if lock.is_file() else None
    found: dict[str, tuple[dict | None, str | None]] = {}
    missing = []
    for prefix in dict.fromkeys(sha_prefixes):
        manifest = _in_store(root, prefix)
        if manifest is not None:
            found[prefix] = (manifest, "store")
            continue
        manifest = _in_lock_text(lock_text, prefix) if lock_text else None
        if manifest is not None:
            found[prefix] = (manifest, LOCK_NAME)
            continue
        found[prefix] = (None, None)
        missing.append(prefix)
    if missing:
        for rev, text in _lock_history(root):
            for prefix in list(missing):
                manifest = _in_lock_text(text, prefix)
                if manifest is not None:
                    found[prefix] = (manifest, f"{LOCK_NAME} at {rev[:12]}")
                    missing.remove(prefix)
            if not missing:
                break
    return found


# --- helpers ---------------------------------------------------------------------------------


def _in_store(root: Path, sha_prefix: str) -> dict | None:
    store = root / STORE_DIR
    if not store.is_dir():
        return None
    for path in sorted(store.glob(f"{sha_prefix}*.json")):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged entry: the lock and its history may still have it
    return None


def _in_lock_text(text: str, sha_prefix: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    for entry in (data.get("slots") or {}).values() if isinstance(data, dict) else ():
        manifest = entry.get("manifest") if isinstance(entry, dict) else None
        if manifest and str(manifest.get("pickle_sha256", "")).startswith(sha_prefix):
            return manifest
    return None


def _lock_history(root: Path):
    """(commit, numerai.lock text) for each commit that changed the lock, newest first."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel").strip()
        relative = (root.resolve() / LOCK_NAME).relative_to(Path(top).resolve()).as_posix()
        revs = _git(
            root, "log", f"--max-count={GIT_HISTORY_LIMIT}", "--format=%H", "--", relative
        ).split()
    except (OSError, subprocess.CalledProcessError, ValueError):
        return  # not a git checkout, or git is missing: there is no history to read
    for rev in revs:
        try:
            yield rev, _git(root, "show", f"{rev}:{relative}")
        except subprocess.CalledProcessError:
            continue  # the lock was deleted in that commit


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout
