"""apply: make the remote model slots match the plan, safely and idempotently.

Per slot, in this order: test the pickle locally (a failure stops that slot), create the slot
when ``deploy.create`` allows, upload the pickle unless the same bytes are already uploaded to
the slot (found by the hash in the filename), wait for Numerai's validation, assign only after
it succeeded, trigger when asked. Any failure leaves the previously assigned pickle in place:
the only step that changes what a slot runs is the final ``assignPickleToModel``. Re-running
converges: an uploaded-but-unassigned pickle is found and reused, never uploaded again.

A slot with a compute webhook is refused before anything is uploaded (Numerai takes no pickle
on such a slot, per its FAQ), unless its ``deploy.disable_webhook`` lets apply clear the webhook
just before the upload; an upload refused for a webhook that the plan could not see is reported
with the same fix.

Slots are applied concurrently by a bounded thread pool (``parallel``, default 4; the work is
waiting on the network and on Numerai's validation, not CPU). Each slot's failure is caught in
its own worker and becomes that slot's outcome, so it never stops, delays or changes another
slot; outcomes come back in the plan's order.

Two applies on one project: the second refuses while the first holds ``.nmr/apply.lock``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.deploy.client import ApiError, NumeraiClient
from builder.deploy.plan import DesiredSlot, Plan, SlotChange, StalePlanError, make_plan
from builder.deploy.state import (
    HASH_CHARS,
    read_slots,
    resolve_data_version,
    resolve_docker_image,
    sha_prefix,
    upload_filename,
)
from builder.errors import NmrError

# Status strings of a pickle's validation (as observed from Numerai's API by third parties): anything
# not in these two sets is treated as still running.
VALIDATED = {"validated"}
VALIDATION_FAILED = {"failed", "invalid", "error"}
DEFAULT_PARALLEL = 4  # slots in flight at once; `nmr apply --parallel N`

Progress = Callable[[str, str], None]  # (slot, message)
LocalTest = Callable[[DesiredSlot], tuple[bool, str]]  # -> (passed, log)


@dataclass
class SlotOutcome:
    slot: str
    status: str  # applied | unchanged | failed
    pickle_id: str | None = None
    uploaded: bool = False
    message: str = ""


def current_plan(
    client: NumeraiClient,
    desired: list[DesiredSlot],
    *,
    sandbox: bool = False,
    targets: tuple[str, ...] = (),
    manifests: Callable[[list[str]], dict[str, dict | None]] | None = None,
) -> Plan:
    """Read the live state and diff it against ``desired``. ``manifests(prefixes)`` returns the
    build manifests of remote pickles by hash prefix, for the plan's attribute diff."""
    remote = read_slots(client)
    images = {}
    if desired:
        offered = client.docker_images()
        for want in desired:
            image = resolve_docker_image(offered, want.runtime)
            if image is not None:
                images[want.runtime] = f"{image['image']}:{image['tag']}"
    previous = None
    if manifests is not None:
        wanted = {want.slot for want in desired}
        previous = manifests(
            [
                slot.assigned.sha_prefix
                for name, slot in remote.items()
                if name in wanted and slot.assigned and slot.assigned.sha_prefix
            ]
        )
    return make_plan(
        desired,
        remote,
        client.url,
        docker_images=images,
        sandbox=sandbox,
        targets=targets,
        previous=previous,
    )


def check_not_stale(saved: Plan, fresh: Plan) -> None:
    """Refuse a saved plan when the remote state or the build changed since it was made."""
    fresh_by_slot = {change.slot: change for change in fresh.changes}
    for old in saved.changes:
        new = fresh_by_slot.get(old.slot)
        if new is None:
            raise StalePlanError(
                f"stale plan: slot {old.slot!r} is no longer in the configuration; run nmr plan again"
            )
        if new.remote_fingerprint != old.remote_fingerprint:
            raise StalePlanError(
                f"stale plan: the remote state of slot {old.slot!r} changed since the plan was "
                "made; run nmr plan again"
            )
        if old.new_sha256 and new.new_sha256 != old.new_sha256:
            raise StalePlanError(
                f"stale plan: the pickle of slot {old.slot!r} is now {(new.new_sha256 or '')[:HASH_CHARS]}"
                f", the plan was made for {old.new_sha256[:HASH_CHARS]}; run nmr plan again"
            )
    if saved.api_url.rstrip("/") != fresh.api_url.rstrip("/") and not saved.sandbox:
        raise StalePlanError(
            f"stale plan: it was made against {saved.api_url}, not {fresh.api_url}"
        )


