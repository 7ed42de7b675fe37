"""The env for a hand-made pickle: the runtime's base env plus the image packages it imports.

Numerai's numerai_predict image has ~140 packages installed (lightgbm, scikit-learn, xgboost,
torch, ...), so a pickled ``lightgbm.Booster`` loads there. nmr's base env holds only numpy,
pandas, cloudpickle and pyarrow (what nmr's own pickles need), where that pickle fails with
"No module named 'lightgbm'". For ``nmr test --pickle`` this module scans the pickle's opcodes
for the modules it imports, maps each to its distribution, and asks ``ensure_env`` for a derived
env with the ones the image has, at the image's pins. A module the image lacks stays missing, so
the run fails as production would, and the plan says so.

The image also offers a pickle the packages its libraries import *when present*: lightgbm's
scikit-learn wrapper (``LGBMRegressor``) subclasses sklearn's estimators only if scikit-learn
imports, else stand-ins without ``get_params``; a pickled ``LGBMRegressor`` then fails to
predict with "'super' object has no attribute 'get_params'". Libraries declare such packages as
*integration extras*: an extra named for the package it installs (``lightgbm[scikit-learn]``,
``xgboost[pandas]``). So each added distribution's integration extras that the image has are
added too, transitively (bounded), read from the index's metadata (``builder.env.requires_dist``).
Other extras (``plotting``, ``dask``, ``test``...) name packages imported only on demand.
"""

from __future__ import annotations

import _compat_pickle
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from builder import runtimes
from builder.env import Env, ensure_env, normalize_distribution, requires_dist
from builder.errors import NmrError
from builder.pack import imported_globals

IMPORTED = "imported by the pickle"
REQUESTED = "--with"
OPTIONAL = "{} imports it when present"  # .format(the distribution that does)
# Rounds of integration extras (lightgbm -> scikit-learn -> ...): a bound, not a depth reached.
_OPTIONAL_ROUNDS = 3

# Top-level modules (or dotted prefixes: the longest one wins) whose distribution on PyPI has
# another name, for the packages of the numerai_predict images (builder/runtimes/*.json). Any
# other module is looked up under its own name, normalized ("treelite_runtime" ->
# "treelite-runtime"); importlib.metadata cannot answer, since the distribution is not
# installed where the scan runs.
MODULE_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "_yaml": "pyyaml",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "absl": "absl-py",
    "google.protobuf": "protobuf",
    "google.auth": "google-auth",
    "google.oauth2": "google-auth",
    "google_auth_oauthlib": "google-auth-oauthlib",
    "markdown_it": "markdown-it-py",
    "mpl_toolkits": "matplotlib",
    "pylab": "matplotlib",
    "functorch": "torch",
    "torchgen": "torch",
    "pkg_resources": "setuptools",
    "tensorflow_estimator": "tensorflow-estimator",
    "tensorflow_io_gcs_filesystem": "tensorflow-io-gcs-filesystem",
    "tensorboard_data_server": "tensorboard-data-server",
    "lightning_utilities": "lightning-utilities",
    "pytorch_lightning": "pytorch-lightning",
    "hf_xet": "hf-xet",
    "clang": "libclang",
    "pasta": "google-pasta",
}

# Modules that are not distributions: the pickling script itself, and Python 2 names that
# pickle's fix_imports maps to the standard library on load (Lib/_compat_pickle.py).
_NOT_DISTRIBUTIONS = {"__main__", *_compat_pickle.IMPORT_MAPPING}


