"""Tree-inference benchmark, end to end: the shipped pickle vs LightGBM (or XGBoost) on one live era.

Usage (from the repository root, in the builder's venv):
    python bench/trees.py                        # default rows, writes bench/results/trees.md
    python bench/trees.py --install-peers        # once: lleaves, treelite+tl2cgen, onnxruntime
    python bench/trees.py --rows 2000:5:780:standardize --runs 7
    python bench/trees.py --rows 20000:5:2748:int8 --runs 5 --native-runs 3 --out bench/results/trees-20k.md
    python bench/trees.py --rows 90000:6:2748:int8 --runs 3 --native-runs 0 --out bench/results/trees-90k.md
    python bench/trees.py --library xgboost --out bench/results/trees-xgboost.md

What is measured is what ships: a slot's predict object (``builder.kernels.bundle.Predict``: the
compiled trees plus the slot's preprocessing) is packed by ``builder.pack`` in the default
runtime's cached env (Python 3.12, the image's numpy/pandas pins), then timed by
bench/trees_child.py in the same Python with the image's lightgbm/xgboost pins added: a pandas
DataFrame in, the ``prediction`` DataFrame out, against ``Booster.predict(num_threads=1)`` (or
``inplace_predict`` with nthread=1) on the same era in the same process. The native library gets
the era as a ready float matrix after the slot's preprocessing (its conversion is not timed, so
the ratio is conservative). The child runs pinned to one core (taskset) with every thread
setting at 1; methods are timed in rotating order, medians reported. Peers (lleaves, treelite +
tl2cgen, onnxruntime via onnxmltools) are timed when ``--install-peers`` could install them and
skipped with a note otherwise.

A row is ``trees:depth:features:case``. Cases (models: LightGBM regressors on synthetic
Numerai-shaped data, learning_rate 0.01, colsample_bytree 0.1, num_leaves 2**depth):
  int8         live features int8 in 0..4, no preprocessing
  nan-fill     5% NaN in the live features, ``fill_missing: {value: 2}``
  standardize  model trained on standardized features, ``standardize`` in the slot
  numerai-pre  5% NaN, ``fill_missing`` + ``clip: [0, 4]`` + ``standardize``
  float        non-integer float features (normal), no preprocessing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIVE_ROWS = 6720
CACHE = Path.home() / ".cache" / "nmr" / "bench-trees"
PEERS = ("lleaves", "tl2cgen", "onnxruntime")
# pip requirement groups per peer (installed with --target into one directory per Python)
PEER_PACKAGES = {
    "onnxruntime": ["onnxruntime", "onnxmltools", "onnx"],
    "tl2cgen": ["treelite", "tl2cgen"],
    "lleaves": ["lleaves"],
}
CASES = {
    "int8": {"model": "int", "nan": 0.0, "steps": ()},
    "nan-fill": {"model": "int", "nan": 0.05, "steps": ("fill",)},
    "standardize": {"model": "std", "nan": 0.0, "steps": ("std",)},
    "numerai-pre": {"model": "std", "nan": 0.05, "steps": ("fill", "clip", "std")},
    "float": {"model": "float", "nan": 0.0, "steps": ()},
}
DEFAULT_ROWS = {
    "lightgbm": [
        "2000:5:42:int8",
        "2000:5:780:int8",
        "2000:5:2748:int8",
        "2000:6:2748:int8",
        "2000:5:780:nan-fill",
        "2000:5:780:standardize",
        "2000:5:780:numerai-pre",
        "2000:5:780:float",
    ],
    "xgboost": ["2000:6:780:int8", "2000:6:2748:int8"],
}


def main(argv=None) -> int:
    args = _parse(argv)
    from builder import runtimes
    from builder.env import ensure_env

    tag = runtimes.default_tag()
    pack_env = ensure_env(tag)
    time_env = ensure_env(tag, extras=("lightgbm", "xgboost"))
    peers_dir = CACHE / f"peers-py{pack_env.python_version.rsplit('.', 1)[0]}"
    if args.install_peers:
        _install_peers(time_env.python, peers_dir)
    results = []
    for text in args.rows:
        n_trees, depth, n_features, case = _row(text)
        model = _model(args.library, n_trees, depth, n_features, CASES[case]["model"])
        if args.train_only:
            continue
        big = n_trees > 2000
        row = _bench(
            args,
            model,
            n_trees=n_trees,
            n_features=n_features,
            case=case,
            pack_env=pack_env,
            time_env=time_env,
            peers_dir=peers_dir if peers_dir.exists() and not big else None,
        )
        row.update(trees=n_trees, depth=depth, features=n_features, case=case)
        results.append(row)
        print(_render_row(row), flush=True)
    if args.train_only:
        return 0
    text = _render(results, args, time_env)
    print()
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------- measuring


def _bench(args, model: dict, *, n_trees, n_features, case, pack_env, time_env, peers_dir):

    from builder.artifacts import read
    from builder.compile.trees import compile_trees
    from builder.kernels import bundle as kb
    from builder.pack import pack

    spec_case = CASES[case]
    t0 = time.perf_counter()
    evaluator = compile_trees(read(model["path"], args.library, model["names"]))
    compile_s = time.perf_counter() - t0
    names = list(evaluator.feature_names)
    steps = _steps(spec_case["steps"], model, n_features)
    bundle = kb.Predict(
        feature_names=tuple(names),
        preprocessing=steps,
        members=[kb.Member(evaluator, np.arange(len(names)), "regression")],
        ensemble=False,
        postprocessing=[],
        required_columns=tuple(names),
        summary={"slot": "bench"},
    )
    bundle = _fold(bundle)
    packed = pack(bundle, pack_env)

    live, X_ref = _live(args.live_rows, n_features, spec_case, names, steps, model)
    big = n_trees > 20_000
    with tempfile.TemporaryDirectory(prefix="nmr-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "model.pkl").write_bytes(packed.data)
        live.to_parquet(tmp / "live.parquet")
        np.save(tmp / "ref.npy", X_ref)
        native_runs = args.native_runs if args.native_runs is not None else args.runs
        spec = {
            "pickle": str(tmp / "model.pkl"),
            "live": str(tmp / "live.parquet"),
            "reference_input": str(tmp / "ref.npy"),
            "model": str(model["path"]),
            "library": args.library,
            "runs": args.runs,
            "native_runs": native_runs,
            "probe_rows": 500 if native_runs == 0 else None,
            "peers": [p for p in args.peers if p] if peers_dir else [],
            "peers_dir": str(peers_dir) if peers_dir else None,
        }
        (tmp / "spec.json").write_text(json.dumps(spec))
        timed = json.loads(_child(time_env.python, "time", tmp / "spec.json", args.cpu))
        rss = float(_child(pack_env.python, "rss", tmp / "spec.json", args.cpu))
        profile = None
        if args.profile:
            profile = json.loads(_child(pack_env.python, "profile", tmp / "spec.json", args.cpu))
    ms = timed["ms"]
    return {
        "ms": ms,
        "ratio": ms["native"] / ms["ours"] if "native" in ms else None,
        "kernel_ratio": ms["native"] / ms["kernel"] if "native" in ms else None,
        "max_diff": timed["max_diff"],
        "probe_rows": spec["probe_rows"],
        "runs": timed["runs"],
        "notes": timed["notes"],
        "versions": timed["versions"],
        "rss_ours": rss,
        "pickle_mb": packed.size / 1e6,
        "compile_s": compile_s,
        "strategies": bundle.members[0].evaluator.strategies(),
        "folded": bool(getattr(bundle.members[0].evaluator, "steps", None)),
        "big": big,
        "profile": profile,
    }


def _fold(bundle):
    """The build's preprocessing folding, when this checkout has it (same call as make_bundle)."""
    try:
        from builder.compile.trees import fold_preprocessing
    except ImportError:
        return bundle
    return fold_preprocessing(bundle)


