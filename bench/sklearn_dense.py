"""Fidelity bound and speed of compiled scikit-learn linear models, MLPs, Pipelines, Voting.

    .venv/bin/python bench/sklearn_dense.py          # writes bench/results/sklearn-dense.md
    .venv/bin/python bench/sklearn_dense.py --models 3 --out /tmp/x.md

For every estimator kind nmr compiles natively from scikit-learn (besides trees), MODELS
seeded models are fitted on Numerai-shaped data (int8 bins 0..4, 42 features, some with float
jitter), read and compiled as ``nmr build`` does, and packed into pickles by the default
runtime's env (its Python and pinned numpy, no scikit-learn). The pickled evaluators predict a
6,720-row era (int8, as Numerai ships it) in that env; scikit-learn predicts the same rows in
this process, given both as a C-ordered float64 array and as a DataFrame (scikit-learn's own
result depends on the layout through BLAS). Reported: the largest relative error
max |ours - scikit-learn| / max |scikit-learn| over all models and both layouts, in this
process (builder numpy) and in the runtime (the shipped pickle), and the median time of one
era (ours in this process vs scikit-learn's predict, alternating calls, one thread).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROWS = 6_720
N_FEATURES = 42
TRAIN_ROWS = 3_000
REPEATS = 11
BOUND = 1e-12

_CHILD = """
import json, pickle, sys
import numpy as np
X = np.load(sys.argv[1])
out = {}
for i in range(int(sys.argv[3])):
    with open(f"{sys.argv[2]}/m{i}.pkl", "rb") as handle:
        evaluator = pickle.load(handle)
    np.save(f"{sys.argv[2]}/p{i}.npy", evaluator.predict(X))
mods = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0],
                  "sklearn_loaded": "sklearn" in mods}))
