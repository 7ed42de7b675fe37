"""Validation at Numerai's scale: nmr's streamed, task-parallel validation vs the naive way.

Usage (from the repository root, in the builder's venv):
    python bench/validation.py --data /path/validation-1m.parquet --rows 1000000
    python bench/validation.py --data ... --runs 2000:1,2000:2,2000:naive --reference-rows 20000:110000

The validation file (``--rows`` x 2,748 int8 features, eras of 5,500 rows, Numerai's shape) is
generated once by ``builder.datasets.write_scaled_validation``, one row group at a time, and
reused. The models are the LightGBM regressors of bench/trees.py (depth 5, trained once and
cached).

ours       ``builder.diagnostics.run_validation`` as ``nmr test`` calls it, ``--jobs N``: the
           shipped pickle (compiled trees, packed in the default runtime's env) predicts era by
           era in the runtime's Python on N workers, numerai-tools scores each era.
reference  the naive way, in this venv: pandas reads the whole file, LightGBM
           ``Booster.predict(num_threads=1)`` predicts era by era (all rows at once would need
           the matrix as float: 8 bytes x 2,748 per row), the same per-era scoring.

Both score CORR of the main target per era; ``--features all`` adds FNC and max feature exposure
against every feature (numerai-tools' least squares over 2,748 columns: far costlier than the
predictions, so it is timed apart, on ``--fnc-eras`` eras, and reported per era).
Peak RSS is the largest sum of the resident memory of the whole process tree (the run and every
child), sampled from /proc every 0.1 s. ``--reference-rows`` limits the reference to the first
rows (whole eras) when it would take hours; its rates are then over those rows (stated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEPTH = 5
N_FEATURES = 2748
CACHE = Path.home() / ".cache" / "nmr" / "bench-validation"


def main(argv=None) -> int:
    args = _parse(argv)
    if args.mode:
        return _run_mode(args)
    data = _ensure_data(Path(args.data), args.rows)
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(data).metadata.num_rows
    results = []
    for n_trees, how in args.runs:
        pickle, model = _pickle(n_trees)
        if how == "naive":
            limit = str(args.reference_rows.get(n_trees, rows))
            row = _measure(["naive", str(model), str(data), limit])
            row.update(how="naive: pandas + LightGBM", trees=n_trees, cores=1)
        else:
            row = _measure(["ours", str(pickle), str(data), how])
            row.update(how=f"nmr, --jobs {how}", trees=n_trees, cores=int(how))
        results.append(row)
        print(json.dumps(row), flush=True)
    fnc = None
    if args.fnc_eras:
        fnc = json.loads(_child(["fnc", str(data), str(args.fnc_eras)]))
    text = _render(results, fnc, rows, args)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------- set-up


def _ensure_data(path: Path, rows: int) -> Path:
    if path.exists():
        return path
    from builder.datasets import write_scaled_validation

    print(f"writing {path}: {rows:,} rows x {N_FEATURES:,} int8 features ...", flush=True)
    t = time.perf_counter()
    write_scaled_validation(path, rows, n_features=N_FEATURES)
    print(f"  written in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def _pickle(n_trees: int) -> tuple[Path, Path]:
    """The shipped pickle of the bench/trees.py model (cached) and the model file."""
    import numpy as np

    from bench.trees import _model
    from builder import runtimes
    from builder.artifacts import read
    from builder.compile.trees import compile_trees
    from builder.datasets import feature_names
    from builder.env import ensure_env
    from builder.kernels import bundle as kb
    from builder.pack import pack

    model = _model("lightgbm", n_trees, DEPTH, N_FEATURES, "int")["path"]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{model.stem}.pkl"
    if out.exists() and out.stat().st_mtime > model.stat().st_mtime:
        return out, model
    names = feature_names(N_FEATURES)
    evaluator = compile_trees(read(model, "lightgbm", names))
    bundle = kb.Predict(
        feature_names=tuple(evaluator.feature_names),
        preprocessing=[],
        members=[kb.Member(evaluator, np.arange(len(names)), "regression")],
        ensemble=False,
        postprocessing=[],
        required_columns=tuple(evaluator.feature_names),
        summary={"slot": "bench"},
    )
    out.write_bytes(pack(bundle, ensure_env(runtimes.default_tag())).data)
    return out, model


# ---------------------------------------------------------------------- measuring


def _measure(child_args: list[str]) -> dict:
    """Run one child mode; its JSON result plus the process tree's peak RSS (MB)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--mode", *child_args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"bench child {child_args[0]} failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = peak[0] / 1024
    return result


def _child(child_args: list[str]) -> str:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--mode", *child_args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()[
        -1
    ]


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        pid, ppid = int(entry), int(fields.get("PPid", "0").strip())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


# ---------------------------------------------------------------------- the child modes


def _run_mode(args) -> int:
    mode, rest = args.mode[0], args.mode[1:]
    if mode == "ours":
        print(json.dumps(_ours(*rest)))
    elif mode == "naive":
        print(json.dumps(_naive(*rest)))
    elif mode == "fnc":
        print(json.dumps(_fnc(*rest)))
    return 0


