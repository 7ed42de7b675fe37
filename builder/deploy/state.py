"""Remote state per model slot, read live from the API (never a cached belief).

nmr uploads a pickle as ``<slot>-nmr-<first 16 hex of sha256>.pkl``; Numerai keeps that stem
and appends its own suffix (``<stem>-<12 alnum>.pkl``, docs/design/numerai.md §4.2), so the content hash of
the assigned pickle is read from its filename without downloading it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from builder.deploy.client import NumeraiClient

HASH_CHARS = 16
_HASH_IN_NAME = re.compile(r"-nmr-([0-9a-f]{16})(?=[-.])")


@dataclass(frozen=True)
class RemotePickle:
    id: str
    filename: str
    sha_prefix: str | None  # None: not uploaded by nmr
    validation_status: str | None
    trigger_status: str | None
    data_version: str | None
    docker_image: str | None
    inserted_at: str | None = None


@dataclass(frozen=True)
class RemoteSlot:
    name: str
    model_id: str
    assigned: RemotePickle | None
    # Model.submissionWebhook (a compute webhook): Numerai refuses pickle uploads while it is set.
    webhook: str | None = None


def upload_filename(slot: str, sha256: str) -> str:
    """The filename nmr asks Numerai to store a pickle under."""
    return f"{slot}-nmr-{sha256[:HASH_CHARS]}.pkl"


def sha_prefix(filename: str | None) -> str | None:
    """The pickle hash prefix nmr put in an uploaded filename, or None."""
    match = _HASH_IN_NAME.search(filename or "")
    return match.group(1) if match else None


def read_slots(client: NumeraiClient) -> dict[str, RemoteSlot]:
    """Every Classic model slot of the account, by name, with its assigned pickle."""
    slots = {}
    for model in client.models():
        if model.get("tournament") not in (None, 8):
            continue
        slots[model["name"]] = RemoteSlot(
            model["name"],
            model["id"],
            to_remote_pickle(model.get("computePickleUpload")),
            webhook=model.get("submissionWebhook") or None,
        )
    return slots


def to_remote_pickle(data: dict | None) -> RemotePickle | None:
    if not data:
        return None
    return RemotePickle(
        id=data["id"],
        filename=data.get("filename") or "",
        sha_prefix=sha_prefix(data.get("filename")),
        validation_status=data.get("validationStatus"),
        trigger_status=data.get("triggerStatus"),
        data_version=data.get("dataVersion"),
        docker_image=data.get("dockerImage"),
        inserted_at=data.get("insertedAt"),
    )


def fingerprint(slot: RemoteSlot | None) -> str:
    """A digest of what a plan decided from: the slot's id and assigned pickle (not statuses)."""
    if slot is None:
        material = {"exists": False}
    else:
        assigned = slot.assigned
        material = {
            "model_id": slot.model_id,
            "assigned": None
            if assigned is None
            else {
                key: value
                for key, value in asdict(assigned).items()
                if key in ("id", "filename", "data_version", "docker_image")
            },
        }
        if slot.webhook:  # only when set, so plans saved before webhooks were read stay valid
            material["webhook"] = True
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def resolve_docker_image(images: list[dict], runtime_tag: str) -> dict | None:
    """The docker image offered for a runtime tag: exact image:tag, else the same Python."""
    image_name, _, tag = runtime_tag.partition(":")
    for image in images:
        if image.get("image") == image_name and image.get("tag") == tag:
            return image
    for image in images:
        if image.get("image") == image_name:
            return image
    python = _python_of(image_name)
    if python:
        for image in images:
            if image.get("name") == f"Python {python}":
                return image
    return None


def resolve_data_version(versions: list[dict], name: str) -> dict | None:
    return next((v for v in versions if v.get("name") == name), None)


def _python_of(image_name: str) -> str | None:
    match = re.search(r"py_?(\d)_(\d+)", image_name)
    return f"{match.group(1)}.{match.group(2)}" if match else None
