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
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numerai_tools import scoring as nt

from builder.errors import NmrError

_CHILD = Path(__file__).with_name("model_child.py")
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
) -> ValidationResult:
    """Predict ``validation_path`` with the pickle, era by era, and score it (see ``evaluate``).

    ``out_dir`` (e.g. ``build/<slot>``) receives ``validation_predictions.parquet`` and, for an
    ensemble, ``validation_member_predictions.parquet``; ``members`` names the ensemble's
    members (name, weight) in bundle order.
    """
    with tempfile.TemporaryDirectory(prefix="nmr-validation-") as tmp:
        argv = [
            str(python),
            str(_CHILD),
            "validate",
            str(pickle_path),
            str(validation_path),
            str(benchmarks_path) if benchmarks_path else "-",
            tmp,
        ]
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            for line in proc.stdout:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "progress" and on_progress is not None:
                    on_progress(int(parts[1]), int(parts[2]))
            stderr = proc.stderr.read()
        if proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise NmrError(f"validation predictions failed for {pickle_path}: {last}")
        raw = pd.read_parquet(Path(tmp) / "predictions.parquet")
    predictions = raw[["era", "prediction"]]
    member_frame = _member_frame(raw, members)
    written = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = out_dir / PREDICTIONS_FILE
        predictions.to_parquet(written)
        if member_frame is not None:
            member_frame.to_parquet(out_dir / MEMBER_PREDICTIONS_FILE)
    result = evaluate(
        predictions,
        validation_path,
        benchmarks_path,
        features=features,
        bmc_benchmark=bmc_benchmark,
        data_version=data_version,
        member_predictions=member_frame,
        member_weights=dict(members or []),
        on_progress=on_progress,
    )
    result.predictions_path = written
    return result


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
    import pyarrow.parquet as pq

    source = pq.ParquetFile(validation_path)
    names = source.schema_arrow.names
    if MAIN_TARGET not in names:
        raise NmrError(f"{validation_path}: no {MAIN_TARGET!r} column, so nothing can be scored")
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
    bench = _benchmark_frame(benchmarks)
    bench_cols = list(bench.columns) if bench is not None else []
    bmc_col = _bmc_column(bmc_benchmark, data_version, bench_cols, notes)
    if member_predictions is not None:
        member_predictions = member_predictions.copy()
        member_predictions.index = member_predictions.index.astype(str)
    predictions = predictions.copy()
    predictions.index = predictions.index.astype(str)

    columns = ["era", MAIN_TARGET, *targets, *features]
    rows = []
    for era, frame in _eras(source, columns, on_progress):
        era_pred = predictions.reindex(frame.index)["prediction"]
        if era_pred.isna().all():
            continue  # an era the predictions do not cover (e.g. a subset was predicted)
        era_bench = bench.reindex(frame.index) if bench is not None else None
        era_members = (
            member_predictions.reindex(frame.index) if member_predictions is not None else None
        )
        row = score_era(
            era_pred,
            frame[[MAIN_TARGET, *targets]],
            frame[features],
            era_bench,
            bmc_col,
            era_members,
        )
        rows.append({"era": str(era), **row})
    per_era = pd.DataFrame(rows).set_index("era") if rows else pd.DataFrame()
    member_info = [
        {"name": name, "weight": float((member_weights or {}).get(name, 1.0))}
        for name in (member_predictions.columns if member_predictions is not None else [])
    ]
    summary = summarize(per_era, targets, bench_cols, member_info)
    summary["bmc_benchmark"] = bmc_col
    return ValidationResult(
        per_era=per_era,
        summary=summary,
        benchmark_columns=bench_cols,
        targets=targets,
        bmc_benchmark=bmc_col,
        members=member_info,
        notes=notes,
    )


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


def _eras(source, columns: list[str], on_progress=None) -> Iterator[tuple[str, pd.DataFrame]]:
    """Whole eras of a parquet file, streamed by row group (eras are contiguous in Numerai's
    files; an era may straddle row groups)."""
    wanted = [c for c in source.schema_arrow.names if c in set(columns)]
    metadata = source.schema_arrow.pandas_metadata or {}
    index_cols = [c for c in metadata.get("index_columns", []) if isinstance(c, str)]
    wanted += [c for c in index_cols if c not in wanted]
    pending = None
    total = source.num_row_groups
    for group in range(total):
        frame = source.read_row_group(group, columns=wanted).to_pandas()
        frame.index = frame.index.astype(str)
        if pending is not None:
            frame = pd.concat([pending, frame])
        if len(frame) == 0:
            continue
        last_era = frame["era"].iloc[-1]
        done = frame[frame["era"] != last_era] if group < total - 1 else frame
        pending = frame[frame["era"] == last_era] if group < total - 1 else None
        yield from done.groupby("era", sort=False)
        if on_progress is not None:
            on_progress(group + 1, total)


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
