"""The layout in docs/design/architecture.md names every module and package of builder/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "design" / "architecture.md"


def _layout_block() -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_layout_names_every_builder_module_and_package():
    block = _layout_block()
    named = set(re.findall(r"[\w]+(?=\.py\b|/)", block))
    entries = [
        p.stem if p.is_file() else p.name
        for p in (ROOT / "builder").iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py")
        or (p.is_dir() and (p / "__init__.py").exists())
    ]
    missing = sorted(name for name in entries if name not in named)
    assert not missing, f"docs/design/architecture.md's layout does not name {missing}"


def test_layout_names_no_module_that_does_not_exist():
    block = _layout_block()
    builder = block.split("builder/", 1)[1].split("\nrecipes/", 1)[0]
    for line in builder.splitlines():
        entry = re.match(
            r"^  (\S[^ ]*(?: [^ ]+)*?)(?:\s{2,}|$)", line
        )  # "  env.py, envextras.py  ..."
        if entry is None:
            continue  # a description's continuation line
        for name in re.findall(r"[\w]+\.py|[\w]+/", entry.group(1)):
            assert (ROOT / "builder" / name.rstrip("/")).exists(), name
