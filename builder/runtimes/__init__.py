"""Catalog of numerai_predict images (data in this folder; see ../shared/NUMERAI.md §2).

Minimal API other stages rely on (the build work fills in the full pinned package lists):
  known_tags() -> list[str]; default_tag() -> str; get(tag) -> Runtime
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.errors import NmrError


@dataclass(frozen=True)
class Runtime:
    tag: str  # e.g. "numerai_predict_py_3_12:a78dedd"
    python: str  # minor version, e.g. "3.12"
    pins: dict = field(default_factory=dict)  # package -> version (the image's full list)
    default: bool = False


_CATALOG = {
    "numerai_predict_py_3_10:a78dedd": Runtime(
        "numerai_predict_py_3_10:a78dedd",
        "3.10",
        {"numpy": "1.26.4", "pandas": "2.2.1", "cloudpickle": "2.2.1", "pyarrow": "14.0.1"},
    ),
    "numerai_predict_py_3_11:a78dedd": Runtime(
        "numerai_predict_py_3_11:a78dedd",
        "3.11",
        {"numpy": "2.1.3", "pandas": "2.3.1", "cloudpickle": "3.1.1", "pyarrow": "21.0.0"},
    ),
    "numerai_predict_py_3_12:a78dedd": Runtime(
        "numerai_predict_py_3_12:a78dedd",
        "3.12",
        {"numpy": "2.1.3", "pandas": "2.3.1", "cloudpickle": "3.1.1", "pyarrow": "18.1.0"},
        default=True,
    ),
    "numerai_predict_py_3_13:latest": Runtime(
        "numerai_predict_py_3_13:latest",
        "3.13",
        {"numpy": "2.2.6", "pandas": "2.3.3", "cloudpickle": "3.1.2", "pyarrow": "18.1.0"},
    ),
}


def known_tags() -> list[str]:
    return list(_CATALOG)


def default_tag() -> str:
    return next(tag for tag, runtime in _CATALOG.items() if runtime.default)


def get(tag: str) -> Runtime:
    try:
        return _CATALOG[tag]
    except KeyError:
        raise NmrError(f"unknown runtime {tag!r} (known: {', '.join(_CATALOG)})") from None
