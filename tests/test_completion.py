"""Shell completion through Typer's own mechanism, run as a shell runs it: a real `nmr` process
with the completion variables set, and bash sourcing the script `nmr --show-completion` prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from builder import runtimes

CONFIG = """\
version: 1
models:
  alpha_one:
    artifact: artifacts/a.txt
    features: small
  alpha_two:
    artifact: artifacts/a.txt
    features: small
  beta:
    artifact: artifacts/a.txt
    features: small
"""


@pytest.fixture()
def project(tmp_path):
    """A numerai.yaml (its artifacts need not exist to complete slot names) and an `nmr`
    command on PATH that runs this checkout's CLI."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "numerai.yaml").write_text(CONFIG)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "nmr"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "from builder.cli import main; main()" "$@"\n'
    )
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_NMR", "COMP_", "NMR_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return root, env


def _nmr(project, extra_env: dict, *args) -> subprocess.CompletedProcess:
    root, env = project
    return subprocess.run(
        ["nmr", *args],
        cwd=root,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_produced_for_each_shell(project, shell):
    result = _nmr(project, {"_NMR_COMPLETE": f"source_{shell}"})
    assert result.returncode == 0, result.stderr
    assert f"_NMR_COMPLETE=complete_{shell}" in result.stdout
    assert "nmr" in result.stdout


def test_clicks_spelling_bash_source_produces_the_script_too(project):
    result = _nmr(project, {"_NMR_COMPLETE": "bash_source"})
    assert result.returncode == 0
    assert "_NMR_COMPLETE=complete_bash" in result.stdout
    assert "not supported" not in result.stdout + result.stderr


def test_bash_completes_slot_names_from_numerai_yaml(project):
    env = {"_NMR_COMPLETE": "complete_bash", "COMP_WORDS": "nmr build al", "COMP_CWORD": "2"}
    result = _nmr(project, env)
    assert result.stdout.split() == ["alpha_one", "alpha_two"]


def test_zsh_and_fish_complete_slot_names(project):
    zsh = _nmr(project, {"_NMR_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "nmr build be"})
    assert '"beta"' in zsh.stdout and "alpha" not in zsh.stdout
    fish = _nmr(
        project,
        {
            "_NMR_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_ARGS": "nmr build be",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        },
    )
    assert fish.stdout.split() == ["beta"]


def test_slot_completion_reads_the_file_given_with_f(project, tmp_path):
    other = tmp_path / "elsewhere.yaml"
    other.write_text(CONFIG.replace("beta", "gamma_slot"))
    words = f"nmr build -f {other} ga"
    env = {"_NMR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "4"}
    assert _nmr(project, env).stdout.split() == ["gamma_slot"]


def test_slots_already_typed_are_not_offered_again(project):
    env = {
        "_NMR_COMPLETE": "complete_bash",
        "COMP_WORDS": "nmr build alpha_one al",
        "COMP_CWORD": "3",
    }
    assert _nmr(project, env).stdout.split() == ["alpha_two"]


def test_runtime_tags_complete_for_inspect(project):
    words = "nmr inspect model.pkl --runtime numerai_predict_py_3_12"
    env = {"_NMR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "4"}
    offered = _nmr(project, env).stdout.split()
    assert "numerai_predict_py_3_12:a78dedd" in offered
    assert all(tag.startswith("numerai_predict_py_3_12") for tag in offered)
    assert set(offered) <= {
        *runtimes.known_tags(),
        *(a for r in runtimes.runtimes() for a in r.aliases),
    }


def test_a_broken_config_completes_nothing_and_prints_no_error(project):
    root, _ = project
    (root / "numerai.yaml").write_text("models: [unclosed\n")
    env = {"_NMR_COMPLETE": "complete_bash", "COMP_WORDS": "nmr build a", "COMP_CWORD": "2"}
    result = _nmr(project, env)
    assert result.stdout.strip() == "" and result.stderr == ""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_sourcing_the_shown_script_completes_a_slot_name(project):
    script = textwrap.dedent(
        """
        eval "$(nmr --show-completion)"
        COMP_WORDS=(nmr build alpha_t)
        COMP_CWORD=2
        _nmr_completion nmr  # bash passes the command name as $1
        echo "${COMPREPLY[@]}"
        """
    )
    root, env = project
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=root,
        env={**env, "SHELL": "/bin/bash"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["alpha_two"], result.stderr


@pytest.mark.parametrize(
    "words",
    ["nmr test al", "nmr plan --target al", "nmr apply -t al", "nmr logs al"],
)
def test_slot_names_complete_wherever_a_command_takes_a_slot(project, words):
    env = {
        "_NMR_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    assert _nmr(project, env).stdout.split() == ["alpha_one", "alpha_two"]
