"""Pack a bundle into pickle bytes inside the target runtime's env, then scan what they import.

The builder never pickles what ships (its Python may differ from the runtime's). It writes the
object tree in a neutral form (JSON naming ``builder.kernels`` classes + an ``.npz`` of the
arrays) and the env's own interpreter rebuilds the objects from the kernel sources and cloudpickles them with the
runtime's cloudpickle (``builder/pack_child.py``). The bytes depend only on that spec, the kernel
sources and the env, not on the builder's Python or the checkout's path.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickletools
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder.child import clean_env, failure_line, run_python
from builder.env import Env
from builder.errors import NmrError

KERNELS_DIR = Path(__file__).resolve().parent / "kernels"
CHILD_SOURCE = Path(__file__).resolve().parent / "pack_child.py"
ENCODER_SOURCE = Path(__file__).resolve()  # encode(): the spec the child rebuilds objects from
KERNELS_PACKAGE = "builder.kernels"

# Top-level modules a pickle may import: every numerai_predict image has them (a by-value
# cloudpickle payload calls cloudpickle's helpers on load). The standard library is added from
# sys.stdlib_module_names.
ALLOWED_PACKAGES = ("numpy", "pandas", "cloudpickle")

# cloudpickle reducers whose first string argument names a module imported on load.
_MODULE_LOADERS = {"subimport", "dynamic_subimport"}
_LOADER = object()


@dataclass(frozen=True)
class Packed:
    data: bytes
    sha256: str
    size: int
    python_version: str  # of the interpreter that made the bytes
    packages: dict  # numpy/pandas/cloudpickle/pyarrow versions of that interpreter
    parameters: tuple[str, ...]  # the callable's signature, as numerai-predict counts it
    modules: tuple[str, ...]  # top-level modules the pickle imports
    # source: slots: project files the user's code read while being imported (relative paths)
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceFunction:
    """A ``source:`` slot's function, to be imported and pickled by value in the env.

    Stands in the object tree where the function goes; the env's interpreter imports ``path``
    (relative to ``root``, with the project's own modules importable) and takes ``function``.
    """

    root: Path  # the project root: files under it are the project's
    path: str  # the .py file, relative to root (POSIX)
    function: str = "predict"


def pack(obj, env: Env) -> Packed:
    """Pickle ``obj`` (a tree of builder.kernels objects) with the env's interpreter."""
    return pack_many([obj], env)[0]


def pack_many(objs: list, env: Env, image_packages: bool = False) -> list[Packed]:
    """Pickle several objects in one run of the env's interpreter (one start-up for a whole
    multi-slot build). Each result equals what ``pack`` gives for that object alone.

    ``image_packages``: the objects hold user code (``SourceFunction``), which may import any
    package of the runtime's image; the scan then refuses only what the image lacks.
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="nmr-pack-") as tmp:
        work = Path(tmp)
        for i, obj in enumerate(objs):
            spec, arrays = encode(obj)
            (work / f"spec_{i}.json").write_text(
                json.dumps({"root": spec}, allow_nan=False), encoding="utf-8"
            )
            np.savez(work / f"arrays_{i}.npz", **arrays)
        (work / "batch.json").write_text(json.dumps({"count": len(objs)}), encoding="utf-8")
        # Set iteration order (frozenset constants in code objects) depends on string hashing.
        child_env = {**clean_env(), "PYTHONHASHSEED": "0"}
        out = run_python(
            env.python,
            ["-c", CHILD_SOURCE.read_text(encoding="utf-8"), tmp, str(KERNELS_DIR)],
            cwd=tmp,
            env=child_env,
            timeout=600 + 60 * len(objs),
        )
        if out.returncode != 0:
            detail = failure_line(out)
            raise NmrError(
                f"packing in the Python {env.python_version} env ({env.runtime}) failed: {detail}"
            )
        blobs = [(work / f"model_{i}.pkl").read_bytes() for i in range(len(objs))]
        reports = json.loads((work / "report.json").read_text(encoding="utf-8"))
    results = []
    for data, report in zip(blobs, reports, strict=True):
        modules = check_image_imports(data, env.runtime) if image_packages else check_imports(data)
        results.append(
            Packed(
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                python_version=report["python_version"],
                packages=report["packages"],
                parameters=tuple(report["parameters"] or ()),
                modules=tuple(modules),
                reads=tuple(report.get("reads") or ()),
            )
        )
    return results


def imported_globals(data: bytes) -> list[str]:
    """Every global the pickle resolves on load, as ``module.qualname`` (or ``module`` for
    modules cloudpickle imports by name), in first-seen order."""
    found: dict[str, None] = {}
    memo: dict[int, object] = {}
    # A shadow of the pickle stack holding only what the scan needs: strings, and the markers of
    # cloudpickle's module loaders (whose next string argument is a module name); else None.
    stack: list[object] = []
    for opcode, arg, _pos in pickletools.genops(io.BytesIO(data)):
        name = opcode.name
        if name in ("PROTO", "FRAME", "STOP"):
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1] if stack else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            value = memo.get(int(arg))
            if isinstance(value, str) and stack and stack[-1] is _LOADER:
                found.setdefault(value, None)
            stack.append(value)
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, qualname = str(arg).partition(" ")
            else:
                module, qualname = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
            if isinstance(module, str) and isinstance(qualname, str):
                found.setdefault(f"{module}.{qualname}", None)
                loader = module.startswith("cloudpickle") and qualname in _MODULE_LOADERS
                stack.append(_LOADER if loader else None)
            else:
                stack.append(None)
        elif "UNICODE" in name or "STRING" in name:
            if stack and stack[-1] is _LOADER:
                found.setdefault(str(arg), None)
            stack.append(str(arg))
        else:
            stack.append(None)
    return list(found)


def check_imports(data: bytes) -> list[str]:
    """The top-level modules the pickle imports; NmrError naming the first global that is
    neither numpy, pandas, cloudpickle nor standard library."""
    modules: dict[str, None] = {}
    refused = []
    for global_name in imported_globals(data):
        top = global_name.split(".")[0]
        modules.setdefault(top, None)
        if not module_allowed(top):
            refused.append(global_name)
    if refused:
        shown = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        raise NmrError(
            f"the pickle imports {shown}, which numerai_predict images do not provide to nmr "
            "pickles (allowed: numpy, pandas, cloudpickle and the standard library)"
        )
    return sorted(modules)


def check_image_imports(data: bytes, runtime_tag: str) -> list[str]:
    """The top-level modules a pickle of user code imports; NmrError naming the modules the
    runtime's image does not have (so loading there would fail), and any global of
    ``__main__`` (a class or function defined in the script that made the pickle)."""
    from builder import runtimes
    from builder.envextras import pickle_distributions

    globals_ = imported_globals(data)
    main = [g for g in globals_ if g.startswith("__main__.")]
    if main:
        raise NmrError(
            f"the pickle refers to {main[0]}, defined in the script that made it; "
            "numerai-predict cannot import it: define it in a module of the source: slot "
            "(nmr pickles the project's own modules by value)"
        )
    runtime = runtimes.get(runtime_tag)
    _found, missing = pickle_distributions(data, runtime)
    if missing:
        shown = ", ".join(
            f"{module}" + (f" (distribution {dist})" if dist != module else "")
            for module, dist in missing[:3]
        )
        raise NmrError(
            f"the pickle imports {shown}, which the image {runtime.tag} does not have, so "
            "loading it there fails"
        )
    return sorted({g.split(".")[0] for g in globals_})


def module_allowed(top_level: str) -> bool:
    return top_level in ALLOWED_PACKAGES or top_level in sys.stdlib_module_names


def kernel_sources_digest() -> str:
    """sha256 over every source that shapes the pickle's bytes besides its inputs: the kernel
    sources (relative path + bytes) the pickle's code is made of, the in-runtime packer that
    rebuilds and cloudpickles them (pack_child.py) and the spec encoder (this module)."""
    digest = hashlib.sha256()
    for path in sorted(KERNELS_DIR.rglob("*.py")):
        digest.update(path.relative_to(KERNELS_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(b"child\0" + CHILD_SOURCE.read_bytes() + b"\0")
    digest.update(b"encoder\0" + ENCODER_SOURCE.read_bytes())
    return digest.hexdigest()


def encode(obj) -> tuple[object, dict]:
    """The neutral spec of an object tree: JSON-able nodes plus the arrays they refer to."""
    arrays: dict = {}
    return _encode(obj, arrays, "root"), arrays


# --- helpers ---------------------------------------------------------------------------------


def _encode(value, arrays: dict, where: str):
    import numpy as np  # numpy stays unimported on the no-op build path

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        if isinstance(value, float) and not math.isfinite(value):
            return {"t": "float", "value": repr(value)}
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise NmrError(f"cannot pack {where}: numpy arrays of Python objects are not allowed")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {"t": "array", "key": key}
    if isinstance(value, np.dtype):
        return {"t": "dtype", "str": value.str}
    if isinstance(value, SourceFunction):
        return {
            "t": "source",
            "root": str(Path(value.root).resolve()),
            "path": value.path,
            "function": value.function,
        }
    if isinstance(value, np.generic):
        return {
            "t": "scalar",
            "dtype": value.dtype.str,
            "value": _encode(value.item(), arrays, where),
        }
    if isinstance(value, list):
        return [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return {
            "t": "tuple",
            "items": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)],
        }
    if isinstance(value, dict):
        return {
            "t": "dict",
            "items": [
                [_encode(k, arrays, where), _encode(v, arrays, f"{where}.{k}")]
                for k, v in value.items()
            ],
        }
    cls = type(value)
    module = cls.__module__
    if module != KERNELS_PACKAGE and not module.startswith(KERNELS_PACKAGE + "."):
        raise NmrError(
            f"cannot pack {where}: {module}.{cls.__qualname__} is not a builder.kernels class "
            "(only kernel classes ship inside the pickle)"
        )
    return {
        "t": "object",
        "class": f"kernels{module[len(KERNELS_PACKAGE) :]}:{cls.__qualname__}",
        "state": _encode(_object_state(value, where), arrays, where),
    }


def _object_state(value, where: str) -> dict:
    state = dict(getattr(value, "__dict__", {}))
    for cls in type(value).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                state[slot] = getattr(value, slot)
    if not state and not hasattr(value, "__dict__"):
        raise NmrError(f"cannot pack {where}: {type(value).__qualname__} has no state to pack")
    return state


def inspect_pickle(
    path: Path, python: str | os.PathLike | None = None, runtime_tag: str | None = None
) -> dict:
    """What a pickle is: size, sha256, imported globals and modules, and, when ``python`` is
    given (an interpreter with the pickle's libraries), its signature and nmr bundle summary.

    ``modules_outside`` lists each imported top-level module nmr pickles never use, with its
    distribution and whether the image of ``runtime_tag`` (default: the default runtime) has
    it; when loaded, also whether ``python``'s env has it. ``load_error`` is set when ``python``
    cannot load the pickle. Loading runs the pickle's code, so it happens in a subprocess.
    """
    data = Path(path).read_bytes()
    try:
        globals_ = imported_globals(data)
    except ValueError as error:  # pickletools.genops: unknown opcode, truncated stream
        raise NmrError(f"{path}: not a pickle file, or a truncated one ({error})") from None
    modules = sorted({g.split(".")[0] for g in globals_})
    info = {
        "path": str(path),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "modules": modules,
        "refused": [g for g in globals_ if not module_allowed(g.split(".")[0])],
    }
    info["modules_outside"] = _modules_outside(info["refused"], runtime_tag)
    if python is None:
        return info
    outside = [entry["module"] for entry in info["modules_outside"]]
    out = run_python(
        python,
        ["-c", _INSPECT_CHILD, str(Path(path).resolve()), json.dumps(outside)],
        cwd=tempfile.gettempdir(),
        timeout=300,
    )
    try:  # the child's last line; a crash may leave none, or only the pickle's own prints
        report = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        report = {}
    absent = set(report.pop("absent", ()))
    for entry in info["modules_outside"]:
        entry["in_env"] = entry["module"] not in absent
    if out.returncode != 0 and "load_error" not in report:  # killed, or crashed in C code
        report["load_error"] = failure_line(out)
    info.update(report)
    return info


def _modules_outside(refused: list[str], runtime_tag: str | None) -> list[dict]:
    """Per top-level module outside nmr's set: its distribution and the image's pin of it."""
    import _compat_pickle

    from builder import runtimes
    from builder.envextras import distribution_for

    runtime = runtimes.get(runtime_tag or runtimes.default_tag())
    entries: dict[str, dict] = {}
    for global_name in refused:
        module = global_name.split(".")[0]
        # Python 2 names (``__builtin__``, ``copy_reg``) that pickle maps to the standard library
        # on load (Lib/_compat_pickle.py): every interpreter has them
        if module not in entries and module not in _compat_pickle.IMPORT_MAPPING:
            dist = distribution_for(global_name)
            entries[module] = {
                "module": module,
                "distribution": dist,
                "runtime": runtime.tag,
                "image_version": runtime.pins.get(dist),
            }
    return list(entries.values())


_INSPECT_CHILD = """
import importlib.util, inspect, json, pickle, sys
out = {"absent": [m for m in json.loads(sys.argv[2]) if importlib.util.find_spec(m) is None]}
try:
    with open(sys.argv[1], "rb") as handle:
        obj = pickle.load(handle)
except Exception as error:
    out["load_error"] = "%s: %s" % (type(error).__name__, error)
    print(json.dumps(out, default=str))
    sys.exit(0)
cls = type(obj)
out.update({"type": cls.__module__ + "." + cls.__qualname__, "callable": callable(obj)})
try:
    out["parameters"] = list(inspect.signature(obj).parameters)
except (TypeError, ValueError) as error:
    out["parameters"] = None
    out["signature_error"] = str(error)
summary = getattr(obj, "summary", None)
if cls.__module__.startswith("nmr_kernels") and isinstance(summary, dict):
    out["summary"] = summary
out["python_version"] = "%d.%d.%d" % sys.version_info[:3]
print(json.dumps(out, default=str))
"""
