"""`nmr test`: run pickles the way numerai-predict does, then fidelity and validation diagnostics.

``nmr test [SLOT...]`` tests the built pickles (build/<slot>/model.pkl) on the project's live
data (or a synthesized live era with the slot's features); ``nmr test --pickle FILE`` runs any
pickle, including hand-made ones. Exit 0 when every run passes, else 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import typer

from builder.cli.app import app, debug_enabled, user_errors
from builder.errors import NmrError
from builder.runner import ERROR, FAILED, PENDING, Limits, RunResult, run_pickle


@dataclass
class SlotOutcome:
    slot: str
    run: RunResult | None
    fidelity: object | None = None
    validation: object | None = None
    report: Path | None = None
    problems: list[str] = field(default_factory=list)  # diagnostics failures (fail the test)
    env: object | None = None  # --pickle: the envextras.PickleEnv it ran in

    @property
    def ok(self) -> bool:
        return self.run is not None and self.run.ok and not self.problems

    def to_dict(self) -> dict:
        return {
            "slot": self.slot,
            "ok": self.ok,
            "run": self.run.to_dict() if self.run else None,
            "fidelity": self.fidelity.to_dict() if self.fidelity else None,
            "validation": self.validation.to_dict() if self.validation else None,
            "report": str(self.report) if self.report else None,
            "problems": self.problems,
            "env": self.env.to_dict() if self.env else None,
        }


@app.command("test")
@user_errors
def test_command(
    slots: list[str] = typer.Argument(None, help="Model slots to test (default: all)."),
    pickle: Path = typer.Option(None, "--pickle", help="Run this pickle instead of built slots."),
    runtime: str = typer.Option(None, "--runtime", help="Runtime tag for --pickle."),
    live: Path = typer.Option(None, "--live", help="Live features parquet."),
    benchmarks: Path = typer.Option(None, "--benchmarks", help="Live benchmark models parquet."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    timeout: float = typer.Option(600.0, "--timeout", help="Wall-time limit in seconds."),
    memory_mb: int = typer.Option(4096, "--memory-mb", help="Memory limit in MB."),
    cpus: int = typer.Option(1, "--cpus", help="CPU cores the run may use (0: no pinning)."),
    network: bool = typer.Option(
        False, "--allow-network/--no-network", help="Production gives models no network."
    ),
    python: Path = typer.Option(None, "--python", help="Base interpreter for the runtime env."),
    config: Path = typer.Option(None, "-f", "--file", help="numerai.yaml to use."),
    diagnostics: bool = typer.Option(
        True, "--diagnostics/--no-diagnostics", help="Fidelity and validation diagnostics."
    ),
    with_dists: list[str] = typer.Option(
        None,
        "--with",
        help="--pickle: also install this package of the image, at its pin (repeatable).",
    ),
    minimal_env: bool = typer.Option(
        False,
        "--minimal-env",
        help="--pickle: run in the numpy/pandas-only env, without the image packages it imports.",
    ),
) -> None:
    """Run pickles exactly as Numerai's numerai-predict container does, under its limits."""
    limits = Limits(cpus=cpus or None, memory_mb=memory_mb, timeout_s=timeout, network=network)
    if pickle is not None:
        extras = (tuple(with_dists or ()), not minimal_env)
        outcomes = [
            _test_pickle(pickle, runtime, live, benchmarks, limits, python, config, as_json, extras)
        ]
    elif with_dists:
        raise NmrError("--with applies to --pickle only (nmr-built slots need no extra packages)")
    else:
        outcomes = _test_slots(
            slots or [], live, benchmarks, limits, python, config, as_json, diagnostics
        )
    if as_json:
        payload = _json_safe([o.to_dict() for o in outcomes])
        typer.echo(json.dumps(payload, indent=2, default=str, allow_nan=False))
    raise typer.Exit(0 if all(o.ok for o in outcomes) else 1)


# --- the two modes ---------------------------------------------------------------------------


