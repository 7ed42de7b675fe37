"""The test stage: run pickles the way numerai-predict does, then fidelity and validation.

``run_tests(request, observer)`` is the whole of ``nmr test``: it tests the built slots of a
project (build/<slot>/model.pkl) or one pickle (``TestRequest.pickle``, hand-made ones too) and
returns one ``TestedSlot`` per run. It prints nothing: an ``Observer`` hears each step as it
happens (the CLI renders them; the default observer ignores them). Live data and benchmarks are
chosen by ``builder.runner.live``; reports are written by ``builder.diagnostics``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import NmrError
from builder.runner import ERROR, PENDING, Limits, RunResult, run_pickle
from builder.runner.live import SYNTHETIC, LiveInputs, benchmark_steps, choose_live

KEEP_REPORTS = 20  # per-run reports kept in build/<slot>/reports/


@dataclass(frozen=True)
class TestRequest:
    """What ``nmr test`` was asked to do (the CLI's flags, typed)."""

    __test__ = False  # not a pytest test class

    slots: tuple[str, ...] = ()
    pickle: Path | None = None  # test this pickle instead of the built slots
    runtime: str | None = None  # --pickle: runtime tag (default: the default runtime)
    live: Path | None = None
    benchmarks: Path | None = None
    limits: Limits = field(default_factory=Limits)
    python: Path | None = None  # base interpreter of the runtime env
    config: Path | None = None  # numerai.yaml (None: discovered)
    diagnostics: bool = True
    with_dists: tuple[str, ...] = ()  # --pickle: image packages to add
    scan: bool = True  # --pickle: add the image packages the pickle imports
    debug: bool = False  # predict.py --debug
    jobs: int | None = None  # validation tasks at once (None: CPU count; diagnostics/tasks.py)
    dask: str | None = None  # Dask scheduler address or "local" (diagnostics/dask_pool.py)


@dataclass
class TestedSlot:
    """The outcome of testing one slot (or one pickle)."""

    __test__ = False

    slot: str
    run: RunResult | None
    fidelity: object | None = None
    validation: object | None = None
    report: Path | None = None  # this run's report
    diagnostics_report: Path | None = None  # report.html: the last run whose diagnostics ran
    problems: list[str] = field(default_factory=list)  # diagnostics failures (fail the test)
    env: object | None = None  # --pickle: the envextras.PickleEnv it ran in
    inputs: LiveInputs | None = None  # the live data and benchmarks it ran on
    synthetic: list[str] = field(default_factory=list)  # results that rest on synthetic data

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
            "diagnostics_report": str(self.diagnostics_report) if self.diagnostics_report else None,
            "problems": self.problems,
            "env": self.env.to_dict() if self.env else None,
            "inputs": self.inputs.to_dict() if self.inputs else None,
            "synthetic": self.synthetic,
        }


class Observer:
    """Hears the stage's steps as they happen; every method does nothing by default."""

    def env_lines(self, lines: list[str]) -> None:
        """--pickle: the packages added to the emulation env, one line each."""

    def status(self, name: str, status: str, first: bool) -> None:
        """The run of ``name`` reached ``status`` (``first``: its first status)."""

    def run_done(self, name: str, run: RunResult, streamed: bool) -> None:
        """The run finished (``streamed``: ``status`` was called for each of its statuses)."""

    def hint(self, text: str) -> None:
        """A fix for a failed run."""

    def fidelity(self, report) -> None:
        """The fidelity check finished."""

    def validating(self, name: str) -> contextlib.AbstractContextManager:
        """A context around validation scoring; it yields ``advance(done, total)`` or None."""
        return contextlib.nullcontext(None)

    def validation(self, report) -> None:
        """Validation scoring finished."""

    def problem(self, text: str) -> None:
        """A diagnostics failure (it fails the test)."""

    def report(self, path: Path, kept: Path | None) -> None:
        """The HTML report ``path`` was written (``kept``: the report with the last diagnostics,
        left as it was because this run has none)."""

    def index(self, path: Path) -> None:
        """``build/report.html``, the page comparing every tested slot, was written."""


