"""`nmr build`, `nmr inspect`, `nmr runtimes` and `nmr supported`: make the pickles, look inside
one, list images, list what compiles."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from builder.cli.app import app, complete_runtime, complete_slot, user_errors


@app.command()
@user_errors
def build(
    slots: list[str] = typer.Argument(
        None, help="Model slots to build (default: all).", autocompletion=complete_slot
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even when up to date."),
    check: bool = typer.Option(
        False, "--check", help="Build nothing; exit 1 if numerai.lock is out of date (for CI)."
    ),
    python: Path = typer.Option(
        None, "--python", help="Base interpreter for the runtime env (its exact minor version)."
    ),
    config: Path = typer.Option(None, "-f", "--file", help="numerai.yaml to use."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Build build/<slot>/model.pkl for each slot in its runtime's Python and update numerai.lock.

    Every slot that can be built is built; each failing slot is reported on one line with its
    place in numerai.yaml, and the exit code is 1 if any failed."""
    from builder.build import BuildFailed, build_project
    from builder.config import load
    from builder.errors import NmrError

    try:
        project = load(config)
    except NmrError as error:
        if not as_json:
            raise
        _print_failure_json(error)
        raise typer.Exit(1) from None

    def show(result) -> None:
        if as_json:
            return
        if result.status == "failed":
            print(result.error, file=sys.stderr)
        else:
            typer.echo(_result_line(project, result))

    for warning in _warnings(project, slots, check):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        results, failed = (
            build_project(
                project, slots=slots or None, force=force, check=check, python=python, log=show
            ),
            [],
        )
    except BuildFailed as error:
        results = error.results
        failed = [r for r in results if r.status == "failed"]
    except NmrError as error:  # before any slot ran (e.g. an unknown slot name)
        if not as_json:
            raise
        _print_failure_json(error)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([_result_dict(project, r) for r in results], indent=2))
    if failed:
        if not as_json:
            print(
                f"error: {len(failed)} of {len(results)} slot(s) failed to build: "
                f"{', '.join(r.slot for r in failed)}",
                file=sys.stderr,
            )
        raise typer.Exit(1)
    stale = [r.slot for r in results if r.status == "out of date"]
    if check and stale:
        print(
            f"error: numerai.lock is out of date for {', '.join(stale)}; run `nmr build`",
            file=sys.stderr,
        )
        raise typer.Exit(1)


