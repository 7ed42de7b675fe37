"""Small Numerai-shaped arrays for compiler and bundle tests (seeded, fast).

Features are integer bins 0..4 (as Numerai's), the target is a 5-bin value with real signal
from a few features, so trees learn non-trivial splits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def feature_names(n_features: int) -> list[str]:
    return [f"feature_{i:04d}" for i in range(n_features)]


def numerai_like(
    n_rows: int = 2000,
    n_features: int = 20,
    seed: int = 0,
    nan_fraction: float = 0.0,
    float_noise: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """X (float64, values in 0..4, optional NaN / jitter) and y in {0, .25, .5, .75, 1}."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(n_rows, n_features)).astype(np.float64)
    k = min(5, n_features)
    w = rng.normal(size=k)
    signal = (X[:, :k] - 2.0) @ w + rng.normal(scale=1.5, size=n_rows)
    ranks = signal.argsort().argsort() / max(n_rows - 1, 1)
    y = np.floor(ranks * 4.999) / 4.0
    if float_noise:
        X = X + rng.normal(scale=0.3, size=X.shape)
    if nan_fraction > 0:
        X[rng.random(X.shape) < nan_fraction] = np.nan
    return X, y


def numerai_frame(X: np.ndarray, names: list[str] | None = None, era: str = "0001") -> pd.DataFrame:
    """A live-like frame: string ids, an era column and the feature columns."""
    names = names or feature_names(X.shape[1])
    ids = [f"n{i:015x}" for i in range(X.shape[0])]
    frame = pd.DataFrame(X, columns=names, index=pd.Index(ids, name="id"))
    frame.insert(0, "era", era)
    return frame
