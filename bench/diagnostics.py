"""What scoring validation costs per era: nmr's `evaluate` vs numerai-tools called directly.

Usage (from the repository root):
    .venv/bin/python bench/diagnostics.py                 # writes bench/results/diagnostics.md
    .venv/bin/python bench/diagnostics.py --features 42,780 --runs 3

Data: synthetic validation eras of production size (6,720 rows, as Numerai's live era), with
the given number of features (the slot's features: FNC neutralizes against all of them), 8
auxiliary targets and 8 benchmark columns. "nmr" is `builder.diagnostics.evaluate` on the
parquet file (streaming, every metric: CORR, 8 per-target CORRs, BMC, FNC, exposure, 8
benchmark correlations); "numerai-tools" is the same metrics computed by calling numerai-tools
directly on one in-memory frame (tests/numerai_reference.py), the way a notebook would.
Both run in this process on the same data; each cell is the median of --runs runs, divided by
the number of eras.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from numerai_tools import scoring  # noqa: E402

from builder.datasets import SynthSizes, synthesize  # noqa: E402
from builder.diagnostics import evaluate  # noqa: E402
from tests import numerai_reference  # noqa: E402

ROWS, ERAS = 6720, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="42,300")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_features in [int(x) for x in args.features.split(",")]:
            sizes = SynthSizes(
                n_all=max(n_features, 3),
                n_medium=max(n_features // 2, 2),
                n_small=1,
                train_eras=1,
                validation_eras=ERAS,
                rows_per_era=ROWS,
                live_rows=10,
            )
            root = Path(tmp) / str(n_features)
            synthesize(root, sizes=sizes)
            validation = pd.read_parquet(root / "validation.parquet")
            benchmarks = pd.read_parquet(root / "validation_benchmark_models.parquet")
            features = [c for c in validation.columns if c.startswith("feature_")][:n_features]
            rng = np.random.default_rng(0)
            predictions = pd.DataFrame(
                {"era": validation["era"], "prediction": rng.random(len(validation))},
                index=validation.index,
            )
            ours, theirs, fnc = [], [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                evaluate(
                    predictions,
                    root / "validation.parquet",
                    root / "validation_benchmark_models.parquet",
                    features=features,
                    data_version="v5.2",
                )
                ours.append((time.perf_counter() - started) / ERAS)
                started = time.perf_counter()
                numerai_reference.per_era(
                    predictions, validation, features, benchmarks, "v52_lgbm_ender20"
                )
                theirs.append((time.perf_counter() - started) / ERAS)
                started = time.perf_counter()
                for _, era in validation.groupby("era"):
                    era = era.sort_index()
                    F = era[features].astype(float)
                    scoring.feature_neutral_corr(
                        predictions.loc[era.index, ["prediction"]],
                        F.fillna(F.mean()),
                        era["target"],
                    )
                fnc.append((time.perf_counter() - started) / ERAS)
            a, b = statistics.median(ours), statistics.median(theirs)
            rows.append((n_features, a, b, a / b, statistics.median(fnc)))
            print(
                f"{n_features} features: nmr {a:.2f} s/era, numerai-tools {b:.2f} s/era", flush=True
            )
    load = os.getloadavg()[0]
    lines = [
        "# Validation scoring cost per era",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, load "
        f"average {load:.1f} at the end (the machine is shared), {ROWS} rows per era, {ERAS} eras, "
        f"median of {args.runs} runs (`bench/diagnostics.py`).",
        "",
        "| features | nmr evaluate (s/era) | numerai-tools directly (s/era) | ratio "
        "| FNC alone via numerai-tools (s/era) |",
        "|---|---|---|---|---|",
        *[f"| {n} | {a:.2f} | {b:.2f} | {r:.2f} | {f:.2f} |" for n, a, b, r, f in rows],
        "",
        "FNC alone: `numerai_tools.scoring.feature_neutral_corr` per era, its least-squares fit "
        "against every feature growing with rows x features squared.",
        "",
    ]
    out = REPO / "bench" / "results" / "diagnostics.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
