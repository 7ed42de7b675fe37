"""A small Numerai-shaped project with one slot of each kind nmr does not compile from a
LightGBM/XGBoost file: a CatBoost .cbm, a ``source:`` slot using scikit-learn, and a
``pickle:`` slot made elsewhere (by the runtime's Python with the image's scikit-learn).

Everything is real: synthetic data from builder.datasets, a CatBoostRegressor trained on it,
the runtime's env (with scikit-learn at the image's pin) making the legacy pickle.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from tests.buildkit import nmr_cli, write_data

SOURCE = '''\
"""A model nmr cannot compile: scikit-learn, fitted inside the runtime's own Python."""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from helpers import fill

_DATA = np.load(Path(__file__).with_name("ridge.npz"))
FEATURES = [str(f) for f in _DATA["features"]]
MODEL = Ridge(alpha=1.0).fit(fill(_DATA["X"]), _DATA["y"])


def predict(live_features, live_benchmark_models):
    X = fill(live_features[FEATURES].to_numpy(dtype=float))
    ranks = pd.Series(MODEL.predict(X), index=live_features.index).rank(pct=True)
    return ranks.to_frame("prediction")
'''

HELPERS = """\
import numpy as np


def fill(X):
    return np.where(np.isnan(X), 2.0, X)
"""

# Made by the runtime's Python, as a user would with the image's versions: a closure over a
# fitted scikit-learn model, pickled by value by cloudpickle (its function lives in __main__).
LEGACY_SCRIPT = """\
import sys
import cloudpickle
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

data = np.load(sys.argv[1])
features = [str(f) for f in data["features"]]
model = Ridge(alpha=3.0).fit(np.nan_to_num(data["X"], nan=2.0), data["y"])


def predict(live_features, live_benchmark_models):
    X = np.nan_to_num(live_features[features].to_numpy(dtype=float), nan=2.0)
    ranks = pd.Series(model.predict(X), index=live_features.index).rank(pct=True)
    return ranks.to_frame("prediction")


with open(sys.argv[2], "wb") as handle:
    cloudpickle.dump(predict, handle)
"""

MODELS = """
cb:
  artifact: artifacts/cb.cbm
  features: small
custom:
  source: src/predict.py
  features: small
legacy:
  pickle: legacy/model.pkl
  features: small
"""


def write_project(root: Path, models: str = MODELS) -> dict:
    """Data, artifacts, source files, a legacy pickle and numerai.yaml under ``root``."""
    sets = write_data(root)
    small = sets["small"]
    train = pd.read_parquet(root / "data" / "train.parquet")
    X = train[small].to_numpy(dtype=np.float64)
    y = train["target"].to_numpy(dtype=np.float64)
    train_catboost(root / "artifacts" / "cb.cbm", X, y, small)
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    np.savez(src / "ridge.npz", X=X, y=y, features=np.array(small))
    (src / "predict.py").write_text(SOURCE, encoding="utf-8")
    (src / "helpers.py").write_text(HELPERS, encoding="utf-8")
    write_legacy_pickle(root / "legacy" / "model.pkl", src / "ridge.npz")
    head = "version: 1\ndata:\n  dir: data\n  version: v5.2\n  train: train.parquet\n"
    body = textwrap.indent(textwrap.dedent(models).strip("\n"), "  ")
    (root / "numerai.yaml").write_text(head + "models:\n" + body + "\n", encoding="utf-8")
    return sets


def train_catboost(path: Path, X, y, names, **params) -> Path:
    from catboost import CatBoostRegressor

    params = {
        "iterations": 30,
        "depth": 4,
        "verbose": 0,
        "thread_count": 1,
        "allow_writing_files": False,
        "random_seed": 0,
        **params,
    }
    model = CatBoostRegressor(**params)
    model.fit(pd.DataFrame(X, columns=names), y)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(path))
    return path


def image_python(*extras: str) -> Path:
    """The default runtime's env interpreter, with these image distributions at their pins."""
    from builder.env import ensure_env
    from builder.runtimes import default_tag

    return ensure_env(default_tag(), extras=tuple(extras)).python


def write_legacy_pickle(path: Path, data: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    script = path.parent / "make_pickle.py"
    script.write_text(LEGACY_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    subprocess.run(
        [str(image_python("scikit-learn")), "-s", str(script), str(data), str(path)],
        check=True,
        capture_output=True,
        env=env,
        timeout=600,
    )
    script.unlink()
    return path


def lock(root: Path) -> dict:
    return json.loads((root / "numerai.lock").read_text())


def nmr(root: Path, *args):
    """`nmr ARGS -f <root>/numerai.yaml`, in-process (the click Result)."""
    return nmr_cli(*args, "-f", root / "numerai.yaml")


def built_project(tmp_path_factory, name: str, models: str = MODELS) -> Path:
    """A project with ``models`` written and built once (for module-scoped fixtures)."""
    root = tmp_path_factory.mktemp(name) / "project"
    root.mkdir()
    write_project(root, models)
    result = nmr(root, "build")
    assert result.exit_code == 0, result.output
    return root
