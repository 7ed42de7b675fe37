"""`nmr` command line. Each module under builder/cli/ registers its commands on ``app``.

Importing a command module registers its commands (one module per stage).
"""

from __future__ import annotations

from builder.cli import build as _build  # noqa: F401  build, inspect, runtimes
from builder.cli import deploy as _deploy  # noqa: F401  plan, apply, status, logs
from builder.cli import project as _project  # noqa: F401  init, validate, data
from builder.cli import sandbox as _sandbox  # noqa: F401  sandbox serve, sandbox account
from builder.cli import test as _test  # noqa: F401  test
from builder.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