def apply_plan(
    plan: Plan,
    desired: list[DesiredSlot],
    client: NumeraiClient,
    *,
    local_test: LocalTest | None = None,
    progress: Progress | None = None,
    validation_timeout: float = 1800.0,
    poll_interval: float = 5.0,
    parallel: int = DEFAULT_PARALLEL,
) -> list[SlotOutcome]:
    """Carry out every change of ``plan``, up to ``parallel`` slots at once; one slot's failure
    does not stop, delay or alter the others. Returns one outcome per slot, in plan order."""
    if parallel < 1:
        raise NmrError(f"--parallel must be at least 1, got {parallel}")
    say = progress or (lambda slot, message: None)
    by_slot = {want.slot: want for want in desired}
    catalog = _Catalog(client)

    def one(change: SlotChange) -> SlotOutcome:
        if change.action == "noop":
            return SlotOutcome(change.slot, "unchanged", change.old_pickle_id)
        try:
            return _apply_slot(
                change,
                by_slot[change.slot],
                client,
                catalog,
                local_test,
                say,
                validation_timeout,
                poll_interval,
            )
        except NmrError as error:
            message = str(error)
        except Exception as error:  # noqa: BLE001 - a bug in one slot must not end the others
            message = f"unexpected {type(error).__name__}: {error}"
        say(change.slot, f"failed: {message}")
        return SlotOutcome(change.slot, "failed", message=message)

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="nmr-apply") as pool:
        return list(pool.map(one, plan.changes))


@contextlib.contextmanager
def project_lock(project_root: Path) -> Iterator[None]:
    """Hold ``<project>/.nmr/apply.lock``; a second apply on the project refuses at once."""
    import fcntl

    path = Path(project_root) / ".nmr" / "apply.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise NmrError(
                f"another nmr apply is running on this project (pid {holder} holds "
                f"{path}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


# --- one slot ---------------------------------------------------------------------------------


class _Catalog:
    """Docker images and data versions, fetched once per apply."""

    def __init__(self, client: NumeraiClient):
        self._client = client
        self._images: list[dict] | None = None
        self._versions: list[dict] | None = None
        self._lock = threading.Lock()  # slots ask from several threads; fetch once

    def image(self, runtime: str) -> dict:
        with self._lock:
            if self._images is None:
                self._images = self._client.docker_images()
        image = resolve_docker_image(self._images, runtime)
        if image is None:
            offered = ", ".join(sorted(f"{i['image']}:{i['tag']}" for i in self._images))
            raise NmrError(
                f"Numerai offers no docker image for runtime {runtime} (offered: {offered})"
            )
        return image

    def data_version(self, name: str) -> dict:
        with self._lock:
            if self._versions is None:
                self._versions = self._client.data_versions()
        version = resolve_data_version(self._versions, name)
        if version is None:
            offered = ", ".join(sorted(v["name"] for v in self._versions))
            raise NmrError(
                f"Numerai offers no data version {name!r} for uploads (offered: {offered})"
            )
        return version


def _apply_slot(
    change: SlotChange,
    want: DesiredSlot,
    client: NumeraiClient,
    catalog: _Catalog,
    local_test: LocalTest | None,
    say: Progress,
    validation_timeout: float,
    poll_interval: float,
) -> SlotOutcome:
    if want.sha256 is None or want.pickle_path is None:
        raise NmrError(f"slot {want.slot!r} has no built pickle to deploy; run nmr build")
    if change.webhook_blocks:
        raise NmrError(webhook_refusal(want.slot, "the slot has a compute webhook"))
    if local_test is not None:
        say(want.slot, "testing the pickle locally (numerai-predict emulation)")
        passed, log = local_test(want)
        if not passed:
            tail = _tail(log)
            raise NmrError(
                f"the local test failed, nothing was deployed{': ' + tail if tail else ''}"
            )
    image = catalog.image(want.runtime)
    version = catalog.data_version(want.data_version)
    model_id = change.model_id
    if model_id is None:
        say(want.slot, "creating the model slot")
        model_id = client.add_model(want.slot)["id"]
    if change.webhook_cleared:
        say(want.slot, "clearing the compute webhook (deploy.disable_webhook: true)")
        client.set_submission_webhook(model_id, None)
    pickle, uploaded = _find_or_upload(client, model_id, want, image, version, say)
    pickle = _wait_for_validation(client, pickle, want.slot, say, validation_timeout, poll_interval)
    say(want.slot, f"assigning pickle {want.sha256[:HASH_CHARS]}")
    client.assign(model_id, pickle["id"])
    if want.trigger:
        say(want.slot, "triggering a run")
        client.trigger(model_id, pickle["id"])
    return SlotOutcome(want.slot, "applied", pickle["id"], uploaded, "assigned")


