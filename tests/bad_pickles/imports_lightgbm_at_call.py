def predict(live_features, live_benchmark_models):
    import lightgbm  # noqa: F401  not installed in the runtime

    return None


MODEL = predict
