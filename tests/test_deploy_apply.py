"""apply against a real sandbox: convergence, idempotence, and faults that leave the old pickle."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from builder.deploy.apply import apply_plan, check_not_stale, current_plan, project_lock
from builder.deploy.plan import StalePlanError, from_json, to_json
from builder.deploy.state import upload_filename
from builder.errors import NmrError
from tests.deploy_support import (
    assigned_filename,
    client_for,
    desired_slot,
    new_account,
    pickle_rows,
    put_count,
    start_sandbox,
)

SLOT = "alice_model"


@pytest.fixture
def sandbox(tmp_path):
    server, validator = start_sandbox(tmp_path / "sandbox")
    yield server, validator
    server.stop()


@pytest.fixture
def client(sandbox):
    server, _ = sandbox
    return client_for(server, new_account(server))


def _deploy(client, desired, **options):
    plan = current_plan(client, desired)
    options = {"poll_interval": 0.02, "validation_timeout": 20, **options}
    return plan, apply_plan(plan, desired, client, **options)


def _stem(want):
    return upload_filename(want.slot, want.sha256)[: -len(".pkl")]


def _deployed(client, tmp_path, value=0.9):
    """Apply once so the slot holds a first pickle; returns that desired state."""
    first = [desired_slot(tmp_path / "v1", SLOT, value)]
    _, outcomes = _deploy(client, first)
    assert outcomes[0].status == "applied", outcomes[0].message
    return first


def test_first_apply_creates_the_slot_uploads_and_assigns(sandbox, client, tmp_path):
    server, _ = sandbox
    desired = [desired_slot(tmp_path, SLOT, 0.9)]

    plan, outcomes = _deploy(client, desired)

    assert [c.action for c in plan.changes] == ["create"]
    assert outcomes[0].status == "applied" and outcomes[0].uploaded
    assert assigned_filename(server, SLOT).startswith(_stem(desired[0]))


def test_second_apply_changes_nothing_and_uploads_nothing(sandbox, client, tmp_path):
    server, _ = sandbox
    desired = _deployed(client, tmp_path)
    puts = put_count(server)

    plan, outcomes = _deploy(client, desired)

    assert not plan.has_changes
    assert [o.status for o in outcomes] == ["unchanged"]
    assert put_count(server) == puts


def test_changed_artifact_produces_exactly_one_upload(sandbox, client, tmp_path):
    server, _ = sandbox
    _deployed(client, tmp_path)
    puts, pickles = put_count(server), len(pickle_rows(server))
    changed = [desired_slot(tmp_path / "v2", SLOT, 0.7)]

    plan, outcomes = _deploy(client, changed)

    assert [c.action for c in plan.changes] == ["update"]
    assert put_count(server) == puts + 1
    assert len(pickle_rows(server)) == pickles + 1
    assert assigned_filename(server, SLOT).startswith(_stem(changed[0]))


def test_apply_triggers_a_run_when_the_slot_asks_for_it(sandbox, client, tmp_path):
    server, _ = sandbox
    desired = [desired_slot(tmp_path, SLOT, 0.9, trigger=True)]
    _deploy(client, desired)
    kinds = [row[0] for row in server.store.all("SELECT type FROM triggers ORDER BY inserted_at")]
    assert kinds == ["validation", "submission"]


def test_a_failed_local_test_stops_the_slot_before_any_upload(sandbox, client, tmp_path):
    server, _ = sandbox
    desired = [desired_slot(tmp_path, SLOT, 0.9)]
    _, outcomes = _deploy(
        client, desired, local_test=lambda want: (False, "ERROR:root:Pickle function returned None")
    )
    assert outcomes[0].status == "failed"
    assert "local test failed" in outcomes[0].message
    assert put_count(server) == 0


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("createComputePickleUpload", "http500"),  # API 5xx on every retry
        ("computePickleUploadAuth", "hang"),  # the API stops answering (timeout)
        ("upload", "http500"),  # the storage PUT fails
        ("assignPickleToModel", "http500"),  # fails at the very last step
    ],
)
def test_a_fault_leaves_the_old_pickle_assigned_and_a_rerun_converges(
    sandbox, tmp_path, target, kind
):
    server, _ = sandbox
    client = client_for(server, new_account(server), timeout=0.5)
    old = assigned_filename(server, _deployed(client, tmp_path)[0].slot)
    changed = [desired_slot(tmp_path / "v2", SLOT, 0.7)]
    server.inject_fault(target, kind, times=3, seconds=1.0)

    _, outcomes = _deploy(client, changed)

    assert outcomes[0].status == "failed"
    assert assigned_filename(server, SLOT) == old
    server.clear_faults()
    _, outcomes = _deploy(client, changed)
    assert outcomes[0].status == "applied", outcomes[0].message
    assert assigned_filename(server, SLOT).startswith(_stem(changed[0]))
    new_pickles = [p for p in pickle_rows(server) if p["filename"].startswith(_stem(changed[0]))]
    assert len(new_pickles) == 1


def test_failed_remote_validation_keeps_the_old_pickle_and_rerun_revalidates_without_upload(
    sandbox, client, tmp_path
):
    server, validator = sandbox
    old = assigned_filename(server, _deployed(client, tmp_path)[0].slot)
    changed = [desired_slot(tmp_path / "v2", SLOT, 0.7)]
    validator.outcomes.append(
        ("failed", "ERROR:root:Pickle function returned at least 1 NaN prediction")
    )

    _, outcomes = _deploy(client, changed)

    assert outcomes[0].status == "failed"
    assert "Pickle function returned at least 1 NaN prediction" in outcomes[0].message
    assert assigned_filename(server, SLOT) == old
    puts = put_count(server)
    _, outcomes = _deploy(client, changed)
    assert outcomes[0].status == "applied" and not outcomes[0].uploaded
    assert put_count(server) == puts


def test_a_killed_apply_leaves_the_old_pickle_and_a_rerun_converges(sandbox, client, tmp_path):
    server, validator = sandbox
    old = assigned_filename(server, _deployed(client, tmp_path)[0].slot)
    changed = desired_slot(tmp_path / "v2", SLOT, 0.7)
    validator.release.clear()  # the remote validation "takes long": apply sits waiting
    script = tmp_path / "apply_child.py"
    script.write_text(_CHILD_APPLY)
    job = {
        "url": server.url,
        "public_id": client.credentials.public_id,
        "secret_key": client.credentials.secret_key,
        "slot": changed.slot,
        "sha256": changed.sha256,
        "pickle_path": str(changed.pickle_path),
        "runtime": changed.runtime,
    }
    child = subprocess.Popen([sys.executable, str(script), json.dumps(job)], cwd=str(_repo()))
    try:
        _wait_until(
            lambda: any(p["filename"].startswith(_stem(changed)) for p in pickle_rows(server))
        )
        child.kill()
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    validator.release.set()
    server.wait_idle()

    assert assigned_filename(server, SLOT) == old
    puts = put_count(server)
    _, outcomes = _deploy(client, [changed])
    assert outcomes[0].status == "applied" and not outcomes[0].uploaded
    assert put_count(server) == puts
    assert assigned_filename(server, SLOT).startswith(_stem(changed))


def test_a_saved_plan_is_refused_when_the_remote_slot_changed_since(sandbox, client, tmp_path):
    desired = _deployed(client, tmp_path)
    changed = [desired_slot(tmp_path / "v2", SLOT, 0.7)]
    saved = from_json(to_json(current_plan(client, changed)))
    _deploy(client, [desired_slot(tmp_path / "v3", SLOT, 0.5)])  # someone else deploys

    with pytest.raises(StalePlanError, match=f"remote state of slot '{SLOT}' changed"):
        check_not_stale(saved, current_plan(client, changed))
    assert desired  # the first deploy is what the plan was made against


def test_a_saved_plan_is_refused_when_the_pickle_was_rebuilt_since(client, tmp_path):
    _deployed(client, tmp_path)
    planned = [desired_slot(tmp_path / "v2", SLOT, 0.7)]
    saved = current_plan(client, planned)
    rebuilt = [replace(planned[0], sha256="f" * 64)]
    with pytest.raises(StalePlanError, match="the plan was made for"):
        check_not_stale(saved, current_plan(client, rebuilt))


def test_an_unchanged_saved_plan_is_accepted(client, tmp_path):
    _deployed(client, tmp_path)
    planned = [desired_slot(tmp_path / "v2", SLOT, 0.7)]
    saved = from_json(to_json(current_plan(client, planned)))
    check_not_stale(saved, current_plan(client, planned))


def test_a_second_apply_on_the_same_project_refuses_while_the_first_runs(tmp_path):
    with project_lock(tmp_path):
        with pytest.raises(NmrError, match="another nmr apply is running on this project"):
            with project_lock(tmp_path):
                pass
    with project_lock(tmp_path):  # released: the next apply proceeds
        pass


def test_missing_slot_without_deploy_create_is_a_plan_error(client, tmp_path):
    desired = [desired_slot(tmp_path, SLOT, 0.9, create=False)]
    with pytest.raises(NmrError, match="deploy.create: true"):
        current_plan(client, desired)


def _wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


_CHILD_APPLY = """
import json, sys
from pathlib import Path
from builder.deploy.apply import apply_plan, current_plan
from builder.deploy.client import Credentials, NumeraiClient
from builder.deploy.plan import DesiredSlot

