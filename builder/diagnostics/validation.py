"""Validation diagnostics: how the pickle scores on data.validation, era by era, as Numerai scores.

Predictions come from the pickle itself, run by the runtime's Python on the validation file
streamed era by era (``model_child.py validate``), and are written to
``build/<slot>/validation_predictions.parquet`` (index ``id``; columns ``era``, ``prediction``)
so anyone can recompute the numbers. Scoring then streams the validation file again, era by
era, and calls numerai-tools' own functions (``numerai_tools.scoring``) on each era:

* ``corr``: ``numerai_corr(prediction, target)``;
* ``corr_<target_x>``: ``numerai_corr`` against every auxiliary ``target_*`` column present;
* ``bmc``: ``correlation_contribution(prediction, benchmark, target)``, the benchmark model
  column standing in for the meta model (default: the data version's main benchmark,
  e.g. ``v52_lgbm_ender20`` for v5.2; ``data.bmc_benchmark`` chooses another);
* ``fnc``: ``feature_neutral_corr(prediction, features, target)`` against the slot's features;
* ``exposure``: ``max_feature_correlation(prediction, features)`` (largest |Pearson|);
* ``corr_with_<benchmark>``: ``spearman_correlation`` with each benchmark model column;
* ensembles: each member's ``numerai_corr`` and its ``correlation_contribution`` to the blend
  (the blend standing in for the meta model: what the member adds beyond the blend).

Rows whose target is NaN are left out of that target's numbers (Numerai scores resolved rows
only); NaN features are filled with the era's column mean before neutralizing (numerai-tools
refuses NaN neutralizers; the mean changes no least-squares fit direction).

Summary per metric: mean, std and Sharpe as numerai-tools' ``sharpe_ratio`` computes them
(``np.mean / np.std``: the population std, as Numerai's example notebooks also use
``std(ddof=0)``), and the max drawdown of the cumulative per-era series.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numerai_tools import scoring as nt

from builder.errors import NmrError

MAIN_TARGET = "target"
PREDICTIONS_FILE = "validation_predictions.parquet"
MEMBER_PREDICTIONS_FILE = "validation_member_predictions.parquet"


@dataclass
class ValidationResult:
    """Per-era table (index era) and summary of one slot's validation predictions."""

    per_era: pd.DataFrame
    summary: dict = field(default_factory=dict)
    benchmark_columns: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # auxiliary target_* columns scored
    bmc_benchmark: str | None = None
    members: list[dict] = field(default_factory=list)  # [{"name", "weight"}] for ensembles
    predictions_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "summary": self.summary,
            "per_era": [
                {"era": str(era), **{k: _plain(v) for k, v in row.items()}}
                for era, row in self.per_era.iterrows()
            ],
            "predictions": str(self.predictions_path) if self.predictions_path else None,
            "notes": self.notes,
        }


ValidationReport = ValidationResult  # the earlier name, kept for callers


