"""Catalog of numerai_predict images: tag -> Python minor version + the image's pinned packages.

The catalog is data: one JSON file per image in this folder (``<tag with ':' as '-'>.json``) with
``tag``, ``python``, ``default``, ``aliases``, ``source`` (which numerai-predict file the pins come
from) and ``pins`` (the image's full package list, see docs/design/numerai.md §2.4).

API other stages rely on:
  known_tags() -> list[str]; default_tag() -> str; get(tag) -> Runtime; runtimes() -> list[Runtime]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from builder.errors import NmrError

# What a pickle built by nmr needs at load time inside the image: the kernels use numpy and
# pandas, a by-value pickle calls cloudpickle helpers, and predict.py reads parquet (pyarrow).
BUNDLE_PACKAGES = ("numpy", "pandas", "cloudpickle", "pyarrow")


@dataclass(frozen=True)
class Runtime:
    tag: str  # e.g. "numerai_predict_py_3_12:a78dedd"
    python: str  # minor version, e.g. "3.12"
    pins: dict = field(default_factory=dict)  # package -> version (the image's full list)
    default: bool = False
    aliases: tuple[str, ...] = ()
    source: str = ""  # where the pins come from

    @property
    def bundle_pins(self) -> dict[str, str]:
        """Pins of the packages a built pickle needs (what the build env installs)."""
        return {name: self.pins[name] for name in BUNDLE_PACKAGES}


def runtimes() -> list[Runtime]:
    """Every runtime of the catalog, ordered by Python version."""
    return list(_catalog().values())


def known_tags() -> list[str]:
    return list(_catalog())


def default_tag() -> str:
    return next(tag for tag, runtime in _catalog().items() if runtime.default)


def get(tag: str) -> Runtime:
    """The runtime for a tag or an alias (the image name without ``:ref``)."""
    catalog = _catalog()
    if tag in catalog:
        return catalog[tag]
    for runtime in catalog.values():
        if tag in runtime.aliases:
            return runtime
    raise NmrError(f"unknown runtime {tag!r} (known: {', '.join(catalog)})")


@cache
def _catalog() -> dict[str, Runtime]:
    entries = []
    for path in sorted(Path(__file__).parent.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        entries.append(
            Runtime(
                tag=data["tag"],
                python=data["python"],
                pins=dict(sorted(data["pins"].items())),
                default=bool(data.get("default", False)),
                aliases=tuple(data.get("aliases", ())),
                source=data.get("source", ""),
            )
        )
    entries.sort(key=lambda r: tuple(int(p) for p in r.python.split(".")))
    return {runtime.tag: runtime for runtime in entries}
