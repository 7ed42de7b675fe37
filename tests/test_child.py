"""builder/child.py: the one way nmr starts a child interpreter and says why it failed."""

from __future__ import annotations

import sys

from builder.child import clean_env, failure_line, run_python


def test_a_failing_child_is_reported_by_its_last_stderr_line(tmp_path):
    out = run_python(
        sys.executable,
        ["-c", "import sys; print('noise', file=sys.stderr); raise ValueError('the reason')"],
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 1
    assert failure_line(out) == "ValueError: the reason"


def test_a_child_that_prints_nothing_is_reported_by_its_exit_code(tmp_path):
    out = run_python(sys.executable, ["-c", "import os; os._exit(3)"], cwd=tmp_path, timeout=60)
    assert failure_line(out) == "exit code 3"


def test_the_child_does_not_inherit_the_builders_pythonpath(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "builder-only"))
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "venv"))
    assert "PYTHONPATH" not in clean_env() and "VIRTUAL_ENV" not in clean_env()
    out = run_python(
        sys.executable,
        ["-c", "import os; print(os.environ.get('PYTHONPATH', '-'))"],
        cwd=tmp_path,
        timeout=60,
    )
    assert out.stdout.strip() == "-"