def run_validation(
    pickle_path,
    python,
    validation_path,
    benchmarks_path=None,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    features: list[str] | None = None,
    bmc_benchmark: str | None = None,
    data_version: str | None = None,
    members: list[tuple[str, float]] | None = None,
    out_dir: Path | None = None,
    jobs: int = 1,
    task_rows: int | None = None,
    dask: str | None = None,
    runtime: str | None = None,
) -> ValidationResult:
    """Predict ``validation_path`` with the pickle, era by era, and score it (see ``evaluate``).

    The file is cut into tasks of whole eras (``tasks.plan_tasks``); ``jobs`` runtime workers
    predict them and ``jobs`` processes score them with numerai-tools, each task's eras as soon
    as its predictions are written, so nothing holds more than a batch of rows plus an era.
    ``on_progress(rows_done, rows_total)`` follows the scored rows. The result does not depend
    on ``jobs``. ``out_dir`` (e.g. ``build/<slot>``) receives ``validation_predictions.parquet``
    and, for an ensemble, ``validation_member_predictions.parquet``; ``members`` names the
    ensemble's members (name, weight) in bundle order. ``dask`` (a scheduler address, or
    "local" for a ``LocalCluster`` of ``jobs`` worker processes) predicts the tasks on Dask
    workers running ``runtime``'s env plus distributed (builder/diagnostics/dask_pool.py);
    scoring stays here, on ``jobs`` processes.
    """
    from builder.diagnostics import tasks as taskpool

    plan = taskpool.plan_tasks(validation_path, task_rows or taskpool.TASK_ROWS)
    setup = _Setup.of(validation_path, benchmarks_path, features, bmc_benchmark, data_version)
    total = sum(task.rows for task in plan)
    with tempfile.TemporaryDirectory(prefix="nmr-validation-") as tmp:
        scored = _ScoringPool(jobs, setup, validation_path, benchmarks_path, Path(tmp))
        done = 0

        def finished(rows: int) -> None:
            nonlocal done
            done += rows
            if on_progress is not None:
                on_progress(done, total)

        try:
            on_done = lambda task: scored.submit(task, finished)  # noqa: E731
            if dask is not None:
                from builder.diagnostics import dask_pool

                env = dask_pool.worker_env(runtime or _default_runtime())
                dask_pool.predict_tasks_dask(
                    dask, env, pickle_path, validation_path, benchmarks_path, plan, Path(tmp),
                    jobs, on_done=on_done,
                )  # fmt: skip
            else:
                taskpool.predict_tasks(
                    pickle_path, python, validation_path, benchmarks_path, plan, Path(tmp), jobs,
                    on_done=on_done,
                )  # fmt: skip
            per_task = scored.results(plan)
        finally:
            scored.close()
        member_names = _member_names(Path(tmp), plan, members)
        written = None
        if out_dir is not None:
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            written = out_dir / PREDICTIONS_FILE
            taskpool.merge_predictions(
                Path(tmp), plan, written, {"era": "era", "prediction": "prediction"}
            )
            if member_names:
                _write_members(Path(tmp), plan, out_dir / MEMBER_PREDICTIONS_FILE, member_names)
    rows = [row for task_rows_ in per_task for row in task_rows_]
    result = setup.result(rows, member_names, dict(members or []))
    result.predictions_path = written
    return result


def _default_runtime() -> str:
    from builder import runtimes

    return runtimes.default_tag()


def score_task(
    validation_path, predictions_file, benchmarks_path, start: int, end: int, setup: _Setup
) -> list[dict]:
    """The per-era rows of rows ``[start, end)``, whose predictions are ``predictions_file``
    (id index; era, prediction, member_<i>...). Runs in a scoring process."""
    raw = pd.read_parquet(predictions_file)
    raw.index = raw.index.astype(str)
    member_frame = _member_frame(raw, None)
    bench = _benchmark_rows(benchmarks_path, raw.index) if setup.bench_cols else None
    return _score_eras(validation_path, raw["prediction"], setup, bench, member_frame, start, end)


