"""The API client against a real sandbox: retries, timeouts, reconciled creates, error text."""

from __future__ import annotations

import pytest

from builder.deploy.client import DEFAULT_API_URL, ApiError, Credentials, NumeraiClient
from builder.errors import NmrError
from tests.deploy_support import client_for, new_account, pickle_rows, start_sandbox, write_pickle


@pytest.fixture
def sandbox(tmp_path):
    server, validator = start_sandbox(tmp_path / "sandbox")
    yield server
    server.stop()


@pytest.fixture
def client(sandbox):
    return client_for(sandbox, new_account(sandbox))


def test_a_5xx_answer_is_retried_until_it_succeeds(sandbox, client):
    sandbox.inject_fault("account", "http500", times=2)
    assert client.models() == []


def test_persistent_5xx_fails_with_one_sentence_naming_the_operation(sandbox, client):
    sandbox.inject_fault("account", "http500", times=10)
    with pytest.raises(ApiError) as failure:
        client.models()
    assert str(failure.value) == (
        f"Numerai API account failed after 3 attempts: HTTP 500 from {sandbox.url}"
    )


def test_a_request_that_hangs_times_out_and_is_retried(sandbox):
    client = client_for(sandbox, new_account(sandbox), timeout=0.3)
    sandbox.inject_fault("account", "hang", times=1, seconds=1.0)
    assert client.models() == []


def test_a_dropped_connection_is_retried(sandbox, client):
    sandbox.inject_fault("computePickleDockerImages", "drop", times=1)
    assert client.docker_images()


def test_graphql_error_becomes_one_sentence_naming_the_operation(client):
    with pytest.raises(ApiError) as failure:
        client.add_model("Not A Valid Name")
    assert str(failure.value) == (
        "Numerai API addModel failed: invalid model name 'Not A Valid Name': "
        "use 1-32 lowercase letters, digits or underscores"
    )


def test_create_pickle_whose_response_was_lost_is_not_registered_twice(sandbox, client, tmp_path):
    model_id = client.add_model("alice_model")["id"]
    path = tmp_path / "model.pkl"
    write_pickle(path, 0.5)
    sandbox.inject_fault("createComputePickleUpload", "lost_response", times=1)

    pickle_id = client.upload_pickle(path, model_id)

    assert [row["id"] for row in pickle_rows(sandbox)] == [pickle_id]


def test_add_model_whose_response_was_lost_returns_the_created_slot(sandbox, client):
    sandbox.inject_fault("addModel", "lost_response", times=1)
    created = client.add_model("alice_model")
    assert [m["id"] for m in client.models()] == [created["id"]]


def test_upload_retries_a_5xx_from_the_storage_url(sandbox, client, tmp_path):
    model_id = client.add_model("alice_model")["id"]
    path = tmp_path / "model.pkl"
    write_pickle(path, 0.5)
    sandbox.inject_fault("upload", "http500", times=1)
    assert client.upload_pickle(path, model_id)


def test_upload_to_an_expired_url_fails_naming_the_upload(client):
    with pytest.raises(ApiError, match="^Numerai API upload failed: HTTP 403"):
        client.put_file(f"{client.url}/uploads/expired", b"x")


def test_unreachable_endpoint_says_it_cannot_connect():
    client = NumeraiClient("http://127.0.0.1:9", Credentials("P", "S"), retries=2, backoff=0)
    with pytest.raises(ApiError, match="cannot connect to http://127.0.0.1:9"):
        client.models()


def test_credentials_and_endpoint_come_from_the_environment(monkeypatch, sandbox):
    credentials = new_account(sandbox)
    monkeypatch.setenv("NUMERAI_PUBLIC_ID", credentials.public_id)
    monkeypatch.setenv("NUMERAI_SECRET_KEY", credentials.secret_key)
    monkeypatch.setenv("NUMERAI_API_URL", sandbox.url)
    client = NumeraiClient.from_env()
    assert client.url == sandbox.url
    assert client.models() == []


def test_default_endpoint_is_numerais_api(monkeypatch):
    monkeypatch.setenv("NUMERAI_PUBLIC_ID", "P")
    monkeypatch.setenv("NUMERAI_SECRET_KEY", "S")
    monkeypatch.delenv("NUMERAI_API_URL", raising=False)
    assert NumeraiClient.from_env().url == DEFAULT_API_URL == "https://api-tournament.numer.ai"


def test_missing_credentials_name_both_variables(monkeypatch):
    monkeypatch.delenv("NUMERAI_PUBLIC_ID", raising=False)
    monkeypatch.delenv("NUMERAI_SECRET_KEY", raising=False)
    with pytest.raises(NmrError, match="set NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY"):
        NumeraiClient.from_env()


@pytest.mark.parametrize("url", ["api-tournament.numer.ai", "ftp://127.0.0.1"])
def test_an_endpoint_that_is_not_an_http_url_is_named(monkeypatch, url):
    monkeypatch.setenv("NUMERAI_PUBLIC_ID", "P")
    monkeypatch.setenv("NUMERAI_SECRET_KEY", "S")
    monkeypatch.setenv("NUMERAI_API_URL", url)
    with pytest.raises(NmrError, match=f"NUMERAI_API_URL '{url}' is not an http"):
        NumeraiClient.from_env()


def test_the_secret_is_not_in_the_credentials_repr():
    assert "s3cr3t" not in repr(Credentials("PUBLIC", "s3cr3t"))


def test_an_error_echoing_the_secret_is_scrubbed(sandbox):
    credentials = new_account(sandbox)
    client = client_for(sandbox, credentials)
    # A model name containing the secret comes back inside the server's error message.
    with pytest.raises(ApiError) as failure:
        client.add_model(credentials.secret_key)
    assert credentials.secret_key not in str(failure.value)
    assert "***" in str(failure.value)