def run_tests(request: TestRequest, observer: Observer | None = None) -> list[TestedSlot]:
    """Test what ``request`` names; one ``TestedSlot`` per slot (or the one pickle)."""
    observer = observer or Observer()
    if request.pickle is not None:
        return [_test_pickle(request, observer)]
    if request.with_dists:
        raise NmrError("--with applies to --pickle only (nmr-built slots need no extra packages)")
    return _test_slots(request, observer)


# --- the two modes ---------------------------------------------------------------------------


def _test_pickle(request: TestRequest, observer: Observer) -> TestedSlot:
    from builder import runtimes
    from builder.envextras import env_for_pickle

    tag = request.runtime or runtimes.default_tag()
    runtimes.get(tag)  # unknown tag: one clear line
    project = _maybe_project(request.config)
    scratch = project.root / ".nmr" if project is not None else Path.cwd()
    inputs = choose_live(project, [], scratch, request.live, request.benchmarks)
    # A hand-made pickle may import image packages (lightgbm, sklearn...) that the base env
    # lacks but Numerai's container has: add those at the image's pins (builder/envextras.py).
    pickle_env = env_for_pickle(
        request.pickle, tag, request.python, with_dists=request.with_dists, scan=request.scan
    )
    observer.env_lines(pickle_env.lines())
    env_python = str(pickle_env.env.python)
    name = Path(request.pickle).name
    # output_dir None: a fresh temporary directory, never next to the user's pickle
    synthetic = _synthetic(inputs, None)
    run = _run(name, request.pickle, env_python, inputs, synthetic, request, tag, None, observer)
    run.notes.extend(pickle_env.missing_notes())
    hint = pickle_env.hint_for(run.reason) if not run.ok else None
    if hint is not None:
        run.notes.append(hint)
        observer.hint(hint)
    return TestedSlot(name, run, env=pickle_env, inputs=inputs, synthetic=synthetic)


def _test_slots(request: TestRequest, observer: Observer) -> list[TestedSlot]:
    from builder.config import load

    project = load(request.config)
    known = [m.slot for m in project.models]
    for slot in request.slots:
        if slot not in known:
            raise NmrError(f"unknown model slot {slot!r} (numerai.yaml has: {', '.join(known)})")
    outcomes = [
        _test_slot(project, model, request, observer)
        for model in project.models
        if not request.slots or model.slot in request.slots
    ]
    from builder.diagnostics import write_index

    observer.index(write_index(project.root / "build" / "report.html", outcomes))
    return outcomes


def _test_slot(project, model, request: TestRequest, observer: Observer) -> TestedSlot:
    slot_dir = project.root / "build" / model.slot
    pickle = slot_dir / "model.pkl"
    if not pickle.exists():
        reason = f"{pickle.relative_to(project.root)} not found: run `nmr build {model.slot}` first"
        run = RunResult(
            ERROR, [PENDING, ERROR], None, "", 0.0, None, None, None, reason, pickle, "", "-"
        )
        observer.run_done(model.slot, run, streamed=False)
        return TestedSlot(model.slot, run)
    test_dir = slot_dir / "test"
    test_dir.mkdir(parents=True, exist_ok=True)
    for stale in test_dir.glob("live_predictions-*.csv"):
        stale.unlink()
    inputs = choose_live(project, [model], test_dir, request.live, request.benchmarks)
    pickle_env = None
    if getattr(model, "kind", None) in ("source", "pickle"):
        # user code may import image packages (scikit-learn, torch...): the env adds them at
        # the image's pins, as for --pickle (builder/envextras.py)
        from builder.envextras import env_for_pickle

        pickle_env = env_for_pickle(pickle, model.runtime, request.python)
        observer.env_lines(pickle_env.lines())
        env_python = str(pickle_env.env.python)
    else:
        env_python = _env_python(model.runtime, request.python)
    synthetic = _synthetic(inputs, model)
    run = _run(
        model.slot, pickle, env_python, inputs, synthetic, request, model.runtime, test_dir,
        observer,
    )  # fmt: skip
    outcome = TestedSlot(model.slot, run, env=pickle_env, inputs=inputs, synthetic=synthetic)
    if run.ok and request.diagnostics:
        try:
            _diagnose(outcome, project, model, pickle, env_python, inputs, observer, request)
        except NmrError as error:
            outcome.problems.append(str(error))
    for problem in outcome.problems:
        observer.problem(problem)
    _write_reports(outcome, slot_dir, observer)
    return outcome


