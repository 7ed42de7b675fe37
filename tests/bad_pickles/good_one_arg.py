def predict(live_features):
    return live_features["feature_0001"].rank(pct=True).to_frame("prediction")


MODEL = predict
