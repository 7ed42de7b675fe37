"""Step math of numerai.yaml, shipped inside the pickle (numpy, pandas and stdlib only).

Preprocessing steps map the feature matrix ``X`` (float64, rows x the bundle's input columns)
to a new matrix; their parameters (fill values, means, stds) were fitted at build time and are
plain arrays here. Postprocessing steps map the prediction vector ``p`` (float64, one value per
live row) to a new vector, with a ``Context`` giving the live frame, the era of each row and the
benchmark frame. Per-era steps group by ``era`` when live_features has that column and treat the
whole frame as one era otherwise (Numerai's live data is a single era, docs/design/numerai.md §3).

Cross-module imports inside kernels import names, never modules: a module object of a by-value
package would be pickled with its whole namespace.
"""

from __future__ import annotations

import logging
from statistics import NormalDist

import numpy as np
import pandas as pd


class Context:
    """What postprocessing steps may read besides the prediction itself."""

    def __init__(self, live_features: pd.DataFrame, live_benchmark_models=None):
        self.live_features = live_features
        self.live_benchmark_models = live_benchmark_models
        self.eras = era_codes(live_features)


class FillMissing:
    """Replace NaN in each input column by that column's fill value."""

    name = "fill_missing"

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, dtype=np.float64)

    def apply(self, X: np.ndarray) -> np.ndarray:
        missing = np.isnan(X)
        if not missing.any():
            return X
        return np.where(missing, self.values[np.newaxis, :], X)


class Clip:
    """Clip every input column into [lower, upper] (either bound may be absent); NaN stays NaN."""

    name = "clip"

    def __init__(self, lower: float | None, upper: float | None):
        self.lower = lower
        self.upper = upper

    def apply(self, X: np.ndarray) -> np.ndarray:
        return np.clip(X, self.lower, self.upper)


class Standardize:
    """(x - mean) / scale per input column, with mean and scale fitted on the train data."""

    name = "standardize"

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)

    def apply(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean[np.newaxis, :]) / self.scale[np.newaxis, :]


class Neutralize:
    """Per era, subtract ``proportion`` of the least-squares fit of p on the named features.

    Within an era the features and p are centered (an intercept), so with proportion 1 the result
    is the residual of p orthogonal to every feature and keeps p's era mean. NaN in a neutralizer
    column is replaced by that column's era mean (0 when the whole column is NaN).
    """

    name = "neutralize"

    def __init__(self, columns: tuple[str, ...], proportion: float = 1.0):
        self.columns = tuple(columns)
        self.proportion = float(proportion)

    def apply(self, p: np.ndarray, ctx: Context) -> np.ndarray:
        exposures = ctx.live_features[list(self.columns)].to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        out = np.array(p, dtype=np.float64)
        for rows in era_groups(ctx.eras):
            E = exposures[rows]
            with np.errstate(all="ignore"):
                means = np.nanmean(E, axis=0) if np.isnan(E).any() else E.mean(axis=0)
            means = np.where(np.isnan(means), 0.0, means)
            E = np.where(np.isnan(E), means[np.newaxis, :], E) - means[np.newaxis, :]
            y = out[rows]
            y_centered = y - y.mean()
            coef = np.linalg.lstsq(E, y_centered, rcond=None)[0]
            out[rows] = y - self.proportion * (E @ coef)
        return out


class BlendBenchmark:
    """(1 - weight) * rank(p) + weight * rank(benchmark column), ranks taken per era.

    The benchmark frame is reindexed to the live ids first (docs/design/numerai.md §3: the SKILL file asks
    for exactly that). When the column is absent, or some live ids have no (or a NaN) value:
    ``on_missing="fail"`` raises a ValueError naming what is missing, so the run fails;
    ``on_missing="skip"`` ships the plain per-era rank of p for the rows without a benchmark
    (all rows when the column is absent) and logs one WARNING line, which numerai-predict's log
    shows (predict.py configures the root logger; the "nmr" logger propagates to it).
    """

    name = "blend_benchmark"

    def __init__(self, column: str, weight: float, on_missing: str = "skip"):
        self.column = column
        self.weight = float(weight)
        self.on_missing = on_missing

    def apply(self, p: np.ndarray, ctx: Context) -> np.ndarray:
        if self.on_missing == "fail":
            benchmark = benchmark_column(ctx.live_benchmark_models, self.column, ctx.live_features)
            return (1.0 - self.weight) * rank_per_era(p, ctx.eras) + self.weight * rank_per_era(
                benchmark, ctx.eras
            )
        values, problem = available_benchmark(
            ctx.live_benchmark_models, self.column, ctx.live_features
        )
        ranked = rank_per_era(p, ctx.eras)
        if problem is None:
            return (1.0 - self.weight) * ranked + self.weight * rank_per_era(values, ctx.eras)
        present = ~np.isnan(values)
        logging.getLogger("nmr").warning(
            "blend_benchmark skipped for %d of %d rows (%s); they get the unblended per-era "
            "rank of the model's prediction (on_missing: skip)",
            int((~present).sum()),
            len(p),
            problem,
        )
        if not present.any():
            return ranked
        # the benchmark is ranked among the rows that have it, per era
        benchmark_rank = np.full(len(p), np.nan)
        benchmark_rank[present] = rank_per_era(values[present], ctx.eras[present])
        return np.where(
            present, (1.0 - self.weight) * ranked + self.weight * benchmark_rank, ranked
        )


