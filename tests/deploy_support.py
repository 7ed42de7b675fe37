"""Shared pieces of the deploy and sandbox tests: a real sandbox on loopback, pickles, clients.

The validator stand-in decides the outcome of the sandbox's validation without starting the
numerai-predict emulation (that path has its own test in test_sandbox_server.py).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd

from builder.deploy.client import Credentials, NumeraiClient
from builder.deploy.plan import DesiredSlot
from builder.runtimes import default_tag
from builder.sandbox.server import SandboxServer


class ScriptedValidator:
    """Answers ``success`` unless told otherwise; records what it validated."""

    def __init__(self):
        self.outcomes: list[tuple[str, str]] = []  # consumed first, then success
        self.seen: list[tuple[Path, str]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, pickle_path: Path, runtime_tag: str, on_status=None) -> tuple[str, str]:
        self.seen.append((Path(pickle_path), runtime_tag))
        self.release.wait(timeout=30)
        if self.outcomes:
            return self.outcomes.pop(0)
        return "success", "INFO:root:Generated 10 predictions"


def start_sandbox(directory: Path) -> tuple[SandboxServer, ScriptedValidator]:
    validator = ScriptedValidator()
    return SandboxServer(directory, validator=validator).start(), validator


def client_for(server: SandboxServer, credentials: Credentials, **options) -> NumeraiClient:
    options = {"timeout": 5.0, "retries": 3, "backoff": 0.01, **options}
    return NumeraiClient(server.url, credentials, **options)


def new_account(server: SandboxServer, username: str | None = None) -> Credentials:
    _, public_id, secret_key = server.create_account(username)
    return Credentials(public_id, secret_key)


def write_pickle(path: Path, value: float) -> str:
    """A valid 1-argument model pickle (predictions 0..value); returns its sha256."""

    def predict(live_features: pd.DataFrame) -> pd.DataFrame:
        ramp = np.linspace(0.0, value, len(live_features))
        return pd.DataFrame({"prediction": ramp}, index=live_features.index)

    data = cloudpickle.dumps(predict)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def desired_slot(
    directory: Path, slot: str, value: float, *, create: bool = True, trigger: bool = False
) -> DesiredSlot:
    path = directory / "build" / slot / "model.pkl"
    sha256 = write_pickle(path, value)
    return DesiredSlot(
        slot=slot,
        sha256=sha256,
        pickle_path=path,
        runtime=default_tag(),
        data_version="v5.2",
        create=create,
        trigger=trigger,
    )


def pickle_rows(server: SandboxServer) -> list[dict]:
    return [dict(row) for row in server.store.all("SELECT * FROM pickles ORDER BY inserted_at")]


def put_count(server: SandboxServer) -> int:
    return server.store.one("SELECT COUNT(*) FROM puts")[0]


def assigned_filename(server: SandboxServer, slot: str) -> str | None:
    row = server.store.one(
        "SELECT p.filename FROM models m LEFT JOIN pickles p ON p.id = m.assigned_pickle_id"
        " WHERE m.name = ?",
        (slot,),
    )
    return row["filename"] if row else None


def git(project: Path, *args: str) -> None:
    """Run git in ``project`` as a CI runner would (an identity for commits, output captured)."""
    import subprocess

    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def sample_manifest(sha256: str, proportion: float = 0.5, slot: str = "my_model") -> dict:
    """A small build manifest: one neutralize step whose proportion the tests vary."""
    from builder import manifest

    return manifest.make(
        slot=slot,
        config={"postprocessing": [{"name": "neutralize", "params": {"proportion": proportion}}]},
        features=["feature_0001"],
        runtime=default_tag(),
        image=default_tag().partition(":")[0],
        data_version="v5.2",
        artifacts=[],
        kernels_sha256="k" * 64,
        nmr_version="0.1.0",
        pickle_sha256=sha256,
    )
