"""Tree-inference benchmark: nmr's compiled evaluator vs LightGBM (or XGBoost) on one live era.

Usage (from the repository root):
    .venv/bin/python bench/trees.py                     # default grid, writes bench/results/trees.md
    .venv/bin/python bench/trees.py --big               # adds the 90,000-tree row
    .venv/bin/python bench/trees.py --trees 2000 --depths 5 --features 42 --runs 5
    .venv/bin/python bench/trees.py --library xgboost --trees 2000 --out bench/results/trees-xgboost.md

Models are LightGBM regressors trained on synthetic Numerai-shaped data (int8 features in
0..4, learning_rate 0.01, colsample_bytree 0.1, num_leaves 2**depth, max_depth depth) and
cached in ~/.cache/nmr/bench-trees. The live era is 6,720 random int8 rows. Every method
runs single-threaded (OMP_NUM_THREADS=1, LightGBM num_threads=1). The methods are timed in
rotating order within one process and the median of the runs is reported, because the
machine is shared and its speed drifts; peak RSS is measured in a fresh child process per
method (load + one prediction), so it includes the interpreter and numpy (and lightgbm).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIVE_ROWS = 6720
CACHE = Path.home() / ".cache" / "nmr" / "bench-trees"


def main(argv=None) -> int:
    args = _parse(argv)
    if args.child:
        return _child(args.child)
    grid = [(t, d, f) for f in args.features for d in args.depths for t in args.trees]
    if args.big_only:
        grid = []
    if args.big or args.big_only:
        grid.append((90_000, 6, 2748))
    rng = np.random.default_rng(0)
    results = []
    for n_trees, depth, n_features in grid:
        path = (_xgb_model if args.library == "xgboost" else _model)(n_trees, depth, n_features)
        if args.train_only:
            continue
        X = rng.integers(0, 5, size=(args.rows, n_features)).astype(np.int8)
        big = n_trees >= 90_000
        runs = args.big_runs if big else args.runs
        native_runs = args.big_native_runs if big else min(runs, args.native_runs or runs)
        row = _bench(path, X, runs, native_runs, args.library)
        row.update(trees=n_trees, depth=depth, features=n_features, runs=runs)
        results.append(row)
        print(_render_row(row), flush=True)
    if args.train_only:
        return 0
    text = _render(results, args)
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------- measuring


def _bench(path: Path, X: np.ndarray, runs: int, native_runs: int, library: str) -> dict:
    import cloudpickle

    import builder.kernels
    from builder.artifacts import read
    from builder.compile.trees import compile_trees

    t0 = time.perf_counter()
    names = [f"f{i}" for i in range(X.shape[1])] if library == "xgboost" else None
    evaluator = compile_trees(read(path, library, names))
    compile_s = time.perf_counter() - t0
    cloudpickle.register_pickle_by_value(builder.kernels)
    try:
        blob = cloudpickle.dumps(evaluator, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        cloudpickle.unregister_pickle_by_value(builder.kernels)
    native_predict = _native(library, path)

    def ours():
        return evaluator.predict(X)[:, 0]

    def native():
        return native_predict(X)

    # exactness on the live era itself (first 500 rows when LightGBM is not timed: a full
    # LightGBM pass over a 90,000-tree model takes minutes)
    probe = X if native_runs else X[:500]
    diff = float(np.abs(evaluator.predict(probe)[:, 0] - native_predict(probe)).max())
    times: dict[str, list[float]] = {"ours": [], "native": []}
    methods = [("ours", ours), ("native", native)]
    for r in range(runs):
        for name, fn in methods if r % 2 == 0 else methods[::-1]:
            if name == "native" and r >= native_runs:
                continue
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        pkl = Path(tmp) / "model.pkl"
        pkl.write_bytes(blob)
        xfile = Path(tmp) / "X.npy"
        np.save(xfile, X)
        rss_ours = _child_rss("ours", pkl, xfile)
        rss_native = _child_rss(library, path, xfile) if native_runs else float("nan")
    ours_ms = statistics.median(times["ours"]) * 1000
    native_ms = statistics.median(times["native"]) * 1000 if times["native"] else float("nan")
    return {
        "native_runs": native_runs,
        "ours_ms": ours_ms,
        "native_ms": native_ms,
        "ratio": native_ms / ours_ms,
        "max_diff": diff,
        "rss_ours": rss_ours,
        "rss_native": rss_native,
        "pickle_mb": len(blob) / 1e6,
        "text_mb": path.stat().st_size / 1e6,
        "compile_s": compile_s,
        "strategies": evaluator.strategies(),
    }


def _child_rss(kind: str, model: Path, xfile: Path) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", f"{kind}:{model}:{xfile}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _child(spec: str) -> int:
    """Load one method, predict once, print peak RSS in MB."""
    kind, model, xfile = spec.split(":")
    X = np.load(xfile)
    if kind == "ours":
        with open(model, "rb") as fh:
            evaluator = pickle.load(fh)
        evaluator.predict(X)
    else:
        _native(kind, Path(model))(X)
    print(_peak_rss_mb())
    return 0


def _native(library: str, path: Path):
    """The native library's single-thread predict function for a saved model."""
    if library == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=str(path))
        booster.set_param({"nthread": 1})
        return lambda X: np.asarray(booster.inplace_predict(X)).reshape(len(X))
    import lightgbm

    booster = lightgbm.Booster(model_file=str(path))
    return lambda X: booster.predict(X, num_threads=1)


