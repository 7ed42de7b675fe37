"""The reference the diagnostics tests compare with: numerai-tools called directly, era by era,
on a whole validation frame joined to the written predictions (no streaming, no nmr code)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numerai_tools import scoring
from scipy.stats import rankdata


def per_era(
    predictions: pd.DataFrame,
    validation: pd.DataFrame,
    features: list[str],
    benchmarks: pd.DataFrame | None = None,
    bmc_column: str | None = None,
) -> pd.DataFrame:
    """Per era: corr, corr_<target_x>, bmc, fnc, exposure and corr_with_<benchmark>."""
    data = validation.join(predictions[["prediction"]], how="inner")
    if benchmarks is not None:
        bench_cols = [c for c in benchmarks.columns if c != "era"]
        data = data.join(benchmarks[bench_cols], how="left")
    else:
        bench_cols = []
    aux = [c for c in validation.columns if c.startswith("target_")]
    rows = {}
    for era, frame in data.groupby("era"):
        frame = frame.sort_index()
        F = frame[features].astype(float)
        F = F.fillna(F.mean())
        resolved = frame["target"].notna()
        p = frame[["prediction"]]
        row = {
            "corr": scoring.numerai_corr(p[resolved], frame.loc[resolved, "target"]).iloc[0],
            "fnc": scoring.feature_neutral_corr(
                p[resolved], F[resolved], frame.loc[resolved, "target"]
            ).iloc[0],
            "exposure": scoring.max_feature_correlation(frame["prediction"], F)[1],
        }
        for name in aux:
            has = frame[name].notna()
            row[f"corr_{name}"] = (
                scoring.numerai_corr(p[has], frame.loc[has, name]).iloc[0]
                if has.sum() > 1
                else np.nan
            )
        if bmc_column is not None:
            has = resolved & frame[bmc_column].notna()
            row["bmc"] = scoring.correlation_contribution(
                p[has], frame.loc[has, bmc_column], frame.loc[has, "target"]
            ).iloc[0]
        for column in bench_cols:
            has = frame[column].notna()
            row[f"corr_with_{column}"] = scoring.spearman_correlation(
                frame.loc[has, column], frame.loc[has, "prediction"]
            )
        rows[str(era)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def rank_per_era(p: np.ndarray, eras: np.ndarray) -> np.ndarray:
    """scipy's average rank within each era divided by the era's size: values in (0, 1], the
    reference for the rank_per_era step and for what blend_benchmark mixes."""
    out = np.empty(len(p))
    for era in np.unique(eras):
        rows = eras == era
        out[rows] = rankdata(p[rows], method="average") / rows.sum()
    return out
