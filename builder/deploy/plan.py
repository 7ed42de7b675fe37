"""The plan: what apply would change, per model slot, as a value with two renderers.

``make_plan(desired, remote, ...)`` is a pure diff of the desired state (numerai.yaml +
numerai.lock / the build) against the live remote state; ``render_text`` and ``to_json`` render
it (Terraform's split between internal/plans and command/jsonformat). Symbols: ``+`` create the
slot (then upload and assign), ``~`` upload and assign (old hash -> new hash), ``!`` drift: the
slot holds a pickle that nmr did not build (apply replaces it).

A saved plan records a fingerprint of each slot's remote state; apply refuses it when the remote
state changed since ("stale plan").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder.deploy.state import HASH_CHARS, RemoteSlot, fingerprint
from builder.errors import NmrError

PLAN_FORMAT_VERSION = 1
SYMBOLS = {"create": "+", "update": "~", "drift": "!", "noop": " "}


@dataclass(frozen=True)
class DesiredSlot:
    """What one slot should run: this build of the pickle, with this data version and runtime."""

    slot: str
    sha256: str | None  # None: not built yet ("known after build")
    pickle_path: Path | None
    runtime: str
    data_version: str
    create: bool = False
    trigger: bool = False


@dataclass(frozen=True)
class SlotChange:
    slot: str
    action: str  # create | update | drift | noop
    model_id: str | None
    old_pickle_id: str | None
    old_filename: str | None
    old_sha: str | None  # hash prefix read from the remote filename
    new_sha256: str | None
    runtime: str
    data_version: str
    reasons: tuple[str, ...]
    remote_fingerprint: str
    trigger: bool = False

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]


@dataclass(frozen=True)
class Plan:
    api_url: str
    changes: tuple[SlotChange, ...]
    format_version: int = PLAN_FORMAT_VERSION
    sandbox: bool = False
    targets: tuple[str, ...] = field(default=())

    @property
    def has_changes(self) -> bool:
        return any(change.action != "noop" for change in self.changes)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SYMBOLS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def change(self, slot: str) -> SlotChange:
        return next(change for change in self.changes if change.slot == slot)


class StalePlanError(NmrError):
    """A saved plan no longer matches the remote state or the build."""


def make_plan(
    desired: list[DesiredSlot],
    remote: dict[str, RemoteSlot],
    api_url: str,
    *,
    docker_images: dict[str, str] | None = None,
    sandbox: bool = False,
    targets: tuple[str, ...] = (),
) -> Plan:
    """Diff ``desired`` against ``remote``. ``docker_images`` maps runtime tag -> image string."""
    changes = []
    for want in desired:
        slot = remote.get(want.slot)
        if slot is None and not want.create:
            raise NmrError(
                f"model slot {want.slot!r} does not exist on Numerai: create it on numer.ai or "
                f"set models.{want.slot}.deploy.create: true in numerai.yaml"
            )
        changes.append(_diff_slot(want, slot, (docker_images or {}).get(want.runtime)))
    return Plan(api_url=api_url, changes=tuple(changes), sandbox=sandbox, targets=targets)


def render_text(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. The remote model slots match this configuration."
    lines = ["nmr will perform these actions:", ""]
    width = max(len(change.slot) for change in plan.changes)
    for change in plan.changes:
        if change.action == "noop":
            continue
        new = _short(change.new_sha256) or "(known after build)"
        if change.action == "create":
            what = f"create slot, upload and assign {new}"
        elif change.action == "drift":
            what = f"holds {change.old_filename} (not built by nmr); upload and assign {new}"
        else:
            what = f"upload and assign {change.old_sha or '(none)'} -> {new}"
        if change.trigger:
            what += ", then trigger"
        lines.append(f"  {change.symbol} {change.slot:<{width}}  {what}")
        for reason in change.reasons:
            lines.append(f"    {'':<{width}}  {reason}")
    counts = plan.counts()
    lines += [
        "",
        f"Plan: {counts['create']} to create, {counts['update'] + counts['drift']} to update"
        f" ({counts['drift']} drifted), {counts['noop']} unchanged.",
    ]
    return "\n".join(lines)


def to_json(plan: Plan) -> str:
    payload = {
        "format_version": plan.format_version,
        "api_url": plan.api_url,
        "sandbox": plan.sandbox,
        "targets": list(plan.targets),
        "has_changes": plan.has_changes,
        "summary": plan.counts(),
        "changes": [asdict(change) for change in plan.changes],
    }
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def from_json(text: str) -> Plan:
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise NmrError(f"not a plan file (invalid JSON: {error})") from None
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != PLAN_FORMAT_VERSION:
        raise NmrError(
            f"unsupported plan format_version {version!r} (this nmr reads {PLAN_FORMAT_VERSION})"
        )
    changes = tuple(
        SlotChange(**{**change, "reasons": tuple(change.get("reasons", ()))})
        for change in payload["changes"]
    )
    return Plan(
        api_url=payload["api_url"],
        changes=changes,
        format_version=version,
        sandbox=bool(payload.get("sandbox")),
        targets=tuple(payload.get("targets", ())),
    )


def _diff_slot(want: DesiredSlot, slot: RemoteSlot | None, image: str | None) -> SlotChange:
    assigned = slot.assigned if slot else None
    reasons: list[str] = []
    if slot is None:
        action = "create"
    elif assigned is None:
        action = "update"
        reasons.append("no pickle assigned")
    elif assigned.sha_prefix is None:
        action = "drift"
    elif want.sha256 is None or assigned.sha_prefix != want.sha256[:HASH_CHARS]:
        action = "update"
    else:
        action = "noop"
        if assigned.data_version and assigned.data_version != want.data_version:
            reasons.append(f"data version {assigned.data_version} -> {want.data_version}")
        if image and assigned.docker_image and assigned.docker_image != image:
            reasons.append(f"docker image {assigned.docker_image} -> {image}")
        if reasons:
            action = "update"
    if want.sha256 is None and action != "noop":
        reasons.append("the pickle is built during apply")
    return SlotChange(
        slot=want.slot,
        action=action,
        model_id=slot.model_id if slot else None,
        old_pickle_id=assigned.id if assigned else None,
        old_filename=assigned.filename if assigned else None,
        old_sha=assigned.sha_prefix if assigned else None,
        new_sha256=want.sha256,
        runtime=want.runtime,
        data_version=want.data_version,
        reasons=tuple(reasons),
        remote_fingerprint=fingerprint(slot),
        trigger=want.trigger,
    )


def _short(sha256: str | None) -> str | None:
    return sha256[:HASH_CHARS] if sha256 else None