@dataclass
class PickleEnv:
    """The env a pickle runs in and how it was chosen."""

    env: Env
    runtime: str
    added: dict[str, tuple[str, str]] = field(default_factory=dict)  # dist -> (version, why)
    dependencies: dict[str, str] = field(default_factory=dict)  # installed with them
    missing: list[tuple[str, str]] = field(default_factory=list)  # (module, distribution)
    notes: list[str] = field(default_factory=list)  # e.g. metadata that could not be read

    def lines(self) -> list[str]:
        """What the user reads before the run, one ``env:`` line each."""
        out = [f"env: + {dist}=={version} ({why})" for dist, (version, why) in self.added.items()]
        if self.dependencies:
            pins = ", ".join(f"{d}=={v}" for d, v in self.dependencies.items())
            out.append(f"env: + {pins} (dependencies, at the image's pins)")
        out += [f"env: {note}" for note in [*self.notes, *self.missing_notes()]]
        return out

    def missing_notes(self) -> list[str]:
        return [
            f"{module} is imported by the pickle but "
            + (f"its distribution {dist} is " if dist != module else "")
            + f"not in the image {self.runtime}, so loading it fails there too"
            for module, dist in self.missing
        ]

    def hint_for(self, reason: str | None) -> str | None:
        """For a run that failed on "No module named 'X'" where the image has X's distribution
        but this env does not (an import inside the predict function, invisible to the scan):
        the ``--with`` that fixes it."""
        match = re.search(r"No module named '([\w.]+)'", reason or "")
        if match is None:
            return None
        dist = distribution_for(match.group(1))
        pin = runtimes.get(self.runtime).pins.get(dist)
        if pin is None or dist in self.env.packages:
            return None
        return (
            f"{dist}=={pin} is in the image {self.runtime}, which would load it: "
            f"rerun with --with {dist}"
        )

    def to_dict(self) -> dict:
        return {
            "python": str(self.env.python),
            "added": {d: {"version": v, "why": why} for d, (v, why) in self.added.items()},
            "dependencies": self.dependencies,
            "missing": [{"module": m, "distribution": d} for m, d in self.missing],
        }


def env_for_pickle(
    pickle_path: str | os.PathLike,
    runtime_tag: str,
    python: str | os.PathLike | None = None,
    with_dists: tuple[str, ...] = (),
    scan: bool = True,
) -> PickleEnv:
    """The env to test ``pickle_path`` in: the runtime's base env, or a derived env with the
    image's distributions the pickle imports (``scan``) plus ``with_dists``, at the image's pins.

    Distributions the base env already holds (pandas' own dependencies, say) add nothing. An
    nmr-built pickle imports only numpy, pandas, cloudpickle and the standard library, so it
    always gets the base env.
    """
    runtime = runtimes.get(runtime_tag)
    wanted: dict[str, str] = {}  # distribution -> why
    for name in with_dists:
        dist = normalize_distribution(name)
        if dist not in runtime.pins:
            raise NmrError(
                f"--with {name}: not in the image {runtime.tag} (`nmr runtimes --json` lists its "
                "packages)"
            )
        wanted.setdefault(dist, REQUESTED)
    missing: list[tuple[str, str]] = []
    if scan:
        try:
            found, missing = pickle_distributions(Path(pickle_path).read_bytes(), runtime)
        except Exception:  # pickletools raises several types: the run itself reports a bad file
            found, missing = [], []
        for dist in found:
            wanted.setdefault(dist, IMPORTED)
    base = ensure_env(runtime.tag, python)
    notes: list[str] = []
    try:
        for dist, why in optional_imports(base, runtime, list(wanted)).items():
            wanted.setdefault(dist, why)
    except NmrError as error:
        notes.append(f"optional packages of {', '.join(wanted)} not added: {error}")
    extras = {
        dist: why
        for dist, why in wanted.items()
        if dist not in runtime.bundle_pins and base.packages.get(dist) != runtime.pins[dist]
    }
    if not extras:
        return PickleEnv(base, runtime.tag, missing=missing, notes=notes)
    env = ensure_env(runtime.tag, python, extras=tuple(sorted(extras)))
    added = {
        dist: (env.packages.get(dist, runtime.pins[dist]), why) for dist, why in extras.items()
    }
    dependencies = {
        dist: version
        for dist, version in env.packages.items()
        if dist not in base.packages and dist not in added
    }
    return PickleEnv(env, runtime.tag, added, dependencies, missing, notes)


