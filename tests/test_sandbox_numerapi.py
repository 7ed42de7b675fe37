"""The official numerapi client, pointed at the sandbox, works unchanged."""

from __future__ import annotations

import numerapi
import numerapi.base_api
import pytest

from builder.runtimes import default_tag, get, known_tags
from tests.deploy_support import new_account, start_sandbox


@pytest.fixture
def served(tmp_path, monkeypatch):
    server, validator = start_sandbox(tmp_path / "sandbox")
    # numerapi reads this module global at call time; there is no URL argument (docs/design/numerai.md §4.1).
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
    yield server, validator
    server.stop()


def _api(server, username="alice"):
    credentials = new_account(server, username)
    api = numerapi.NumerAPI(credentials.public_id, credentials.secret_key)
    api.raw_query(
        "mutation($name: String!) { addModel(name: $name, tournament: 8) { id } }",
        {"name": f"{username}_model"},
        authorization=True,
    )
    return api


def test_numerapi_get_models_lists_the_accounts_classic_slots(served):
    server, _ = served
    api = _api(server)
    models = api.get_models()
    assert list(models) == ["alice_model"]


def test_numerapi_model_upload_registers_a_pickle_that_validates(served, tmp_path):
    server, validator = served
    api = _api(server)
    model_id = api.get_models()["alice_model"]
    path = tmp_path / "model.pkl"
    path.write_bytes(b"pickle bytes")

    pickle_id = api.model_upload(str(path), model_id=model_id)
    server.wait_idle()

    row = server.store.one("SELECT * FROM pickles WHERE id = ?", (pickle_id,))
    assert row["model_id"] == model_id
    assert row["filename"].startswith("model-") and row["filename"].endswith(".pkl")
    assert row["validation_status"] == "validated"
    stored = server.store.file_path(row["account_id"], row["filename"])
    assert stored.read_bytes() == b"pickle bytes"
    assert validator.seen[0][1] == default_tag()


def test_numerapi_model_upload_resolves_data_version_and_docker_image_by_name(served, tmp_path):
    server, validator = served
    api = _api(server)
    path = tmp_path / "model.pkl"
    path.write_bytes(b"x")
    older = next(tag for tag in known_tags() if get(tag).python == "3.11")

    api.model_upload(
        str(path),
        model_id=api.get_models()["alice_model"],
        data_version="v5.1",
        docker_image="Python 3.11",
    )
    server.wait_idle()

    assert validator.seen[0][1] == older
    name = server.store.one(
        "SELECT d.name FROM pickles p JOIN data_versions d ON d.id = p.data_version_id"
    )[0]
    assert name == "v5.1"


def test_numerapi_model_upload_data_versions_maps_names_to_ids(served):
    server, _ = served
    versions = _api(server).model_upload_data_versions()
    assert {"v5.0", "v5.1", "v5.2"} <= set(versions)
    assert all(len(value) == 36 for value in versions.values())


def test_numerapi_model_upload_docker_images_offers_one_image_per_runtime(served):
    server, _ = served
    images = _api(server).model_upload_docker_images()
    assert set(images) == {f"Python {get(tag).python}" for tag in known_tags()}


def test_numerapi_with_wrong_secret_gets_an_authentication_error(served):
    server, _ = served
    credentials = new_account(server)
    api = numerapi.NumerAPI(credentials.public_id, "not-the-secret")
    with pytest.raises(ValueError, match="authenticated"):
        api.get_models()
