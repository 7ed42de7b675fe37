"""`nmr plan`, `nmr apply`, `nmr status`, `nmr logs`: deploy numerai.yaml to Numerai model slots.

Each command talks to Numerai's API (keys from NUMERAI_PUBLIC_ID / NUMERAI_SECRET_KEY, endpoint
NUMERAI_API_URL) or, with ``--sandbox``, to a sandbox embedded in the project's ``.nmr/``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path

import typer

from builder.cli.app import app, complete_slot, user_errors
from builder.errors import NmrError

_CONFIG = typer.Option(None, "-f", "--file", help="numerai.yaml to use (default: search up).")
_SANDBOX = typer.Option(
    False, "--sandbox", help="Use a local sandbox in the project's .nmr/ instead of Numerai."
)
_TARGET = typer.Option(
    None, "--target", "-t", help="Only this model slot (repeatable).", autocompletion=complete_slot
)


@app.command()
@user_errors
def plan(
    target: list[str] = _TARGET,
    as_json: bool = typer.Option(False, "--json", help="Print the plan as versioned JSON."),
    output_format: str = typer.Option(
        "text",
        "--format",
        help="text, markdown (a pull-request comment) or json (the same as --json).",
    ),
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 0: no changes, 1: error, 2: changes."
    ),
    out: Path = typer.Option(
        None, "-out", "--out", help="Save the plan to this file for `nmr apply FILE`."
    ),
    no_build: bool = typer.Option(
        False, "--no-build", help="Take pickle hashes from numerai.lock without building."
    ),
    sandbox: bool = _SANDBOX,
    config: Path = _CONFIG,
) -> None:
    """Show what apply would change on the model slots, attribute by attribute (Terraform-style
    diff of each slot's inputs since the pickle it runs was built)."""
    from builder.deploy import desired as desired_state
    from builder.deploy.plan import render_markdown, render_text, to_json

    renderers = {"text": render_text, "markdown": render_markdown, "json": to_json}
    if output_format not in renderers:
        raise NmrError(f"--format {output_format!r} is not one of: text, markdown, json")
    render = to_json if as_json else renderers[output_format]
    project = _load(config)
    models = project.select(target)
    _require_keys(sandbox)
    if no_build:
        desired = desired_state.from_lock(project, models)
    else:
        desired = desired_state.from_build(project, models, log=_build_log)
    desired = _sandbox_creates(desired, sandbox)
    with _client(project, sandbox) as client:
        the_plan = _current_plan(client, project, desired, sandbox, target)
    if out is not None:
        out.write_text(to_json(the_plan), encoding="utf-8")
    typer.echo(render(the_plan).rstrip())
    if out is not None and render is render_text:
        typer.echo(f"Saved the plan to {out}; apply it with: nmr apply {out}")
    if detailed_exitcode and the_plan.has_changes:
        raise typer.Exit(2)


@app.command()
@user_errors
def apply(
    plan_file: Path = typer.Argument(None, help="A plan saved by `nmr plan -out FILE`."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking (for CI)."),
    target: list[str] = _TARGET,
    sandbox: bool = _SANDBOX,
    config: Path = _CONFIG,
    validation_timeout: float = typer.Option(
        1800.0, "--validation-timeout", help="Seconds to wait for Numerai's validation."
    ),
    parallel: int = typer.Option(
        4,
        "--parallel",
        min=1,
        help="Slots applied at once; one slot's failure never stops another.",
    ),
) -> None:
    """Build, test, upload, wait for validation, assign: make the slots match numerai.yaml."""
    from builder.deploy import desired as desired_state
    from builder.deploy.apply import apply_plan, check_not_stale, project_lock
    from builder.deploy.plan import from_json, render_text

    project = _load(config)
    saved = None
    if plan_file is not None:
        saved = from_json(_read(plan_file))
        target = [change.slot for change in saved.changes]
        sandbox = sandbox or saved.sandbox
    _require_keys(sandbox)
    with project_lock(project.root):
        models = project.select(target)
        desired = _sandbox_creates(
            desired_state.from_build(project, models, log=_build_log), sandbox
        )
        with _client(project, sandbox) as client:
            fresh = _current_plan(client, project, desired, sandbox, target)
            if saved is not None:
                check_not_stale(saved, fresh)
            if not fresh.has_changes:
                typer.echo(render_text(fresh))
                return
            typer.echo(render_text(fresh))
            if saved is None:
                _confirm(yes)
            started = time.monotonic()
            printing = threading.Lock()  # slots report from several threads: whole lines only

            def progress(slot: str, message: str) -> None:
                with printing:
                    typer.echo(f"{slot}: {message} [{time.monotonic() - started:.0f}s]")

            outcomes = apply_plan(
                fresh,
                desired,
                client,
                local_test=desired_state.local_tester(project, project.root / ".nmr"),
                progress=progress,
                validation_timeout=validation_timeout,
                parallel=parallel,
            )
    applied = sum(o.status == "applied" for o in outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    typer.echo("")
    for outcome in outcomes:
        typer.echo(f"  {outcome.slot}: {_outcome_text(outcome)}")
    typer.echo(f"Apply complete: {applied} applied, {len(failed)} failed.")
    if failed:
        raise NmrError(
            "; ".join(f"{o.slot}: {o.message}" for o in failed)
            + " (the previously assigned pickles stay in place)"
        )


@app.command()
@user_errors
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    sandbox: bool = _SANDBOX,
    config: Path = _CONFIG,
) -> None:
    """Each slot of the project: assigned pickle hash, validation and trigger status."""
    from builder.deploy.status import render_statuses, slot_statuses, statuses_json

    project = _load(config)
    with _client(project, sandbox) as client:
        rows = slot_statuses(project, client)
    typer.echo(statuses_json(rows) if as_json else render_statuses(rows), nl=as_json)


@app.command()
@user_errors
def logs(
    slot: str = typer.Argument(..., help="The model slot.", autocompletion=complete_slot),
    sandbox: bool = _SANDBOX,
    config: Path = _CONFIG,
) -> None:
    """Status sequence and log lines of the slot's most recent validation or run."""
    from builder.deploy.status import latest_run, render_run

    project = _load(config)
    with _client(project, sandbox) as client:
        typer.echo(render_run(latest_run(client, slot)), nl=False)


# --- helpers ----------------------------------------------------------------------------------


def _current_plan(client, project, desired, sandbox: bool, target):
    """The plan of ``desired`` against the live state, with the previous builds' manifests for
    the attribute diff (plan and apply make it the same way)."""
    from builder.deploy import desired as desired_state
    from builder.deploy.apply import current_plan

    return current_plan(
        client,
        desired,
        sandbox=sandbox,
        targets=tuple(target or ()),
        manifests=lambda prefixes: desired_state.previous_manifests(project, prefixes),
    )


def _load(config: Path | None):
    from builder.config import load

    return load(config)


@contextlib.contextmanager
def _client(project, sandbox: bool):
    if sandbox:
        from builder.sandbox.embedded import embedded_client

        with embedded_client(project) as client:
            yield client
    else:
        from builder.deploy.client import NumeraiClient

        yield NumeraiClient.from_env()


def _require_keys(sandbox: bool) -> None:
    """Fail on missing API keys before building: a build can take minutes to reach that error."""
    if not sandbox:
        from builder.deploy.client import NumeraiClient

        NumeraiClient.from_env()


def _build_log(result) -> None:
    # stderr, so that `nmr plan --json` keeps stdout pure JSON
    typer.echo(f"build {result.slot}: {result.status} ({(result.sha256 or '')[:16]})", err=True)


def _sandbox_creates(desired: list, sandbox: bool) -> list:
    """In the sandbox every configured slot may be created: a local account starts empty."""
    if not sandbox:
        return desired
    from dataclasses import replace

    return [replace(want, create=True) for want in desired]


def _outcome_text(outcome) -> str:
    if outcome.status == "applied":
        how = "uploaded and assigned" if outcome.uploaded else "assigned (already uploaded)"
        return f"applied: {how}"
    if outcome.status == "failed":
        return f"failed: {outcome.message}"
    return outcome.status


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise NmrError(
            "refusing to apply without confirmation: there is no terminal to ask on; "
            "pass --yes (CI) or apply a saved plan"
        )
    if not typer.confirm("Apply these changes?", default=False):
        raise NmrError("apply cancelled; nothing was changed")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise NmrError(f"cannot read plan file {path}: {error.strerror}") from None
