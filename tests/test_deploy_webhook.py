"""The compute-webhook rule: the sandbox enforces it, plan shows it, apply respects it.

Numerai documents that a slot with a compute (submission) webhook takes no pickle until the
webhook is disabled, and that an uploaded slot takes no webhook afterwards. The webhook is set
with numerapi's own ``set_submission_webhook``, against a real sandbox on loopback.
"""

from __future__ import annotations

from dataclasses import replace

import numerapi
import numerapi.base_api
import pytest

from builder.deploy.apply import apply_plan, current_plan
from builder.deploy.plan import render_markdown, render_text
from tests.deploy_support import (
    assigned_filename,
    client_for,
    desired_slot,
    new_account,
    put_count,
    start_sandbox,
)

HOOK = "https://hooks.example.com/compute/secret-token-123"


@pytest.fixture
def served(tmp_path, monkeypatch):
    server, validator = start_sandbox(tmp_path / "sandbox")
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
    yield server
    server.stop()


@pytest.fixture
def accounts(served):
    credentials = new_account(served)
    api = numerapi.NumerAPI(credentials.public_id, credentials.secret_key)
    return api, client_for(served, credentials)


def _slot_with_webhook(api, client, name: str) -> str:
    model_id = client.add_model(name)["id"]
    assert api.set_submission_webhook(model_id, HOOK) is True
    return model_id


def _apply(client, desired, **options):
    plan = current_plan(client, desired)
    return plan, apply_plan(plan, desired, client, poll_interval=0.02, validation_timeout=20)


def test_numerapi_sets_a_webhook_and_the_slot_exposes_it(served, accounts):
    api, client = accounts
    _slot_with_webhook(api, client, "hooked")
    model = next(m for m in client.models() if m["name"] == "hooked")
    assert model["submissionWebhook"] == HOOK


def test_numerapi_clears_a_webhook_with_none(served, accounts):
    api, client = accounts
    model_id = _slot_with_webhook(api, client, "hooked")
    assert api.set_submission_webhook(model_id, None) is True
    assert next(m for m in client.models() if m["name"] == "hooked")["submissionWebhook"] is None


def test_sandbox_refuses_an_upload_to_a_slot_with_a_webhook(served, accounts, tmp_path):
    api, client = accounts
    model_id = _slot_with_webhook(api, client, "hooked")
    path = tmp_path / "model.pkl"
    path.write_bytes(b"pickle bytes")
    with pytest.raises(ValueError, match="webhook"):
        api.model_upload(str(path), model_id=model_id)
    assert served.store.one("SELECT COUNT(*) FROM pickles")[0] == 0


def test_sandbox_refuses_a_webhook_on_a_slot_that_has_an_upload(served, accounts, tmp_path):
    api, client = accounts
    model_id = client.add_model("uploaded")["id"]
    path = tmp_path / "model.pkl"
    path.write_bytes(b"pickle bytes")
    api.model_upload(str(path), model_id=model_id)
    with pytest.raises(ValueError, match="cannot take a submission webhook"):
        api.set_submission_webhook(model_id, HOOK)


def test_plan_flags_a_slot_whose_webhook_would_refuse_the_upload(served, accounts, tmp_path):
    api, client = accounts
    _slot_with_webhook(api, client, "hooked")
    plan = current_plan(client, [desired_slot(tmp_path, "hooked", 0.9)])
    text = render_text(plan)
    assert "  ! hooked: compute webhook set; the upload would be refused" in text
    assert "1 blocked by a compute webhook" in text.splitlines()[-1]
    assert "compute webhook set; the upload would be refused" in render_markdown(plan)


def test_plan_never_shows_the_webhook_url(served, accounts, tmp_path):
    from builder.deploy.plan import to_json

    api, client = accounts
    _slot_with_webhook(api, client, "hooked")
    plan = current_plan(client, [desired_slot(tmp_path, "hooked", 0.9)])
    for rendered in (render_text(plan), render_markdown(plan), to_json(plan)):
        assert "secret-token-123" not in rendered


def test_apply_refuses_a_webhook_slot_before_uploading_and_other_slots_proceed(
    served, accounts, tmp_path
):
    api, client = accounts
    _slot_with_webhook(api, client, "hooked")
    desired = [desired_slot(tmp_path, "hooked", 0.9), desired_slot(tmp_path, "plain", 0.8)]

    _, outcomes = _apply(client, desired)

    hooked, plain = outcomes
    assert hooked.status == "failed" and "disable_webhook: true" in hooked.message
    assert plain.status == "applied"
    assert put_count(served) == 1  # only the plain slot's pickle was sent


def test_apply_leaves_the_assigned_pickle_of_a_webhook_slot_untouched(served, accounts, tmp_path):
    _, client = accounts
    first = [desired_slot(tmp_path / "v1", "hooked", 0.9)]
    _apply(client, first)
    before = assigned_filename(served, "hooked")
    # A slot that holds a pickle and (set outside the API's rules, e.g. on the website) a
    # webhook: written straight into the sandbox's database.
    model_id = next(m["id"] for m in client.models() if m["name"] == "hooked")
    served.store.execute("INSERT INTO submission_webhooks VALUES (?, ?)", (model_id, HOOK))
    puts = put_count(served)

    _, outcomes = _apply(client, [desired_slot(tmp_path / "v2", "hooked", 0.5)])

    assert outcomes[0].status == "failed"
    assert assigned_filename(served, "hooked") == before
    assert put_count(served) == puts


def test_apply_with_disable_webhook_clears_it_first_and_deploys(served, accounts, tmp_path):
    api, client = accounts
    _slot_with_webhook(api, client, "hooked")
    desired = [replace(desired_slot(tmp_path, "hooked", 0.9), disable_webhook=True)]
    said = []
    plan = current_plan(client, desired)
    assert "~ compute webhook: set -> (none), cleared before the upload" in render_text(plan)

    outcomes = apply_plan(
        plan,
        desired,
        client,
        poll_interval=0.02,
        validation_timeout=20,
        progress=lambda slot, message: said.append(message),
    )

    assert outcomes[0].status == "applied", outcomes[0].message
    assert "clearing the compute webhook (deploy.disable_webhook: true)" in said
    model = next(m for m in client.models() if m["name"] == "hooked")
    assert model["submissionWebhook"] is None
    assert model["computePickleUpload"]["filename"].startswith("hooked-nmr-")


def test_an_upload_refused_for_a_webhook_set_after_the_plan_is_explained(
    served, accounts, tmp_path
):
    api, client = accounts
    model_id = client.add_model("late")["id"]
    desired = [desired_slot(tmp_path, "late", 0.9)]
    plan = current_plan(client, desired)  # made before the webhook existed (or was readable)
    api.set_submission_webhook(model_id, HOOK)

    outcomes = apply_plan(plan, desired, client, poll_interval=0.02, validation_timeout=20)

    message = outcomes[0].message
    assert outcomes[0].status == "failed"
    assert message.startswith("Numerai refused the upload:") and "disable_webhook: true" in message
