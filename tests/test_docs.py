"""The repository stands on its own: every document it refers to is in it, every relative
link resolves, and the reference pages are reachable from the README."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The names of design notes that lived outside the repository before docs/design/ existed.
OUTSIDE_DOCUMENTS = (
    "../shared",
    "NUMERAI.md",
    "COMPILERS.md",
    "ARCHITECTURE.md",
    "BENCH-ANCHORS.md",
    "STYLE.md",
)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    suffixes = {".py", ".md", ".toml", ".json", ".yaml", ".yml", ".txt", ".example", ""}
    return [
        ROOT / name
        for name in names
        if Path(name).suffix in suffixes and "fixtures" not in name and (ROOT / name).is_file()
    ]


def markdown_files() -> list[Path]:
    """Markdown pages as readers see them: docs/readme/ holds the README's sources, whose links
    are relative to the repository root and are checked in the generated README.md."""
    readme_sources = ROOT / "docs" / "readme"
    return [
        p for p in tracked_text_files() if p.suffix == ".md" and readme_sources not in p.parents
    ]


def heading_slugs(text: str) -> set[str]:
    slugs, fence = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


def broken_links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            if anchor not in heading_slugs(linked.read_text(encoding="utf-8")):
                broken.append(target)
    return broken


def test_no_file_refers_to_a_document_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in tracked_text_files()
        if path.name != "test_docs.py"
        for name in OUTSIDE_DOCUMENTS
        if name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not offenders, offenders


def test_every_relative_markdown_link_resolves_to_a_file_and_heading():
    broken = {
        str(path.relative_to(ROOT)): links
        for path in markdown_files()
        if (links := broken_links(path))
    }
    assert not broken, broken


def test_link_check_catches_a_missing_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nsee [here](#title) and [there](#nowhere) and [x](missing.md)\n")
    assert broken_links(page) == ["#nowhere", "missing.md"]


def test_every_reference_page_is_linked_from_the_docs_index_and_the_readme():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name != "README.md")
    assert [p for p in pages if f"]({p})" not in index] == []
    assert [p for p in pages if f"](docs/{p})" not in readme] == []
