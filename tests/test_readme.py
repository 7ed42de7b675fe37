"""The README is generated from docs/readme/ and the CLI; its commands are the ones CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = "pip install -e '.[all,dev]' && python -m pytest -q"


def test_readme_is_what_make_readme_writes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in readme
    assert TEST_COMMAND in ci


def test_readme_lists_every_cli_command():
    from builder.cli import app

    readme = (ROOT / "README.md").read_text()
    names = [info.name or info.callback.__name__ for info in app.registered_commands]
    assert names, "no commands registered"
    for name in names:
        assert f"`nmr {name}" in readme, name
