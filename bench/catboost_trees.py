"""CatBoost inference benchmark: nmr's shipped pickle vs catboost's own predict, in the runtime.

Usage (from the repository root):
    .venv/bin/python bench/catboost_trees.py                  # writes bench/results/catboost.md
    .venv/bin/python bench/catboost_trees.py --trees 500 --features 42 --runs 3

Models are CatBoostRegressors (symmetric trees, depth 6, learning_rate 0.05) trained on
synthetic Numerai-shaped data (int8 features in 0..4) and cached in ~/.cache/nmr/bench-catboost.
Each is compiled and packed by nmr exactly as `nmr build` does (the runtime env's own Python),
then both methods run in ONE process of the default runtime's env with catboost added at the
image's pin: the shipped pickle (numpy only) on the 6,720 int8 rows, and
`CatBoost.predict(prediction_type="RawFormulaVal", thread_count=1)` on the same rows already
in float32. Single thread, methods timed in rotating order, medians reported; the max abs diff
is between the two outputs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIVE_ROWS = 6720
CACHE = Path.home() / ".cache" / "nmr" / "bench-catboost"

# Runs inside the runtime env: argv = pickle, model.cbm, rows.npy, runs; prints JSON.
CHILD = """
import json, pickle, statistics, sys, time
import numpy as np
import catboost
with open(sys.argv[1], "rb") as handle:
    ours = pickle.load(handle)
model = catboost.CatBoost()
model.load_model(sys.argv[2])
X = np.load(sys.argv[3])
X32 = np.ascontiguousarray(X, dtype=np.float32)  # catboost's own feature type, given for free
runs = int(sys.argv[4])
methods = {
    "ours": lambda: ours.predict(X)[:, 0],
    "native": lambda: model.predict(X32, prediction_type="RawFormulaVal", thread_count=1),
}
out = {name: fn() for name, fn in methods.items()}  # warm-up, and the outputs compared
times = {name: [] for name in methods}
for r in range(runs):
    order = list(methods)[r % 2:] + list(methods)[: r % 2]
    for name in order:
        start = time.perf_counter()
        methods[name]()
        times[name].append(time.perf_counter() - start)
print(json.dumps({
    "ours_ms": 1000 * statistics.median(times["ours"]),
    "native_ms": 1000 * statistics.median(times["native"]),
    "max_abs_diff": float(np.max(np.abs(out["ours"] - np.asarray(out["native"])))),
    "python": "%d.%d.%d" % sys.version_info[:3],
    "numpy": np.__version__,
    "catboost": catboost.__version__,
}))
"""


def main(argv=None) -> int:
    args = _parse(argv)
    from builder.env import ensure_env
    from builder.runtimes import default_tag

    tag = default_tag()
    base = ensure_env(tag)
    env = ensure_env(tag, extras=("catboost",))
    rows = []
    rng = np.random.default_rng(0)
    for n_features in args.features:
        path = _model(args.trees, args.depth, n_features)
        X = rng.integers(0, 5, size=(LIVE_ROWS, n_features)).astype(np.int8)
        row = _bench(path, X, base, env, args.runs)
        row.update(trees=args.trees, depth=args.depth, features=n_features, runs=args.runs)
        rows.append(row)
        print(row, flush=True)
    text = _render(rows, args, tag)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def _bench(path: Path, X, base, env, runs: int) -> dict:
    from builder.artifacts import catboost as cb_reader
    from builder.compile import compile_model
    from builder.pack import pack

    evaluator = compile_model(cb_reader.read(path))
    packed = pack(evaluator, base)  # made by the runtime's own Python, as nmr build does
    with tempfile.TemporaryDirectory(prefix="nmr-bench-catboost-") as tmp:
        pickle_path = Path(tmp) / "model.pkl"
        pickle_path.write_bytes(packed.data)
        np.save(Path(tmp) / "rows.npy", X)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL"))}
        done = subprocess.run(
            [str(env.python), "-s", "-c", CHILD, str(pickle_path), str(path)]
            + [str(Path(tmp) / "rows.npy"), str(runs)],
            capture_output=True,
            text=True,
            env=clean,
            check=True,
            timeout=3600,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["pickle_mb"] = packed.size / 1e6
    result["strategies"] = evaluator.strategies()
    return result


def _model(n_trees: int, depth: int, n_features: int) -> Path:
    path = CACHE / f"cb-{n_trees}-{depth}-{n_features}.cbm"
    if path.exists():
        return path
    import pandas as pd
    from catboost import CatBoostRegressor

    from tests.synthdata import feature_names, numerai_like

    X, y = numerai_like(20_000, n_features, seed=n_features)
    X = pd.DataFrame(X, columns=feature_names(n_features))
    model = CatBoostRegressor(
        iterations=n_trees,
        depth=depth,
        learning_rate=0.05,
        verbose=0,
        thread_count=1,
        allow_writing_files=False,
        random_seed=0,
    )
    model.fit(X, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(path))
    return path


def _render(rows: list[dict], args, tag: str) -> str:
    first = rows[0] if rows else {}
    head = [
        "# CatBoost inference: nmr's shipped pickle vs catboost (one live era, one thread)",
        "",
        f"Command: `bench/catboost_trees.py --trees {args.trees} --depth {args.depth} "
        f"--features {','.join(map(str, args.features))} --runs {args.runs}`. "
        f"{LIVE_ROWS:,} rows of int8 features in 0..4, in one process of the {tag} env "
        f"(Python {first.get('python')}, numpy {first.get('numpy')}, catboost "
        f"{first.get('catboost')} at the image's pin); native = "
        '`CatBoost.predict(prediction_type="RawFormulaVal", thread_count=1)` on the rows '
        "already converted to float32 (ours reads the int8 rows). Medians of the "
        "runs, methods in rotating order (the machine is shared: the ratio is the comparable "
        "figure).",
        "",
        "| trees | depth | features | ours ms | native ms | speed-up | max abs diff | pickle MB "
        "| runs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head.append(
            f"| {r['trees']:,} | {r['depth']} | {r['features']:,} | {r['ours_ms']:.1f} "
            f"| {r['native_ms']:.1f} | {r['native_ms'] / r['ours_ms']:.2f}x "
            f"| {r['max_abs_diff']:g} | {r['pickle_mb']:.2f} | {r['runs']} |"
        )
    return "\n".join(head) + "\n"


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument(
        "--features", type=lambda s: [int(v) for v in s.split(",")], default=[42, 780]
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "catboost.md"))
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
