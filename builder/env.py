"""The build env of a runtime: a cached venv of the image's Python with the bundle's packages.

A pickle must be made (and is best tested) by the interpreter and libraries Numerai will load it
with: a pickle written by Python 3.11 fails on 3.12 with "unknown opcode" (docs/design/numerai.md §2.2), and
numpy/pandas pickles name private modules that move between versions. So every runtime gets a
venv under ``~/.cache/nmr/envs/<key>`` made from an interpreter of the runtime's exact minor
version, holding only numpy, pandas, cloudpickle and pyarrow at the image's pins (their
dependencies constrained to the image's pins too). It is created once, reused, and its installed
versions are checked every time it is handed out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from builder import runtimes
from builder.child import clean_env, failure_line
from builder.errors import NmrError, NotSupportedYet

try:
    import fcntl
except ImportError:  # Windows has no fcntl
    fcntl = None

MARKER = "nmr-env.json"
PIP_TIMEOUT_S = 1200
# Envs verified by this process (runtime tag, --python, cache root) -> Env: a multi-slot build
# checks each env once.
_VERIFIED: dict[tuple, Env] = {}


@dataclass(frozen=True)
class Env:
    runtime: str  # runtime tag
    path: Path  # the venv directory
    python: Path  # the venv's interpreter
    python_version: str  # e.g. "3.12.1"
    packages: dict[str, str] = field(default_factory=dict)  # installed distributions -> version


def ensure_env(
    runtime_tag: str, python: str | os.PathLike | None = None, extras: tuple[str, ...] = ()
) -> Env:
    """The venv for a runtime, created on first use and verified on every reuse.

    ``python`` picks the base interpreter (must be the runtime's minor version); by default a
    pyenv or system interpreter of that version is used. ``extras`` names more distributions of
    the image's package list to install at the image's pins (a derived env, cached apart from
    the base env; used to test hand-made pickles, see builder/envextras.py). Safe to call from
    several processes at once: creation happens under a file lock.
    """
    runtime = runtimes.get(runtime_tag)
    extra_pins = _extra_pins(runtime, extras)
    memo_key = (
        runtime.tag,
        str(python) if python is not None else None,
        str(cache_dir()),
        tuple(extra_pins),
    )
    if memo_key in _VERIFIED and (_VERIFIED[memo_key].path / MARKER).exists():
        return _VERIFIED[memo_key]  # verified earlier in this process
    base, base_version = _base_interpreter(runtime, python)
    key = env_key(runtime, base, base_version, tuple(extra_pins))
    path = cache_dir() / "envs" / key
    env = _verified(path, runtime, extra_pins)
    if env is not None:
        _VERIFIED[memo_key] = env
        return env
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path.with_name(key + ".lock")):
        env = _verified(path, runtime, extra_pins)  # another process may have finished it
        if env is None:
            _create(path, runtime, base, extra_pins)
            env = _verified(path, runtime, extra_pins)
        if env is None:
            raise NmrError(
                f"the env for {runtime.tag} at {path} does not hold the pinned "
                f"{_pin_text(runtime, extra_pins)} after installing them"
            )
    _VERIFIED[memo_key] = env
    return env


def requires_dist(env: Env, pins: dict[str, str]) -> dict[str, list[str]]:
    """Each distribution's ``Requires-Dist`` lines (its dependencies, optional ones with their
    ``extra == ...`` markers) at the given pins, read from the package index by ``env``'s pip
    without installing anything (``pip install --dry-run --report``; PEP 658 metadata, so no
    wheel is downloaded where the index serves it). Cached per ``dist==version`` under the
    cache root: a release's metadata never changes."""
    cache = cache_dir() / "metadata"
    found: dict[str, list[str]] = {}
    unknown = {}
    for dist, version in pins.items():
        cached = cache / f"{dist}-{version}.json"
        if cached.exists():
            found[dist] = json.loads(cached.read_text())
        else:
            unknown[dist] = version
    if unknown:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            specs = [f"{dist}=={version}" for dist, version in unknown.items()]
            _run(
                [
                    str(env.python), "-m", "pip", "install", "--dry-run", "--quiet",
                    "--ignore-installed", "--no-deps", "--only-binary=:all:",
                    "--disable-pip-version-check", "--no-input", "--report", str(report), *specs,
                ],
                f"read the metadata of {', '.join(specs)}",
            )  # fmt: skip
            installs = json.loads(report.read_text()).get("install", [])
        cache.mkdir(parents=True, exist_ok=True)
        for item in installs:
            dist = normalize_distribution(item["metadata"]["name"])
            lines = list(item["metadata"].get("requires_dist") or [])
            found[dist] = lines
            if dist in unknown:
                (cache / f"{dist}-{unknown[dist]}.json").write_text(json.dumps(lines))
    return found


