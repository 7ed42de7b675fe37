import numpy as np


def predict(live_features, live_benchmark_models):
    # touch ~1.5 GB page by page (np.ones writes every page) so the resident set really grows
    hog = np.ones(200_000_000, dtype=np.float64)
    return hog[: len(live_features)].reshape(-1, 1)


MODEL = predict
