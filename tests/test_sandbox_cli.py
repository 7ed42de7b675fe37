"""`nmr sandbox serve` and `nmr sandbox account create` as a user runs them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests
from typer.testing import CliRunner

from builder.cli import app
from builder.deploy.client import ApiError, Credentials, NumeraiClient

NMR = [sys.executable, "-c", "from builder.cli import main; main()"]


def _exports(text: str) -> dict[str, str]:
    return dict(re.findall(r"^export (NUMERAI_\w+)=(\S+)$", text, flags=re.M))


def test_account_create_prints_shell_exportable_keys(tmp_path):
    result = CliRunner().invoke(app, ["sandbox", "account", "create", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    keys = _exports(result.output)
    assert set(keys) == {"NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY"}


def test_account_create_refuses_a_taken_username(tmp_path):
    runner = CliRunner()
    args = ["sandbox", "account", "create", "--dir", str(tmp_path), "--username", "alice"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "sandbox account 'alice' already exists" in result.output


@pytest.fixture
def served(tmp_path):
    process = subprocess.Popen(
        [*NMR, "sandbox", "serve", "--port", "0", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for _ in range(5):
            line = process.stdout.readline()
            match = re.match(r"export NUMERAI_API_URL=(\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url, process.stderr.read() if process.poll() is not None else "no URL printed"
        yield url, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_served_sandbox_accepts_keys_from_account_create_and_refuses_others(served):
    url, directory = served
    created = subprocess.run(
        [*NMR, "sandbox", "account", "create", "--dir", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    keys = _exports(created.stdout)
    client = NumeraiClient(url, Credentials(keys["NUMERAI_PUBLIC_ID"], keys["NUMERAI_SECRET_KEY"]))
    client.add_model("served_model")
    assert [m["name"] for m in client.models()] == ["served_model"]

    stranger = NumeraiClient(url, Credentials(keys["NUMERAI_PUBLIC_ID"], "wrong"), retries=1)
    with pytest.raises(ApiError, match="authenticated"):
        stranger.models()


def test_served_sandbox_injects_faults_posted_to_its_fault_endpoint(served):
    url, directory = served
    created = subprocess.run(
        [*NMR, "sandbox", "account", "create", "--dir", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    keys = _exports(created.stdout)
    credentials = Credentials(keys["NUMERAI_PUBLIC_ID"], keys["NUMERAI_SECRET_KEY"])
    fault = {"target": "account", "kind": "http500", "times": 2}
    requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5).raise_for_status()

    with pytest.raises(ApiError, match="after 2 attempts: HTTP 500"):
        NumeraiClient(url, credentials, retries=2, backoff=0).models()
    assert NumeraiClient(url, credentials).models() == []