def evaluate(
    predictions: pd.DataFrame,
    validation_path,
    benchmarks=None,
    *,
    features: list[str] | None = None,
    bmc_benchmark: str | None = None,
    data_version: str | None = None,
    member_predictions: pd.DataFrame | None = None,
    member_weights: dict | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """Score id-indexed ``era``/``prediction`` rows against the validation file's targets.

    ``validation_path`` is read era by era: ``era``, ``target``, every ``target_*`` and the
    ``features`` (default: every ``feature_*`` column). ``benchmarks`` is a benchmark-models
    parquet path or frame (id index). ``bmc_benchmark`` names its column BMC is measured
    against; None means the data version's main benchmark, skipped with a note when absent.
    ``on_progress(done, total)`` is called per row group read (scoring can take minutes).
    """
    setup = _Setup.of(validation_path, benchmarks, features, bmc_benchmark, data_version)
    bench = _benchmark_frame(benchmarks)
    if member_predictions is not None:
        member_predictions = member_predictions.copy()
        member_predictions.index = member_predictions.index.astype(str)
    predictions = predictions.copy()
    predictions.index = predictions.index.astype(str)
    rows = _score_eras(validation_path, predictions["prediction"], setup, bench, member_predictions)
    names = list(member_predictions.columns) if member_predictions is not None else []
    return setup.result(rows, names, member_weights or {})


@dataclass(frozen=True)
class _Setup:
    """What scoring needs to know before the first era (picklable, for scoring processes)."""

    targets: list[str]
    features: list[str]
    bench_cols: list[str]
    bmc_col: str | None
    notes: list[str]

    @classmethod
    def of(cls, validation_path, benchmarks, features, bmc_benchmark, data_version) -> _Setup:
        import pyarrow.parquet as pq

        names = pq.ParquetFile(validation_path).schema_arrow.names
        if MAIN_TARGET not in names:
            raise NmrError(
                f"{validation_path}: no {MAIN_TARGET!r} column, so nothing can be scored"
            )
        targets = [c for c in names if c.startswith("target_")]
        if features is None:
            features = [c for c in names if c.startswith("feature_")]
        missing = [c for c in features if c not in names]
        if missing:
            raise NmrError(
                f"{validation_path}: feature column {missing[0]!r} of the slot is missing "
                f"({len(missing)} missing in all)"
            )
        notes: list[str] = []
        bench_cols = _benchmark_columns(benchmarks)
        bmc_col = _bmc_column(bmc_benchmark, data_version, bench_cols, notes)
        return cls(targets, list(features), bench_cols, bmc_col, notes)

    def result(self, rows: list[dict], member_names, member_weights: dict) -> ValidationResult:
        per_era = pd.DataFrame(rows).set_index("era") if rows else pd.DataFrame()
        member_info = [
            {"name": name, "weight": float(member_weights.get(name, 1.0))}
            for name in member_names or []
        ]
        if member_names:
            per_era = _name_members(per_era, member_names)
        summary = summarize(per_era, self.targets, self.bench_cols, member_info)
        summary["bmc_benchmark"] = self.bmc_col
        return ValidationResult(
            per_era=per_era,
            summary=summary,
            benchmark_columns=self.bench_cols,
            targets=self.targets,
            bmc_benchmark=self.bmc_col,
            members=member_info,
            notes=list(self.notes),
        )


def _score_eras(validation_path, prediction, setup, bench, members, start=0, end=None):
    import pyarrow.parquet as pq

    from builder.diagnostics.model_child import range_eras

    source = pq.ParquetFile(validation_path)
    index_cols = _index_columns(source)
    wanted = {"era", MAIN_TARGET, *setup.targets, *setup.features, *index_cols}
    columns = [c for c in source.schema_arrow.names if c in wanted]
    rows = []
    for era, frame in range_eras(source, columns, start, end):
        frame.index = frame.index.astype(str)
        era_pred = prediction.reindex(frame.index)
        if era_pred.isna().all():
            continue  # an era the predictions do not cover (e.g. a subset was predicted)
        era_bench = bench.reindex(frame.index) if bench is not None else None
        era_members = members.reindex(frame.index) if members is not None else None
        row = score_era(
            era_pred,
            frame[[MAIN_TARGET, *setup.targets]],
            frame[setup.features],
            era_bench,
            setup.bmc_col,
            era_members,
        )
        rows.append({"era": str(era), **row})
    return rows


class _ScoringPool:
    """Scores tasks as their predictions land: in this process for one job, else in ``jobs``
    spawned processes (numerai-tools is pandas code, so threads would share one core)."""

    def __init__(self, jobs, setup, validation_path, benchmarks_path, tmp: Path):
        self.setup, self.tmp = setup, tmp
        self.args = (str(validation_path), str(benchmarks_path) if benchmarks_path else None)
        self.futures: dict[int, object] = {}
        self.pool = None
        if jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the caller runs threads, and fork with threads can deadlock
            self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task, finished: Callable[[int], None]) -> None:
        from builder.diagnostics.tasks import task_file

        validation_path, bench = self.args
        args = (validation_path, task_file(self.tmp, task), bench, task.start, task.end)
        if self.pool is None:
            self.futures[task.index] = score_task(*args, self.setup)
            finished(task.rows)
            return
        future = self.pool.submit(score_task, *args, self.setup)
        future.add_done_callback(lambda f: f.exception() is None and finished(task.rows))
        self.futures[task.index] = future

    def results(self, plan) -> list[list[dict]]:
        out = []
        for task in plan:
            value = self.futures[task.index]
            out.append(value if self.pool is None else value.result())
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def score_era(
    prediction: pd.Series,
    targets: pd.DataFrame,
    features: pd.DataFrame,
    benchmarks: pd.DataFrame | None = None,
    bmc_benchmark: str | None = None,
    members: pd.DataFrame | None = None,
) -> dict:
    """Every per-era metric of one era (all inputs indexed by the era's ids)."""
    # numerai-tools wants rows sorted by id and checks that on every call by sorting the index
    # again (once per feature in max_feature_correlation): sort by id once, then number the
    # rows 0..n-1 so those checks are cheap. Same rows, same order, so the same numbers.
    order = prediction.index.sort_values()
    positions = pd.RangeIndex(len(order))
    p = pd.Series(prediction.loc[order].to_numpy(np.float64), index=positions, name="prediction")
    # targets and benchmarks keep the file's dtype (float32 in Numerai's files), as a user calling
    # numerai-tools on the parquet gets them; features become float64 for the least squares
    t = targets.loc[order].set_axis(positions)
    F = features.loc[order].astype(np.float64).set_axis(positions)
    F = F.fillna(F.mean()).fillna(0.0)
    main = t[MAIN_TARGET]
    row = {
        "corr": corr(p, main),
        "bmc": math.nan,
        "fnc": feature_neutral_corr(p, F, main),
        "exposure": math.nan,
        "exposure_feature": None,
    }
    row["exposure_feature"], row["exposure"] = max_feature_exposure(p, F)
    for name in t.columns:
        if name != MAIN_TARGET:
            row[f"corr_{name}"] = corr(p, t[name])
    if benchmarks is not None:
        b = benchmarks.loc[order].set_axis(positions)
        if bmc_benchmark is not None:
            row["bmc"] = bmc(p, b[bmc_benchmark], main)
        for column in b.columns:
            row[f"corr_with_{column}"] = benchmark_corr(p, b[column])
    if members is not None:
        m = members.loc[order].set_axis(positions)
        for name in m.columns:
            row[f"member_{name}_corr"] = corr(m[name].rename(name), main)
            row[f"member_{name}_contribution"] = bmc(m[name].rename(name), p, main)
    return row


