def predict(live_features, live_benchmark_models):
    out = (
        live_features[["feature_0000"]]
        .rank(pct=True)
        .rename(columns={"feature_0000": "prediction"})
    )
    ids = list(out.index)
    ids[-1] = ids[0]  # predict.py does not look at ids; Numerai's submission check does
    out.index = ids
    out.index.name = "id"
    return out


MODEL = predict
