"""builder/kernels/ ships inside the pickle, so it may import only numpy, pandas, the standard
library and its own modules, also inside function bodies, where the pickle-level import scan
cannot see an import until the function runs in the container."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

KERNELS = Path(__file__).resolve().parents[1] / "builder" / "kernels"
ALLOWED_THIRD_PARTY = {"numpy", "pandas"}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, top-level module) of every import statement anywhere in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: another module of builder.kernels
                continue
            found.append((node.lineno, node.module or ""))
    return found


def forbidden(module: str) -> bool:
    top = module.split(".")[0]
    if module == "builder.kernels" or module.startswith("builder.kernels."):
        return False
    return top not in ALLOWED_THIRD_PARTY and top not in sys.stdlib_module_names


def test_kernels_import_only_numpy_pandas_stdlib_and_themselves():
    offenders = [
        f"{path.name}:{line}: {module}"
        for path in sorted(KERNELS.glob("*.py"))
        for line, module in imported_modules(path.read_text(encoding="utf-8"))
        if forbidden(module)
    ]
    assert not offenders, offenders


def test_import_scan_sees_imports_inside_function_bodies():
    source = "def f():\n    import sklearn.linear_model\n    return 1\n"
    assert [module for _, module in imported_modules(source) if forbidden(module)] == [
        "sklearn.linear_model"
    ]


def test_import_scan_refuses_other_builder_modules():
    assert forbidden("builder.config.model")
    assert not forbidden("builder.kernels.transforms")