# --- one metric, one era: numerai-tools called on the rows both sides have ---------------------


def corr(prediction: pd.Series, target: pd.Series) -> float:
    """``numerai_corr`` on the rows with a target (NaN when fewer than 2 remain)."""
    target = target.dropna()
    if len(target) < 2:
        return math.nan
    p = prediction.loc[target.index]
    return _value(nt.numerai_corr(p.to_frame(), target.rename("target")).iloc[0])


def bmc(prediction: pd.Series, benchmark: pd.Series, target: pd.Series) -> float:
    """``correlation_contribution`` with ``benchmark`` as the meta model."""
    keep = target.notna() & benchmark.notna() & prediction.notna()
    if keep.sum() < 2 or prediction[keep].nunique() < 2:
        return math.nan
    result = nt.correlation_contribution(prediction[keep].to_frame(), benchmark[keep], target[keep])
    return _value(result.iloc[0])


def feature_neutral_corr(prediction: pd.Series, features: pd.DataFrame, target: pd.Series) -> float:
    """``feature_neutral_corr`` on the rows with a target."""
    keep = target.notna()
    # a constant prediction has nothing to neutralize (numerai-tools would fail on its NaNs)
    if keep.sum() < 3 or features.shape[1] == 0 or prediction[keep].nunique() < 2:
        return math.nan
    result = nt.feature_neutral_corr(prediction[keep].to_frame(), features[keep], target[keep])
    return _value(result.iloc[0])


def max_feature_exposure(prediction: pd.Series, features: pd.DataFrame) -> tuple[str | None, float]:
    """``max_feature_correlation``: (feature, largest |corr(prediction, feature)|)."""
    if features.shape[1] == 0 or len(prediction) < 3 or prediction.std() == 0:
        return None, math.nan
    varying = features.loc[:, features.std() > 0]
    if varying.shape[1] == 0:
        return None, math.nan
    name, value = nt.max_feature_correlation(prediction, varying)
    return name, _value(value)


