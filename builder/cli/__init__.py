"""`nmr` command line. Each module under builder/cli/ registers its commands on ``app``.

The modules are imported in the order of a project's life (write the config, build, test,
deploy), which is the order ``nmr --help`` lists the commands in.
"""

from __future__ import annotations

import importlib

from builder.cli.app import app

STAGES = (
    "builder.cli.project",  # init, validate, data
    "builder.cli.build",  # build, inspect, runtimes
    "builder.cli.test",  # test
    "builder.cli.deploy",  # plan, apply, status, logs
    "builder.cli.sandbox",  # sandbox serve, sandbox account
)
for _stage in STAGES:
    importlib.import_module(_stage)


def main() -> None:
    app()


__all__ = ["app", "main"]
