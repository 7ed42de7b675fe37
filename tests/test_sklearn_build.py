"""`nmr build` end to end for scikit-learn slots: every compiled pickle runs in the runtime's
own Python with the image's pins and without scikit-learn, and matches scikit-learn's
``predict`` on the live data within the stated bound; `nmr test` passes them with fidelity."""

from __future__ import annotations

import subprocess
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from builder import runtimes
from builder.cli import app
from builder.env import ensure_env
from tests.buildkit import run_pickle_in_env, write_config, write_data

sklearn = pytest.importorskip("sklearn")
lightgbm = pytest.importorskip("lightgbm")

BOUND = 1e-12
FILL = 2.0  # the slots' fill_missing value; models without an imputer are trained the same way


def _estimators():
    from sklearn.decomposition import PCA
    from sklearn.ensemble import VotingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import ElasticNet, Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        # slot: (estimator, trained on NaN-filled data and given fill_missing)
        "ridge": (Ridge(alpha=2.0), True),
        "elasticnet": (ElasticNet(alpha=0.001, l1_ratio=0.3), True),
        "imputed_ridge": (make_pipeline(SimpleImputer(), StandardScaler(), Ridge()), False),
        "pca_ridge": (make_pipeline(StandardScaler(), PCA(5, whiten=True), Ridge()), True),
        "mlp": (MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=80, random_state=0), True),
        "voting": (
            VotingRegressor(
                [
                    ("ridge", Ridge()),
                    ("mlp", MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", max_iter=40)),
                    ("lgbm", lightgbm.LGBMRegressor(n_estimators=10, verbose=-1)),
                ],
                weights=[1.0, 0.5, 2.0],
            ),
            True,
        ),
        "scaled_lgbm": (
            make_pipeline(StandardScaler(), lightgbm.LGBMRegressor(n_estimators=12, verbose=-1)),
            False,
        ),
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("sklearn-build") / "project"
    root.mkdir()
    sets = write_data(root, nan_fraction=0.05)
    features = list(sets["small"])
    train = pd.read_parquet(root / "data" / "train.parquet")
    models, slots = {}, []
    for slot, (est, filled) in _estimators().items():
        X = train[features].astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X.fillna(FILL) if filled else X, train["target"])
        (root / "artifacts").mkdir(exist_ok=True)
        joblib.dump(est, root / "artifacts" / f"{slot}.joblib")
        models[slot] = (est, filled)
        pre = f"  preprocessing:\n    - fill_missing: {{value: {FILL:g}}}\n" if filled else ""
        slots.append(
            f"{slot}:\n  artifact: artifacts/{slot}.joblib\n  features: small\n{pre}"
            "  postprocessing: []\n"
        )
    write_config(root, "".join(slots))
    done = CliRunner().invoke(app, ["build", "-f", str(root / "numerai.yaml")])
    assert done.exit_code == 0, done.output
    return root, features, models


@pytest.fixture(scope="module")
def env():
    return ensure_env(runtimes.default_tag())


def test_runtime_env_has_no_scikit_learn(env):
    probe = subprocess.run([str(env.python), "-I", "-c", "import sklearn"], capture_output=True)
    assert probe.returncode != 0


@pytest.mark.parametrize("slot", list(_estimators()))
def test_built_pickle_matches_sklearn_in_the_runtime_without_sklearn(slot, built, env, tmp_path):
    root, features, models = built
    live_path = root / "data" / "live.parquet"
    bench_path = root / "data" / "live_benchmark_models.parquet"
    out = tmp_path / "out.parquet"
    info = run_pickle_in_env(
        env.python, root / "build" / slot / "model.pkl", live_path, bench_path, out
    )
    assert info["builder_loaded"] is False
    ours = pd.read_parquet(out)["prediction"].to_numpy()
    est, filled = models[slot]
    X = pd.read_parquet(live_path)[features].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(est.predict(X.fillna(FILL) if filled else X), dtype=np.float64)
    error = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
    assert error <= BOUND, f"{slot}: relative error {error:.3g}"


def test_nmr_test_passes_the_sklearn_slots_with_their_fidelity(built, monkeypatch, tmp_path):
    import tempfile

    root, _, _ = built
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(root)
    done = CliRunner().invoke(app, ["test", "imputed_ridge", "voting", "scaled_lgbm"])
    assert done.exit_code == 0, done.output
    assert "fidelity imputed_ridge.joblib" in done.output
    assert "(tolerance 1e-12) ok" in done.output


def test_rebuilding_the_sklearn_slots_gives_identical_bytes(built):
    import hashlib

    root, _, _ = built
    slots = ["pca_ridge", "voting"]
    before = {
        s: hashlib.sha256((root / "build" / s / "model.pkl").read_bytes()).hexdigest()
        for s in slots
    }
    done = CliRunner().invoke(app, ["build", "-f", str(root / "numerai.yaml"), "--force", *slots])
    assert done.exit_code == 0, done.output
    after = {
        s: hashlib.sha256((root / "build" / s / "model.pkl").read_bytes()).hexdigest()
        for s in slots
    }
    assert after == before


@pytest.mark.slow
def test_apply_sandbox_deploys_every_sklearn_slot(built, monkeypatch):
    root, _, _ = built
    monkeypatch.chdir(root)
    done = CliRunner().invoke(app, ["apply", "--sandbox", "--yes"])
    assert done.exit_code == 0, done.output
    assert f"Apply complete: {len(_estimators())} applied, 0 failed." in done.output