def _test_pickle(
    pickle, runtime, live, benchmarks, limits, python, config, quiet, extras=((), True)
) -> SlotOutcome:
    from builder import runtimes
    from builder.envextras import env_for_pickle

    tag = runtime or runtimes.default_tag()
    runtimes.get(tag)  # unknown tag: one clear line
    project = _maybe_project(config)
    if live is None and project is not None and project.data.live and project.data.live.exists():
        live = project.data.live
        if benchmarks is None:
            benchmarks = project.data.live_benchmarks
    if live is None:
        raise NmrError("--live FILE is required outside a project with data.live")
    # A hand-made pickle may import image packages (lightgbm, sklearn...) that the base env
    # lacks but Numerai's container has: add those at the image's pins (builder/envextras.py).
    with_dists, scan = extras
    pickle_env = env_for_pickle(pickle, tag, python, with_dists=with_dists, scan=scan)
    if not quiet:
        for line in pickle_env.lines():
            typer.echo(line)
    env_python = str(pickle_env.env.python)
    name = Path(pickle).name
    run = _run(
        name,
        pickle,
        env_python,
        live,
        benchmarks,
        limits,
        tag,
        None,  # a fresh temporary directory: never write next to the user's pickle
        quiet,
    )
    run.notes.extend(pickle_env.missing_notes())
    hint = pickle_env.hint_for(run.reason) if not run.ok else None
    if hint is not None:
        run.notes.append(hint)
        if not quiet:
            typer.echo(f"  hint: {hint}")
    return SlotOutcome(name, run, env=pickle_env)


def _test_slots(slots, live, benchmarks, limits, python, config, quiet, diagnostics):
    from builder.config import load

    project = load(config)
    known = [m.slot for m in project.models]
    for slot in slots:
        if slot not in known:
            raise NmrError(f"unknown model slot {slot!r} (numerai.yaml has: {', '.join(known)})")
    outcomes = []
    for model in project.models:
        if slots and model.slot not in slots:
            continue
        outcomes.append(
            _test_slot(project, model, live, benchmarks, limits, python, quiet, diagnostics)
        )
    from builder.diagnostics import write_index

    index = write_index(project.root / "build" / "report.html", outcomes)
    if not quiet:
        typer.echo(f"all slots: {index}")
    return outcomes


def _test_slot(project, model, live, benchmarks, limits, python, quiet, diagnostics):
    slot_dir = project.root / "build" / model.slot
    pickle = slot_dir / "model.pkl"
    if not pickle.exists():
        reason = f"{pickle.relative_to(project.root)} not found: run `nmr build {model.slot}` first"
        run = RunResult(
            ERROR, [PENDING, ERROR], None, "", 0.0, None, None, None, reason, pickle, "", "-"
        )
        _print_run(model.slot, run, quiet)
        return SlotOutcome(model.slot, run)
    test_dir = slot_dir / "test"
    test_dir.mkdir(parents=True, exist_ok=True)
    for stale in test_dir.glob("live_predictions-*.csv"):
        stale.unlink()
    if live is None:
        live = project.data.live
        if live is None or not Path(live).exists():
            # no live file: one synthetic era; the runner synthesizes benchmarks for its ids
            live = _synthesized_live(model, test_dir)
            benchmarks = None
    if (
        benchmarks is None
        and live == project.data.live
        and project.data.live_benchmarks
        and project.data.live_benchmarks.exists()
    ):
        benchmarks = project.data.live_benchmarks
    env_python = _env_python(model.runtime, python)
    run = _run(
        model.slot, pickle, env_python, live, benchmarks, limits, model.runtime, test_dir, quiet
    )
    outcome = SlotOutcome(model.slot, run)
    if run.ok and diagnostics:
        try:
            _diagnose(outcome, project, model, pickle, env_python, live, quiet)
        except NmrError as error:
            outcome.problems.append(str(error))
    for problem in outcome.problems:
        if not quiet:
            typer.echo(f"  FAIL {problem}")
    from builder.diagnostics import write_report

    outcome.report = write_report(
        slot_dir / "report.html", model.slot, run, outcome.fidelity, outcome.validation
    )
    if not quiet:
        typer.echo(f"  report: {outcome.report}")
    return outcome


def _diagnose(outcome, project, model, pickle, env_python, live, quiet) -> None:
    from builder.diagnostics import check_fidelity, run_validation

    outcome.fidelity = check_fidelity(pickle, env_python, live, model)
    for member in outcome.fidelity.members:
        if not member.ok:
            outcome.problems.append(
                f"fidelity: {Path(member.artifact).name} differs from {member.format} by "
                f"{member.max_abs_diff:.3g} (tolerance {member.tolerance:g})"
            )
    if not quiet:
        _print_fidelity(outcome.fidelity)
    validation = project.data.validation
    if validation is None or not Path(validation).exists():
        return
    bench = project.data.validation_benchmarks
    bench = bench if bench is not None and Path(bench).exists() else None
    scoring = {
        "features": list(model.features),
        "bmc_benchmark": project.data.bmc_benchmark,
        "data_version": project.data.version,
        "members": [(Path(m.artifact).stem, m.weight) for m in model.members]
        if model.ensemble
        else None,
        "out_dir": project.root / "build" / model.slot,
    }
    if quiet:
        outcome.validation = run_validation(pickle, env_python, validation, bench, **scoring)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as progress:
            task = progress.add_task(f"validation {model.slot}", total=None)

            def advance(done, total):
                progress.update(task, completed=done, total=total)

            outcome.validation = run_validation(
                pickle, env_python, validation, bench, advance, **scoring
            )
        _print_validation(outcome.validation)


