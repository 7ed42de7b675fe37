"""`nmr apply` on many slots at once: bounded concurrency, failures isolated per slot."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from builder.deploy.apply import apply_plan, current_plan
from builder.deploy.state import upload_filename
from builder.errors import NmrError
from tests.deploy_support import (
    assigned_filename,
    client_for,
    desired_slot,
    new_account,
    pickle_rows,
    start_sandbox,
)

SLOTS = [f"slot_{i:02d}" for i in range(10)]


@pytest.fixture
def sandbox(tmp_path):
    server, validator = start_sandbox(tmp_path / "sandbox")
    yield server, validator
    server.stop()


def test_ten_slots_apply_concurrently_and_one_injected_failure_leaves_nine_applied(
    sandbox, tmp_path
):
    server, _ = sandbox
    client = client_for(server, new_account(server))
    desired = [desired_slot(tmp_path, slot, 0.5 + i / 100) for i, slot in enumerate(SLOTS)]
    # Every createComputePickleUpload of slot_03 fails (its filename is in the request body).
    response = requests.post(
        f"{server.url}/_sandbox/faults",
        json={
            "target": "createComputePickleUpload",
            "kind": "http500",
            "times": 99,
            "match": "slot_03",
        },
        timeout=5,
    )
    assert response.status_code == 200

    plan = current_plan(client, desired)
    outcomes = apply_plan(
        plan, desired, client, poll_interval=0.02, validation_timeout=30, parallel=4
    )

    assert [o.slot for o in outcomes] == SLOTS
    assert {o.slot for o in outcomes if o.status == "failed"} == {"slot_03"}
    for want in desired:
        if want.slot != "slot_03":
            stem = upload_filename(want.slot, want.sha256)[: -len(".pkl")]
            assert (assigned_filename(server, want.slot) or "").startswith(stem), want.slot
    assert assigned_filename(server, "slot_03") is None


def _uploads_while_validation_is_held(sandbox, tmp_path, parallel: int) -> int:
    """Hold the sandbox's validation, apply four slots, count pickles uploaded meanwhile."""
    server, validator = sandbox
    client = client_for(server, new_account(server))
    desired = [desired_slot(tmp_path, slot, 0.5) for slot in SLOTS[:4]]
    plan = current_plan(client, desired)
    validator.release.clear()
    worker = threading.Thread(
        target=apply_plan,
        args=(plan, desired, client),
        kwargs={"poll_interval": 0.02, "validation_timeout": 30, "parallel": parallel},
    )
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(pickle_rows(server)) < 4:
        time.sleep(0.05)
    time.sleep(0.3)  # a serial apply would have had the time to upload another one
    uploaded = len(pickle_rows(server))
    validator.release.set()
    worker.join(timeout=30)
    return uploaded


def test_parallel_apply_uploads_other_slots_while_one_waits_for_validation(sandbox, tmp_path):
    assert _uploads_while_validation_is_held(sandbox, tmp_path, parallel=4) == 4


def test_parallel_one_applies_slots_one_after_another(sandbox, tmp_path):
    assert _uploads_while_validation_is_held(sandbox, tmp_path, parallel=1) == 1


def test_parallel_below_one_is_refused(sandbox, tmp_path):
    server, _ = sandbox
    client = client_for(server, new_account(server))
    desired = [desired_slot(tmp_path, "slot_00", 0.5)]
    with pytest.raises(NmrError, match="at least 1"):
        apply_plan(current_plan(client, desired), desired, client, parallel=0)
