"""numerai.lock: what each slot's pickle was built from, and what came out. Meant to be committed.

JSON with sorted keys, relative paths only and no timestamps, so it changes exactly when an input
or the output changes. Per slot it records the *inputs*, the *build env* (Python version,
installed packages) and the *pickle* (path, sha256, size). The inputs are the runtime tag, the
Python minor, the pins the build env installs, the nmr version, and the sha256 of: every file an
artifact's reader opens (the artifact and its side files, such as ONNX external data; see
``builder.artifacts.input_files``), the feature lists, the normalized model config, the train data
when a fitted step reads it, and the sources that make the pickle (kernels and packer).

A slot is up to date when its inputs digest equals the locked one and its pickle on disk has the
locked sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from builder import __version__, runtimes
from builder.config.model import ModelConfig, Project, Step
from builder.config.normalize import step_dict
from builder.errors import NmrError

LOCK_NAME = "numerai.lock"
LOCK_VERSION = 1


def lock_path(project: Project) -> Path:
    return project.root / LOCK_NAME


def read_lock(project: Project) -> dict:
    """The lock's content, or an empty lock when the file does not exist."""
    path = lock_path(project)
    if not path.exists():
        return {"lock_version": LOCK_VERSION, "slots": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise NmrError(
            f"{path}: not a readable numerai.lock ({error}); delete it to rebuild"
        ) from None
    if not isinstance(data, dict) or data.get("lock_version") != LOCK_VERSION:
        raise NmrError(f"{path}: unknown lock format; delete it and run `nmr build`")
    data.setdefault("slots", {})
    return data


def write_lock(project: Project, data: dict) -> bool:
    """Write the lock if its text changed; True when the file was (re)written."""
    path = lock_path(project)
    text = render(data)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_name(f".{LOCK_NAME}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def render(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def slot_inputs(project: Project, model: ModelConfig, kernels_sha256: str) -> dict:
    """Everything the slot's pickle bytes depend on, as hashes and small values."""
    runtime = runtimes.get(model.runtime)
    artifacts = [artifact_inputs(project, model, index) for index in range(len(model.members))]
    inputs = {
        "runtime": runtime.tag,
        "python": runtime.python,
        "pins": runtime.bundle_pins,
        "artifacts": artifacts,
        "features_sha256": features_sha256(model),
        "config_sha256": sha256_json(normalized_config(project, model)),
        "kernels_sha256": kernels_sha256,
        "nmr": __version__,
    }
    member_steps = [step for member in model.members for step in member.preprocessing]
    if any(_reads_train(step) for step in (*model.preprocessing, *member_steps)):
        train = project.data.train
        inputs["train"] = {
            "path": relative(project, train) if train else None,
            "sha256": file_sha256(Path(train)) if train and Path(train).is_file() else None,
        }
    return inputs


def artifact_inputs(project: Project, model: ModelConfig, index: int) -> dict:
    """One member's artifact as the lock records it: path, format, the sha256 of the file, and
    ``side_files`` (path + sha256 of each other file its reader opens, e.g. ONNX external data)
    when there are any."""
    member = model.members[index]
    try:
        artifact, *side = reader_files(Path(member.artifact), member.format)
    except NmrError as error:
        key = f"ensemble[{index}].artifact" if model.ensemble else "artifact"
        where = str(member.mark or model.mark or project.config_path.name)
        raise NmrError(f"{where}: models.{model.slot}.{key}: {error}") from error
    entry = {
        "path": relative(project, artifact),
        "format": member.format,
        "sha256": file_sha256(artifact),
    }
    if side:
        entry["side_files"] = hashed_files(project, side)
    return entry


def reader_files(path: Path, fmt: str) -> tuple[Path, ...]:
    """``builder.artifacts.input_files``, memoized like file hashes by the artifact's (path,
    size, mtime): the side files an artifact names depend only on its bytes, and a no-op build
    then does not import the reader's library (importing onnx takes about a second)."""
    from builder.artifacts import NAMES_OTHER_FILES, input_files

    if fmt not in NAMES_OTHER_FILES:
        return (path,)
    stat = path.stat()
    key = f"files|{fmt}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = _hash_cache()
    cached = cache.get(key)
    if isinstance(cached, list) and all(Path(name).is_file() for name in cached):
        return tuple(Path(name) for name in cached)
    files = input_files(path, fmt)  # a missing side file raises here, naming it
    cache[key] = [str(name) for name in files]
    _save_hash_cache(cache)
    return files


def hashed_files(project: Project, paths) -> list[dict]:
    """``[{"path": relative path, "sha256": ...}]`` for each file, in the order given."""
    return [{"path": relative(project, path), "sha256": file_sha256(Path(path))} for path in paths]


def shipped_inputs(
    project: Project, model: ModelConfig, kernels_sha256: str, locked: dict | None
) -> dict:
    """The inputs of a ``source:`` or ``pickle:`` slot (``slot_inputs`` is for compiled ones).

    pickle: the file's hash is the input. source: the file's hash, the image pins of what it
    imports, and every project file the last build saw it read while importing (the list comes
    from the locked entry, each file hashed again now; a file gone hashes to None), so editing
    a module or a weights file the source loads rebuilds the slot.
    """
    runtime = runtimes.get(model.runtime)
    inputs = {
        "runtime": runtime.tag,
        "python": runtime.python,
        "config_sha256": sha256_json(normalized_config(project, model)),
        "nmr": __version__,
    }
    if model.pickle is not None:
        inputs["pickle"] = _file_input(project, model.pickle.path)
        return inputs
    from builder.envextras import source_distributions

    source = model.source
    inputs["source"] = {**_file_input(project, source.path), "function": source.function}
    inputs["pins"] = runtime.bundle_pins
    inputs["image_packages"] = {
        dist: runtime.pins[dist] for dist in source_distributions(project, model)
    }
    inputs["kernels_sha256"] = kernels_sha256
    previous = ((locked or {}).get("inputs") or {}).get("reads") or []
    inputs["reads"] = reads_input(project, [entry["path"] for entry in previous])
    return inputs


def reads_input(project: Project, paths) -> list[dict]:
    """[{path, sha256}] of project files (relative paths), sorted; sha256 None when gone."""
    out = []
    for rel in sorted(set(paths)):
        path = project.root / rel
        out.append({"path": rel, "sha256": file_sha256(path) if path.is_file() else None})
    return out


def inputs_sha256(inputs: dict) -> str:
    return sha256_json(inputs)


def slot_entry(
    inputs: dict,
    env_python_version: str,
    env_packages: dict,
    pickle_path: str,
    sha256: str,
    size: int,
) -> dict:
    return {
        "inputs": inputs,
        "inputs_sha256": inputs_sha256(inputs),
        "build": {
            "python_version": env_python_version,
            "packages": dict(sorted(env_packages.items())),
        },
        "pickle": {"path": pickle_path, "sha256": sha256, "size": size},
    }


def changed_inputs(locked: dict | None, inputs: dict) -> list[str]:
    """Names of the inputs that differ from the locked entry (["(not in lock)"] when absent)."""
    if not locked:
        return ["(not in lock)"]
    old = locked.get("inputs", {})
    return sorted(key for key in set(old) | set(inputs) if old.get(key) != inputs.get(key))


def normalized_config(project: Project, model: ModelConfig) -> dict:
    """The slot's configuration reduced to what shapes the pickle, with relative paths."""
    return {
        "members": [
            {
                "artifact": relative(project, m.artifact),
                "format": m.format,
                "features": list(m.features),
                "weight": m.weight,
                "preprocessing": [step_dict(s) for s in m.preprocessing],
            }
            for m in model.members
        ],
        "ensemble": model.ensemble,
        "preprocessing": [step_dict(s) for s in model.preprocessing],
        "postprocessing": [step_dict(s) for s in model.postprocessing],
        "raw_output": model.raw_output,
        "legacy_signature": model.deploy.legacy_signature,
        "runtime": model.runtime,
    }


def features_sha256(model: ModelConfig) -> str:
    columns = {
        "members": [list(m.features) for m in model.members],
        "neutralize": [list(s.feature_columns) for s in model.postprocessing if s.feature_columns],
    }
    return sha256_json(columns)


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoized in the nmr cache by (path, size, mtime) so a no-op build does
    not re-read large artifacts and train files."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = _hash_cache()
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    cache[key] = digest.hexdigest()
    _save_hash_cache(cache)
    return cache[key]


def sha256_json(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def relative(project: Project, path) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        # Outside the project: only the name, so the lock never carries a machine's paths.
        return path.name


# --- helpers ---------------------------------------------------------------------------------


def _file_input(project: Project, path: Path) -> dict:
    path = Path(path)
    return {
        "path": relative(project, path),
        "sha256": file_sha256(path) if path.is_file() else None,
    }


def _reads_train(step: Step) -> bool:
    return step.name == "standardize" or (step.name == "fill_missing" and step.get("value") is None)


_HASH_CACHE: dict | None = None


def _hash_cache_path() -> Path:
    from builder.env import cache_dir

    return cache_dir() / "file-hashes.json"


def _hash_cache() -> dict:
    global _HASH_CACHE
    if _HASH_CACHE is None:
        try:
            _HASH_CACHE = json.loads(_hash_cache_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _HASH_CACHE = {}
    return _HASH_CACHE


def _save_hash_cache(cache: dict) -> None:
    path = _hash_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(cache) > 5000:  # keep the file small: drop the oldest half
            for key in list(cache)[: len(cache) // 2]:
                del cache[key]
        tmp = path.with_name(f".file-hashes.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation only