# --- helpers ---------------------------------------------------------------------------------


def _run(name, pickle, env_python, live, benchmarks, limits, tag, output_dir, quiet) -> RunResult:
    statuses: list[str] = []

    def show(status: str) -> None:
        # the status line grows as the run advances (a run may take up to the 10-minute limit)
        if not quiet:
            typer.echo(f"{name}: {status}" if not statuses else f" -> {status}", nl=False)
        statuses.append(status)

    git_ref = tag.split(":", 1)[1] if ":" in tag else "latest"
    result = run_pickle(
        pickle,
        env_python,
        live,
        benchmarks_path=benchmarks,
        limits=limits,
        output_dir=output_dir,
        debug=debug_enabled(),
        git_ref=git_ref,
        on_status=show,
    )
    _print_run(name, result, quiet, streamed=True)
    return result


def _print_run(name: str, run: RunResult, quiet: bool, streamed: bool = False) -> None:
    """The rest of the status line (``streamed``: the statuses are already printed), then
    notes, and on failure the reason and predict.py's log."""
    if quiet:
        return
    rss = f"{run.peak_rss_mb:.0f} MB" if run.peak_rss_mb else "-"
    rows = run.rows if run.rows is not None else "-"
    head = "" if streamed else f"{name}: {' -> '.join(run.statuses)}"
    typer.echo(f"{head}  wall {run.wall_time_s:.2f}s  peak RSS {rss}  rows {rows}")
    for note in run.notes:
        typer.echo(f"  note: {note}")
    if run.predictions_path is not None:
        typer.echo(f"  predictions: {run.predictions_path}")
    if run.status in (FAILED, ERROR):
        typer.echo(f"  reason: {run.reason}")
        if run.log:
            typer.echo("  log:")
            for line in run.log.rstrip("\n").splitlines():
                typer.echo(f"    {line}")


def _print_fidelity(fidelity) -> None:
    if fidelity.skipped:
        typer.echo(f"  fidelity: skipped ({fidelity.skipped})")
        return
    for m in fidelity.members:
        if m.skipped:
            typer.echo(f"  fidelity {Path(m.artifact).name}: skipped ({m.skipped})")
        else:
            verdict = "ok" if m.ok else "FAIL"
            typer.echo(
                f"  fidelity {Path(m.artifact).name}: max abs diff {m.max_abs_diff:.3g} over "
                f"{m.rows} rows (tolerance {m.tolerance:g}) {verdict}"
            )


def _print_validation(validation) -> None:
    from rich.console import Console
    from rich.table import Table

    s = validation.summary
    table = Table(title=f"validation ({s['eras']} eras)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("mean corr", _fmt(s["corr_mean"]))
    table.add_row("std", _fmt(s["corr_std"]))
    table.add_row("Sharpe", _fmt(s["sharpe"]))
    table.add_row("max drawdown", _fmt(s["max_drawdown"]))
    table.add_row("max feature exposure", _fmt(s["max_feature_exposure"]))
    for name in ("bmc", "fnc"):
        stats = s.get(name) or {}
        table.add_row(
            f"{name.upper()} mean / Sharpe",
            f"{_fmt(stats.get('mean'))} / {_fmt(stats.get('sharpe'))}",
        )
    for column, value in s["benchmark_corr"].items():
        table.add_row(f"corr with {column}", _fmt(value))
    Console().print(table)
    for note in getattr(validation, "notes", []):
        typer.echo(f"  note: {note}")


def _synthesized_live(model, test_dir: Path) -> Path:
    from builder.datasets import synth_live

    path = test_dir / "live.synthetic.parquet"
    synth_live(list(model.features)).to_parquet(path)
    return path


def _env_python(tag: str, python) -> str:
    from builder.env import ensure_env

    return str(ensure_env(tag, python).python)


def _maybe_project(config):
    from builder.config import find_config, load

    try:
        path = config or find_config()
    except NmrError:
        return None
    return load(path)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4f}"


def _json_safe(value):
    """NaN / inf become null (JSON has neither); containers are walked."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
