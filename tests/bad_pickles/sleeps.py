import time


def predict(live_features, live_benchmark_models):
    time.sleep(60)


MODEL = predict
