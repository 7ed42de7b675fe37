"""Validation diagnostics: how the pickle scores on data.validation, era by era.

Predictions come from the pickle itself, run by the runtime's Python on the validation file
streamed era by era (``model_child.py validate``). Metrics follow Numerai's definitions:

* ``numerai_corr`` (numerai-tools scoring.py; ../shared/NUMERAI.md §7): predictions ->
  tie-kept rank ``(rank(average) - 0.5) / n`` -> inverse normal CDF -> ``sign * |x| ** 1.5``;
  target centered, then ``sign * |t| ** 1.5``; Pearson correlation of the two.
* per era: corr, max |corr(prediction, feature)| (feature exposure), and the Pearson
  correlation of tie-kept ranks with each benchmark model column;
* summary: mean, std, Sharpe (mean / std), max drawdown of the cumulative per-era corr,
  max per-era feature exposure, mean correlation with each benchmark model.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from builder.errors import NmrError

_CHILD = Path(__file__).with_name("model_child.py")


@dataclass
class ValidationReport:
    per_era: pd.DataFrame  # index era; columns corr, exposure, <benchmark columns>
    summary: dict = field(default_factory=dict)
    benchmark_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "summary": self.summary,
            "per_era": {
                str(era): {k: _plain(v) for k, v in row.items()}
                for era, row in self.per_era.iterrows()
            },
        }


def run_validation(
    pickle_path,
    python,
    validation_path,
    benchmarks_path=None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Predict ``validation_path`` with the pickle, era by era, and score it."""
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
        predictions = pd.read_parquet(Path(tmp) / "predictions.parquet")
        exposure = json.loads((Path(tmp) / "exposure.json").read_text())
    benchmarks = None
    if benchmarks_path is not None and Path(benchmarks_path).exists():
        benchmarks = _read_benchmarks(benchmarks_path)
    return score(predictions, exposure, benchmarks)


def score(predictions: pd.DataFrame, exposure: dict, benchmarks: pd.DataFrame | None = None):
    """Per-era and summary metrics from (id-indexed) era / prediction / target columns."""
    bench_cols = list(benchmarks.columns) if benchmarks is not None else []
    if benchmarks is not None:
        benchmarks = benchmarks.reindex(predictions.index)
    rows = []
    for era, frame in predictions.groupby("era", sort=True):
        row = {"era": str(era)}
        row["corr"] = numerai_corr(frame["prediction"].to_numpy(), frame["target"].to_numpy())
        row["exposure"] = exposure.get(str(era))
        for col in bench_cols:
            row[col] = rank_corr(
                frame["prediction"].to_numpy(), benchmarks.loc[frame.index, col].to_numpy()
            )
        rows.append(row)
    per_era = (
        pd.DataFrame(rows).set_index("era") if rows else pd.DataFrame(columns=["corr", "exposure"])
    )
    return ValidationReport(per_era, summarize(per_era, bench_cols), bench_cols)


def summarize(per_era: pd.DataFrame, bench_cols: list[str]) -> dict:
    corr = per_era["corr"].astype(float).dropna() if len(per_era) else pd.Series(dtype=float)
    std = float(corr.std(ddof=0)) if len(corr) > 1 else float("nan")
    mean = float(corr.mean()) if len(corr) else float("nan")
    exposure = pd.to_numeric(per_era.get("exposure"), errors="coerce") if len(per_era) else None
    return {
        "eras": int(len(per_era)),
        "corr_mean": mean,
        "corr_std": std,
        "sharpe": mean / std if std and np.isfinite(std) and std > 0 else float("nan"),
        "max_drawdown": max_drawdown(corr.to_numpy()),
        "max_feature_exposure": float(exposure.max())
        if exposure is not None and exposure.notna().any()
        else None,
        "benchmark_corr": {c: float(per_era[c].astype(float).mean()) for c in bench_cols},
    }


def numerai_corr(predictions: np.ndarray, target: np.ndarray) -> float:
    """numerai-tools' numerai_corr for one era (rows where either side is NaN are dropped)."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    keep = ~(np.isnan(p) | np.isnan(t))
    p, t = p[keep], t[keep]
    if len(p) < 2:
        return float("nan")
    gauss = _norm_ppf(tie_kept_rank(p))
    p15 = np.sign(gauss) * np.abs(gauss) ** 1.5
    t = t - t.mean()
    t15 = np.sign(t) * np.abs(t) ** 1.5
    return _pearson(p15, t15)


def tie_kept_rank(values: np.ndarray) -> np.ndarray:
    """``(rank(method="average") - 0.5) / count``, as numerai-tools ranks before gaussianizing."""
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return (ranks - 0.5) / len(values)


def rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 2:
        return float("nan")
    return _pearson(tie_kept_rank(a[keep]), tie_kept_rank(b[keep]))


def max_drawdown(per_era_corr: np.ndarray) -> float:
    """Largest fall of the cumulative per-era corr from its running peak (>= 0)."""
    if len(per_era_corr) == 0:
        return float("nan")
    cumulative = np.cumsum(per_era_corr)
    peak = np.maximum.accumulate(np.concatenate([[0.0], cumulative]))[1:]
    return float(np.max(peak - cumulative))


# --- helpers ---------------------------------------------------------------------------------


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def _norm_ppf(q: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import ndtri  # numerai-tools uses scipy.stats.norm.ppf

        return ndtri(q)
    except ImportError:
        from statistics import NormalDist

        return np.vectorize(NormalDist().inv_cdf)(q)


def _read_benchmarks(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.ParquetFile(path).schema_arrow.names
    columns = [c for c in names if c not in ("era", "data_type", "id") and not c.startswith("__")]
    frame = pd.read_parquet(path, columns=columns)
    frame.index = frame.index.astype(str)
    return frame


def _plain(value):
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    return value
