"""`nmr build`: every slot of numerai.yaml -> build/<slot>/model.pkl, recorded in numerai.lock.

A slot is rebuilt only when its inputs changed (see builder.lock) or its pickle is missing or
altered; ``force`` rebuilds anyway; ``check`` builds nothing and reports which slots the lock
no longer matches (for CI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builder import lock as locks
from builder.config.model import Project
from builder.errors import NmrError


@dataclass(frozen=True)
class BuildResult:
    slot: str
    pickle_path: Path  # build/<slot>/model.pkl (absolute)
    sha256: str | None  # None in check mode when the slot was never built
    size: int | None
    runtime: str
    python_version: str | None  # of the env that made the pickle
    rebuilt: bool
    status: str = "built"  # "built" | "up to date" | "out of date" (check mode)
    changed: tuple[str, ...] = field(default=())  # inputs that differ from the lock


def build_project(
    project: Project,
    slots=None,
    force: bool = False,
    check: bool = False,
    python: str | None = None,
    log=None,
) -> list[BuildResult]:
    """Build (or with ``check`` only compare) the selected slots; returns one result per slot.

    ``python`` is the base interpreter for the runtime envs (``--python``); ``log`` receives a
    line per slot as it finishes (default: nothing).
    """
    from builder.pack import kernel_sources_digest

    models = _selected(project, slots)
    lock = locks.read_lock(project)
    kernels = kernel_sources_digest()
    results = []
    for model in models:
        inputs = locks.slot_inputs(project, model, kernels)
        locked = lock["slots"].get(model.slot)
        changed = tuple(locks.changed_inputs(locked, inputs))
        pickle_path = project.root / "build" / model.slot / "model.pkl"
        if check:
            status = "out of date" if changed else "up to date"
            results.append(_result(model, pickle_path, locked, False, status, changed))
        elif not force and not changed and _pickle_matches(pickle_path, locked):
            results.append(_result(model, pickle_path, locked, False, "up to date", ()))
        else:
            entry = _build_slot(project, model, inputs, pickle_path, python)
            lock["slots"][model.slot] = entry
            # Write after every slot, so a failure later keeps what was built.
            locks.write_lock(project, _pruned(project, lock, slots))
            results.append(_result(model, pickle_path, entry, True, "built", changed))
        if log is not None:
            log(results[-1])
    if not check:
        locks.write_lock(project, _pruned(project, lock, slots))
    return results


def pickle_relpath(slot: str) -> str:
    return f"build/{slot}/model.pkl"


# --- helpers ---------------------------------------------------------------------------------


def _build_slot(project: Project, model, inputs: dict, pickle_path: Path, python) -> dict:
    from builder.bundle import make_bundle
    from builder.env import ensure_env
    from builder.pack import pack

    bundle = make_bundle(project, model)
    env = ensure_env(model.runtime, python)
    packed = pack(bundle, env)
    pickle_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pickle_path.with_name(pickle_path.name + ".tmp")
    tmp.write_bytes(packed.data)
    tmp.replace(pickle_path)
    return locks.slot_entry(
        inputs,
        env_python_version=packed.python_version,
        env_packages=env.packages,
        pickle_path=pickle_relpath(model.slot),
        sha256=packed.sha256,
        size=packed.size,
    )


def _pickle_matches(path: Path, locked: dict | None) -> bool:
    if not locked or not path.is_file():
        return False
    expected = locked.get("pickle", {})
    if path.stat().st_size != expected.get("size"):
        return False
    return locks.file_sha256(path) == expected.get("sha256")


def _result(
    model, pickle_path: Path, entry: dict | None, rebuilt: bool, status: str, changed
) -> BuildResult:
    entry = entry or {}
    return BuildResult(
        slot=model.slot,
        pickle_path=pickle_path,
        sha256=entry.get("pickle", {}).get("sha256"),
        size=entry.get("pickle", {}).get("size"),
        runtime=model.runtime,
        python_version=entry.get("build", {}).get("python_version"),
        rebuilt=rebuilt,
        status=status,
        changed=tuple(changed),
    )


def _selected(project: Project, slots) -> list:
    if not slots:
        return list(project.models)
    known = {m.slot: m for m in project.models}
    unknown = [s for s in slots if s not in known]
    if unknown:
        raise NmrError(
            f"no model slot {unknown[0]!r} in {project.config_path.name} "
            f"(slots: {', '.join(known) or 'none'})"
        )
    return [known[s] for s in dict.fromkeys(slots)]


def _pruned(project: Project, lock: dict, slots) -> dict:
    """Drop lock entries of slots no longer in numerai.yaml (only on a full build)."""
    if slots:
        return lock
    names = {m.slot for m in project.models}
    lock["slots"] = {k: v for k, v in lock["slots"].items() if k in names}
    lock["lock_version"] = locks.LOCK_VERSION
    return lock
