"""The test stage: run pickles the way numerai-predict does, then fidelity and validation.

``run_tests(request, observer)`` is the whole of ``nmr test``: it tests the built slots of a
project (build/<slot>/model.pkl) or one pickle (``TestRequest.pickle``, hand-made ones too) and
returns one ``TestedSlot`` per run. It prints nothing: an ``Observer`` hears each step as it
happens (the CLI renders them; the default observer ignores them). Live data and benchmarks are
chosen by ``builder.runner.live``; reports are written by ``builder.diagnostics``.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import NmrError
from builder.runner import ERROR, PENDING, SUCCESS, Limits, RunResult, run_pickle
from builder.runner.live import SYNTHETIC, LiveInputs, benchmark_steps, choose_live

KEEP_REPORTS = 20  # per-run reports kept in build/<slot>/reports/
PICKLE_REPORTS = "_pickles"  # --pickle in a project: build/_pickles/<pickle stem>/report.html


@dataclass(frozen=True)
class TestRequest:
    """What ``nmr test`` was asked to do (the CLI's flags, typed)."""

    __test__ = False  # not a pytest test class

    slots: tuple[str, ...] = ()
    pickle: Path | None = None  # test this pickle instead of the built slots
    runtime: str | None = None  # --pickle: runtime tag (default: the default runtime)
    live: Path | None = None
    benchmarks: Path | None = None
    validation: Path | None = None  # to score on (None: the project's data.validation)
    limits: Limits = field(default_factory=Limits)
    python: Path | None = None  # base interpreter of the runtime env
    config: Path | None = None  # numerai.yaml (None: discovered)
    diagnostics: bool = True
    with_dists: tuple[str, ...] = ()  # --pickle: image packages to add
    scan: bool = True  # --pickle: add the image packages the pickle imports
    debug: bool = False  # predict.py --debug
    jobs: int | None = None  # validation tasks at once (None: CPU count; diagnostics/tasks.py)
    dask: str | None = None  # Dask scheduler address or "local" (diagnostics/dask_pool.py)
    features: str | None = None  # --pickle: feature set name or comma-separated columns


@dataclass(frozen=True)
class BenchmarkDrill:
    """What production does with a ``blend_benchmark`` slot on a day Numerai's live benchmark
    file lacks the step's column or some live ids: the pickle run again on such a file."""

    case: str  # COLUMN_MISSING | IDS_MISSING
    on_missing: str  # the step's setting: skip | fail
    status: str  # the run's status (Success | Failed | Error)
    detail: str  # the run's WARNING line (skip) or its failure reason

    @property
    def expected(self) -> bool:
        """skip must keep the round (Success); fail must fail it."""
        return (self.status == SUCCESS) == (self.on_missing == "skip")

    def to_dict(self) -> dict:
        return {
            "case": self.case,
            "on_missing": self.on_missing,
            "status": self.status,
            "detail": self.detail,
            "expected": self.expected,
        }


COLUMN_MISSING = "benchmark column missing"
IDS_MISSING = "benchmark ids missing"


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
    drills: list[BenchmarkDrill] = field(default_factory=list)  # blend_benchmark fallbacks

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
            "benchmark_drills": [drill.to_dict() for drill in self.drills],
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

    def drill(self, name: str, drill: BenchmarkDrill) -> None:
        """A blend_benchmark fallback drill finished."""

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
    if request.validation is not None and not Path(request.validation).is_file():
        raise NmrError(f"--validation {request.validation}: no such file")
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
    outcome = TestedSlot(name, run, env=pickle_env, inputs=inputs, synthetic=synthetic)
    if project is not None:
        directory = project.root / "build" / PICKLE_REPORTS / Path(request.pickle).stem
    elif run.predictions_path is not None:  # outside a project: beside the run's predictions
        directory = run.predictions_path.parent
    else:  # never beside the user's pickle
        directory = Path(tempfile.mkdtemp(prefix="nmr-test-"))
    validation, bench = _validation_files(request, project)
    if run.ok and request.diagnostics and validation is not None:
        # scored like a slot (same child, metrics and report), so the two compare directly;
        # exposure and FNC use --features, else every feature column (its own are unknown)
        scoring = {
            "out_dir": directory,
            "features": _pickle_features(request.features, project),
            "jobs": request.jobs or _default_jobs(),
            "dask": request.dask,
            "runtime": tag,
        }
        if project is not None:
            scoring.update(
                bmc_benchmark=project.data.bmc_benchmark, data_version=project.data.version
            )
        try:
            outcome.validation = _score(
                name, request.pickle, env_python, validation, bench, observer, **scoring
            )
        except NmrError as error:
            outcome.problems.append(str(error))
    for problem in outcome.problems:
        observer.problem(problem)
    _write_reports(outcome, directory, observer)
    return outcome


def _benchmark_drills(model, pickle, env_python, inputs, request, test_dir, observer):
    """Run a ``blend_benchmark`` slot's pickle on a benchmark file without the step's column and
    on one without every other live id, as predict.py would on such a day, so the user sees what
    ``on_missing`` does before Numerai does it (issue: a round is never lost to a missing
    benchmark). Nothing for slots without the step."""
    steps = [step for step in model.postprocessing if step.name == "blend_benchmark"]
    if not steps:
        return []
    import pandas as pd

    from builder.runner import _synthesize_benchmarks, read_ids

    column, on_missing = steps[0].get("column"), steps[0].get("on_missing") or "skip"
    directory = Path(test_dir) / "benchmark_drills"
    directory.mkdir(parents=True, exist_ok=True)
    source = inputs.benchmarks
    if source is None:  # the run synthesized them: the same synthetic file, made here
        source = directory / "synthetic.parquet"
        _synthesize_benchmarks(sorted(read_ids(inputs.live)), source)
    benchmarks = pd.read_parquet(source)
    kept_ids = sorted(read_ids(inputs.live))[::2]
    cases = {
        COLUMN_MISSING: benchmarks.drop(columns=[column], errors="ignore"),
        IDS_MISSING: benchmarks[~benchmarks.index.isin(kept_ids)],
    }
    git_ref = model.runtime.split(":", 1)[1] if ":" in model.runtime else "latest"
    drills = []
    for case, frame in cases.items():
        name = case.replace(" ", "_")
        path = directory / f"{name}.parquet"
        frame.to_parquet(path)
        output = directory / name
        output.mkdir(exist_ok=True)
        result = run_pickle(
            pickle, env_python, inputs.live, benchmarks_path=path, limits=request.limits,
            output_dir=output, git_ref=git_ref,
        )  # fmt: skip
        warning = [line for line in result.log.splitlines() if "blend_benchmark" in line]
        detail = warning[0] if result.ok and warning else (result.reason or result.status)
        drill = BenchmarkDrill(case, on_missing, result.status, detail)
        observer.drill(model.slot, drill)
        drills.append(drill)
    return drills


def _pickle_features(spec: str | None, project) -> list[str] | None:
    """--features for a hand-made pickle: a feature set of the project's features.json, or
    comma-separated column names; None (every feature column) when not given."""
    if spec is None:
        return None
    if "," in spec or project is None:
        return [name.strip() for name in spec.split(",") if name.strip()]
    from builder.config.loader import _read_feature_sets

    path = project.data.features_json
    sets, problem = _read_feature_sets(path)
    if sets is not None and spec in sets:
        return list(sets[spec])
    if spec.startswith("feature_"):
        return [spec]
    known = f" (known: {', '.join(sets)})" if sets else f" ({problem})"
    raise NmrError(f"--features {spec!r}: not a feature set in {path}{known}")


def _validation_files(request: TestRequest, project) -> tuple[Path | None, Path | None]:
    """(validation parquet, its benchmarks): --validation, else the project's data.validation."""
    if request.validation is not None:
        validation = Path(request.validation)
    elif project is not None and project.data.validation and project.data.validation.exists():
        validation = project.data.validation
    else:
        return None, None
    bench = project.data.validation_benchmarks if project is not None else None
    return validation, bench if bench is not None and Path(bench).exists() else None


def _test_slots(request: TestRequest, observer: Observer) -> list[TestedSlot]:
    from builder.config import load

    project = load(request.config)
    outcomes = [
        _test_slot(project, model, request, observer) for model in project.select(request.slots)
    ]
    from builder.diagnostics import write_index

    observer.index(write_index(project.root / "build" / "report.html", outcomes))
    return outcomes


def _test_slot(project, model, request: TestRequest, observer: Observer) -> TestedSlot:
    slot_dir = project.root / "build" / model.slot
    pickle = slot_dir / "model.pkl"
    if not pickle.exists():
        reason = f"{pickle.relative_to(project.root)} not found: run `nmr build {model.slot}` first"
        return _not_run(model.slot, pickle, reason, observer)
    test_dir = slot_dir / "test"
    test_dir.mkdir(parents=True, exist_ok=True)
    for stale in test_dir.glob("live_predictions-*.csv"):
        stale.unlink()
    try:
        inputs = choose_live(project, [model], test_dir, request.live, request.benchmarks)
    except NmrError as error:  # this slot cannot run on these inputs; the others still may
        return _not_run(model.slot, pickle, str(error), observer)
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
            _diagnose(outcome, project, model, pickle, env_python, inputs, request, observer)
        except NmrError as error:
            outcome.problems.append(str(error))
        outcome.drills = _benchmark_drills(
            model, pickle, env_python, inputs, request, test_dir, observer
        )
        outcome.problems += [
            f"blend_benchmark with on_missing: skip lost the round when the {d.case}: {d.detail}"
            for d in outcome.drills
            if not d.expected
        ]
    for problem in outcome.problems:
        observer.problem(problem)
    _write_reports(outcome, slot_dir, observer)
    return outcome


def _not_run(slot: str, pickle: Path, reason: str, observer: Observer) -> TestedSlot:
    """An Error outcome for a slot nmr could not run (nothing was learned about the pickle)."""
    run = RunResult(
        ERROR, [PENDING, ERROR], None, "", 0.0, None, None, None, reason, pickle, "", "-"
    )
    observer.run_done(slot, run, streamed=False)
    return TestedSlot(slot, run)


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


def _diagnose(outcome, project, model, pickle, env_python, inputs, request, observer) -> None:
    from builder.diagnostics import check_fidelity

    outcome.fidelity = check_fidelity(pickle, env_python, inputs.live, model)
    for member in outcome.fidelity.members:
        if member.input_differs:
            outcome.problems.append(
                f"fidelity: the pickle hands {Path(member.artifact).name} other values than the "
                f"live data's (as {member.input_dtype})"
            )
        if not member.ok and member.max_abs_diff is not None and not member.skipped:
            outcome.problems.append(
                f"fidelity: {Path(member.artifact).name} differs from {member.format} by "
                f"{member.max_abs_diff:.3g} (tolerance {member.tolerance:g}) on the "
                f"{member.input_dtype} input the pickle hands it"
            )
    observer.fidelity(outcome.fidelity)
    validation, bench = _validation_files(request, project)
    if validation is None:
        return
    scoring = {
        "features": list(model.features),
        "bmc_benchmark": project.data.bmc_benchmark,
        "data_version": project.data.version,
        "members": [(Path(m.artifact).stem, m.weight) for m in model.members]
        if model.ensemble
        else None,
        "out_dir": project.root / "build" / model.slot,
        "jobs": request.jobs or _default_jobs(),
        "dask": request.dask,
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
        why = "for the synthetic live ids" if inputs.live_source == SYNTHETIC else "no file"
        head = f"benchmarks: synthetic ({why}); "
        if model is None:
            labels.append(
                head + "a 2-argument pickle's predictions depend on them if it reads "
                "live_benchmark_models"
            )
        elif steps := benchmark_steps([model]):
            labels.append(head + f"the predictions depend on them through {', '.join(steps)}")
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