def _write_reports(outcome: TestedSlot, directory: Path, observer: Observer) -> None:
    """This run's report, ``reports/<UTC time>.html`` (the last ``KEEP_REPORTS`` are kept), and
    ``report.html`` = the last run whose diagnostics ran: a run without them (--no-diagnostics,
    a failed run, a check that could not run) never replaces a report that has them."""
    from datetime import datetime, timezone

    from builder.diagnostics import write_report

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    reports = directory / "reports"
    args = (outcome.slot, outcome.run, outcome.fidelity, outcome.validation)
    outcome.report = write_report(reports / f"{stamp}.html", *args)
    for old in sorted(reports.glob("*.html"))[:-KEEP_REPORTS]:
        old.unlink()
    latest = directory / "report.html"
    outcome.diagnostics_report = latest
    diagnosed = outcome.fidelity is not None or outcome.validation is not None
    if diagnosed or not latest.exists():
        write_report(latest, *args)
        observer.report(latest, None)
    else:
        observer.report(outcome.report, latest)


def _diagnose(outcome, project, model, pickle, env_python, inputs, observer, request=None) -> None:
    from builder.diagnostics import check_fidelity

    outcome.fidelity = check_fidelity(pickle, env_python, inputs.live, model)
    for member in outcome.fidelity.members:
        if not member.ok:
            outcome.problems.append(
                f"fidelity: {Path(member.artifact).name} differs from {member.format} by "
                f"{member.max_abs_diff:.3g} (tolerance {member.tolerance:g})"
            )
    observer.fidelity(outcome.fidelity)
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
        "jobs": (request.jobs if request else None) or _default_jobs(),
        "dask": request.dask if request else None,
        "runtime": model.runtime,
    }
    outcome.validation = _score(
        model.slot, pickle, env_python, validation, bench, observer, **scoring
    )


def _score(name, pickle, env_python, validation, bench, observer, **scoring):
    from builder.diagnostics import run_validation

    with observer.validating(name) as advance:
        report = run_validation(pickle, env_python, validation, bench, advance, **scoring)
    observer.validation(report)
    return report


# --- helpers ---------------------------------------------------------------------------------


def _synthetic(inputs: LiveInputs, model) -> list[str]:
    """Labels for the results of a run on ``inputs`` that rest on synthetic data (``model``
    None: a hand-made pickle, whose use of the benchmarks nmr cannot see)."""
    labels = []
    if inputs.live_source == SYNTHETIC:
        labels.append("live data: synthetic (no live file), so the predictions are too")
    if inputs.synthetic_benchmarks:
        if model is None:
            labels.append(
                "benchmarks: synthetic (no live benchmarks file); a 2-argument pickle's "
                "predictions depend on them if it reads live_benchmark_models"
            )
        else:
            steps = benchmark_steps([model])
            if steps:
                labels.append(
                    f"benchmarks: synthetic (no live benchmarks file); the predictions depend "
                    f"on them through {', '.join(steps)}"
                )
    return labels


def _run(
    name, pickle, env_python, inputs: LiveInputs, synthetic, request, tag, output_dir, observer
):
    statuses: list[str] = []

    def show(status: str) -> None:
        observer.status(name, status, first=not statuses)
        statuses.append(status)

    git_ref = tag.split(":", 1)[1] if ":" in tag else "latest"
    result = run_pickle(
        pickle,
        env_python,
        inputs.live,
        benchmarks_path=inputs.benchmarks,
        limits=request.limits,
        output_dir=output_dir,
        debug=request.debug,
        git_ref=git_ref,
        on_status=show,
    )
    result.notes[:0] = [*synthetic, *inputs.notes]
    observer.run_done(name, result, streamed=True)
    return result


def _default_jobs() -> int:
    from builder.diagnostics.tasks import default_jobs

    return default_jobs()


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