def find_python(minor: str) -> Path | None:
    """An installed interpreter of exactly this minor version (pyenv first, then PATH)."""
    for candidate in _pyenv_candidates(minor) + _path_candidates(minor):
        version = _interpreter_version(candidate)
        if version is not None and _minor(version) == minor:
            return candidate
    return None


def normalize_distribution(name: str) -> str:
    """A distribution name as the runtime catalog spells it (PEP 503: lower case, runs of
    ``-_.`` as one ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def cache_dir() -> Path:
    """nmr's cache root: $NMR_CACHE_DIR, else $XDG_CACHE_HOME/nmr, else ~/.cache/nmr."""
    if os.environ.get("NMR_CACHE_DIR"):
        return Path(os.environ["NMR_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "nmr"
    return Path.home() / ".cache" / "nmr"


def env_key(
    runtime: runtimes.Runtime, base: Path, base_version: str, extras: tuple[str, ...] = ()
) -> str:
    """Cache key: Python version, base interpreter and every pin the install depends on
    (``extras``: the derived env's added distributions; none keeps the base env's key)."""
    payload = {
        "python": runtime.python,
        "python_version": base_version,
        "base": str(base.resolve()),
        "install": runtime.bundle_pins,
        "constraints": runtime.pins,
    }
    if extras:
        payload["extras"] = {name: runtime.pins[name] for name in sorted(extras)}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"py{runtime.python}-{digest[:16]}"


# --- helpers ---------------------------------------------------------------------------------


def _base_interpreter(runtime: runtimes.Runtime, python) -> tuple[Path, str]:
    if python is not None:
        path = Path(python).expanduser()
        version = _interpreter_version(path)
        if version is None:
            raise NmrError(f"--python {python} is not a runnable Python interpreter")
        if _minor(version) != runtime.python:
            raise NmrError(
                f"--python {python} is Python {version} but runtime {runtime.tag} needs "
                f"Python {runtime.python}"
            )
        return path, version
    found = find_python(runtime.python)
    if found is None:
        raise NmrError(
            f"Python {runtime.python} is not installed (runtime {runtime.tag} needs it to "
            f"build the pickle): install it with `pyenv install {runtime.python}`, put "
            f"python{runtime.python} on PATH, or pass --python /path/to/python{runtime.python} "
            "to nmr build / nmr test"
        )
    return found, _interpreter_version(found)


def _pyenv_candidates(minor: str) -> list[Path]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]))
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                roots.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    roots.append(Path.home() / ".pyenv")
    found = []
    pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")  # final releases only, no rc/dev/t
    for root in dict.fromkeys(roots):
        versions = root / "versions"
        if not versions.is_dir():
            continue
        matches = []
        for entry in versions.iterdir():
            m = pattern.match(entry.name)
            if m and (entry / "bin" / "python3").exists():
                matches.append((int(m.group(1)), entry / "bin" / "python3"))
        found += [path for _, path in sorted(matches, reverse=True)]
    return found


