def predict(live_features, live_benchmark_models):
    out = (
        live_features[["feature_0000"]]
        .rank(pct=True)
        .rename(columns={"feature_0000": "prediction"})
    )
    return out.reset_index(drop=True)  # CSV header becomes ",prediction"


MODEL = predict
