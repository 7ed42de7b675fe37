"""The plan: what apply would change, per model slot, as a value with separate renderers.

``make_plan(desired, remote, ...)`` is a pure diff of the desired state (numerai.yaml +
numerai.lock / the build) against the live remote state; ``render_text``, ``render_markdown`` and
``to_json`` render it (Terraform's split between internal/plans and command/jsonformat). Symbols:
``+`` create the slot (then upload and assign), ``~`` upload and assign (old hash -> new hash),
``!`` drift: the slot holds a pickle that nmr did not build (apply replaces it).

Under each changed slot the plan lists what changed in its inputs, attribute by attribute
(``details``: ``{op, path, before, after}`` from builder.deploy.diff), by comparing the build
manifest of the remote slot's pickle (looked up by the hash in its filename, see
builder.manifest) with the manifest of the new build. A slot whose compute webhook would make
Numerai refuse the upload is flagged ``!`` and apply skips it, unless the slot's
``deploy.disable_webhook`` lets apply clear the webhook first.

A saved plan records a fingerprint of each slot's remote state; apply refuses it when the remote
state changed since ("stale plan").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder.deploy.diff import describe, diff
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
    manifest: dict | None = field(default=None, compare=False)  # builder.manifest of the build
    disable_webhook: bool = False


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
    details: tuple[dict, ...] = ()  # {op, path, before, after} per changed input attribute
    details_note: str | None = None  # why there are no details (e.g. built elsewhere)
    webhook_set: bool = False  # the slot has a compute webhook (its URL is never recorded)
    disable_webhook: bool = False

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.action]

    @property
    def webhook_blocks(self) -> bool:
        """Numerai would refuse this slot's upload, and apply refuses the slot."""
        return self.webhook_set and not self.disable_webhook and self.action != "noop"

    @property
    def webhook_cleared(self) -> bool:
        """Apply clears the slot's compute webhook before uploading."""
        return self.webhook_set and self.disable_webhook and self.action != "noop"


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
        counts["blocked"] = sum(change.webhook_blocks for change in self.changes)
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
    previous: dict[str, dict | None] | None = None,
) -> Plan:
    """Diff ``desired`` against ``remote``. ``docker_images`` maps runtime tag -> image string;
    ``previous`` maps the hash prefix of a remote pickle to its build manifest (None: unknown)."""
    changes = []
    for want in desired:
        slot = remote.get(want.slot)
        if slot is None and not want.create:
            raise NmrError(
                f"model slot {want.slot!r} does not exist on Numerai: create it on numer.ai or "
                f"set models.{want.slot}.deploy.create: true in numerai.yaml"
            )
        changes.append(
            _diff_slot(want, slot, (docker_images or {}).get(want.runtime), previous or {})
        )
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
        lines += [f"      {line}" for line in detail_lines(change)]
    blocked = [change for change in plan.changes if change.webhook_blocks]
    if blocked:
        lines.append("")
        lines += [f"  ! {change.slot}: {WEBHOOK_BLOCKS}" for change in blocked]
    lines += ["", summary_line(plan)]
    return "\n".join(lines)


WEBHOOK_BLOCKS = "compute webhook set; the upload would be refused"


def detail_lines(change: SlotChange) -> list[str]:
    """The attribute-level lines under one slot (shared by the text and markdown renderers)."""
    lines = [describe(entry) for entry in change.details]
    if change.details_note:
        lines.append(f"({change.details_note})")
    if change.webhook_cleared:
        lines.append("~ compute webhook: set -> (none), cleared before the upload")
    return lines


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    line = (
        f"Plan: {counts['create']} to create, {counts['update'] + counts['drift']} to update"
        f" ({counts['drift']} drifted), {counts['noop']} unchanged."
    )
    if counts["blocked"]:
        line += (
            f" {counts['blocked']} blocked by a compute webhook (apply refuses them; set "
            "deploy.disable_webhook: true to clear it first)."
        )
    return line


def render_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment: a summary line, then one collapsible section per
    changed slot with its attribute diff (GitHub renders ``<details>`` collapsed)."""
    if not plan.has_changes:
        return "**nmr plan**: no changes. The remote model slots match this configuration.\n"
    lines = [f"**nmr plan**: {summary_line(plan)[len('Plan: ') :]}", ""]
    for change in plan.changes:
        if change.action == "noop":
            continue
        new = _short(change.new_sha256) or "(known after build)"
        old = change.old_sha or ("(not built by nmr)" if change.old_filename else "(none)")
        flag = f" :warning: {WEBHOOK_BLOCKS}" if change.webhook_blocks else ""
        body = [*change.reasons, *detail_lines(change)]
        lines += [
            "<details>",
            f"<summary><code>{change.symbol} {change.slot}</code> {_ACTIONS[change.action]}"
            f" {old} -> {new}{flag}</summary>",
            "",
            "```diff",
            *(body or ["(no input details)"]),
            "```",
            "</details>",
            "",
        ]
    return "\n".join(lines)


_ACTIONS = {
    "create": "create slot, upload and assign",
    "update": "upload and assign",
    "drift": "replace (not built by nmr): upload and assign",
}


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
        SlotChange(
            **{
                **change,
                "reasons": tuple(change.get("reasons", ())),
                "details": tuple(change.get("details", ())),
            }
        )
        for change in payload["changes"]
    )
    return Plan(
        api_url=payload["api_url"],
        changes=changes,
        format_version=version,
        sandbox=bool(payload.get("sandbox")),
        targets=tuple(payload.get("targets", ())),
    )


def _diff_slot(
    want: DesiredSlot, slot: RemoteSlot | None, image: str | None, previous: dict
) -> SlotChange:
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
    details, note = _details(want, assigned, action, previous)
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
        details=details,
        details_note=note,
        webhook_set=bool(slot and slot.webhook),
        disable_webhook=want.disable_webhook,
    )


def _details(want: DesiredSlot, assigned, action: str, previous: dict):
    """(attribute diff, note) of a slot: what changed since the remote pickle was built."""
    if action not in ("update", "drift") or assigned is None:
        return (), None
    if assigned.sha_prefix is None:
        return (), "previous inputs unknown (not built by nmr)"
    if want.sha256 is not None and assigned.sha_prefix == want.sha256[:HASH_CHARS]:
        return (), None  # the same pickle: the reasons say what else changed
    if want.sha256 is None:
        return (), "new inputs known after build"
    if want.manifest is None:  # built by an nmr that recorded no manifest
        return (), "no manifest recorded for the new pickle; `nmr build --force` records one"
    before = previous.get(assigned.sha_prefix)
    if before is None:
        return (), "previous inputs unknown (built elsewhere)"
    # The data version belongs to the upload, not to the pickle: compare what the slot runs
    # with what apply will upload.
    before = {**before, "data_version": assigned.data_version or before.get("data_version")}
    after = {**want.manifest, "data_version": want.data_version}
    return tuple(diff(before, after)), None


def _short(sha256: str | None) -> str | None:
    return sha256[:HASH_CHARS] if sha256 else None
