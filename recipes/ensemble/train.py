"""Train this recipe's two ensemble members on synthetic Numerai data.

    python train.py          # writes data/, artifacts/lgbm_medium.txt and artifacts/xgb_small.json

- LightGBM on the `medium` feature set (the ensemble's default features);
- XGBoost on the `small` feature set (the member names its own features in numerai.yaml).

nmr ranks each member's predictions per era, blends them by weight, then runs the
postprocessing in numerai.yaml (neutralize, benchmark blend, rank). Both models are trained with
one thread and a fixed seed, so the same seed gives the same files byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import pandas as pd
import xgboost as xgb

from builder.datasets import SMALL, synthesize

HERE = Path(__file__).resolve().parent
SEED = 11


def main() -> None:
    data = synthesize(HERE / "data", seed=SEED, sizes=SMALL)
    feature_sets = json.loads(data["paths"]["features_json"].read_text(encoding="utf-8"))[
        "feature_sets"
    ]
    train = pd.read_parquet(data["paths"]["train"])
    artifacts = HERE / "artifacts"
    artifacts.mkdir(exist_ok=True)

    medium = feature_sets["medium"]
    lgbm = lgb.train(
        {
            "objective": "regression",
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_data_in_leaf": 20,
            "colsample_bytree": 0.8,
            "seed": SEED,
            # one thread + deterministic: LightGBM's threaded histogram sums vary otherwise
            "num_threads": 1,
            "deterministic": True,
            "verbose": -1,
        },
        lgb.Dataset(train[medium], label=train["target"]),
        num_boost_round=80,
    )
    lgbm.save_model(str(artifacts / "lgbm_medium.txt"))

    small = feature_sets["small"]
    xgbm = xgb.train(
        {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_depth": 3,
            "eta": 0.05,
            "seed": SEED,
            "nthread": 1,
        },
        xgb.DMatrix(train[small].astype("float32"), label=train["target"]),
        num_boost_round=80,
    )
    xgbm.save_model(str(artifacts / "xgb_small.json"))  # XGBoost's JSON model format

    print(
        f"trained on {len(train):,} rows: lgbm_medium.txt ({len(medium)} features), "
        f"xgb_small.json ({len(small)} features)"
    )


if __name__ == "__main__":
    main()
