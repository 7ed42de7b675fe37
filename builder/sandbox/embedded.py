"""The sandbox embedded in a project: ``nmr plan/apply/status/logs --sandbox``.

State lives in ``<project>/.nmr/sandbox/`` (git-ignored), so a second ``nmr apply --sandbox``
sees what the first deployed. The command starts the server on an ephemeral loopback port,
talks to it, and stops it. The account's keys are kept in ``credentials.json`` (mode 0600) and
never printed. Validation runs the pickle on the project's live data (or live data synthesized
for the configured features), through the same runner as ``nmr test``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from builder.config.model import Project
from builder.deploy.client import Credentials, NumeraiClient
from builder.sandbox.server import SandboxServer
from builder.sandbox.worker import runner_validator


def sandbox_dir(project: Project) -> Path:
    return project.root / ".nmr" / "sandbox"


@contextlib.contextmanager
def embedded_client(project: Project, **client_options) -> Iterator[NumeraiClient]:
    """A client for the project's embedded sandbox, served only while the block runs."""
    from builder.deploy.desired import live_data

    directory = sandbox_dir(project)
    live = live_data(project, list(project.models), directory)
    benchmarks = project.data.live_benchmarks
    if benchmarks is not None and not Path(benchmarks).exists():
        benchmarks = None
    server = SandboxServer(directory, validator=runner_validator(live, benchmarks))
    server.store.add_data_version(project.data.version)
    for model in project.models:
        if model.deploy.data_version:
            server.store.add_data_version(model.deploy.data_version)
    credentials = _credentials(server, directory / "credentials.json")
    server.start()
    try:
        yield NumeraiClient(server.url, credentials, **client_options)
    finally:
        server.stop()


def _credentials(server: SandboxServer, path: Path) -> Credentials:
    if path.exists():
        saved = json.loads(path.read_text())
        credentials = Credentials(saved["public_id"], saved["secret_key"])
        if server.store.authenticate(credentials.public_id, credentials.secret_key):
            return credentials
    _, public_id, secret_key = server.create_account()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"public_id": public_id, "secret_key": secret_key}, handle)
    return Credentials(public_id, secret_key)