class RankPerEra:
    """Percentile rank within each era, ties averaged: values in (0, 1]."""

    name = "rank_per_era"

    def apply(self, p: np.ndarray, ctx: Context) -> np.ndarray:
        return rank_per_era(p, ctx.eras)


class GaussianizePerEra:
    """Per era: ranks (ties averaged) -> (rank - 0.5) / n -> standard normal quantile."""

    name = "gaussianize_per_era"

    def apply(self, p: np.ndarray, ctx: Context) -> np.ndarray:
        return gaussianize_per_era(p, ctx.eras)


def era_codes(live_features: pd.DataFrame) -> np.ndarray:
    """An integer era code per row (all 0 when the frame has no ``era`` column)."""
    if "era" not in live_features.columns:
        return np.zeros(len(live_features), dtype=np.int64)
    codes, _ = pd.factorize(live_features["era"].astype(str), sort=True)
    return codes.astype(np.int64)


def era_groups(eras: np.ndarray) -> list[np.ndarray]:
    """Row indices of each era."""
    if len(eras) == 0:
        return []
    if eras.min() == eras.max():
        return [np.arange(len(eras))]
    order = np.argsort(eras, kind="stable")
    bounds = np.flatnonzero(np.diff(eras[order])) + 1
    return np.split(order, bounds)


def rank_per_era(p: np.ndarray, eras: np.ndarray) -> np.ndarray:
    """Percentile rank (``rank(pct=True)``, ties averaged) of p within each era."""
    series = pd.Series(np.asarray(p, dtype=np.float64))
    return series.groupby(eras).rank(method="average", pct=True).to_numpy(dtype=np.float64)


def gaussianize_per_era(p: np.ndarray, eras: np.ndarray) -> np.ndarray:
    """Normal quantiles of the per-era ranks: Φ⁻¹((rank - 0.5) / n)."""
    series = pd.Series(np.asarray(p, dtype=np.float64))
    grouped = series.groupby(eras)
    ranks = grouped.rank(method="average").to_numpy(dtype=np.float64)
    counts = grouped.transform("count").to_numpy(dtype=np.float64)
    u = (ranks - 0.5) / counts
    # statistics.NormalDist.inv_cdf (stdlib, Wichura's AS241) keeps scipy out of the pickle.
    inv_cdf = NormalDist().inv_cdf
    return np.fromiter((inv_cdf(x) if x == x else np.nan for x in u), np.float64, len(u))


def benchmark_column(benchmarks, column: str, live_features: pd.DataFrame) -> np.ndarray:
    """The benchmark column aligned to the live ids, or a ValueError naming what is missing."""
    if benchmarks is None:
        raise ValueError(
            f"blend_benchmark needs live_benchmark_models (column {column!r}) but none was passed"
        )
    if column not in benchmarks.columns:
        known = ", ".join(str(c) for c in list(benchmarks.columns)[:8])
        raise ValueError(f"live_benchmark_models has no column {column!r} (it has: {known})")
    values = benchmarks[column]
    if not values.index.is_unique:
        raise ValueError("live_benchmark_models has duplicate ids in its index")
    missing = live_features.index.difference(values.index)
    if len(missing):
        first = ", ".join(str(i) for i in missing[:5])
        raise ValueError(
            f"live_benchmark_models lacks {len(missing)} live id(s) for column {column!r}, "
            f"e.g. {first}"
        )
    aligned = values.reindex(live_features.index).to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(aligned).any():
        raise ValueError(f"live_benchmark_models column {column!r} has NaN for some live ids")
    return aligned


def available_benchmark(benchmarks, column: str, live_features: pd.DataFrame):
    """(values aligned to the live ids with NaN where there is none, None) when every live id
    has a value; else (those values, one phrase saying what is missing)."""
    n = len(live_features)
    nothing = np.full(n, np.nan)
    if benchmarks is None:
        return nothing, "no live_benchmark_models were passed"
    if column not in benchmarks.columns:
        return nothing, f"live_benchmark_models has no column {column!r}"
    values = benchmarks[column]
    if not values.index.is_unique:
        return nothing, "live_benchmark_models has duplicate ids in its index"
    aligned = values.reindex(live_features.index).to_numpy(dtype=np.float64, na_value=np.nan)
    missing = int(np.isnan(aligned).sum())
    if missing:
        return aligned, f"column {column!r} lacks a value for {missing} live id(s)"
    return aligned, None


def to_one_column(raw: np.ndarray, task: str) -> np.ndarray:
    """One prediction per row from a model's (n_rows, n_outputs) output.

    regression: column 0. binary: P(class 1) (the last column; one-column outputs already are
    P(class 1)). multiclass: the expected class index divided by (n_classes - 1), in [0, 1].
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 1:
        raw = raw[:, np.newaxis]
    if task == "binary":
        return raw[:, -1].copy()
    if task == "multiclass" and raw.shape[1] > 1:
        classes = np.arange(raw.shape[1], dtype=np.float64)
        return raw @ classes / (raw.shape[1] - 1)
    return raw[:, 0].copy()
