import numpy as np


def predict(live_features, live_benchmark_models):
    out = (
        live_features[["feature_0000"]]
        .rank(pct=True)
        .rename(columns={"feature_0000": "prediction"})
    )
    out.iloc[3, 0] = np.nan
    return out


MODEL = predict