def _child(python: Path, mode: str, spec: Path, cpu: int | None) -> str:
    cmd = [str(python), "-s", str(ROOT / "bench" / "trees_child.py"), mode, str(spec)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"bench child failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def _install_peers(python: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for peer, packages in PEER_PACKAGES.items():
        cmd = [str(python), "-m", "pip", "install", "--quiet", "--target", str(target), *packages]
        out = subprocess.run(cmd, capture_output=True, text=True)
        status = "ok" if out.returncode == 0 else f"failed: {out.stderr.strip()[-300:]}"
        print(f"peer {peer}: {status}", flush=True)


def _steps(names, model: dict, n_features: int) -> list:
    from builder.kernels import steps as ks

    out = []
    for name in names:
        if name == "fill":
            out.append(ks.FillMissing(np.full(n_features, 2.0)))
        elif name == "clip":
            out.append(ks.Clip(0.0, 4.0))
        elif name == "std":
            stats = np.load(model["stats"])
            out.append(ks.Standardize(stats["mean"], stats["scale"]))
    return out


def _live(rows: int, n_features: int, case: dict, names, steps, model):
    """The live era as a DataFrame (what the pickle gets) and the native library's input."""
    import pandas as pd

    rng = np.random.default_rng(n_features * 7 + rows)
    if case["model"] == "float":
        X = rng.normal(size=(rows, n_features))
    else:
        X = rng.integers(0, 5, size=(rows, n_features)).astype(np.int8)
        if case["nan"]:
            X = X.astype(np.float64)
            X[rng.random(X.shape) < case["nan"]] = np.nan
    frame = pd.DataFrame(X, columns=names)
    frame.index = pd.Index([f"n{i:015x}" for i in range(rows)], name="id")
    ref = np.asarray(X, dtype=np.float64)
    for step in steps:
        ref = step.apply(ref)
    return frame, np.ascontiguousarray(ref)


# ---------------------------------------------------------------------- models


def _model(library: str, n_trees: int, depth: int, n_features: int, kind: str) -> dict:
    """Train (once, cached) a model of this shape; kind "int" (0..4 codes), "std" (standardized
    codes; the statistics are saved next to it) or "float" (normal floats)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    suffix = "" if kind == "int" else f"_{kind}"
    ext = "json" if library == "xgboost" else "txt"
    prefix = "xgb" if library == "xgboost" else "lgb"
    path = CACHE / f"{prefix}_t{n_trees}_d{depth}_f{n_features}{suffix}.{ext}"
    stats = path.with_suffix(".stats.npz")
    names = [f"f{i}" for i in range(n_features)] if library == "xgboost" else None
    out = {"path": path, "stats": stats, "names": names}
    if path.exists():
        return out
    if n_trees > 20_000:
        _repeated_model(path, n_trees, depth, n_features)
        return out
    rng = np.random.default_rng(n_features * 1000 + depth)
    n_rows = 3000
    X = rng.integers(0, 5, size=(n_rows, n_features)).astype(np.float64)
    k = min(20, n_features)
    y = (X[:, :k] - 2.0) @ rng.normal(size=k) + rng.normal(scale=3.0, size=n_rows)
    if kind == "std":
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        np.savez(stats, mean=mean, scale=scale)
        X = (X - mean) / scale
    elif kind == "float":
        X = rng.normal(size=X.shape)
        y = X[:, :k] @ rng.normal(size=k) + rng.normal(scale=1.0, size=n_rows)
    t = time.perf_counter()
    print(f"training {library} {n_trees} trees, depth {depth}, {n_features} features, {kind} ...")
    tmp = path.with_name(path.stem + ".tmp." + ext)
    if library == "xgboost":
        import xgboost

        params = {
            "objective": "reg:squarederror",
            "eta": 0.01,
            "colsample_bytree": 0.1,
            "max_depth": depth,
            "tree_method": "hist",
            "nthread": 1,
            "seed": 0,
        }
        xgboost.train(params, xgboost.DMatrix(X, y), n_trees).save_model(str(tmp))
    else:
        import lightgbm

        params = {
            "objective": "regression",
            "learning_rate": 0.01,
            "colsample_bytree": 0.1,
            "num_leaves": 2**depth,
            "max_depth": depth,
            "min_data_in_leaf": 5,
            "max_bin": 7 if kind == "int" else 255,
            "num_threads": 1,
            "verbose": -1,
            "seed": 0,
        }
        lightgbm.train(params, lightgbm.Dataset(X, y), n_trees).save_model(str(tmp))
    tmp.rename(path)
    print(f"  trained in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def _repeated_model(path: Path, n_trees: int, depth: int, n_features: int) -> Path:
    """A LightGBM model bigger than 20,000 trees, built by repeating the trained 20,000-tree
    model's trees (training 90,000 trees here would take most of an hour; for inference speed
    only the tree shapes and the features they read matter)."""
    source = _model("lightgbm", 20_000, depth, n_features, "int")["path"].read_text()
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
    "| trees | depth | features | case | ours ms | kernel ms | native ms | ratio "
    "| kernel ratio | lleaves ms | tl2cgen ms | onnxruntime ms | max abs diff "
    "| peak RSS MB | pickle MB | compile s | runs |"
)


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def _render_row(r: dict) -> str:
    ms = r["ms"]
    diff = max(r["max_diff"].get(k, 0.0) for k in ("ours", "kernel"))
    where = f" ({r['probe_rows']} rows)" if r["probe_rows"] else ""
    ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
    kratio = f"{r['kernel_ratio']:.1f}x" if r["kernel_ratio"] else "-"
    runs = f"{r['runs'].get('ours', 0)} / {r['runs'].get('native', 0)}"
    case = r["case"] + (" (folded)" if r["folded"] else "")
    return (
        f"| {r['trees']:,} | {r['depth']} | {r['features']:,} | {case} | {ms['ours']:.1f} "
        f"| {ms['kernel']:.1f} | {_fmt(ms.get('native'))} | {ratio} | {kratio} "
        f"| {_fmt(ms.get('lleaves'))} | {_fmt(ms.get('tl2cgen'))} | {_fmt(ms.get('onnxruntime'))} "
        f"| {diff:.1g}{where} | {r['rss_ours']:.0f} | {r['pickle_mb']:.2f} "
        f"| {r['compile_s']:.1f} | {runs} |"
    )


def _render(results: list[dict], args, time_env) -> str:
    versions = results[0]["versions"] if results else {}
    peers = ", ".join(f"{k} {v}" for k, v in versions.items() if k in PEERS) or "none installed"
    notes = sorted({n for r in results for n in r["notes"]})
    lines = [
        f"# Tree inference end to end: the shipped pickle vs {args.library} (one live era, one core)",
        "",
        f"Command: `python {' '.join(['bench/trees.py'] + (args.argv or []))}`. "
        f"{args.live_rows:,} live rows; the pickle is packed and timed in {time_env.runtime}'s "
        f"env: Python {versions.get('python')}, numpy {versions.get('numpy')}, "
        f"pandas {versions.get('pandas')}, {args.library} {versions.get(args.library)}; "
        f"peers: {peers}; {platform.processor() or platform.machine()}, "
        f"pinned to CPU {args.cpu}.",
        "",
        "ours = the pickle's `predict(live_features, None)`, DataFrame in, DataFrame out; "
        "kernel = the tree evaluator alone on the matrix the bundle hands it; native = "
        f"{_native_name(args.library)} on the same era as a ready float64 matrix (after the "
        "slot's preprocessing, conversion not timed). Times are medians, methods timed in "
        "rotating order in one process on a shared machine (absolute times are noisy, the "
        "ratio is the comparable figure). Peak RSS: a fresh process of the runtime loading the "
        "pickle and predicting once. Compile: reading the model and building the evaluator. "
        "(folded): the slot's preprocessing is folded into the tree predicates.",
        "",
        _HEADER,
        "|" + "---|" * 17,
    ]
    lines += [_render_row(r) for r in results]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    for r in results:
        if r.get("profile"):
            lines += [
                "",
                f"cProfile of the pickle's predict (3 calls, top by own time), "
                f"{r['trees']:,} trees, depth {r['depth']}, {r['features']:,} features, "
                f"{r['case']}:",
                "",
                "```",
                r["profile"].rstrip(),
                "```",
            ]
    lines.append("")
    return "\n".join(lines)


def _native_name(library: str) -> str:
    if library == "xgboost":
        return "xgboost `Booster.inplace_predict`, nthread=1"
    return "LightGBM `Booster.predict(num_threads=1)`"


def _row(text: str) -> tuple[int, int, int, str]:
    trees, depth, features, case = text.split(":")
    if case not in CASES:
        raise SystemExit(f"unknown case {case!r} (known: {', '.join(CASES)})")
    return int(trees), int(depth), int(features), case


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", choices=["lightgbm", "xgboost"], default="lightgbm")
    p.add_argument("--rows", type=lambda t: t.split(","), default=None)
    p.add_argument("--live-rows", type=int, default=LIVE_ROWS)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument(
        "--native-runs",
        type=int,
        default=None,
        help="cap the native library's timed runs (default: --runs; 0 = not timed, diff on "
        "500 rows, for the 90,000-tree row)",
    )
    p.add_argument("--peers", type=lambda t: t.split(","), default=list(PEERS))
    p.add_argument("--install-peers", action="store_true")
    p.add_argument(
        "--profile", action="store_true", help="add a cProfile of the pickle's predict per row"
    )
    p.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)))
    p.add_argument("--out", default=None)
    p.add_argument("--train-only", action="store_true", help="only train and cache the models")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.rows = args.rows or DEFAULT_ROWS[args.library]
    suffix = "" if args.library == "lightgbm" else f"-{args.library}"
    args.out = args.out or str(ROOT / "bench" / "results" / f"trees{suffix}.md")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