@app.command()
@user_errors
def inspect(
    pickle_file: Path = typer.Argument(..., help="A pickle file (e.g. build/<slot>/model.pkl)."),
    runtime: str = typer.Option(
        None,
        "--runtime",
        help="Load it in this runtime's env (default: from numerai.lock).",
        autocompletion=complete_runtime,
    ),
    python: Path = typer.Option(None, "--python", help="Load it with this interpreter."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Show a pickle's size, sha256, imported modules, signature and nmr bundle summary.

    Exits 1 when the pickle cannot be loaded.
    """
    from builder import runtimes
    from builder.errors import NmrError
    from builder.pack import inspect_pickle

    if not pickle_file.is_file():
        raise NmrError(f"{pickle_file}: no such file")
    tag = runtime or _locked_runtime(pickle_file)
    interpreter = python or _interpreter_for(pickle_file, runtime)
    info = inspect_pickle(pickle_file, interpreter, tag or runtimes.default_tag())
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        if "load_error" in info:
            raise typer.Exit(1)
        return
    typer.echo(f"file:       {pickle_file}")
    typer.echo(f"size:       {info['size']:,} bytes")
    typer.echo(f"sha256:     {info['sha256']}")
    typer.echo(f"imports:    {', '.join(info['modules']) or '-'}")
    if info["refused"]:
        typer.echo(
            f"not nmr's:  {', '.join(info['refused'])} (an nmr pickle imports only numpy, "
            "pandas, cloudpickle and the standard library)"
        )
    for entry in info["modules_outside"]:
        typer.echo(f"module:     {_availability(entry)}")
    if "load_error" in info:
        typer.echo(f"load:       failed in {interpreter}: {info['load_error']}")
    elif "parameters" in info:
        params = info["parameters"]
        if params is None:
            typer.echo(f"signature:  none ({info.get('signature_error')})")
        else:
            verdict = "ok" if len(params) in (1, 2) else "numerai-predict refuses it"
            typer.echo(f"signature:  ({', '.join(params)}) -> {len(params)} argument(s), {verdict}")
        typer.echo(f"loaded by:  Python {info.get('python_version')} ({info.get('type')})")
    else:
        typer.echo("signature:  (not loaded: pass --runtime TAG or --python PATH to load it)")
    summary = info.get("summary")
    if summary:
        typer.echo(f"slot:       {summary.get('slot')} (built for {summary.get('runtime')})")
        typer.echo(f"features:   {summary.get('features')}")
        for member in summary.get("members", []):
            size = (
                f"{member['trees']} trees"
                if "trees" in member
                else f"{member.get('onnx_nodes')} ops"
            )
            typer.echo(
                f"model:      {member['kind']} {member['artifact']} ({member['task']}, {size}, "
                f"{member['features']} features, weight {member['weight']:g})"
            )
        typer.echo(f"pre:        {', '.join(summary.get('preprocessing', [])) or '-'}")
        post = summary.get("postprocessing", [])
        typer.echo(f"post:       {', '.join(post) or '- (raw output)'}")
    if "load_error" in info:
        print(f"error: {pickle_file} cannot be loaded: {info['load_error']}", file=sys.stderr)
        raise typer.Exit(1)


@app.command("runtimes")
@user_errors
def runtimes_command(
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON."),
) -> None:
    """List the numerai_predict runtimes nmr can build for (* marks the default)."""
    from builder import runtimes

    catalog = runtimes.runtimes()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "tag": r.tag,
                        "python": r.python,
                        "default": r.default,
                        "aliases": list(r.aliases),
                        "source": r.source,
                        "pins": r.pins,
                    }
                    for r in catalog
                ],
                indent=2,
            )
        )
        return
    typer.echo(
        f"  {'runtime':34} {'python':6} {'numpy':7} {'pandas':7} {'cloudpickle':11} "
        f"{'pyarrow':8} pins"
    )
    for r in catalog:
        mark = "*" if r.default else " "
        p = r.pins
        typer.echo(
            f"{mark} {r.tag:34} {r.python:6} {p['numpy']:7} {p['pandas']:7} "
            f"{p['cloudpickle']:11} {p['pyarrow']:8} {len(p)}"
        )
    typer.echo("* default (numerai.yaml `runtime:` picks another)")


# --- helpers ---------------------------------------------------------------------------------


def _result_line(project, result) -> str:
    rel = result.pickle_path.relative_to(project.root).as_posix()
    if result.status == "out of date":
        return f"{result.slot}: out of date ({', '.join(result.changed)})"
    if result.status == "up to date":
        return f"{result.slot}: up to date ({rel}, sha256 {(result.sha256 or '')[:12]})"
    how = (
        f"with Python {result.python_version}"
        if result.python_version
        else "shipped as is (a pickle: slot)"
    )
    return (
        f"{result.slot}: built {rel} ({result.size:,} bytes, sha256 {result.sha256[:12]}) "
        f"{how} for {result.runtime}"
    )


def _warnings(project, slots, check: bool) -> list:
    """Warnings of the cheap pre-build checks (e.g. NaN a member cannot take)."""
    if check:
        return []
    from builder.preflight import check_project

    return check_project(project, slots=slots or None).warnings


def _print_failure_json(error) -> None:
    """The JSON document of a build that stopped before any slot ran (bad config, unknown
    slot): the same shape as `nmr validate --json`."""
    problems = getattr(error, "problems", None)
    if problems:
        listed = [p.as_dict() for p in problems]
    else:
        listed = [{"file": None, "line": None, "col": None, "path": "", "message": str(error)}]
    typer.echo(json.dumps({"ok": False, "problems": listed}, indent=2))


def _result_dict(project, result) -> dict:
    return {
        "slot": result.slot,
        "status": result.status,
        "rebuilt": result.rebuilt,
        "pickle": result.pickle_path.relative_to(project.root).as_posix(),
        "sha256": result.sha256,
        "size": result.size,
        "runtime": result.runtime,
        "python_version": result.python_version,
        "changed": list(result.changed),
        "error": result.error,
    }


def _availability(entry: dict) -> str:
    """One imported module outside nmr's set: does the image have it, does this env?"""
    module, dist, pin = entry["module"], entry["distribution"], entry["image_version"]
    if module == "__main__":
        return (
            "__main__: names defined in the script that made the pickle; numerai-predict's "
            "__main__ does not have them (pickle them by value with cloudpickle)"
        )
    named = module if dist == module else f"{module} (distribution {dist})"
    if pin is None:
        return f"{named}: the image {entry['runtime']} does not have it"
    has = f"{named}: the image {entry['runtime']} has it ({dist}=={pin})"
    if "in_env" not in entry:
        return has
    if entry["in_env"]:
        return f"{has}, so does this env"
    return f"{has}, this env does not (`nmr test --pickle` adds the image's packages)"


def _interpreter_for(pickle_file: Path, runtime: str | None):
    """The interpreter to load the pickle with. A pickle nmr built (it is in numerai.lock) loads
    in the env nmr test and apply run it in: the runtime's, plus the image packages a source: or
    pickle: slot imports. Any other pickle loads in the runtime's base env, and the module lines
    say what the image would add."""
    from builder.env import ensure_env
    from builder.envextras import env_for_pickle

    locked = _locked_runtime(pickle_file)
    tag = runtime or locked
    if tag is None:
        return None
    if locked is not None:
        return env_for_pickle(pickle_file, tag).env.python
    return ensure_env(tag).python


def _locked_runtime(pickle_file: Path) -> str | None:
    """The runtime of the numerai.lock slot whose pickle has this file's sha256, if any."""
    import hashlib

    digest = hashlib.sha256(pickle_file.read_bytes()).hexdigest()
    for directory in pickle_file.resolve().parents:
        lock = directory / "numerai.lock"
        if lock.is_file():
            try:
                slots = json.loads(lock.read_text(encoding="utf-8")).get("slots", {})
            except ValueError:
                return None
            for entry in slots.values():
                if entry.get("pickle", {}).get("sha256") == digest:
                    return entry.get("inputs", {}).get("runtime")
            return None
    return None


@app.command("supported")
@user_errors
def supported_command(
    as_json: bool = typer.Option(False, "--json", help="Print the registries as JSON."),
) -> None:
    """List what nmr compiles: formats, estimators, objectives, ONNX ops, steps, runtimes."""
    from builder import supported

    if as_json:
        typer.echo(json.dumps(supported.supported(), indent=2))
        return
    typer.echo(supported.text(), nl=False)
