"""A ``source:`` slot's own predict function with nmr's postprocessing around it.

Shipped inside the pickle (numpy, pandas and stdlib only). The user's function is pickled by
value next to this class; it is called the way numerai-predict would call it (one or two
arguments, by its own signature), its output is reduced to one value per live row, and the
slot's postprocessing steps run on that vector exactly as for compiled models. Without
postprocessing nmr ships the bare function instead, so its signature is the user's own.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd

from .steps import Context


class SourcePredict:
    """The user's function, then postprocessing; one ``prediction`` column out."""

    def __init__(self, function, postprocessing: list, summary: dict):
        self.function = function
        self.postprocessing = list(postprocessing)
        self.summary = summary  # plain data for `nmr inspect`

    def predict(self, live_features: pd.DataFrame, live_benchmark_models=None) -> pd.DataFrame:
        if len(inspect.signature(self.function).parameters) >= 2:
            out = self.function(live_features, live_benchmark_models)
        else:
            out = self.function(live_features)
        p = prediction_values(out, live_features.index)
        ctx = Context(live_features, live_benchmark_models)
        for step in self.postprocessing:
            p = step.apply(p, ctx)
        return pd.DataFrame({"prediction": p}, index=live_features.index)

    def __repr__(self) -> str:
        return (
            f"<nmr source slot={self.summary.get('slot')!r} "
            f"function={self.summary.get('function')!r} steps={self.summary.get('postprocessing')}>"
        )


class SourcePredict2(SourcePredict):
    """2-argument form: ``predict(live_features, live_benchmark_models)``."""

    def __call__(self, live_features, live_benchmark_models):
        return self.predict(live_features, live_benchmark_models)


class SourcePredict1(SourcePredict):
    """1-argument form (``deploy.legacy_signature``): no benchmarks are downloaded."""

    def __call__(self, live_features):
        return self.predict(live_features, None)


def prediction_values(out, index: pd.Index) -> np.ndarray:
    """One float per live row from what the user's function returned: a one-column (or
    ``prediction``-column) DataFrame or a Series (aligned on the live ids), or an array."""
    if isinstance(out, pd.DataFrame):
        if "prediction" in out.columns:
            out = out["prediction"]
        elif out.shape[1] == 1:
            out = out.iloc[:, 0]
        else:
            raise ValueError(
                f"the predict function returned {out.shape[1]} columns; return one column "
                "(or one named 'prediction')"
            )
    if isinstance(out, pd.Series):
        if out.index.equals(index):
            return out.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = index.difference(out.index)
        if len(missing):
            raise ValueError(f"the predict function returned no prediction for id {missing[0]!r}")
        return out.reindex(index).to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.asarray(out, dtype=np.float64).reshape(-1)
    if len(values) != len(index):
        raise ValueError(
            f"the predict function returned {len(values)} values for {len(index)} live rows"
        )
    return values
