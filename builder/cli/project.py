"""`nmr init`, `nmr validate`, `nmr data download` and `nmr data synth`: start a project, check
its numerai.yaml, get its data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from builder.cli.app import app, user_errors
from builder.errors import NmrError

data_app = typer.Typer(
    help="Numerai's data (download) and Numerai-shaped data for tests and demos (synth).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@app.command()
@user_errors
def init(
    directory: Path = typer.Argument(Path("."), help="Project directory (created if missing)."),
    example: bool = typer.Option(
        False,
        "--example",
        help="Create a complete demo: synthetic data, LightGBM models, a valid numerai.yaml.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the demo's data and models."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing numerai.yaml."),
) -> None:
    """Write a commented numerai.yaml and .gitignore (or a full demo project with --example)."""
    from builder.config.scaffold import example_project, init_project

    if example:
        result = example_project(directory, seed=seed, force=force)
        sets = result["data"]["feature_sets"]
        typer.echo(f"wrote {result['config']}")
        typer.echo(
            f"  data: {directory / 'data'} ({sets['all']} features, "
            f"{result['data']['rows']['train']} train rows)"
        )
        for artifact in result["artifacts"]:
            typer.echo(f"  model: {artifact}")
        typer.echo(f"next: cd {directory} && nmr validate")
        return
    for path in init_project(directory, force=force):
        typer.echo(f"wrote {path}")
    typer.echo(
        "next: put your trained model at artifacts/model.txt (or edit numerai.yaml), "
        "then run nmr validate"
    )


@app.command()
@user_errors
def validate(
    file: Path | None = typer.Option(
        None, "-f", "--file", help="numerai.yaml to check (default: NMR_CONFIG, else search up)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check numerai.yaml and each artifact's header offline; report every problem with its
    line and column."""
    from builder.cli.app import debug_enabled
    from builder.config import ConfigError, load

    try:
        project, problems = load(file), []
    except ConfigError as error:
        if debug_enabled():
            import traceback

            traceback.print_exc()
        project, problems = error.project, list(error.problems)
    except NmrError as error:
        if not as_json:
            raise
        _print_json({"ok": False, "problems": [_bare_problem(str(error))]})
        raise typer.Exit(1) from None
    report = _artifact_report(project, problems)
    problems = sorted([*problems, *report.errors], key=_place)
    if as_json:
        payload = {"ok": not problems, "problems": [p.as_dict() for p in problems]}
        payload["warnings"] = [w.as_dict() for w in report.warnings]
        if not problems:
            payload.update({"config": str(project.config_path), **_summary(project)})
            payload["problems"] = []
        _print_json(payload)
        if problems:
            raise typer.Exit(1)
        return
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        raise typer.Exit(1)
    count = len(project.models)
    typer.echo(f"{project.config_path}: valid, {count} model{'s' if count != 1 else ''}")
    for model in project.models:
        typer.echo(f"  {model.slot}: {_describe(model)}")


