def predict(live_features, live_benchmark_models, extra):
    return None


MODEL = predict
