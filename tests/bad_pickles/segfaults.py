import ctypes


def predict(live_features, live_benchmark_models):
    ctypes.string_at(0)  # read address 0: SIGSEGV, as an ABI-mismatched C extension would


MODEL = predict
