"""Train this recipe's model: XGBoost on the `medium` feature set, with missing values filled.

    python train.py          # writes data/ and artifacts/xgb_medium.ubj next to this file

The synthetic data leaves 2% of the feature cells missing, as Numerai's real data does for some
eras. The model is trained on features whose NaN were replaced by 2 (the middle bin), and
numerai.yaml repeats that step (`fill_missing: {value: 2}`) so live data gets the same treatment
inside the pickle. Same seed, same model file: one thread, the deterministic `hist` method.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import xgboost as xgb

from builder.datasets import SMALL, synthesize

HERE = Path(__file__).resolve().parent
SEED = 7
FEATURE_SET = "medium"
FILL_VALUE = 2.0  # must equal numerai.yaml's fill_missing value


def main() -> None:
    data = synthesize(HERE / "data", seed=SEED, sizes=SMALL, nan_fraction=0.02)
    features_json = json.loads(data["paths"]["features_json"].read_text(encoding="utf-8"))
    features = features_json["feature_sets"][FEATURE_SET]
    train = pd.read_parquet(data["paths"]["train"], columns=[*features, "target"])
    X = train[features].fillna(FILL_VALUE).astype("float32")

    params = {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.05,
        "colsample_bytree": 0.8,
        "seed": SEED,
        "nthread": 1,  # one thread: the same seed then gives the same trees
    }
    booster = xgb.train(params, xgb.DMatrix(X, label=train["target"]), num_boost_round=80)

    out = HERE / "artifacts" / "xgb_medium.ubj"
    out.parent.mkdir(exist_ok=True)
    booster.save_model(str(out))  # .ubj: XGBoost's binary JSON (UBJSON) format
    print(f"trained XGBoost on {len(train):,} rows x {len(features)} features -> {out.name}")


if __name__ == "__main__":
    main()
