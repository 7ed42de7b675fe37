"""Pickles nmr does not compile: ``source:`` slots (packed by the runtime) and ``pickle:`` slots
(shipped as is). Each becomes build/<slot>/model.pkl and a numerai.lock entry, like a compiled
slot, so `nmr test`, `plan` and `apply` treat every slot the same way.

* source: the env is the runtime's base env plus the image's distributions the code imports,
  at the image's pins (builder/envextras.py ``source_distributions``); the env's own Python
  imports the file and cloudpickles the function by value (builder/pack_child.py), and the
  project files it read while importing are recorded in the lock.
* pickle: the bytes are copied unchanged after a scan of the modules they import: anything the
  runtime's image lacks (or a global of ``__main__``) fails the build, since it fails to load
  in Numerai's container.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from builder import lock as locks
from builder.config.model import ModelConfig, Project
from builder.errors import NmrError


def build_shipped(
    project: Project, model: ModelConfig, inputs: dict, pickle_path: Path, python=None
) -> dict:
    """Write the slot's pickle to ``pickle_path``; returns its lock entry."""
    where = f"{model.mark or project.config_path.name}: models.{model.slot}.{model.kind}"
    try:
        if model.kind == "pickle":
            data, python_version, packages = _shipped_as_is(model), None, {}
        else:
            data, python_version, packages, reads = _packed_source(project, model, inputs, python)
            source = inputs["source"]["path"]
            inputs["reads"] = locks.reads_input(project, [r for r in reads if r != source])
    except NmrError as error:
        raise NmrError(f"{where}: {error}") from error
    _write(pickle_path, data)
    from builder.build import pickle_relpath

    return locks.slot_entry(
        inputs,
        env_python_version=python_version,
        env_packages=packages,
        pickle_path=pickle_relpath(model.slot),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


# --- helpers ---------------------------------------------------------------------------------


def _shipped_as_is(model: ModelConfig) -> bytes:
    from builder.pack import check_image_imports

    path = Path(model.pickle.path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NmrError(f"cannot read {path}: {error}") from None
    try:
        check_image_imports(data, model.runtime)
    except ValueError as error:  # pickletools.genops: unknown opcode, truncated stream
        raise NmrError(f"{path.name} is not a pickle file, or a truncated one ({error})") from None
    return data


def _packed_source(project: Project, model: ModelConfig, inputs: dict, python):
    from builder.bundle import make_source_bundle
    from builder.env import ensure_env
    from builder.pack import pack_many

    extras = tuple(sorted(inputs["image_packages"]))
    env = ensure_env(model.runtime, python, extras=extras)
    packed = pack_many([make_source_bundle(project, model)], env, image_packages=True)[0]
    return packed.data, packed.python_version, env.packages, packed.reads


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
