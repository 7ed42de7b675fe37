"""Train this recipe's model: LightGBM on the `small` feature set of synthetic Numerai data.

    python train.py          # writes data/ and artifacts/lgbm_small.txt next to this file

The data is synthetic (nmr cannot download Numerai's), so swap `synthesize` for your own
`numerapi.NumerAPI().download_dataset(...)` calls to train on the real thing. The same seed gives
the same model file byte for byte: one thread and LightGBM's `deterministic` mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import pandas as pd

from builder.datasets import SMALL, synthesize

HERE = Path(__file__).resolve().parent
SEED = 42
FEATURE_SET = "small"


def main() -> None:
    data = synthesize(HERE / "data", seed=SEED, sizes=SMALL)
    features_json = json.loads(data["paths"]["features_json"].read_text(encoding="utf-8"))
    features = features_json["feature_sets"][FEATURE_SET]
    train = pd.read_parquet(data["paths"]["train"], columns=[*features, "target"])

    params = {
        "objective": "regression",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "colsample_bytree": 0.8,
        "seed": SEED,
        # One thread plus deterministic=True: LightGBM's multi-threaded histogram sums otherwise
        # vary in the last bits between runs, and so would the model file.
        "num_threads": 1,
        "deterministic": True,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(train[features], label=train["target"]), 80)

    out = HERE / "artifacts" / "lgbm_small.txt"
    out.parent.mkdir(exist_ok=True)
    booster.save_model(str(out))
    print(f"trained LightGBM on {len(train):,} rows x {len(features)} features -> {out.name}")


if __name__ == "__main__":
    main()
