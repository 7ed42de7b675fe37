"""Runs INSIDE the target runtime's venv (never imported by nmr): spec -> deterministic pickle.

Invoked by ``builder.pack`` as ``<env python> -s -c <this source> WORKDIR KERNELS_DIR`` with
PYTHONHASHSEED=0 and WORKDIR as the current directory. WORKDIR holds ``batch.json`` (``{"count": n}``)
and per object i ``spec_i.json`` (the object tree, classes named ``kernels.<module>:<qualname>``)
and ``arrays_i.npz`` (its numpy arrays); it receives ``model_i.pkl`` and ``report.json``.

The kernel sources are loaded as the package ``nmr_kernels`` with fixed, relative file names, so
the code objects cloudpickle writes carry neither the checkout's path nor the name ``builder``.
Only the standard library, numpy and cloudpickle are used here (what the env holds).
"""

import hashlib
import importlib.abc
import importlib.metadata
import importlib.util
import inspect
import json
import os
import pickle
import sys
from pathlib import Path

import cloudpickle
import numpy as np

PACKAGE = "nmr_kernels"
BUILDER_ALIAS = "builder.kernels"  # kernels that import each other absolutely still load
PROTOCOL = pickle.HIGHEST_PROTOCOL  # 5 on every supported Python; the runtime's own Python loads it


