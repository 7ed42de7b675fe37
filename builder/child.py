"""Running a child interpreter (the runtime's own Python, pip) and reading why it failed.

One piece of code for what packing, inspecting and creating runtime venvs all do: start the
target interpreter with an environment that cannot leak the builder's packages into it, and turn
a failure into the one line that says why (the last non-blank line of stderr, which is where a
Python traceback ends and where pip prints its error).
"""

from __future__ import annotations

import os
import subprocess


def clean_env() -> dict[str, str]:
    """os.environ without PYTHON* and VIRTUAL_ENV: the builder's PYTHONPATH or venv must not
    decide what the runtime's interpreter imports."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def run_python(python, args: list[str], *, cwd, timeout: float, env=None):
    """``python -s *args`` (-s: no user site-packages), text output captured; not checked."""
    return subprocess.run(
        [str(python), "-s", *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def failure_line(out: subprocess.CompletedProcess) -> str:
    """Why a child failed, in one line: its last non-blank stderr line (stdout when stderr is
    empty), or its exit code when it printed nothing (killed, or crashed in C code)."""
    lines = [line for line in (out.stderr or out.stdout or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {out.returncode}"