def optional_imports(base: Env, runtime: runtimes.Runtime, dists: list[str]) -> dict[str, str]:
    """distribution -> why, for the image's packages that ``dists`` (and, transitively, what
    they bring) import when present: their integration extras (see the module docstring)."""
    found: dict[str, str] = {}
    seen = set(dists) | set(runtime.bundle_pins)
    # the base env's own packages (pandas' dependencies...) are as the image has them already
    frontier = [
        d
        for d in dists
        if d in runtime.pins
        and d not in runtime.bundle_pins
        and base.packages.get(d) != runtime.pins[d]
    ]
    for _ in range(_OPTIONAL_ROUNDS):
        if not frontier:
            break
        metadata = requires_dist(base, {d: runtime.pins[d] for d in frontier})
        frontier = []
        for dist, lines in metadata.items():
            for dep in integration_extras(lines, runtime.python):
                if dep in runtime.pins and dep not in seen:
                    seen.add(dep)
                    found[dep] = OPTIONAL.format(dist)
                    frontier.append(dep)
    return found


def integration_extras(requires: list[str], python: str) -> list[str]:
    """The distributions among ``Requires-Dist`` lines that an extra named for them installs
    (``scikit-learn!=0.22.0; extra == "scikit-learn"``), whose markers hold on Linux x86-64
    under Python ``python``."""
    from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement

    out: dict[str, None] = {}
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        name = normalize_distribution(requirement.name)
        if requirement.marker is None:
            continue
        environment = {
            "extra": name,
            "python_version": python,
            "python_full_version": python + ".0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
        }
        try:
            if not requirement.marker.evaluate(environment):
                continue
            if requirement.marker.evaluate({**environment, "extra": "\0no-such-extra"}):
                continue  # not an extra at all: a plain (platform) dependency
        except (UndefinedComparison, UndefinedEnvironmentName):
            continue
        out.setdefault(name, None)
    return list(out)


def pickle_distributions(
    data: bytes, runtime: runtimes.Runtime
) -> tuple[list[str], list[tuple[str, str]]]:
    """(distributions of the image the pickle imports, [(module, distribution)] it imports that
    the image lacks), each in first-seen order. numpy, pandas, cloudpickle, pyarrow and the
    standard library are left out: every env has them."""
    found: dict[str, None] = {}
    missing: dict[str, str] = {}
    for global_name in imported_globals(data):
        top = global_name.split(".")[0]
        if top in sys.stdlib_module_names or top in _NOT_DISTRIBUTIONS:
            continue
        dist = distribution_for(global_name)
        if dist in runtime.bundle_pins:
            continue
        if dist in runtime.pins:
            found.setdefault(dist, None)
        else:
            missing.setdefault(top, dist)
    return list(found), list(missing.items())


def distribution_for(module: str) -> str:
    """The distribution that provides ``module`` (a dotted module or global name): the table's
    longest matching prefix, else the top-level module's own name, normalized."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in MODULE_DISTRIBUTIONS:
            return MODULE_DISTRIBUTIONS[prefix]
    return normalize_distribution(parts[0])


def source_distributions(project, model) -> list[str]:
    """The image distributions a ``source:`` slot's code imports (beyond the base env's), read
    from its import statements and those of the project modules it imports, sorted.

    A static scan (``ast``), so the env exists before the code runs there; an import the scan
    cannot see (``importlib.import_module(name)``) fails the pack with "No module named ...".
    Imports of modules the image lacks are left out here: the import in the env then fails
    with that module's name, as it would in Numerai's container.
    """
    runtime = runtimes.get(model.runtime)
    source = Path(model.source.path)
    search = [source.parent, Path(project.root)]
    found: dict[str, None] = {}
    seen: set[Path] = set()
    todo = [source]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for name in _imported_names(path):
            local = _project_module(name, search)
            if local is not None:
                todo.append(local)
                continue
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in _NOT_DISTRIBUTIONS:
                continue
            dist = distribution_for(name)
            if dist in runtime.pins and dist not in runtime.bundle_pins:
                found.setdefault(dist, None)
    return sorted(found)


def _imported_names(path: Path) -> list[str]:
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as error:
        raise NmrError(f"{path}: cannot read the source ({error})") from None
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def _project_module(name: str, search: list[Path]) -> Path | None:
    """The project file a module name imports (a package's __init__.py or a .py file)."""
    for directory in search:
        base = directory.joinpath(*name.split("."))
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        top = directory / name.split(".")[0]
        if (top / "__init__.py").is_file() or top.with_suffix(".py").is_file():
            return (
                top / "__init__.py" if (top / "__init__.py").is_file() else top.with_suffix(".py")
            )
    return None
