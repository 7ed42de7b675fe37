def predict(live_features, live_benchmark_models):
    return None


MODEL = predict
