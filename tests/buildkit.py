"""Helpers for the build-stage tests: a small Numerai-shaped project with real LightGBM models.

Projects are written to a directory: synthetic data (builder.datasets, tiny sizes), LightGBM
text models trained on it, and a numerai.yaml whose ``models:`` section the test supplies.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from builder.datasets import SynthSizes, synthesize

TINY = SynthSizes(
    n_all=24,
    n_medium=12,
    n_small=6,
    train_eras=6,
    validation_eras=2,
    rows_per_era=80,
    live_rows=150,
)


def write_data(root: Path, nan_fraction: float = 0.05) -> dict:
    """Synthetic data under root/data; returns the feature sets (name -> columns)."""
    synthesize(root / "data", seed=3, sizes=TINY, nan_fraction=nan_fraction)
    return json.loads((root / "data" / "features.json").read_text())["feature_sets"]


def train_lightgbm(
    root: Path,
    name: str,
    features: list[str],
    *,
    objective: str = "regression",
    n_trees: int = 12,
    seed: int = 0,
    num_class: int | None = None,
) -> Path:
    """Train a LightGBM model on root/data/train.parquet and save it as artifacts/<name>.txt."""
    import lightgbm as lgb

    train = pd.read_parquet(root / "data" / "train.parquet")
    X = train[features].to_numpy(dtype=np.float64)
    y = train["target"].to_numpy()
    if objective == "binary":
        y = (y > 0.5).astype(int)
    elif objective == "multiclass":
        y = np.round(y * 4).astype(int)
    params = {
        "objective": objective,
        "num_leaves": 7,
        "learning_rate": 0.2,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "seed": seed,
        "num_threads": 1,
        "deterministic": True,
    }
    if num_class:
        params["num_class"] = num_class
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=list(features)), n_trees)
    path = root / "artifacts" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))
    return path


def write_config(
    root: Path, models_yaml: str, runtime: str | None = None, name: str = "numerai.yaml"
) -> Path:
    """A config file (default numerai.yaml) with the given ``models:`` body (YAML text)."""
    head = "version: 1\n"
    if runtime:
        head += f"runtime: {runtime}\n"
    head += "data:\n  dir: data\n  version: v5.2\n  train: train.parquet\n"
    text = head + "models:\n" + textwrap.indent(textwrap.dedent(models_yaml).strip("\n"), "  ")
    path = root / name
    path.write_text(text + "\n", encoding="utf-8")
    return path


def run_pickle_in_env(
    python: Path, pickle_path: Path, live: Path, benchmarks: Path | None, out: Path
) -> dict:
    """Load the pickle the way numerai-predict does (pd.read_pickle, signature arity) in the given
    interpreter with nothing but its own site-packages, and write the predictions to ``out``."""
    script = textwrap.dedent(
        """
        import inspect, json, sys
        import pandas as pd
        model = pd.read_pickle(sys.argv[1])
        n = len(inspect.signature(model).parameters)
        live = pd.read_parquet(sys.argv[2])
        if n == 2:
            preds = model(live, pd.read_parquet(sys.argv[3]))
        else:
            preds = model(live)
        preds.to_parquet(sys.argv[4])
        mods = sorted(m.split(".")[0] for m in sys.modules)
        print(json.dumps({"arity": n, "type": type(preds).__name__,
                          "builder_loaded": "builder" in mods}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            script,
            str(pickle_path),
            str(live),
            str(benchmarks or ""),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(out.parent),
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def nmr_cli(*args):
    """Run the nmr CLI in-process (typer's CliRunner); the click Result (exit_code, output)."""
    from typer.testing import CliRunner

    from builder.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args])


def copy_project(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a built project (pickles and numerai.lock included) for one test."""
    import shutil

    root = tmp_path / "project"
    shutil.copytree(template, root)
    return root
