"""What `nmr status` and `nmr logs` show, as values beside the plan; the CLI only renders them.

``slot_statuses`` is one ``SlotStatus`` per configured slot (from ``read_slots``: the live API,
never a cached belief); ``latest_run`` is the ``RunLog`` of a slot's newest pickle's most recent
validation or run. ``render_*`` and ``statuses_json`` turn them into the text and JSON the
commands print.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from builder.config.model import Project
from builder.deploy.client import NumeraiClient
from builder.deploy.state import read_slots
from builder.errors import NmrError

STATUS_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SlotStatus:
    """One configured slot as Numerai has it now."""

    slot: str
    exists: bool
    model_id: str | None = None
    pickle_sha256_prefix: str | None = None  # None: no pickle, or not uploaded by nmr
    pickle_filename: str | None = None
    validation_status: str | None = None
    trigger_status: str | None = None
    compute_webhook: bool = False  # a submission webhook is set: Numerai refuses uploads


@dataclass(frozen=True)
class RunStatus:
    inserted_at: str | None
    status: str
    description: str | None = None


@dataclass(frozen=True)
class RunLog:
    """The most recent validation or run of a slot's newest pickle: statuses, then log lines."""

    slot: str
    pickle_filename: str
    kind: str  # the trigger type ("validation", ...); "run" when the API gives none
    statuses: tuple[RunStatus, ...]
    lines: tuple[str, ...]


def slot_statuses(project: Project, client: NumeraiClient) -> list[SlotStatus]:
    """Every slot of numerai.yaml, in its order, with its assigned pickle's state."""
    remote = read_slots(client)
    rows = []
    for model in project.models:
        slot = remote.get(model.slot)
        if slot is None:
            rows.append(SlotStatus(model.slot, exists=False))
            continue
        assigned = slot.assigned
        rows.append(
            SlotStatus(
                model.slot,
                exists=True,
                model_id=slot.model_id,
                pickle_sha256_prefix=assigned.sha_prefix if assigned else None,
                pickle_filename=assigned.filename if assigned else None,
                validation_status=assigned.validation_status if assigned else None,
                trigger_status=assigned.trigger_status if assigned else None,
                compute_webhook=bool(slot.webhook),
            )
        )
    return rows


def statuses_json(rows: list[SlotStatus]) -> str:
    return json.dumps(
        {"format_version": STATUS_FORMAT_VERSION, "slots": [asdict(row) for row in rows]}, indent=2
    )


def render_statuses(rows: list[SlotStatus]) -> str:
    width = max([len(row.slot) for row in rows] + [4])
    lines = [f"{'SLOT':<{width}}  {'PICKLE':<16}  {'VALIDATION':<10}  TRIGGER"]
    for row in rows:
        if not row.exists:
            lines.append(f"{row.slot:<{width}}  (slot does not exist)")
            continue
        pickle = row.pickle_sha256_prefix or ("(not nmr)" if row.pickle_filename else "(none)")
        webhook = "  (compute webhook set: uploads are refused)" if row.compute_webhook else ""
        lines.append(
            f"{row.slot:<{width}}  {pickle:<16}  {row.validation_status or '-':<10}  "
            f"{row.trigger_status or '-'}{webhook}"
        )
    return "\n".join(lines) + "\n"


def latest_run(client: NumeraiClient, slot: str) -> RunLog:
    """The newest pickle's most recent trigger of ``slot``; a clear error when there is none."""
    model = next((m for m in client.models() if m["name"] == slot), None)
    if model is None:
        raise NmrError(f"model slot {slot!r} does not exist on this account")
    pickles = client.pickles(model_id=model["id"])
    if not pickles:
        raise NmrError(f"model slot {slot!r} has no uploaded pickle")
    # computePickles lists oldest first; a stable sort keeps that order among equal times
    pickle = sorted(pickles, key=lambda p: p.get("insertedAt") or "")[-1]
    triggers = pickle.get("triggers") or []
    if not triggers:
        raise NmrError(f"pickle {pickle['filename']} of {slot!r} has not run yet")
    trigger = triggers[-1]
    return RunLog(
        slot=slot,
        pickle_filename=pickle["filename"],
        kind=trigger.get("type") or "run",
        statuses=tuple(
            RunStatus(entry.get("insertedAt"), entry["status"], entry.get("description"))
            for entry in trigger.get("statuses") or []
        ),
        lines=tuple(line.get("message") or "" for line in client.trigger_logs(trigger["id"])),
    )


def render_run(log: RunLog) -> str:
    lines = [f"{log.slot}: {log.pickle_filename} ({log.kind})"]
    for entry in log.statuses:
        note = f" - {entry.description}" if entry.description else ""
        lines.append(f"  {entry.inserted_at}  {entry.status}{note}")
    lines.extend(log.lines)
    return "\n".join(lines) + "\n"