job = json.loads(sys.argv[1])
client = NumeraiClient(job["url"], Credentials(job["public_id"], job["secret_key"]))
desired = [DesiredSlot(job["slot"], job["sha256"], Path(job["pickle_path"]), job["runtime"],
                       "v5.2", create=True)]
apply_plan(current_plan(client, desired), desired, client, poll_interval=0.05)
"""


def test_a_pickle_uploaded_outside_nmr_is_drift_and_apply_replaces_it(sandbox, client, tmp_path):
    server, _ = sandbox
    model_id = client.add_model(SLOT)["id"]
    manual = tmp_path / "model.pkl"
    manual.write_bytes(b"uploaded by hand")
    pickle_id = client.upload_pickle(manual, model_id)  # numerapi's flow and file name
    server.wait_idle()
    client.assign(model_id, pickle_id)
    desired = [desired_slot(tmp_path, SLOT, 0.9)]

    plan, outcomes = _deploy(client, desired)

    assert [(c.symbol, c.old_filename.startswith("model-")) for c in plan.changes] == [("!", True)]
    assert outcomes[0].status == "applied"
    assert assigned_filename(server, SLOT).startswith(_stem(desired[0]))


def test_a_pickle_uploaded_for_another_docker_image_is_not_reused(sandbox, client, tmp_path):
    server, _ = sandbox
    first = _deployed(client, tmp_path)
    puts = put_count(server)
    other_runtime = "numerai_predict_py_3_11:a78dedd"
    moved = [replace(first[0], runtime=other_runtime)]  # the same bytes, for another image

    plan, outcomes = _deploy(client, moved)

    assert [c.action for c in plan.changes] == ["update"]
    assert any(reason.startswith("docker image ") for reason in plan.changes[0].reasons)
    assert outcomes[0].status == "applied" and outcomes[0].uploaded
    assert put_count(server) == puts + 1
    image = server.store.one(
        "SELECT i.image, i.tag FROM models m JOIN pickles p ON p.id = m.assigned_pickle_id"
        " JOIN docker_images i ON i.id = p.docker_image_id WHERE m.name = ?",
        (SLOT,),
    )
    assert f"{image['image']}:{image['tag']}" == other_runtime