def _path_candidates(minor: str) -> list[Path]:
    found = []
    for name in (f"python{minor}", "python3"):
        path = shutil.which(name)
        if path:
            found.append(Path(path))
    return found


def _interpreter_version(path: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(path), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+", version) else None


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


# Reads the installed distributions without importing them (pandas + pyarrow take ~1 s to import).
_PROBE = """
import importlib.metadata as m, json, sys
packages = {}
for dist in m.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-")
    if name and name not in ("pip", "setuptools", "wheel"):
        packages[name] = dist.version
print(json.dumps({"python_version": "%d.%d.%d" % sys.version_info[:3],
                  "packages": dict(sorted(packages.items()))}))
"""


def _verified(path: Path, runtime: runtimes.Runtime, extras: dict | None = None) -> Env | None:
    """The env at ``path`` if it is complete and holds the runtime's pins, else None."""
    if not (path / MARKER).exists():
        return None
    try:
        out = subprocess.run(
            [str(_venv_python(path)), "-s", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
        )
        probe = json.loads(out.stdout) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        probe = None
    if probe is None or _minor(probe["python_version"]) != runtime.python:
        return None
    packages = probe["packages"]
    wanted = {**runtime.bundle_pins, **(extras or {})}
    if any(packages.get(name) != version for name, version in wanted.items()):
        return None
    return Env(
        runtime=runtime.tag,
        path=path,
        python=_venv_python(path),
        python_version=probe["python_version"],
        packages=packages,
    )


def _create(path: Path, runtime: runtimes.Runtime, base: Path, extras: dict[str, str]) -> None:
    if path.exists():
        shutil.rmtree(path)  # incomplete or drifted: start over
    print(
        f"creating the Python {runtime.python} env for {runtime.tag} "
        f"({_pin_text(runtime, extras)})",
        file=sys.stderr,
    )
    _run([str(base), "-m", "venv", str(path)], f"create a venv with {base}")
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(
            "".join(f"{name}=={version}\n" for name, version in runtime.pins.items())
        )
        wanted = {**runtime.bundle_pins, **extras}
        install = [f"{name}=={version}" for name, version in wanted.items()]
        _run(
            [
                str(_venv_python(path)),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--only-binary=:all:",
                "-c",
                str(constraints),
                *install,
            ],
            f"install {_pin_text(runtime, extras)} for Python {runtime.python}",
        )
    # Written last: an env without the marker is incomplete (a crash mid-install) and is redone.
    marker = {"runtime": runtime.tag, "pins": runtime.bundle_pins}
    if extras:
        marker["extras"] = extras
    (path / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _run(cmd: list[str], what: str) -> None:
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=_clean_env()
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise NmrError(f"could not {what}: {error}") from None
    if out.returncode != 0:
        raise NmrError(f"could not {what}: {failure_line(out)}")


def _clean_env() -> dict[str, str]:
    """The environment for env subprocesses, without anything that would leak the builder's
    packages into the target interpreter."""
    env = clean_env()
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    return env


def _pin_text(runtime: runtimes.Runtime, extras: dict | None = None) -> str:
    wanted = {**runtime.bundle_pins, **(extras or {})}
    return ", ".join(f"{name}=={version}" for name, version in wanted.items())


def _extra_pins(runtime: runtimes.Runtime, extras) -> dict[str, str]:
    """``extras`` as distribution -> the image's pin, sorted, without the bundle packages."""
    pins = {}
    for name in extras:
        normalized = normalize_distribution(name)
        if normalized not in runtime.pins:
            raise NmrError(
                f"{name} is not in the image {runtime.tag} (`nmr runtimes --json` lists its "
                "packages)"
            )
        if normalized not in runtime.bundle_pins:
            pins[normalized] = runtime.pins[normalized]
    return dict(sorted(pins.items()))


@contextmanager
def _file_lock(path: Path):
    if fcntl is None:
        raise NotSupportedYet("creating runtime envs on Windows (no fcntl file locks)")
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
