"""`nmr` command line. Each module under builder/cli/ registers its commands on ``app``.

The modules are imported in the order of a project's life (write the config, build, test,
deploy), which is the order ``nmr --help`` lists the commands in.
"""

from __future__ import annotations

import importlib
import os
import sys

from builder.cli.app import app

STAGES = (
    "builder.cli.project",  # init, validate, data
    "builder.cli.build",  # build, inspect, runtimes, supported
    "builder.cli.test",  # test
    "builder.cli.deploy",  # plan, apply, status, logs
    "builder.cli.sandbox",  # sandbox serve, sandbox account
)
for _stage in STAGES:
    importlib.import_module(_stage)


def main() -> None:
    _accept_click_completion_names()
    app(args=global_options_first(sys.argv[1:]), prog_name="nmr")


def _accept_click_completion_names() -> None:
    """Let ``_NMR_COMPLETE=bash_source`` (click's documented spelling) mean Typer's
    ``source_bash``: Typer reads the instruction before the shell, click after it."""
    value = os.environ.get("_NMR_COMPLETE", "")
    shell, _, instruction = value.partition("_")
    if shell in ("bash", "zsh", "fish") and instruction in ("source", "complete"):
        os.environ["_NMR_COMPLETE"] = f"{instruction}_{shell}"


def global_options_first(args: list[str]) -> list[str]:
    """Move ``--debug`` before the command, so ``nmr validate --debug`` works as users type it.

    Typer only accepts the app's own options before the command name; ``--debug`` is the one a
    user adds to a command that just failed.
    """
    if "--debug" not in args:
        return args
    return ["--debug", *(arg for arg in args if arg != "--debug")]


__all__ = ["app", "main"]