def main(workdir: Path, kernels_dir: Path) -> None:
    finder = KernelFinder(kernels_dir)
    sys.meta_path.insert(0, finder)
    # Import every kernel module before decoding: cloudpickle lists a function's submodule
    # imports from sys.modules, so what is loaded at dump time must not depend on the spec.
    for name in finder.module_names():
        importlib.import_module(name)
    package = sys.modules[PACKAGE]
    cloudpickle.register_pickle_by_value(package)
    pin_class_tracker_ids(finder.source_digest)

    count = json.loads((workdir / "batch.json").read_text(encoding="utf-8"))["count"]
    blobs = []
    reads = []
    for i in range(count):  # every dump before any load: loading may import modules
        spec = json.loads((workdir / f"spec_{i}.json").read_text(encoding="utf-8"))
        with np.load(workdir / f"arrays_{i}.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        SOURCES.reads.clear()
        obj = decode(spec["root"], arrays)
        reads.append(sorted(SOURCES.reads))
        blobs.append(cloudpickle.dumps(obj, protocol=PROTOCOL))
    versions = {}
    for name in ("numpy", "pandas", "cloudpickle", "pyarrow"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    reports = []
    for i, data in enumerate(blobs):
        (workdir / f"model_{i}.pkl").write_bytes(data)
        loaded = pickle.loads(data)  # the bytes must load back before anything else sees them
        parameters = list(inspect.signature(loaded).parameters) if callable(loaded) else None
        reports.append(
            {
                "python_version": ".".join(str(v) for v in sys.version_info[:3]),
                "packages": versions,
                "parameters": parameters,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "reads": reads[i],
            }
        )
    (workdir / "report.json").write_text(json.dumps(reports, indent=2), encoding="utf-8")


class KernelFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``nmr_kernels[.x]`` from the kernel sources, compiled with relative file names."""

    def __init__(self, kernels_dir: Path):
        self.kernels_dir = kernels_dir
        digest = hashlib.sha256()
        for path in sorted(kernels_dir.rglob("*.py")):
            digest.update(path.relative_to(kernels_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        self.source_digest = digest.hexdigest()

    def module_names(self) -> list[str]:
        names = [PACKAGE]
        for path in sorted(self.kernels_dir.rglob("*.py")):
            parts = path.relative_to(self.kernels_dir).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                names.append(".".join((PACKAGE, *parts)))
        return names

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "builder":
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        for prefix in (PACKAGE, BUILDER_ALIAS):
            if fullname == prefix or fullname.startswith(prefix + "."):
                rel = fullname[len(prefix) :].lstrip(".").split(".") if fullname != prefix else []
                source = self._source_path(rel)
                if source is None:
                    return None
                return importlib.util.spec_from_loader(
                    fullname, self, is_package=source.name == "__init__.py"
                )
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__name__
        if name == "builder":
            module.__path__ = []
            return
        if name == BUILDER_ALIAS or name.startswith(BUILDER_ALIAS + "."):
            # Alias to the nmr_kernels module so classes keep one identity and one name.
            real = importlib.import_module(PACKAGE + name[len(BUILDER_ALIAS) :])
            sys.modules[name] = real
            return
        rel = name[len(PACKAGE) :].lstrip(".").split(".") if name != PACKAGE else []
        source = self._source_path(rel)
        relative = source.relative_to(self.kernels_dir).as_posix()
        module.__file__ = f"{PACKAGE}/{relative}"
        if source.name == "__init__.py":
            module.__path__ = []
        code = compile(
            source.read_text(encoding="utf-8"), module.__file__, "exec", dont_inherit=True
        )
        exec(code, module.__dict__)

    def _source_path(self, rel):
        base = self.kernels_dir.joinpath(*rel) if rel else self.kernels_dir
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if rel and base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return None


class ProjectSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a ``source:`` slot's file and the project modules it imports.

    Modules are compiled with file names relative to the project root, so the code objects
    cloudpickle writes (by value: the container has no copy of the project) do not carry the
    checkout's path. An audit hook records every project file opened while they import
    (weights, feature lists): the lock hashes them, so a changed file rebuilds the slot.
    """

    def __init__(self):
        self.roots: list[Path] = []  # project roots seen, most recent first
        self.search: list[Path] = []  # directories whose .py files are project modules
        self.modules: dict[str, Path] = {}  # module name -> its source file
        self.reads: set[str] = set()
        self.excluded = tuple(
            str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}
        )

    def add(self, root: Path, source: Path) -> None:
        if root not in self.roots:
            self.roots.insert(0, root)
        for directory in (source.parent, root):
            if directory not in self.search:
                self.search.append(directory)

    def audit(self, event, args):
        if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        try:
            path = Path(os.fsdecode(args[0])).resolve()
        except (OSError, ValueError):
            return
        text = str(path)
        if text.startswith(self.excluded) or "site-packages" in path.parts:
            return
        for root in self.roots:
            if path.is_relative_to(root) and path.is_file():
                self.reads.add(path.relative_to(root).as_posix())
                return

    def find_spec(self, fullname, path=None, target=None):
        for directory in self.search:
            base = directory.joinpath(*fullname.split("."))
            for candidate, package in (
                (base / "__init__.py", True),
                (base.with_suffix(".py"), False),
            ):
                if candidate.is_file():
                    self.modules[fullname] = candidate
                    return importlib.util.spec_from_loader(fullname, self, is_package=package)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self.modules[module.__name__]
        root = next((r for r in self.roots if source.is_relative_to(r)), source.parent)
        module.__file__ = str(source)  # the real path while importing (code may read files)
        if source.name == "__init__.py":
            module.__path__ = [str(source.parent)]
        relative = source.relative_to(root).as_posix()
        code = compile(source.read_text(encoding="utf-8"), relative, "exec", dont_inherit=True)
        exec(code, module.__dict__)
        # cloudpickle writes a by-value function's module __file__ into the pickle: relative,
        # so the bytes do not depend on where the project is checked out
        module.__file__ = relative

    def load(self, root: Path, relative: str, function: str):
        """The function ``function`` of the file ``root/relative``; every project module it
        imported is registered for pickling by value, with pinned class tracker ids."""
        source = (root / relative).resolve()
        self.add(root, source)
        name = "_".join(Path(relative).with_suffix("").parts)
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
        self.modules[name] = source
        spec = importlib.util.spec_from_loader(name, self, is_package=False)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        fn = getattr(module, function, None)
        if fn is None or not callable(fn):
            raise SystemExit(f"{relative} defines no function {function!r}")
        digest = hashlib.sha256()
        for mod_name in sorted(self.modules):
            if mod_name in sys.modules:
                digest.update(mod_name.encode() + b"\0" + self.modules[mod_name].read_bytes())
        for mod_name in sorted(self.modules):
            if mod_name in sys.modules and "." not in mod_name:
                cloudpickle.register_pickle_by_value(sys.modules[mod_name])
        pin_class_tracker_ids(digest.hexdigest(), tuple(sorted(self.modules)))
        return fn


SOURCES = ProjectSources()


def decode(node, arrays):
    if isinstance(node, list):
        return [decode(item, arrays) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node["t"]
    if kind == "dict":
        return {decode(k, arrays): decode(v, arrays) for k, v in node["items"]}
    if kind == "tuple":
        return tuple(decode(item, arrays) for item in node["items"])
    if kind == "array":
        return arrays[node["key"]]
    if kind == "scalar":
        return np.dtype(node["dtype"]).type(node["value"])
    if kind == "dtype":
        return np.dtype(node["str"])
    if kind == "float":
        return float(node["value"])  # "nan", "inf", "-inf"
    if kind == "source":
        if SOURCES not in sys.meta_path:
            sys.meta_path.insert(1, SOURCES)  # after the kernel finder
            sys.addaudithook(SOURCES.audit)
        return SOURCES.load(Path(node["root"]), node["path"], node["function"])
    if kind == "object":
        module_name, _, qualname = node["class"].rpartition(":")
        module = importlib.import_module(PACKAGE + module_name[len("kernels") :])
        cls = module
        for part in qualname.split("."):
            cls = getattr(cls, part)
        obj = cls.__new__(cls)
        for key, value in decode(node["state"], arrays).items():
            object.__setattr__(obj, key, value)
        return obj
    raise ValueError(f"unknown spec node {kind!r}")


def pin_class_tracker_ids(source_digest: str, packages: tuple = (PACKAGE,)) -> None:
    """Give every kernel class a tracker id derived from the kernel sources and its name.

    cloudpickle tags each by-value class with ``uuid4().hex`` (``_get_or_create_tracker_id``),
    which would make every build's bytes different. The id only has to be unique per class
    definition: unpickling reuses an already-loaded class with the same id, so it includes the
    digest of the kernel sources.
    """
    module = sys.modules.get("cloudpickle.cloudpickle") or cloudpickle
    by_class = getattr(module, "_DYNAMIC_CLASS_TRACKER_BY_CLASS", None)
    by_id = getattr(module, "_DYNAMIC_CLASS_TRACKER_BY_ID", None)
    if by_class is None or by_id is None:
        raise RuntimeError(
            f"cloudpickle {cloudpickle.__version__} has no class tracker tables; "
            "nmr cannot make its pickles deterministic"
        )
    for name, mod in sorted(sys.modules.items()):
        if not any(name == p or name.startswith(p + ".") for p in packages):
            continue
        for value in list(vars(mod).values()):
            if isinstance(value, type) and value.__module__ == name:
                tracker = hashlib.sha256(
                    f"{source_digest}:{name}:{value.__qualname__}".encode()
                ).hexdigest()[:32]
                by_class[value] = tracker
                by_id[tracker] = value


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
