"""The timed half of bench/trees.py: runs inside the runtime's own Python (the cached env of
builder/env.py with the image's numpy/pandas pins, plus the image's lightgbm/xgboost pins).

It never imports ``builder``: the shipped pickle carries the kernels by value, as in
Numerai's container. Usage (bench/trees.py starts it):

    <env python> bench/trees_child.py time SPEC.json     # prints one JSON line of timings
    <env python> bench/trees_child.py rss SPEC.json      # load + predict once, prints peak RSS MB

SPEC names the pickle, the live parquet, the native model file, the reference input (.npy,
the matrix the native library is given: the live features after the slot's preprocessing),
the number of runs and the peers to try. Methods are timed in rotating order in this one
process; each time is one full call (the pickle: DataFrame in, DataFrame out).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import pickle  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# the script's own directory (bench/) holds onnx.py, which would shadow the onnx package
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]


def main(argv: list[str]) -> int:
    mode, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("peers_dir"):
        # appended, not prepended: the image's numpy/pandas pins must win over anything a
        # peer's install dragged along
        sys.path.append(spec["peers_dir"])
    live = pd.read_parquet(spec["live"])
    with open(spec["pickle"], "rb") as fh:
        model = pickle.load(fh)
    if mode == "rss":
        model(live, None)
        print(_peak_rss_mb())
        return 0
    if mode == "profile":
        print(json.dumps(_profile(model, live)))
        return 0
    X_ref = np.load(spec["reference_input"])
    methods, notes = _methods(spec, model, live, X_ref)
    # exactness on the live era itself; on the first rows only when the native library is not
    # timed (one LightGBM pass over 90,000 trees takes minutes)
    probe = spec.get("probe_rows") or len(live)
    expected = _native(spec, X_ref[:probe])()
    diffs = {
        name: float(np.max(np.abs(fn()[:probe] - expected)))
        for name, fn in methods.items()
        if name != "native"
    }
    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(spec["runs"]):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if name not in ("ours", "kernel") and r >= spec.get("native_runs", spec["runs"]):
                continue
            t = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - t)
    out = {
        "ms": {k: statistics.median(v) * 1000 for k, v in times.items() if v},
        "runs": {k: len(v) for k, v in times.items()},
        "max_diff": diffs,
        "notes": notes,
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pandas": pd.__version__,
            **_versions(spec["library"]),
        },
    }
    print(json.dumps(out))
    return 0


def _methods(spec: dict, model, live: pd.DataFrame, X_ref: np.ndarray):
    """name -> zero-argument callable returning the predictions as float64 (rows,)."""
    evaluator = model.members[0].evaluator
    X_kernel = _kernel_input(model, live)
    methods = {
        "ours": lambda: model(live, None)["prediction"].to_numpy(),
        "kernel": lambda: evaluator.predict(X_kernel)[:, 0],
        "native": _native(spec, X_ref),
    }
    notes = []
    for peer in spec.get("peers", []):
        try:
            methods[peer] = _PEERS[peer](spec, X_ref)
        except Exception as exc:  # a peer that does not install or convert is skipped
            notes.append(f"{peer} skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    return methods, notes


def _kernel_input(model, live: pd.DataFrame) -> np.ndarray:
    """The member's input exactly as the bundle hands it over (kernel-only column)."""
    # the pickle carries its module by value (not in sys.modules): reach it through predict
    feature_matrix = type(model).predict.__globals__["feature_matrix"]
    steps = [] if getattr(model, "preprocessing_folded", False) else model.preprocessing
    X = feature_matrix(live[list(model.feature_names)], steps)
    for step in steps:
        X = step.apply(X)
    return X[:, model.members[0].columns]


def _native(spec: dict, X_ref: np.ndarray):
    if spec["library"] == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=spec["model"])
        booster.set_param({"nthread": 1})
        return lambda: np.asarray(booster.inplace_predict(X_ref), dtype=np.float64).reshape(-1)
    import lightgbm

    booster = lightgbm.Booster(model_file=spec["model"])
    return lambda: booster.predict(X_ref, num_threads=1)


def _onnxruntime(spec: dict, X_ref: np.ndarray):
    import onnxmltools
    import onnxruntime
    from onnxmltools.convert.common.data_types import FloatTensorType

    width = X_ref.shape[1]
    if spec["library"] == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=spec["model"])
        onx = onnxmltools.convert_xgboost(
            booster, initial_types=[("x", FloatTensorType([None, width]))]
        )
    else:
        import lightgbm

        booster = lightgbm.Booster(model_file=spec["model"])
        onx = onnxmltools.convert_lightgbm(
            booster, initial_types=[("x", FloatTensorType([None, width]))], zipmap=False
        )
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = onnxruntime.InferenceSession(
        onx.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    name = sess.get_inputs()[0].name
    x32 = X_ref.astype(np.float32)
    return lambda: sess.run(None, {name: x32})[0].astype(np.float64).reshape(-1)


def _lleaves(spec: dict, X_ref: np.ndarray):
    if spec["library"] != "lightgbm":
        raise RuntimeError("lleaves reads LightGBM models only")
    import lleaves

    llvm = lleaves.Model(model_file=spec["model"])
    cache = Path(tempfile.mkdtemp()) / "lleaves.o"
    llvm.compile(cache=str(cache))
    x = np.ascontiguousarray(X_ref, dtype=np.float64)
    return lambda: llvm.predict(x, n_jobs=1)


def _tl2cgen(spec: dict, X_ref: np.ndarray):
    import tl2cgen
    import treelite

    if spec["library"] == "xgboost":
        tl_model = treelite.frontend.load_xgboost_model(spec["model"])
    else:
        tl_model = treelite.frontend.load_lightgbm_model(spec["model"])
    lib = Path(tempfile.mkdtemp()) / "model.so"
    tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 8})
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    dmat = tl2cgen.DMatrix(np.ascontiguousarray(X_ref, dtype=np.float64))
    return lambda: np.asarray(predictor.predict(dmat), dtype=np.float64).reshape(-1)


_PEERS = {"onnxruntime": _onnxruntime, "lleaves": _lleaves, "tl2cgen": _tl2cgen}


def _versions(library: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in (library, "onnxruntime", "lleaves", "tl2cgen"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _profile(model, live: pd.DataFrame, calls: int = 3) -> str:
    """cProfile of the pickle's predict (after one warm-up call): the top functions by own time."""
    import cProfile
    import io
    import pstats

    model(live, None)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        model(live, None)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(14)
    text = buf.getvalue()
    # keep the table, drop the header lines about ordering and the file name
    return text[text.index("ncalls") :] if "ncalls" in text else text


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
