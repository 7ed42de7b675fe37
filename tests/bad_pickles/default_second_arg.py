# predict.py counts parameters with defaults too: 2 parameters, so it is called with benchmarks
def predict(live_features, live_benchmark_models=None):
    assert live_benchmark_models is not None, "benchmarks were not passed"
    return live_features["feature_0000"].rank(pct=True).to_frame("prediction")


MODEL = predict