def _find_or_upload(client, model_id, want, image, version, say) -> tuple[dict, bool]:
    prefix = want.sha256[:HASH_CHARS]
    image_name = f"{image['image']}:{image['tag']}"
    same = [
        p
        for p in client.pickles(model_id=model_id)
        if sha_prefix(p.get("filename")) == prefix
        and p.get("dataVersion") in (None, version["name"])
        and p.get("dockerImage") in (None, image_name)
    ]
    usable = [p for p in same if (p.get("validationStatus") or "") not in VALIDATION_FAILED]
    if usable:
        pickle = usable[-1]
        say(want.slot, f"pickle {prefix} is already uploaded ({pickle['validationStatus']})")
        return pickle, False
    if same:
        # These bytes were uploaded before and failed validation: validate them again rather
        # than uploading a duplicate (the earlier failure may have been transient).
        pickle = same[-1]
        say(want.slot, f"pickle {prefix} failed validation before; validating it again")
        return client.trigger(model_id, pickle["id"], trigger_validation=True), False
    data = Path(want.pickle_path).read_bytes()
    say(want.slot, f"uploading pickle {prefix} ({len(data) / 1e6:.2f} MB)")
    auth = client.upload_auth(upload_filename(want.slot, want.sha256), model_id)
    client.put_file(auth["url"], data)
    try:
        pickle_id = client.create_pickle(auth["filename"], model_id, version["id"], image["id"])
    except ApiError as error:
        if "webhook" in str(error).lower():
            # Where the slot's webhook could not be read beforehand, the refusal names it.
            raise NmrError(
                webhook_refusal(want.slot, f"Numerai refused the upload: {error}")
            ) from None
        raise
    return {"id": pickle_id, "validationStatus": "pending", "filename": auth["filename"]}, True


def webhook_refusal(slot: str, what: str) -> str:
    """The one sentence apply gives for a slot that a compute webhook blocks."""
    return (
        f"{what}; Numerai takes no pickle on a slot with a compute webhook, so nothing was "
        "uploaded and the assigned pickle stays: remove the webhook on numer.ai or set "
        f"models.{slot}.deploy.disable_webhook: true to let apply clear it first"
    )


def _wait_for_validation(client, pickle, slot, say, timeout, poll_interval) -> dict:
    deadline = time.monotonic() + timeout
    shown = None
    wait = min(
        0.1, poll_interval
    )  # poll fast first (a sandbox validates in seconds), then back off
    while True:
        found = client.pickles(pickle_id=pickle["id"])
        if not found:
            raise ApiError(f"pickle {pickle['id']} disappeared while waiting for its validation")
        pickle = found[0]
        status = pickle.get("validationStatus") or "pending"
        stage = _latest_stage(pickle) or status
        if stage != shown:
            say(slot, f"remote validation: {stage}")
            shown = stage
        if status in VALIDATED:
            return pickle
        if status in VALIDATION_FAILED:
            raise NmrError(
                f"remote validation failed ({_failure_description(client, pickle)}); "
                "the previously assigned pickle stays in place"
            )
        if time.monotonic() > deadline:
            raise NmrError(
                f"remote validation did not finish within {timeout:g} s (status {status}); "
                "the previously assigned pickle stays in place, re-run apply to keep waiting"
            )
        time.sleep(wait)
        wait = min(wait * 1.5, poll_interval)


def _latest_stage(pickle: dict) -> str | None:
    triggers = [t for t in pickle.get("triggers") or [] if t.get("type") in (None, "validation")]
    return triggers[-1].get("status") if triggers else None


def _failure_description(client: NumeraiClient, pickle: dict) -> str:
    triggers = [t for t in pickle.get("triggers") or [] if t.get("type") in (None, "validation")]
    if not triggers:
        return pickle.get("validationStatus") or "failed"
    statuses = triggers[-1].get("statuses") or []
    described = [s["description"] for s in statuses if s.get("description")]
    if described:
        return described[-1]
    logs = client.trigger_logs(triggers[-1]["id"])
    return _tail("\n".join(entry.get("message") or "" for entry in logs)) or "failed"


def _tail(log: str) -> str:
    lines = [
        line for line in (log or "").splitlines() if line.strip() and not line.startswith("--")
    ]
    errors = [line for line in lines if "ERROR" in line or "rror" in line]
    return (errors or lines or [""])[-1].strip()
