"""Which live data and benchmark file a test run gets: the one place that chooses (and, when a
project has no live file, synthesizes) them, for ``nmr test`` and for ``nmr apply``'s local test.

Live data, first that exists: the file given (``--live``), the project's ``data.live``,
``<data.dir>/live.parquet``, else one synthetic live era with the slots' features (cached per
feature list in the scratch directory).

Benchmarks are never silently substituted (a ``blend_benchmark`` moves predictions by its
weight, so another benchmark file gives another submission):
  * the file given (``--benchmarks``) is used as it is;
  * else the project's ``data.live_benchmarks`` when it exists: if it lacks some live ids and a
    step of the model reads benchmarks (``blend_benchmark``), the run is refused with one
    sentence naming the step, the file and how many ids are missing; otherwise it is used and a
    note says how many ids it lacks;
  * synthetic benchmarks (random ranks for the live ids) only when there is no file at all, or
    when the live data itself is synthetic; ``LiveInputs.synthetic_benchmarks`` then says so,
    and the test stage labels every result that depends on them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import NmrError

# Steps whose output depends on the live benchmark models (builder/kernels/steps.py).
BENCHMARK_STEPS = ("blend_benchmark",)

GIVEN, PROJECT, SYNTHETIC = "given", "project", "synthetic"


@dataclass(frozen=True)
class LiveInputs:
    """The files a run reads; ``benchmarks`` None means run_pickle synthesizes them."""

    live: Path
    live_source: str  # given | project | synthetic
    benchmarks: Path | None
    benchmarks_source: str  # given | project | synthetic
    notes: tuple[str, ...] = field(default=())

    @property
    def synthetic_benchmarks(self) -> bool:
        return self.benchmarks_source == SYNTHETIC

    def to_dict(self) -> dict:
        return {
            "live": str(self.live),
            "live_source": self.live_source,
            "benchmarks": str(self.benchmarks) if self.benchmarks else None,
            "benchmarks_source": self.benchmarks_source,
        }


def benchmark_steps(models) -> list[str]:
    """The names of the steps of ``models`` (ModelConfig) that read live benchmarks."""
    found: dict[str, None] = {}
    for model in models:
        for step in (*model.preprocessing, *model.postprocessing):
            if step.name in BENCHMARK_STEPS:
                found.setdefault(step.name, None)
    return list(found)


def choose_live(
    project,
    models,
    scratch_dir: Path,
    live: Path | None = None,
    benchmarks: Path | None = None,
    check_benchmarks: bool = True,
) -> LiveInputs:
    """Live data and benchmarks for testing ``models`` (ModelConfig list; empty for a hand-made
    pickle) of ``project`` (None outside a project). ``check_benchmarks`` False skips reading
    the ids (the caller only needs the live file)."""
    data = project.data if project is not None else None
    live_path, live_source = _live(data, models, Path(scratch_dir), live)
    if benchmarks is not None:
        return LiveInputs(live_path, live_source, Path(benchmarks), GIVEN)
    if live_source == SYNTHETIC:
        return LiveInputs(live_path, live_source, None, SYNTHETIC)
    project_file = data.live_benchmarks if data is not None else None
    if project_file is None or not Path(project_file).exists():
        return LiveInputs(live_path, live_source, None, SYNTHETIC)
    project_file = Path(project_file)
    if not check_benchmarks:
        return LiveInputs(live_path, live_source, project_file, PROJECT)
    missing, total = missing_ids(live_path, project_file)
    if not missing:
        return LiveInputs(live_path, live_source, project_file, PROJECT)
    steps = benchmark_steps(models)
    if steps:
        raise NmrError(
            f"{steps[0]} needs live benchmarks for every live id, but {project_file} lacks "
            f"{missing} of the {total} ids in {live_path}: pass --benchmarks FILE covering them"
        )
    return LiveInputs(
        live_path,
        live_source,
        project_file,
        PROJECT,
        (f"{project_file.name} lacks {missing} of the {total} live ids",),
    )


def missing_ids(live_path: Path, benchmarks_path: Path) -> tuple[int, int]:
    """(live ids the benchmark file lacks, live ids)."""
    from builder.runner import read_ids

    live_ids = read_ids(Path(live_path))
    try:
        bench_ids = read_ids(Path(benchmarks_path))
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise NmrError(f"live benchmarks unreadable: {benchmarks_path}: {error}") from None
    return len(live_ids.difference(bench_ids)), len(live_ids)


def _live(data, models, scratch_dir: Path, live: Path | None) -> tuple[Path, str]:
    if live is not None:
        return Path(live), GIVEN
    if data is not None:
        for candidate in (data.live, data.dir / "live.parquet"):
            if candidate is not None and Path(candidate).exists():
                return Path(candidate), PROJECT
    if not models:
        raise NmrError("--live FILE is required outside a project with data.live")
    return synthesized_live(models, scratch_dir, data), SYNTHETIC


def synthesized_live(models, scratch_dir: Path, data=None) -> Path:
    """One synthetic live era with the union of the models' features, cached per feature list.

    It carries as much NaN as the project's own data has (``data``: its DataConfig), so the test
    sees what production will."""
    from builder.datasets import nan_share, synth_live

    features: dict[str, None] = {}
    for model in models:
        features.update(dict.fromkeys(model.features))
    share = nan_share(data, features) if data is not None else 0.0
    key = hashlib.sha256(("\n".join(features) + f"\nnan={share!r}").encode()).hexdigest()[:16]
    path = Path(scratch_dir) / f"live-{key}.synthetic.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        synth_live(list(features), nan_fraction=share).to_parquet(tmp)
        tmp.replace(path)  # a concurrent run never reads a half-written file
    return path
