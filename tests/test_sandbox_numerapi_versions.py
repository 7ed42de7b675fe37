"""numerapi at the image's pin (2.20.7) and at the current release line (3.x) against the sandbox.

Each version runs in its own Python process (the 2.20.7 one from ``pip install --no-deps
--target``, cached under ~/.cache/nmr-tests, its dependencies from this venv) and drives the
model-upload surface nmr relies on: get_models, model_upload_data_versions,
model_upload_docker_images, model_upload with data_version and docker_image, and
set_submission_webhook (set, refused after the upload, cleared).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.deploy_support import new_account, start_sandbox

IMAGE_PIN = "2.20.7"  # numerapi in the numerai_predict images' pins

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numerapi, numerapi.base_api
    url, public_id, secret_key, pickle_path = sys.argv[1:5]
    numerapi.base_api.API_TOURNAMENT_URL = url
    api = numerapi.NumerAPI(public_id, secret_key)
    api.raw_query(
        'mutation { addModel(name: "versioned", tournament: 8) { id } }', authorization=True
    )
    out = {"numerapi": numerapi.__file__}
    model_id = api.get_models()["versioned"]
    out["data_versions"] = sorted(api.model_upload_data_versions())
    out["docker_images"] = sorted(api.model_upload_docker_images())
    out["webhook_set"] = api.set_submission_webhook(model_id, "https://hooks.example.com/x")
    try:
        api.model_upload(pickle_path, model_id=model_id)
        out["upload_with_webhook"] = "accepted"
    except ValueError as error:
        out["upload_with_webhook"] = str(error)
    out["webhook_cleared"] = api.set_submission_webhook(model_id, None)
    out["pickle_id"] = api.model_upload(
        pickle_path, model_id=model_id, data_version="v5.1", docker_image="Python 3.11"
    )
    try:
        api.set_submission_webhook(model_id, "https://hooks.example.com/x")
        out["webhook_after_upload"] = "accepted"
    except ValueError as error:
        out["webhook_after_upload"] = str(error)
    print(json.dumps(out))
    """
)


def _pinned_numerapi() -> Path:
    target = Path.home() / ".cache" / "nmr-tests" / f"numerapi-{IMAGE_PIN}"
    if not (target / "numerapi" / "__init__.py").is_file():
        installed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                f"numerapi=={IMAGE_PIN}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if installed.returncode != 0:
            pytest.skip(f"cannot install numerapi {IMAGE_PIN}: {installed.stderr.strip()[-200:]}")
    return target


@pytest.fixture
def served(tmp_path):
    server, _ = start_sandbox(tmp_path / "sandbox")
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("version", [IMAGE_PIN, "3.x"])
def test_numerapi_drives_the_upload_surface_of_the_sandbox(served, tmp_path, version):
    env = dict(os.environ)
    if version == IMAGE_PIN:
        env["PYTHONPATH"] = os.pathsep.join([str(_pinned_numerapi()), env.get("PYTHONPATH", "")])
    credentials = new_account(served)
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"pickle bytes")

    run = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            served.url,
            credentials.public_id,
            credentials.secret_key,
            str(pickle),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    if version == IMAGE_PIN:
        assert f"numerapi-{IMAGE_PIN}" in out["numerapi"]
    else:
        import numerapi

        assert out["numerapi"] == numerapi.__file__
    assert {"v5.1", "v5.2"} <= set(out["data_versions"])
    assert "Python 3.11" in out["docker_images"]
    assert out["webhook_set"] is True and out["webhook_cleared"] is True
    assert "webhook" in out["upload_with_webhook"]
    assert "cannot take a submission webhook" in out["webhook_after_upload"]
    served.wait_idle()
    row = served.store.one(
        "SELECT d.name AS version, i.name AS image, p.validation_status FROM pickles p"
        " JOIN data_versions d ON d.id = p.data_version_id"
        " JOIN docker_images i ON i.id = p.docker_image_id WHERE p.id = ?",
        (out["pickle_id"],),
    )
    assert (row["version"], row["image"], row["validation_status"]) == (
        "v5.1",
        "Python 3.11",
        "validated",
    )
