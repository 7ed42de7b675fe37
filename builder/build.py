"""`nmr build`: every slot of numerai.yaml -> build/<slot>/model.pkl, recorded in numerai.lock.

A slot is rebuilt only when its inputs changed (see builder.lock) or its pickle is missing or
altered; ``force`` rebuilds anyway; ``check`` builds nothing and reports which slots the lock
no longer matches (for CI).

A slot that fails (bad artifact, data, env) does not stop the others: every slot that can be
built is built and locked, then ``BuildFailed`` lists every failing slot, one located line
each. A failed slot keeps its previous lock entry and pickle, so nothing stale is recorded as
new.
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
    status: str = "built"  # "built" | "up to date" | "out of date" (check mode) | "failed"
    changed: tuple[str, ...] = field(default=())  # inputs that differ from the lock
    error: str | None = None  # status "failed": one line, starting with the slot's place


class BuildFailed(NmrError):
    """Some slots failed to build; ``results`` has every slot's result (failed ones included),
    the message one line per failed slot."""

    def __init__(self, results: list[BuildResult]):
        self.results = results
        failed = [r for r in results if r.status == "failed"]
        super().__init__("\n".join(r.error or r.slot for r in failed))


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

    models = project.select(slots)
    lock = locks.read_lock(project)
    kernels = kernel_sources_digest()
    results: dict[str, BuildResult] = {}
    todo = []  # (model, inputs, changed, pickle_path) to build
    for model in models:
        locked = lock["slots"].get(model.slot)
        if model.kind in SHIPPED_KINDS:
            inputs = locks.shipped_inputs(project, model, kernels, locked)
        else:
            inputs = locks.slot_inputs(project, model, kernels)
        changed = tuple(locks.changed_inputs(locked, inputs))
        pickle_path = project.root / "build" / model.slot / "model.pkl"
        if check:
            status = "out of date" if changed else "up to date"
            results[model.slot] = _result(model, pickle_path, locked, False, status, changed)
        elif not force and not changed and _pickle_matches(pickle_path, locked):
            results[model.slot] = _result(model, pickle_path, locked, False, "up to date", ())
        else:
            todo.append((model, inputs, changed, pickle_path))
            continue
        if log is not None:
            log(results[model.slot])

    shipped = [item for item in todo if item[0].kind in SHIPPED_KINDS]
    todo = [item for item in todo if item[0].kind not in SHIPPED_KINDS]
    if shipped:
        from builder.shipped import build_shipped

        failed = []  # every failing slot is reported, not only the first
        for model, inputs, changed, pickle_path in shipped:
            try:
                entry = build_shipped(project, model, inputs, pickle_path, python)
            except NmrError as error:
                failed.append(str(error))
                continue
            lock["slots"][model.slot] = entry
            results[model.slot] = _result(model, pickle_path, entry, True, "built", changed)
            if log is not None:
                log(results[model.slot])
            locks.write_lock(project, _pruned(project, lock, slots))
        if failed:
            raise NmrError("\n".join(failed))
    if todo:
        from builder.bundle import compile_members, make_bundle

        # Every bundle first (compiling is cheap next to starting an env), each slot on its own:
        # a slot whose artifact or data is bad is reported and the others still build.
        bundles = {}
        compiled = {}
        for model, _inputs, _changed, pickle_path in todo:
            try:
                compiled[model.slot] = compile_members(model)
                bundles[model.slot] = make_bundle(project, model, compiled[model.slot])
            except NmrError as error:
                results[model.slot] = _failed(project, model, pickle_path, error)
                if log is not None:
                    log(results[model.slot])
        by_runtime: dict[str, list] = {}
        for item in todo:
            if item[0].slot in bundles:
                by_runtime.setdefault(item[0].runtime, []).append(item)
        for runtime, items in by_runtime.items():
            try:
                for model, _inputs, changed, pickle_path, entry in _pack_runtime(
                    runtime, items, bundles, python
                ):
                    entry["manifest"] = _manifest(project, model, entry, compiled[model.slot])
                    lock["slots"][model.slot] = entry
                    results[model.slot] = _result(model, pickle_path, entry, True, "built", changed)
                    if log is not None:
                        log(results[model.slot])
            except NmrError as error:  # the env or the packer failed: every slot of this runtime
                for model, _inputs, _changed, pickle_path in items:
                    if model.slot not in results:
                        results[model.slot] = _failed(project, model, pickle_path, error)
                        if log is not None:
                            log(results[model.slot])
            # Written after each runtime, so a failure later keeps what was built.
            locks.write_lock(project, _pruned(project, lock, slots))
    if not check:
        locks.write_lock(project, _pruned(project, lock, slots))
    ordered = [results[model.slot] for model in models]
    if any(r.status == "failed" for r in ordered):
        raise BuildFailed(ordered)
    return ordered


# Slots whose pickle nmr does not compile: packed by the runtime (source) or shipped as is
# (pickle); builder/shipped.py makes them.
SHIPPED_KINDS = ("source", "pickle")


def pickle_relpath(slot: str) -> str:
    return f"build/{slot}/model.pkl"


# --- helpers ---------------------------------------------------------------------------------


def _pack_runtime(runtime: str, items: list, bundles: dict, python):
    """Pack the bundles of one runtime in one run of its env; yields (model, inputs, changed,
    pickle_path, lock entry) per slot after writing its pickle."""
    from builder.env import ensure_env
    from builder.pack import pack_many

    env = ensure_env(runtime, python)
    packed = pack_many([bundles[model.slot] for model, *_ in items], env)
    for (model, inputs, changed, pickle_path), result in zip(items, packed, strict=True):
        pickle_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = pickle_path.with_name(pickle_path.name + ".tmp")
        tmp.write_bytes(result.data)
        tmp.replace(pickle_path)
        entry = locks.slot_entry(
            inputs,
            env_python_version=result.python_version,
            env_packages=env.packages,
            pickle_path=pickle_relpath(model.slot),
            sha256=result.sha256,
            size=result.size,
        )
        yield model, inputs, changed, pickle_path, entry


def _manifest(project: Project, model, entry: dict, compiled) -> dict:
    """Record what the pickle was made from (builder.manifest): in the lock entry and in the
    project's local manifest store, for `nmr plan`'s attribute diff."""
    from builder import manifest

    made = manifest.for_build(project, model, entry["inputs"], compiled, entry["pickle"]["sha256"])
    manifest.save(project.root, made)
    return made


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


def _failed(project: Project, model, pickle_path: Path, error: NmrError) -> BuildResult:
    """A failed slot's result; its one line starts with the slot's place in numerai.yaml."""
    message = str(error).strip().replace("\n", "; ")
    mark = str(model.mark) if model.mark else project.config_path.name
    if not message.startswith(mark.split(":", 1)[0] + ":"):
        message = f"{mark}: models.{model.slot}: {message}"
    return BuildResult(
        slot=model.slot,
        pickle_path=pickle_path,
        sha256=None,
        size=None,
        runtime=model.runtime,
        python_version=None,
        rebuilt=False,
        status="failed",
        error=message,
    )


def _pruned(project: Project, lock: dict, slots) -> dict:
    """Drop lock entries of slots no longer in numerai.yaml (only on a full build)."""
    if slots:
        return lock
    names = {m.slot for m in project.models}
    lock["slots"] = {k: v for k, v in lock["slots"].items() if k in names}
    lock["lock_version"] = locks.LOCK_VERSION
    return lock
