"""The callable Numerai loads: live features (and benchmarks) in, one ``prediction`` column out.

numerai-predict calls ``model(live_features, live_benchmark_models)`` when the pickle's
signature has 2 parameters and ``model(live_features)`` when it has 1 (docs/design/numerai.md §1.5), so the
two forms are two classes whose ``__call__`` differ only in arity. Shipped inside the pickle:
numpy, pandas and stdlib only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .steps import Context, rank_per_era, to_one_column


class Member:
    """One compiled model of the bundle: its evaluator, where its inputs sit in X, and its own
    preprocessing (applied to its columns after the slot's, e.g. a fill for an ONNX member
    while a tree member keeps its native NaN routing)."""

    def __init__(
        self, evaluator, columns: np.ndarray, task: str, weight: float = 1.0, preprocessing=None
    ):
        self.evaluator = evaluator
        self.columns = np.asarray(columns, dtype=np.int64)  # indices into Bundle.feature_names
        self.task = task
        self.weight = float(weight)
        self.preprocessing = list(preprocessing or [])

    def predict(self, X: np.ndarray) -> np.ndarray:
        cols = self.columns
        # a member reading every column in order gets X itself: X[:, cols] would copy the
        # whole era (42 MB for 6,720 x 780 float64) and turn the frame's F-order into C-order
        whole = len(cols) == X.shape[1] and bool((cols == np.arange(len(cols))).all())
        x = X if whole else X[:, cols]
        if self.preprocessing:
            # the steps compute in float64 (NaN, means), whatever dtype the live frame had; a
            # copy, so the slot's X that other members read is never changed in place
            x = x.astype(np.float64, copy=True)
            for step in self.preprocessing:
                x = step.apply(x)
        raw = self.evaluator.predict(x)
        return to_one_column(raw, self.task)


class Bundle:
    """Preprocessing, the model(s) and postprocessing of one model slot."""

    def __init__(
        self,
        feature_names: tuple[str, ...],
        preprocessing: list,
        members: list[Member],
        ensemble: bool,
        postprocessing: list,
        required_columns: tuple[str, ...],
        summary: dict,
    ):
        self.feature_names = tuple(feature_names)  # the columns of X, in order
        self.preprocessing = list(preprocessing)
        self.members = list(members)
        self.ensemble = bool(ensemble)
        self.postprocessing = list(postprocessing)
        self.required_columns = tuple(required_columns)  # every live column predict reads
        self.summary = summary  # plain data for `nmr inspect`

    def predict(self, live_features: pd.DataFrame, live_benchmark_models=None) -> pd.DataFrame:
        missing = [c for c in self.required_columns if c not in live_features.columns]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise ValueError(
                f"live_features is missing {len(missing)} column(s) this model needs: {shown}"
            )
        # folded preprocessing (builder.compile.trees.fold_preprocessing): the members
        # apply the steps themselves and read the raw features
        steps = [] if getattr(self, "preprocessing_folded", False) else self.preprocessing
        X = feature_matrix(live_features[list(self.feature_names)], steps)
        for step in steps:
            X = step.apply(X)
        ctx = Context(live_features, live_benchmark_models)
        if self.ensemble:
            # Members are put on one scale (per-era ranks) before the weighted mean.
            total = sum(member.weight for member in self.members)
            p = np.zeros(len(live_features), dtype=np.float64)
            for member in self.members:
                p += member.weight * rank_per_era(member.predict(X), ctx.eras)
            p /= total
        else:
            p = self.members[0].predict(X)
        for step in self.postprocessing:
            p = step.apply(p, ctx)
        return pd.DataFrame({"prediction": p}, index=live_features.index)

    def __repr__(self) -> str:
        kinds = "+".join(str(m.get("kind")) for m in self.summary.get("members", []))
        steps = [*self.summary.get("preprocessing", []), *self.summary.get("postprocessing", [])]
        return (
            f"<nmr predict slot={self.summary.get('slot')!r} features={len(self.feature_names)} "
            f"models={kinds} steps={steps}>"
        )


def feature_matrix(frame: pd.DataFrame, preprocessing: list) -> np.ndarray:
    """The live feature columns as one 2-D array.

    Numerai ships features as small integers (int8 in the parquet files). When no
    preprocessing step needs floats and every column has the same plain numpy dtype, the array
    keeps that dtype: the tree kernel's bit-sliced path reads int8 directly, and a float64
    copy of a 6,720 x 2,748 era costs more than the trees themselves (bench/results/trees.md).
    Values are the same either way, so predictions do not change.
    """
    dtypes = set(frame.dtypes)
    if not preprocessing and len(dtypes) == 1:
        (dtype,) = dtypes
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
            return frame.to_numpy()
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


class Predict(Bundle):
    """2-argument form: ``predict(live_features, live_benchmark_models)`` (Numerai's default)."""

    def __call__(self, live_features, live_benchmark_models):
        return self.predict(live_features, live_benchmark_models)


class PredictLegacy(Bundle):
    """1-argument form: ``predict(live_features)`` (no benchmarks are downloaded)."""

    def __call__(self, live_features):
        return self.predict(live_features, None)