@data_app.command("synth")
@user_errors
def data_synth(
    directory: Path = typer.Argument(
        ..., help="Where to write features.json and the parquet files."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same files."),
    small: bool = typer.Option(
        False,
        "--small",
        help="Small sizes (60 features, a few thousand rows): seconds to train on.",
    ),
    scale: float = typer.Option(
        1.0,
        "--scale",
        help="Multiply the default sizes (42/780/2748 features, 40+12 eras) by this factor.",
    ),
    nan_fraction: float = typer.Option(
        0.0, "--nan-fraction", help="Share of feature values left missing (0 to <1)."
    ),
) -> None:
    """Generate synthetic Numerai-shaped data (features.json, train/validation/live, benchmarks)."""
    from builder.datasets import SMALL, SynthSizes, synthesize

    if small and scale != 1.0:
        raise NmrError("--small and --scale cannot be combined")
    if scale <= 0:
        raise NmrError(f"--scale must be > 0, got {scale}")
    if not 0.0 <= nan_fraction < 1.0:
        raise NmrError(f"--nan-fraction must be in [0, 1), got {nan_fraction}")
    result = synthesize(
        directory,
        seed=seed,
        scale=scale,
        sizes=SMALL if small else SynthSizes(),
        nan_fraction=nan_fraction,
    )
    sets = result["feature_sets"]
    rows = result["rows"]
    typer.echo(
        f"wrote {directory}: {sets['small']}/{sets['medium']}/{sets['all']} features "
        f"(small/medium/all), {rows['train']} train, {rows['validation']} validation, "
        f"{rows['live']} live rows in {result['seconds']:.1f}s"
    )


def _artifact_report(project, config_problems):
    """Artifact-header and NaN checks of the members the config problems leave alone."""
    from builder.preflight import Report, check_project

    if project is None:
        return Report([], [])
    return check_project(project, config_problems=config_problems)


def _place(problem) -> tuple:
    return (problem.file, problem.line, problem.col, problem.path)


@data_app.command("download")
@user_errors
def data_download(
    files: str = typer.Option(
        None,
        "--files",
        help="Comma-separated data keys (features, train, validation, live, live_benchmarks, "
        "validation_benchmarks) or Numerai file names (default: all six).",
    ),
    round_num: int = typer.Option(
        None, "--round", help="Round of the live files (default: current)."
    ),
    config: Path = typer.Option(None, "-f", "--file", help="numerai.yaml to use."),
) -> None:
    """Download data.version's files into data.dir with numerapi (NUMERAI_API_URL to redirect)."""
    from builder.config.loader import (
        DATA_FILES,
        DEFAULT_DATA_DIR,
        DEFAULT_DATA_VERSION,
        find_config,
    )
    from builder.download import download

    # The data section only: the full load checks that data files exist, and they may not yet.
    path = config or find_config()
    try:
        import yaml

        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise NmrError(f"{path}: cannot read ({str(error).splitlines()[0]})") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    data = data if isinstance(data, dict) else {}
    data_dir = Path(path).resolve().parent / str(data.get("dir") or DEFAULT_DATA_DIR)
    version = str(data.get("version") or DEFAULT_DATA_VERSION)
    local_names = {k: str(data[k]) for k in DATA_FILES if isinstance(data.get(k), str)}
    chosen = [f.strip() for f in files.split(",") if f.strip()] if files else None

    def show(item) -> None:
        if item.status == "failed":
            typer.echo(f"  FAIL {item.remote}: {item.detail}", err=True)
        elif item.status == "unchanged":
            typer.echo(f"  {item.remote}: unchanged, kept {item.path}")
        else:
            rows = f" ({item.rows} rows)" if item.rows is not None else ""
            typer.echo(f"  {item.remote} -> {item.path}{rows}")

    typer.echo(f"downloading {version} into {data_dir}")
    result = download(
        data_dir, version, local_names=local_names, files=chosen, round_num=round_num, on_file=show
    )
    failed = [f for f in result.files if f.status == "failed"]
    if failed:
        raise NmrError(f"{len(failed)} of {len(result.files)} files failed (listed above)")


def _print_json(payload: dict) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _bare_problem(message: str) -> dict:
    return {"file": None, "line": None, "col": None, "path": "", "message": message}


def _summary(project) -> dict:
    return {
        "runtime": project.runtime,
        "data": {"dir": str(project.data.dir), "version": project.data.version},
        "models": [
            {
                "slot": model.slot,
                "ensemble": model.ensemble,
                "runtime": model.runtime,
                "members": [
                    {
                        "artifact": str(member.artifact),
                        "format": member.format,
                        "feature_set": member.feature_set,
                        "n_features": len(member.features),
                        "weight": member.weight,
                    }
                    for member in model.members
                ],
                "preprocessing": [step.name for step in model.preprocessing],
                "postprocessing": [step.name for step in model.postprocessing],
                "raw_output": model.raw_output,
                **_shipped_summary(model),
            }
            for model in project.models
        ],
        "problems": [],
    }


def _shipped_summary(model) -> dict:
    """The kind of a slot, and for source:/pickle: slots the file (and function) it ships."""
    out = {"kind": model.kind}
    if model.source is not None:
        out["source"] = {"path": str(model.source.path), "function": model.source.function}
    if model.pickle is not None:
        out["pickle"] = {"path": str(model.pickle.path)}
    if model.source is not None or model.pickle is not None:
        out["n_features"] = len(model.features)
    return out


def _describe(model) -> str:
    def member_text(member) -> str:
        features = member.feature_set or "listed"
        return (
            f"{member.format} {member.artifact.name} ({len(member.features)} features, {features})"
        )

    if model.source is not None:
        body = f"source {model.source.path.name}:{model.source.function} (packed by the runtime)"
    elif model.pickle is not None:
        body = f"pickle {model.pickle.path.name} (shipped as is)"
    elif model.ensemble:
        parts = ", ".join(f"{m.weight:g} x {member_text(m)}" for m in model.members)
        body = f"ensemble of {len(model.members)}: {parts}"
    else:
        body = member_text(model.members[0])
    shipped = model.source is not None or model.pickle is not None
    post = ", ".join(step.name for step in model.postprocessing) or (
        "its own output" if shipped else "raw output"
    )
    return f"{body}; then {post}; runtime {model.runtime}"