def benchmark_corr(prediction: pd.Series, benchmark: pd.Series) -> float:
    """``spearman_correlation`` of the prediction with one benchmark model column."""
    keep = benchmark.notna() & prediction.notna()
    if keep.sum() < 2:
        return math.nan
    return _value(nt.spearman_correlation(benchmark[keep], prediction[keep]))


def numerai_corr(predictions, target) -> float:
    """``numerai_corr`` of two equal-length arrays (one era); rows with a NaN are dropped."""
    p = pd.Series(np.asarray(predictions, dtype=np.float64), name="prediction")
    t = pd.Series(np.asarray(target, dtype=np.float64))
    keep = p.notna() & t.notna()
    return corr(p[keep], t[keep])


# --- summary ---------------------------------------------------------------------------------


def summarize(
    per_era: pd.DataFrame,
    targets: list[str] | None = None,
    bench_cols: list[str] | None = None,
    members: list[dict] | None = None,
) -> dict:
    """Mean, std, Sharpe and max drawdown of each per-era series (NaN eras left out)."""

    def column(name):
        if name not in per_era.columns:
            return pd.Series(dtype=float)
        return pd.to_numeric(per_era[name], errors="coerce").dropna()

    main = series_stats(column("corr"))
    exposure = column("exposure")
    summary = {
        "eras": int(len(per_era)),
        # flat keys of the main CORR, kept for callers of the earlier report
        "corr_mean": main["mean"],
        "corr_std": main["std"],
        "sharpe": main["sharpe"],
        "max_drawdown": main["max_drawdown"],
        "max_feature_exposure": float(exposure.max()) if len(exposure) else None,
        "mean_feature_exposure": float(exposure.mean()) if len(exposure) else None,
        "corr": main,
        "bmc": series_stats(column("bmc")),
        "fnc": series_stats(column("fnc")),
        "targets": {t: series_stats(column(f"corr_{t}")) for t in targets or []},
        "benchmark_corr": {c: _mean(column(f"corr_with_{c}")) for c in bench_cols or []},
        "members": [
            {
                **m,
                "corr": series_stats(column(f"member_{m['name']}_corr")),
                "contribution": series_stats(column(f"member_{m['name']}_contribution")),
            }
            for m in members or []
        ],
    }
    return summary


def series_stats(values: pd.Series) -> dict:
    """mean, std, Sharpe (numerai-tools' ``sharpe_ratio``) and max drawdown of a per-era series."""
    values = pd.Series(values, dtype=np.float64).dropna()
    if len(values) == 0:
        nan = math.nan
        return {"mean": nan, "std": nan, "sharpe": nan, "max_drawdown": nan, "eras": 0}
    std = float(np.std(values))
    sharpe = float(nt.sharpe_ratio(values)) if len(values) > 1 and std > 0 else math.nan
    return {
        "mean": float(np.mean(values)),
        "std": std,
        "sharpe": sharpe,
        "max_drawdown": max_drawdown(values.to_numpy()),
        "eras": int(len(values)),
    }


def max_drawdown(per_era: np.ndarray) -> float:
    """Largest fall of the cumulative per-era series from its running peak (>= 0).

    The curve starts at 0 before the first era, so a loss in the first era counts.
    """
    if len(per_era) == 0:
        return math.nan
    cumulative = np.cumsum(per_era)
    peak = np.maximum.accumulate(np.concatenate([[0.0], cumulative]))[1:]
    return float(np.max(peak - cumulative))


def default_bmc_benchmark(data_version: str | None) -> str:
    """The data version's main benchmark model column: v5.2 -> ``v52_lgbm_ender20``."""
    digits = "".join(ch for ch in (data_version or "v5.2") if ch.isdigit())
    return f"v{digits}_lgbm_ender20"


# --- helpers ---------------------------------------------------------------------------------


def _index_columns(source) -> list[str]:
    metadata = source.schema_arrow.pandas_metadata or {}
    return [c for c in metadata.get("index_columns", []) if isinstance(c, str)]


def _benchmark_columns(benchmarks) -> list[str]:
    """The benchmark model columns of a path or frame, without reading the rows."""
    if benchmarks is None:
        return []
    if isinstance(benchmarks, pd.DataFrame):
        names = list(benchmarks.columns)
    elif Path(benchmarks).exists():
        import pyarrow.parquet as pq

        source = pq.ParquetFile(benchmarks)
        names = [c for c in source.schema_arrow.names if c not in _index_columns(source)]
    else:
        return []
    return [c for c in names if c not in ("era", "data_type", "id") and not c.startswith("__")]


