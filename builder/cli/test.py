"""`nmr test`: run pickles the way numerai-predict does, then fidelity and validation diagnostics.

``nmr test [SLOT...]`` tests the built pickles (build/<slot>/model.pkl) on the project's live
data (or a synthesized live era with the slot's features); ``nmr test --pickle FILE`` runs any
pickle, including hand-made ones. Exit 0 when every run passes, else 1. The stage itself is
``builder.testing.run_tests``; this module turns flags into its request and renders its events.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import typer

from builder.cli.app import app, complete_runtime, complete_slot, debug_enabled, user_errors
from builder.runner import ERROR, FAILED, Limits, RunResult
from builder.testing import Observer, TestRequest, run_tests


@app.command("test")
@user_errors
def test_command(
    slots: list[str] = typer.Argument(
        None, help="Model slots to test (default: all).", autocompletion=complete_slot
    ),
    pickle: Path = typer.Option(None, "--pickle", help="Run this pickle instead of built slots."),
    runtime: str = typer.Option(
        None, "--runtime", help="Runtime tag for --pickle.", autocompletion=complete_runtime
    ),
    live: Path = typer.Option(None, "--live", help="Live features parquet."),
    benchmarks: Path = typer.Option(None, "--benchmarks", help="Live benchmark models parquet."),
    validation: Path = typer.Option(
        None,
        "--validation",
        help="Validation parquet to score on (default: data.validation).",
    ),
    features: str = typer.Option(
        None,
        "--features",
        help="--pickle: the feature set (a features.json name) or comma-separated columns the "
        "pickle uses, for exposure and FNC (default: every feature column).",
    ),
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
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        help="Validation: tasks run at once, each in the runtime's Python (default: CPU count).",
    ),
    dask: str = typer.Option(
        None,
        "--dask",
        envvar="NMR_DASK_SCHEDULER",
        help="Validation on a Dask cluster: scheduler address, or 'local' (a LocalCluster).",
    ),
    minimal_env: bool = typer.Option(
        False,
        "--minimal-env",
        help="--pickle: run in the numpy/pandas-only env, without the image packages it imports.",
    ),
) -> None:
    """Run pickles exactly as Numerai's numerai-predict container does, under its limits."""
    request = TestRequest(
        slots=tuple(slots or ()),
        pickle=pickle,
        runtime=runtime,
        live=live,
        benchmarks=benchmarks,
        validation=validation,
        features=features,
        limits=Limits(cpus=cpus or None, memory_mb=memory_mb, timeout_s=timeout, network=network),
        python=python,
        config=config,
        diagnostics=diagnostics,
        with_dists=tuple(with_dists or ()),
        scan=not minimal_env,
        debug=debug_enabled(),
        jobs=jobs,
        dask=dask,
    )
    outcomes = run_tests(request, None if as_json else _Printer())
    if as_json:
        payload = _json_safe([o.to_dict() for o in outcomes])
        typer.echo(json.dumps(payload, indent=2, default=str, allow_nan=False))
    raise typer.Exit(0 if all(o.ok for o in outcomes) else 1)


dask_app = typer.Typer(
    help="Dask workers for `nmr test --dask`: the runtime's env plus distributed.",
    no_args_is_help=True,
)
app.add_typer(dask_app, name="dask")


@dask_app.command("worker-env")
@user_errors
def dask_worker_env(
    runtime: str = typer.Option(None, "--runtime", help="Runtime tag (default: the default)."),
    python: Path = typer.Option(None, "--python", help="Base interpreter for the runtime env."),
    scheduler: str = typer.Option(
        "tcp://SCHEDULER:8786", "--scheduler", help="Scheduler address for the printed command."
    ),
) -> None:
    """Create the Dask worker env of a runtime and print the command that starts a worker."""
    from builder import runtimes
    from builder.diagnostics.dask_pool import DISTRIBUTED_VERSION, worker_env

    tag = runtime or runtimes.default_tag()
    runtimes.get(tag)  # unknown tag: one clear line
    env = worker_env(tag, python)
    typer.echo(
        f"worker env for {tag}: {env.python} + distributed=={DISTRIBUTED_VERSION} ({env.site})"
    )
    typer.echo("start a worker (one per core) with:")
    typer.echo(f"  {env.worker_command(scheduler)}")


# --- rendering ------------------------------------------------------------------------------


class _Printer(Observer):
    """Renders the stage's events as the text output of `nmr test`."""

    def env_lines(self, lines):
        for line in lines:
            typer.echo(line)

    def status(self, name, status, first):
        # the status line grows as the run advances (a run may take up to the 10-minute limit)
        typer.echo(f"{name}: {status}" if first else f" -> {status}", nl=False)

    def run_done(self, name, run, streamed):
        _print_run(name, run, streamed)

    def hint(self, text):
        typer.echo(f"  hint: {text}")

    def fidelity(self, report):
        _print_fidelity(report)

    def validating(self, name):
        return _progress(f"validation {name}")

    def validation(self, report):
        _print_validation(report)

    def drill(self, name, drill):
        verdict = "keeps the round" if drill.status == "Success" else "loses the round"
        typer.echo(
            f"  if Numerai's live file has its {drill.case} (on_missing: {drill.on_missing}): "
            f"{drill.status}, {verdict}: {drill.detail}"
        )

    def problem(self, text):
        typer.echo(f"  FAIL {text}")

    def report(self, path, kept):
        kept_text = f" ({kept} keeps the last diagnostics)" if kept else ""
        typer.echo(f"  report: {path}{kept_text}")

    def index(self, path):
        typer.echo(f"all slots: {path}")


@contextlib.contextmanager
def _progress(label: str):
    """A transient rich progress bar of rows: done/total, rows per second, ETA; yields
    ``advance(rows_done, rows_total)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(label, total=None, rate="")

        def advance(done, total):
            progress.update(task, completed=done, total=total)
            speed = next(t.speed for t in progress.tasks if t.id == task)
            progress.update(task, rate=f"{speed:,.0f} rows/s" if speed else "")

        yield advance


def _print_run(name: str, run: RunResult, streamed: bool = False) -> None:
    """The rest of the status line (``streamed``: the statuses are already printed), then
    notes, and on failure the reason and predict.py's log."""
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
