"""The sandbox server: auth, account isolation, uploads, validation statuses and logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from builder.deploy.client import ApiError, Credentials, NumeraiClient
from builder.sandbox.server import SandboxServer
from builder.sandbox.worker import runner_validator
from tests.deploy_support import client_for, new_account, start_sandbox, write_pickle
from tests.synthdata import numerai_frame, numerai_like


@pytest.fixture
def sandbox(tmp_path):
    server, validator = start_sandbox(tmp_path / "sandbox")
    yield server, validator
    server.stop()


def _slot_with_pickle(client: NumeraiClient, tmp_path, name="alice_model"):
    model_id = client.add_model(name)["id"]
    path = tmp_path / "model.pkl"
    write_pickle(path, 0.9)
    pickle_id = client.upload_pickle(path, model_id)
    return model_id, pickle_id


def test_request_without_authorization_is_refused(sandbox):
    server, _ = sandbox
    client = NumeraiClient(server.url, None, retries=1)
    with pytest.raises(ApiError, match="account failed: You must be authenticated"):
        client.models()


def test_one_account_never_sees_another_accounts_models(sandbox, tmp_path):
    server, _ = sandbox
    alice = client_for(server, new_account(server, "alice"))
    bob = client_for(server, new_account(server, "bob"))
    model_id, pickle_id = _slot_with_pickle(alice, tmp_path)

    assert bob.models() == []
    assert bob.pickles() == []
    with pytest.raises(ApiError, match=f"model {model_id} not found"):
        bob.upload_auth("model.pkl", model_id)
    with pytest.raises(ApiError, match="not found"):
        bob.assign(model_id, pickle_id)


def test_validation_records_pending_running_validating_success(sandbox, tmp_path):
    server, _ = sandbox
    client = client_for(server, new_account(server))
    _, pickle_id = _slot_with_pickle(client, tmp_path)
    server.wait_idle()

    (pickle,) = client.pickles(pickle_id=pickle_id)
    assert pickle["validationStatus"] == "validated"
    (trigger,) = pickle["triggers"]
    assert [s["status"] for s in trigger["statuses"]] == [
        "pending",
        "running",
        "validating",
        "success",
    ]


def test_failed_validation_keeps_the_log_and_a_description(sandbox, tmp_path):
    server, validator = sandbox
    validator.outcomes.append(
        ("failed", "INFO:root:Loading model\nERROR:root:Pickle function returned 0 predictions")
    )
    client = client_for(server, new_account(server))
    _, pickle_id = _slot_with_pickle(client, tmp_path)
    server.wait_idle()

    (pickle,) = client.pickles(pickle_id=pickle_id)
    assert pickle["validationStatus"] == "failed"
    last = pickle["triggers"][-1]["statuses"][-1]
    assert last["description"] == "ERROR:root:Pickle function returned 0 predictions"
    messages = [entry["message"] for entry in client.trigger_logs(pickle["triggers"][-1]["id"])]
    assert messages == [
        "INFO:root:Loading model",
        "ERROR:root:Pickle function returned 0 predictions",
    ]


def test_assign_refuses_a_pickle_that_has_not_validated(sandbox, tmp_path):
    server, validator = sandbox
    validator.release.clear()  # hold the validation in "running"
    client = client_for(server, new_account(server))
    model_id, pickle_id = _slot_with_pickle(client, tmp_path)
    try:
        with pytest.raises(ApiError, match="not 'validated'"):
            client.assign(model_id, pickle_id)
    finally:
        validator.release.set()


def test_upload_to_a_forged_url_is_refused_with_403(sandbox):
    server, _ = sandbox
    response = requests.put(f"{server.url}/uploads/forged-token", data=b"x", timeout=5)
    assert response.status_code == 403


def test_register_without_uploading_the_file_first_is_refused(sandbox):
    server, _ = sandbox
    client = client_for(server, new_account(server))
    model_id = client.add_model("alice_model")["id"]
    auth = client.upload_auth("model.pkl", model_id)
    with pytest.raises(ApiError, match="no uploaded file named"):
        client.create_pickle(auth["filename"], model_id)


def test_add_model_refuses_a_name_another_account_holds(sandbox):
    server, _ = sandbox
    client_for(server, new_account(server, "alice")).add_model("shared_name")
    bob = client_for(server, new_account(server, "bob"))
    with pytest.raises(
        ApiError, match="addModel failed: model name 'shared_name' is already taken"
    ):
        bob.add_model("shared_name")


def test_state_survives_a_server_restart(tmp_path):
    first, _ = start_sandbox(tmp_path / "sandbox")
    credentials = new_account(first)
    client_for(first, credentials).add_model("alice_model")
    first.stop()

    second, _ = start_sandbox(tmp_path / "sandbox")
    try:
        assert [m["name"] for m in client_for(second, credentials).models()] == ["alice_model"]
    finally:
        second.stop()


def test_runner_validator_runs_the_pickle_through_the_numerai_predict_emulation(tmp_path):
    X, _ = numerai_like(n_rows=50, n_features=4)
    live = tmp_path / "live.parquet"
    numerai_frame(X).to_parquet(live)
    validator = runner_validator(live, python=sys.executable)
    pickle = tmp_path / "model.pkl"
    write_pickle(pickle, 0.9)

    stages = []
    status, log = validator(pickle, "ignored:tag", stages.append)

    assert status == "success", log
    assert "Generated 50 predictions" in log
    assert "Running" in stages


def test_runner_validator_removes_its_run_directory(tmp_path, monkeypatch):
    import tempfile

    X, _ = numerai_like(n_rows=50, n_features=4)
    live = tmp_path / "live.parquet"
    numerai_frame(X).to_parquet(live)
    pickle = tmp_path / "model.pkl"
    write_pickle(pickle, 0.9)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    status, log = runner_validator(live, python=sys.executable)(pickle, "ignored:tag", None)

    assert status == "success", log
    assert list(scratch.iterdir()) == []


def test_server_without_live_data_reports_a_validation_error(tmp_path):
    server = SandboxServer(tmp_path / "sandbox").start()
    try:
        _, public_id, secret_key = server.create_account()
        client = client_for(server, Credentials(public_id, secret_key))
        _, pickle_id = _slot_with_pickle(client, tmp_path)
        server.wait_idle()
        (pickle,) = client.pickles(pickle_id=pickle_id)
        assert pickle["validationStatus"] == "failed"
        assert "no live data" in pickle["triggers"][-1]["statuses"][-1]["description"]
    finally:
        server.stop()


def test_a_validation_cut_short_by_a_killed_server_is_resumed_on_restart(tmp_path):
    script = tmp_path / "serve_child.py"
    script.write_text(_KILLED_SERVER)
    child = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "sandbox"), str(tmp_path / "model.pkl")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    try:
        assert child.stdout.readline().strip() == "validating"
    finally:
        child.kill()
        child.wait(timeout=10)

    server, validator = start_sandbox(tmp_path / "sandbox")
    try:
        server.wait_idle()
        (row,) = server.store.all("SELECT validation_status FROM pickles")
        assert row["validation_status"] == "validated"
        assert len(validator.seen) == 1
    finally:
        server.stop()


_KILLED_SERVER = """
import sys, time
from pathlib import Path
from builder.sandbox.server import SandboxServer
from builder.deploy.client import Credentials, NumeraiClient

def stuck(path, tag, on_status=None):
    print("validating", flush=True)
    time.sleep(600)

server = SandboxServer(Path(sys.argv[1]), validator=stuck).start()
_, public_id, secret_key = server.create_account()
client = NumeraiClient(server.url, Credentials(public_id, secret_key))
Path(sys.argv[2]).write_bytes(b"pickle")
client.upload_pickle(Path(sys.argv[2]), client.add_model("killed")["id"])
time.sleep(600)
"""