def _benchmark_rows(benchmarks_path, ids: pd.Index) -> pd.DataFrame | None:
    """The benchmark rows of ``ids`` only (a task's), read with a filter, not the whole file."""
    import pyarrow.parquet as pq

    if benchmarks_path is None:
        return None
    source = pq.ParquetFile(benchmarks_path)
    index_cols = _index_columns(source)
    if len(index_cols) != 1:
        return _benchmark_frame(benchmarks_path)
    key = index_cols[0]
    columns = [*_benchmark_columns(benchmarks_path), key]
    table = pq.read_table(benchmarks_path, columns=columns, filters=[(key, "in", list(ids))])
    frame = table.to_pandas()
    frame.index = frame.index.astype(str)
    return frame


def _benchmark_frame(benchmarks) -> pd.DataFrame | None:
    if benchmarks is None:
        return None
    if isinstance(benchmarks, pd.DataFrame):
        frame = benchmarks
    else:
        if not Path(benchmarks).exists():
            return None
        import pyarrow.parquet as pq

        names = pq.ParquetFile(benchmarks).schema_arrow.names
        columns = [
            c for c in names if c not in ("era", "data_type", "id") and not c.startswith("__")
        ]
        frame = pd.read_parquet(benchmarks, columns=columns)
    frame = frame.drop(columns=[c for c in ("era", "data_type") if c in frame.columns])
    frame.index = frame.index.astype(str)
    return frame


def _bmc_column(chosen, data_version, bench_cols: list[str], notes: list[str]) -> str | None:
    """The benchmark column BMC uses; never another column than the one asked for."""
    if chosen is not None:
        if chosen not in bench_cols:
            where = ", ".join(bench_cols) if bench_cols else "no benchmark file"
            raise NmrError(
                f"data.bmc_benchmark: column {chosen!r} is not in the validation benchmark "
                f"models (have: {where})"
            )
        return chosen
    default = default_bmc_benchmark(data_version)
    if default in bench_cols:
        return default
    if bench_cols:
        notes.append(
            f"BMC not computed: the validation benchmark models have no {default!r} column "
            f"(set data.bmc_benchmark to one of: {', '.join(bench_cols)})"
        )
    else:
        notes.append(
            "BMC not computed: no validation benchmark models file (data.validation_benchmarks)"
        )
    return None


def _member_names(tmp: Path, plan, members) -> list[str]:
    """The ensemble's member names in bundle order ([] for a single model)."""
    import pyarrow.parquet as pq

    from builder.diagnostics.tasks import task_file

    if not plan:
        return []
    count = sum(
        c.startswith("member_") for c in pq.ParquetFile(task_file(tmp, plan[0])).schema_arrow.names
    )
    if not count:
        return []
    names = [name for name, _ in members] if members else []
    if len(names) != count:
        names = [f"member{i}" for i in range(count)]
    return _unique(names)


def _name_members(per_era: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per-era columns ``member_<i>_*`` (from task files) renamed ``member_<name>_*``."""
    mapping = {}
    for i, name in enumerate(names):
        for metric in ("corr", "contribution"):
            mapping[f"member_member{i}_{metric}"] = f"member_{name}_{metric}"
    return per_era.rename(columns=mapping)


def _write_members(tmp: Path, plan, target: Path, names: list[str]) -> None:
    from builder.diagnostics.tasks import merge_predictions

    merge_predictions(tmp, plan, target, {f"member_{i}": name for i, name in enumerate(names)})


def _member_frame(raw: pd.DataFrame, members) -> pd.DataFrame | None:
    columns = sorted(
        (c for c in raw.columns if c.startswith("member_")), key=lambda c: int(c.split("_")[1])
    )
    if not columns:
        return None
    names = [name for name, _ in members] if members else []
    if len(names) != len(columns):
        names = [f"member{i}" for i in range(len(columns))]
    frame = raw[columns].copy()
    frame.columns = _unique(names)
    return frame


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _value(value) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
