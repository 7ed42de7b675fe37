def predict(live_features, live_benchmark_models):
    raise ValueError("feature_9999 is not in live_features")


MODEL = predict
