import numpy as np


def predict(live_features, live_benchmark_models):
    out = (
        live_features[["feature_0000"]]
        .rank(pct=True)
        .rename(columns={"feature_0000": "prediction"})
    )
    out.iloc[0, 0] = np.inf  # passes predict.py's NaN check, fails its range check
    return out


MODEL = predict