def _ours(pickle: str, data: str, jobs: str) -> dict:
    from builder import runtimes
    from builder.diagnostics import run_validation
    from builder.env import ensure_env

    python = ensure_env(runtimes.default_tag()).python
    with tempfile.TemporaryDirectory(prefix="nmr-bench-validation-") as tmp:
        t = time.perf_counter()
        result = run_validation(
            pickle, python, data, features=[], out_dir=Path(tmp), jobs=int(jobs)
        )
        seconds = time.perf_counter() - t
    rows = result.summary["corr"]["eras"]
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(data).metadata.num_rows
    return {
        "seconds": seconds,
        "rows": rows,
        "eras": result.summary["eras"],
        "corr_mean": result.summary["corr_mean"],
    }


def _naive(model: str, data: str, limit: str) -> dict:
    import lightgbm
    import numpy as np
    import pandas as pd

    from builder.diagnostics.validation import score_era

    t = time.perf_counter()
    frame = pd.read_parquet(data)  # the naive way: the whole file in memory
    booster = lightgbm.Booster(model_file=model)
    features = [c for c in frame.columns if c.startswith("feature_")]
    rows, eras = 0, 0
    per_era = []
    for _era, era_frame in frame.groupby("era", sort=False):
        if rows >= int(limit):
            break
        X = era_frame[features].to_numpy(np.float64)
        prediction = pd.Series(booster.predict(X, num_threads=1), index=era_frame.index)
        row = score_era(prediction, era_frame[["target"]], era_frame[[]])
        per_era.append(row["corr"])
        rows += len(era_frame)
        eras += 1
    return {
        "seconds": time.perf_counter() - t,
        "rows": rows,
        "eras": eras,
        "corr_mean": float(np.nanmean(per_era)),
        "lightgbm": lightgbm.__version__,
    }


def _fnc(data: str, n_eras: str) -> dict:
    """Seconds per era of FNC and max feature exposure against every feature."""
    import pyarrow.parquet as pq

    from builder.diagnostics import validation as v
    from builder.diagnostics.model_child import range_eras

    source = pq.ParquetFile(data)
    times = []
    for _era, frame in range_eras(source, None):
        if len(times) >= int(n_eras):
            break
        features = frame[[c for c in frame.columns if c.startswith("feature_")]].astype("float64")
        prediction = frame["feature_0000"] + 0.1 * frame["feature_0001"]
        prediction = prediction.rank(pct=True).rename("prediction")
        t = time.perf_counter()
        v.feature_neutral_corr(prediction, features, frame["target"])
        v.max_feature_exposure(prediction, features)
        times.append(time.perf_counter() - t)
    return {"seconds_per_era": sorted(times)[len(times) // 2], "eras": len(times)}


# ---------------------------------------------------------------------- report


def _render(results: list[dict], fnc: dict | None, rows: int, args) -> str:
    lines = [
        "# Validation at scale: nmr (streamed tasks, --jobs) vs the naive way",
        "",
        f"Command: `python bench/validation.py {' '.join(args.argv)}`. Data: {rows:,} rows x "
        f"{N_FEATURES:,} int8 features, eras of 5,500 rows, row groups of 50,000 "
        "(`builder.datasets.write_scaled_validation`). Models: LightGBM regressors of "
        f"depth {DEPTH} (bench/trees.py). Python {platform.python_version()} (builder), "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f} at the end): absolute times are noisy, one run each.",
        "Metrics in both: CORR of the main target per era (numerai-tools). rows/s/core = rows / "
        "wall seconds / workers. Peak RSS: the whole process tree, sampled every 0.1 s.",
        "",
        "| model | how | rows | eras | wall s | rows/s | rows/s/core | peak RSS MB | vs naive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    naive = {r["trees"]: r["rows"] / r["seconds"] for r in results if r["how"].startswith("naive")}
    for r in results:
        rate = r["rows"] / r["seconds"]
        ref = naive.get(r["trees"])
        ratio = f"{rate / r['cores'] / ref:.1f}x per core" if ref and "nmr" in r["how"] else ""
        lines.append(
            f"| {r['trees']:,} trees | {r['how']} | {r['rows']:,} | {r['eras']} | "
            f"{r['seconds']:.0f} | {rate:,.0f} | {rate / r['cores']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {ratio} |"
        )
    if fnc:
        lines += [
            "",
            f"FNC + max feature exposure against all {N_FEATURES:,} features (numerai-tools): "
            f"{fnc['seconds_per_era']:.1f} s per era (median of {fnc['eras']} eras of 5,500 "
            "rows, one core) - at Numerai's ~700 validation eras this, not the predictions, "
            "dominates a full `nmr test`.",
        ]
    return "\n".join(lines) + "\n"


def _runs(text: str):
    pairs = [item.split(":") for item in text.split(",") if item]
    return [(int(a), b) for a, b in pairs]


def _parse(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--data", default=str(CACHE / "validation-1m-2748.parquet"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--runs",
        type=_runs,
        default=_runs("2000:1,2000:2,2000:naive,20000:2,20000:naive"),
        help="TREES:JOBS or TREES:naive, comma-separated",
    )
    parser.add_argument(
        "--reference-rows",
        type=_runs,
        default={},
        help="TREES:ROWS: the naive reference on the first ROWS rows only (whole eras)",
    )
    parser.add_argument("--fnc-eras", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "validation.md"))
    args = parser.parse_args(argv)
    args.reference_rows = {trees: int(limit) for trees, limit in args.reference_rows}
    # the command as quoted in the table, with absolute paths shortened to their file names
    args.argv = [Path(a).name if a.startswith("/") else a for a in argv]
    return args


if __name__ == "__main__":
    raise SystemExit(main())