"""


def kinds():
    """name -> make(rng, seed) of a fresh estimator."""
    from sklearn import decomposition as dec
    from sklearn import ensemble as ens
    from sklearn import impute, neural_network, pipeline, svm
    from sklearn import linear_model as lm
    from sklearn import preprocessing as pre

    def mlp(activation):
        return lambda rng, s: neural_network.MLPRegressor(
            hidden_layer_sizes=(int(rng.integers(8, 64)), int(rng.integers(4, 16))),
            activation=activation,
            max_iter=40,
            random_state=s,
        )

    out = {
        "LinearRegression": lambda rng, s: lm.LinearRegression(),
        "Ridge": lambda rng, s: lm.Ridge(alpha=float(rng.choice([0.1, 10.0, 1000.0]))),
        "RidgeCV": lambda rng, s: lm.RidgeCV(alphas=(0.1, 10.0, 1000.0)),
        "Lasso": lambda rng, s: lm.Lasso(alpha=float(rng.choice([1e-4, 1e-3]))),
        "LassoCV": lambda rng, s: lm.LassoCV(cv=3),
        "ElasticNet": lambda rng, s: lm.ElasticNet(alpha=1e-3, l1_ratio=float(rng.uniform())),
        "ElasticNetCV": lambda rng, s: lm.ElasticNetCV(cv=3),
        "SGDRegressor": lambda rng, s: lm.SGDRegressor(random_state=s),
        "BayesianRidge": lambda rng, s: lm.BayesianRidge(),
        "ARDRegression": lambda rng, s: lm.ARDRegression(),
        "HuberRegressor": lambda rng, s: lm.HuberRegressor(max_iter=200),
        "Lars": lambda rng, s: lm.Lars(),
        "LassoLars": lambda rng, s: lm.LassoLars(alpha=1e-4),
        "OrthogonalMatchingPursuit": lambda rng, s: lm.OrthogonalMatchingPursuit(),
        "LinearSVR": lambda rng, s: svm.LinearSVR(random_state=s, max_iter=2000),
        "PoissonRegressor": lambda rng, s: lm.PoissonRegressor(alpha=1e-3),
        "TweedieRegressor(power=1.5)": lambda rng, s: lm.TweedieRegressor(power=1.5, alpha=1e-3),
        "MLPRegressor identity": mlp("identity"),
        "MLPRegressor logistic": mlp("logistic"),
        "MLPRegressor tanh": mlp("tanh"),
        "MLPRegressor relu": mlp("relu"),
        "Pipeline(SimpleImputer, StandardScaler, Ridge)": lambda rng, s: pipeline.make_pipeline(
            impute.SimpleImputer(), pre.StandardScaler(), lm.Ridge()
        ),
        "Pipeline(StandardScaler, PCA(whiten), Ridge)": lambda rng, s: pipeline.make_pipeline(
            pre.StandardScaler(), dec.PCA(int(rng.integers(5, 30)), whiten=True), lm.Ridge()
        ),
        "Pipeline(MinMaxScaler, MaxAbsScaler, RobustScaler, MLP)": (
            lambda rng, s: pipeline.make_pipeline(
                pre.MinMaxScaler(),
                pre.MaxAbsScaler(),
                pre.RobustScaler(),
                mlp("relu")(rng, s),
            )
        ),
        "Pipeline(StandardScaler, LGBMRegressor)": lambda rng, s: pipeline.make_pipeline(
            pre.StandardScaler(), _lgbm(s)
        ),
        "VotingRegressor(Ridge, MLP, LGBMRegressor)": lambda rng, s: ens.VotingRegressor(
            [("r", lm.Ridge()), ("m", mlp("tanh")(rng, s)), ("l", _lgbm(s))],
            weights=list(rng.uniform(0.5, 2, 3)),
        ),
    }
    return out


def _lgbm(seed):
    import lightgbm

    return lightgbm.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1, random_state=seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5, help="models per estimator kind")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sklearn-dense.md"))
    args = parser.parse_args(argv)

    from builder import runtimes
    from builder.artifacts import sklearn as sk_reader
    from builder.compile import compile_model
    from builder.env import ensure_env
    from builder.pack import pack_many

    env = ensure_env(runtimes.default_tag())
    rng = np.random.default_rng(0)
    X_live = rng.integers(0, 5, size=(ROWS, N_FEATURES)).astype(np.int8)
    names = [f"feature_{i:04d}" for i in range(N_FEATURES)]
    rows, runtime_info = [], {}
    with tempfile.TemporaryDirectory(prefix="nmr-bench-sklearn-") as tmp:
        work = Path(tmp)
        np.save(work / "X.npy", X_live)
        for kind, make in kinds().items():
            fitted, evaluators = [], []
            for m in range(args.models):
                X, y = _train(m)
                est = make(rng, m)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X, y)
                joblib.dump(est, work / "est.joblib")
                fitted.append(est)
                evaluators.append(compile_model(sk_reader.read(work / "est.joblib", names)))
            for i, packed in enumerate(pack_many(evaluators, env)):
                (work / f"m{i}.pkl").write_bytes(packed.data)
            done = subprocess.run(
                [str(env.python), "-I", "-c", _CHILD, str(work / "X.npy"), tmp, str(len(fitted))],
                capture_output=True,
                text=True,
                check=True,
            )
            runtime_info = json.loads(done.stdout.strip().splitlines()[-1])
            err_here = err_runtime = 0.0
            for i, (est, evaluator) in enumerate(zip(fitted, evaluators, strict=True)):
                ours_here = evaluator.predict(X_live)[:, 0]
                ours_runtime = np.load(work / f"p{i}.npy")[:, 0]
                for given in (
                    np.ascontiguousarray(X_live, dtype=np.float64),
                    pd.DataFrame(X_live.astype(np.float64), columns=names),
                ):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        theirs = np.asarray(est.predict(given), dtype=np.float64)
                    scale = np.max(np.abs(theirs))
                    err_here = max(err_here, float(np.max(np.abs(ours_here - theirs)) / scale))
                    err_runtime = max(
                        err_runtime, float(np.max(np.abs(ours_runtime - theirs)) / scale)
                    )
            ours_ms, theirs_ms = _timing(fitted[0], evaluators[0], X_live)
            rows.append((kind, len(fitted), err_here, err_runtime, ours_ms, theirs_ms))
            print(f"{kind}: {err_here:.2g} / {err_runtime:.2g}", file=sys.stderr)
    text = _table(rows, runtime_info, args.models)
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    return 0


def _train(seed: int):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(TRAIN_ROWS, N_FEATURES)).astype(np.float64)
    if seed % 2:
        X = X + rng.normal(scale=0.3, size=X.shape)
    signal = (X[:, :5] - 2.0) @ rng.normal(size=5) + rng.normal(scale=1.5, size=len(X))
    y = np.floor(signal.argsort().argsort() / (len(X) - 1) * 4.999) / 4.0 + 0.1
    return X, y


def _timing(est, evaluator, X):
    import sklearn

    ours, theirs = [], []
    with sklearn.config_context(assume_finite=False), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator.predict(X)
        est.predict(X)
        for _ in range(REPEATS):
            t = time.perf_counter()
            evaluator.predict(X)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            est.predict(X)
            theirs.append(time.perf_counter() - t)
    return statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3


def _table(rows, runtime_info, n_models) -> str:
    import sklearn

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    lines = [
        "# scikit-learn linear models, MLPs, Pipelines and VotingRegressor: fidelity and speed",
        "",
        f"Generated by `bench/sklearn_dense.py` on {now}; {n_models} seeded models per row, "
        f"{ROWS:,} int8 rows x {N_FEATURES} features; stated bound {BOUND:g}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs shared with other jobs "
        f"(load average {load:.1f}); builder: Python {platform.python_version()}, numpy "
        f"{np.__version__}, scikit-learn {sklearn.__version__}; runtime pickle: Python "
        f"{runtime_info.get('python')}, numpy {runtime_info.get('numpy')}, scikit-learn "
        f"loaded: {runtime_info.get('sklearn_loaded')}.",
        "",
        "| estimator | models | max rel. error (builder) | max rel. error (runtime pickle) "
        "| ours (ms) | scikit-learn (ms) | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, n, here, runtime, ours, theirs in rows:
        lines.append(
            f"| {kind} | {n} | {here:.1e} | {runtime:.1e} | {ours:.2f} | {theirs:.2f} | "
            f"{ours / theirs:.2f} |"
        )
    worst = max(max(r[2], r[3]) for r in rows)
    lines += [
        "",
        "max rel. error: max |ours - scikit-learn| / max |scikit-learn| over all models and "
        "both input layouts (C-ordered array, DataFrame); scikit-learn predicts in the builder "
        "process. Times: one era, median of alternating calls in the builder process, one "
        f"thread. Largest error over every row: {worst:.1e} (bound {BOUND:g}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