def _peak_rss_mb() -> float:
    # VmHWM is reset by exec; ru_maxrss is not (a child started from a big parent reports
    # the parent's peak on Linux)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------- models


def _model(n_trees: int, depth: int, n_features: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"lgb_t{n_trees}_d{depth}_f{n_features}.txt"
    if path.exists():
        return path
    if n_trees > 20_000:
        return _repeated_model(path, n_trees, depth, n_features)
    import lightgbm

    rng = np.random.default_rng(n_features * 1000 + depth)
    n_rows = 3000
    X = rng.integers(0, 5, size=(n_rows, n_features)).astype(np.float32)
    k = min(20, n_features)
    y = (X[:, :k] - 2.0) @ rng.normal(size=k) + rng.normal(scale=3.0, size=n_rows)
    params = {
        "objective": "regression",
        "learning_rate": 0.01,
        "colsample_bytree": 0.1,
        "num_leaves": 2**depth,
        "max_depth": depth,
        "min_data_in_leaf": 5,
        "max_bin": 7,
        "num_threads": 1,
        "verbose": -1,
        "seed": 0,
    }
    t = time.perf_counter()
    print(f"training {n_trees} trees, depth {depth}, {n_features} features ...", flush=True)
    booster = lightgbm.train(params, lightgbm.Dataset(X, y), n_trees)
    tmp = path.with_suffix(".tmp")
    booster.save_model(str(tmp))
    tmp.rename(path)
    print(f"  trained in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def _xgb_model(n_trees: int, depth: int, n_features: int) -> Path:
    """An XGBoost regressor with the same data and shape parameters as _model."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"xgb_t{n_trees}_d{depth}_f{n_features}.json"
    if path.exists():
        return path
    import xgboost

    rng = np.random.default_rng(n_features * 1000 + depth)
    n_rows = 3000
    X = rng.integers(0, 5, size=(n_rows, n_features)).astype(np.float32)
    k = min(20, n_features)
    y = (X[:, :k] - 2.0) @ rng.normal(size=k) + rng.normal(scale=3.0, size=n_rows)
    params = {
        "objective": "reg:squarederror",
        "eta": 0.01,
        "colsample_bytree": 0.1,
        "max_depth": depth,
        "tree_method": "hist",
        "nthread": 1,
        "seed": 0,
    }
    t = time.perf_counter()
    print(f"training XGBoost {n_trees} trees, depth {depth}, {n_features} features ...")
    booster = xgboost.train(params, xgboost.DMatrix(X, y), n_trees)
    tmp = path.with_suffix(".tmp.json")
    booster.save_model(str(tmp))
    tmp.rename(path)
    print(f"  trained in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def _repeated_model(path: Path, n_trees: int, depth: int, n_features: int) -> Path:
    """A model bigger than 20,000 trees, built by repeating the trained 20,000-tree model's
    trees (training 90,000 trees here would take most of an hour; for inference speed only the
    tree shapes and the features they read matter)."""
    source = _model(20_000, depth, n_features).read_text()
    head, rest = source.split("\nTree=0\n", 1)
    trees_text, tail = rest.split("end of trees", 1)
    blocks = ("Tree=0\n" + trees_text).split("\n\n\nTree=")
    blocks = [blocks[0][len("Tree=0\n") :]] + [b.split("\n", 1)[1] for b in blocks[1:]]
    blocks = [b.strip("\n") for b in blocks]
    head = "\n".join(line for line in head.splitlines() if not line.startswith("tree_sizes="))
    out = [head, ""]
    for i in range(n_trees):
        out += [f"Tree={i}", blocks[i % len(blocks)], "", ""]
    text = "\n".join(out) + "end of trees" + tail
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------- output

_HEADER = (
    "| trees | depth | features | ours ms | native ms | speed-up | max abs diff "
    "| peak RSS ours / native MB | pickle MB | model file MB | compile s | runs ours / native |"
)


def _render_row(r: dict) -> str:
    timed = r["native_runs"] > 0
    native = f"{r['native_ms']:.1f}" if timed else "not timed"
    ratio = f"{r['ratio']:.1f}x" if timed else "-"
    rss_native = f"{r['rss_native']:.0f}" if timed else "-"
    return (
        f"| {r['trees']:,} | {r['depth']} | {r['features']:,} | {r['ours_ms']:.1f} "
        f"| {native} | {ratio} | {r['max_diff']:.1g}{'' if timed else ' (500 rows)'} "
        f"| {r['rss_ours']:.0f} / {rss_native} | {r['pickle_mb']:.2f} "
        f"| {r['text_mb']:.2f} | {r['compile_s']:.1f} | {r['runs']} / {r['native_runs']} |"
    )


def _render(results: list[dict], args) -> str:
    import lightgbm

    lines = [
        f"# Tree inference: nmr evaluator vs {args.library} (one live era, one thread)",
        "",
        f"Command: `{' '.join(['bench/trees.py'] + (args.argv or []))}`. "
        f"{args.rows:,} rows of int8 features in 0..4; native = {_native_name(args.library)}; "
        f"LightGBM {lightgbm.__version__}, "
        f"numpy {np.__version__}, Python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}.",
        "Times are medians of the runs, methods timed in rotating order in one process "
        "(the machine is shared with other jobs, so absolute times are noisy; the ratio is "
        "the comparable figure). Peak RSS: a fresh process loading the model and predicting "
        "once. Compile: reading the model text and building the evaluator.",
        "",
        _HEADER,
        "|" + "---|" * 12,
    ]
    lines += [_render_row(r) for r in results]
    lines.append("")
    return "\n".join(lines)


def _native_name(library: str) -> str:
    if library == "xgboost":
        import xgboost

        return f"xgboost {xgboost.__version__} `Booster.inplace_predict`, nthread=1"
    return "LightGBM `Booster.predict(num_threads=1)`"


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", choices=["lightgbm", "xgboost"], default="lightgbm")
    # the default grid runs in about 5 minutes once models are cached; add 20000 for the full
    # grid (about 35 minutes: LightGBM alone needs 17-57 s per 20,000-tree prediction)
    p.add_argument("--trees", type=_ints, default=[2000])
    p.add_argument("--depths", type=_ints, default=[5, 6])
    p.add_argument("--features", type=_ints, default=[42, 780, 2748])
    p.add_argument("--rows", type=int, default=LIVE_ROWS)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--native-runs",
        type=int,
        default=0,
        help="cap LightGBM's timed runs (default: same as --runs); for 20,000-tree rows",
    )
    p.add_argument("--big", action="store_true", help="add the 90,000-tree, 2,748-feature row")
    p.add_argument("--big-only", action="store_true", help="run only the 90,000-tree row")
    p.add_argument("--big-runs", type=int, default=5)
    p.add_argument(
        "--big-native-runs",
        type=int,
        default=0,
        help="LightGBM runs on the 90,000-tree row (default 0: minutes per run; diff on 500 rows)",
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "trees.md"))
    p.add_argument("--train-only", action="store_true", help="only train and cache the models")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return args


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


if __name__ == "__main__":
    raise SystemExit(main())
