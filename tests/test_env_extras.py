"""Hand-made pickles get the image packages they import: `nmr test --pickle`, --with, --minimal-env.

The slow tests share one derived env (Python 3.12 + lightgbm 4.5.0 and scipy at the image's pins,
about a minute to create once, then cached under ~/.cache/nmr/envs).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import runtimes
from builder.cli import app
from builder.env import ensure_env, env_key
from builder.envextras import (
    distribution_for,
    env_for_pickle,
    integration_extras,
    pickle_distributions,
)
from builder.errors import NmrError
from tests.bad_pickles import support

DEFAULT = runtimes.default_tag()
RUNTIME = runtimes.get(DEFAULT)
LIGHTGBM_PIN = RUNTIME.pins["lightgbm"]


@pytest.fixture(autouse=True)
def _scratch_in_pytest_tmp(tmp_path, monkeypatch):
    """run_pickle's scratch directories go to pytest's tmp tree; no numerai.yaml is found."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NMR_CONFIG", raising=False)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Path:
    return support.write_live(tmp_path_factory.mktemp("live") / "live.parquet")


# Runs inside the derived env (the image's lightgbm): a notebook-style predict function that
# closes over a trained Booster, cloudpickled by value as Numerai's examples do, and one that
# imports lightgbm only when called (the scan cannot see that import).
_MAKER = r"""
import sys
import cloudpickle
import lightgbm as lgb
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
names = [f"feature_{i:04d}" for i in range(5)]
X = rng.integers(0, 5, size=(500, 5)).astype(float)
y = 0.1 * X[:, 0] + rng.normal(scale=0.1, size=500)
params = {"objective": "regression", "num_leaves": 7, "verbose": -1}
booster = lgb.train(params, lgb.Dataset(X, y, feature_name=names), num_boost_round=10)

def predict(live_features, live_benchmark_models):
    scores = booster.predict(live_features[names])
    return pd.DataFrame({"prediction": pd.Series(scores, index=live_features.index).rank(pct=True)})

def predict_lazily(live_features, live_benchmark_models):
    import lightgbm  # noqa: F401
    return pd.DataFrame({"prediction": live_features[names[0]].rank(pct=True)})

with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(predict, handle)
with open(sys.argv[2], "wb") as handle:
    cloudpickle.dump(predict_lazily, handle)
"""

# Runs in the image's Python with lightgbm and scikit-learn at the image's pins: the most common
# hand-made pickle, a predict function closing over a fitted LGBMRegressor.
_REGRESSOR_MAKER = r"""
import sys
import cloudpickle
import lightgbm as lgb
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
names = [f"feature_{i:04d}" for i in range(5)]
X = pd.DataFrame(rng.integers(0, 5, size=(500, 5)), columns=names)
y = 0.1 * X[names[0]] + rng.normal(scale=0.1, size=500)
model = lgb.LGBMRegressor(n_estimators=10, num_leaves=7, verbose=-1).fit(X, y)

def predict(live_features, live_benchmark_models):
    scores = model.predict(live_features[names])
    return pd.DataFrame({"prediction": pd.Series(scores, index=live_features.index).rank(pct=True)})

with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(predict, handle)
"""


@pytest.fixture(scope="module")
def lightgbm_pickles(tmp_path_factory) -> tuple[Path, Path]:
    """(booster pickle, lazy-import pickle), made in the runtime's Python with lightgbm at the pin."""
    env = ensure_env(DEFAULT, extras=("lightgbm",))
    out = tmp_path_factory.mktemp("lgb")
    booster, lazy = out / "booster.pkl", out / "lazy.pkl"
    subprocess.run(
        [str(env.python), "-c", _MAKER, str(booster), str(lazy)], check=True, capture_output=True
    )
    return booster, lazy


@pytest.fixture(scope="module")
def regressor_pickle(tmp_path_factory) -> Path:
    env = ensure_env(DEFAULT, extras=("lightgbm", "scikit-learn"))
    path = tmp_path_factory.mktemp("lgbr") / "regressor.pkl"
    subprocess.run(
        [str(env.python), "-c", _REGRESSOR_MAKER, str(path)], check=True, capture_output=True
    )
    return path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _globals_pickle(*names: str) -> bytes:
    """A protocol-2 pickle of a tuple of globals (``module qualname``): what the scan reads."""
    body = b"".join(b"c" + n.replace(" ", "\n").encode() + b"\n" for n in names)
    return b"\x80\x02(" + body + b"t."


# --- module -> distribution ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("sklearn.ensemble._forest.RandomForestRegressor", "scikit-learn"),
        ("PIL.Image", "pillow"),
        ("yaml.nodes", "pyyaml"),
        ("dateutil.tz.tz.tzutc", "python-dateutil"),
        ("google.protobuf.message", "protobuf"),
        ("absl.flags", "absl-py"),
    ],
)
def test_modules_whose_distribution_has_another_name_map_through_the_table(module, distribution):
    assert distribution_for(module) == distribution
    assert distribution in RUNTIME.pins


def test_other_modules_map_to_their_own_normalized_name():
    assert distribution_for("lightgbm.basic.Booster") == "lightgbm"
    assert distribution_for("treelite_runtime.predictor") == "treelite-runtime"
    assert distribution_for("Some_Package.x") == "some-package"


def test_scan_leaves_out_stdlib_bundle_packages_python2_names_and_main():
    data = _globals_pickle(
        "copyreg _reconstructor",
        "__builtin__ object",  # protocol-2 pickles from Python 2 name builtins like this
        "numpy.core.multiarray _reconstruct",
        "pandas.core.frame DataFrame",
        "cloudpickle.cloudpickle subimport",
        "__main__ predict",
        "sklearn.linear_model._base LinearRegression",
        "lightgbm.basic Booster",
        "scipy.sparse._csr csr_matrix",
    )
    found, missing = pickle_distributions(data, RUNTIME)
    assert found == ["scikit-learn", "lightgbm", "scipy"]
    assert missing == []


def test_scan_reports_modules_the_image_does_not_have():
    data = _globals_pickle("sktime.forecasting NaiveForecaster", "lightgbm.basic Booster")
    found, missing = pickle_distributions(data, RUNTIME)
    assert found == ["lightgbm"]
    assert missing == [("sktime", "sktime")]


# --- which env a pickle gets --------------------------------------------------------------------


def test_a_pickle_importing_only_numpy_and_pandas_gets_the_base_env(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(_globals_pickle("pandas.core.frame DataFrame", "numpy dtype"))
    chosen = env_for_pickle(path, DEFAULT)
    assert chosen.env.path == ensure_env(DEFAULT).path
    assert chosen.added == {} and chosen.lines() == []


def test_a_distribution_the_base_env_already_has_adds_nothing(tmp_path):
    # python-dateutil comes with pandas, at the image's pin (the base env installs under the
    # image's constraints), so a pickle of a dateutil tz object runs in the base env.
    path = tmp_path / "tz.pkl"
    path.write_bytes(_globals_pickle("dateutil.tz.tz tzutc"))
    chosen = env_for_pickle(path, DEFAULT)
    assert chosen.env.path == ensure_env(DEFAULT).path
    assert chosen.added == {}


def test_with_a_distribution_not_in_the_image_is_refused(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(_globals_pickle("numpy dtype"))
    with pytest.raises(NmrError, match=rf"--with sktime: not in the image {DEFAULT}"):
        env_for_pickle(path, DEFAULT, with_dists=("sktime",))


def test_ensure_env_refuses_extras_not_in_the_image():
    with pytest.raises(NmrError, match=rf"sktime is not in the image {DEFAULT}"):
        ensure_env(DEFAULT, extras=("sktime",))


def test_derived_env_key_depends_on_the_extras_and_leaves_the_base_key_alone():
    base = Path("/usr/bin/python3.12")
    plain = env_key(RUNTIME, base, "3.12.1")
    assert env_key(RUNTIME, base, "3.12.1", ()) == plain
    with_lgb = env_key(RUNTIME, base, "3.12.1", ("lightgbm",))
    assert with_lgb != plain
    assert with_lgb != env_key(RUNTIME, base, "3.12.1", ("lightgbm", "scikit-learn"))


def test_a_module_not_in_the_image_is_reported_as_such(tmp_path, live):
    path = tmp_path / "sk.pkl"
    path.write_bytes(b"\x80\x02csktime.forecasting\nNaiveForecaster\nq\x00.")
    done = invoke("test", "--pickle", path, "--live", live)
    assert done.exit_code == 1
    assert f"env: sktime is imported by the pickle but not in the image {DEFAULT}" in done.output
    assert "reason: Import error reading pickle - No module named 'sktime'" in done.output


def test_json_notes_a_module_not_in_the_image(tmp_path, live):
    path = tmp_path / "sk.pkl"
    path.write_bytes(b"\x80\x02csktime.forecasting\nNaiveForecaster\nq\x00.")
    done = invoke("test", "--pickle", path, "--live", live, "--json")
    (result,) = json.loads(done.output)
    assert result["env"]["missing"] == [{"module": "sktime", "distribution": "sktime"}]
    assert any(f"not in the image {DEFAULT}" in note for note in result["run"]["notes"])


def test_with_without_pickle_is_refused():
    done = CliRunner().invoke(app, ["test", "--with", "lightgbm"])
    assert done.exit_code == 1
    assert "--with applies to --pickle only" in done.output


# --- packages a library imports when present -------------------------------------------------

# lightgbm 4.5.0's Requires-Dist, as its wheel's METADATA has them
LIGHTGBM_REQUIRES = [
    "numpy>=1.17.0",
    "scipy",
    'cffi>=1.15.1; extra == "arrow"',
    'pyarrow>=6.0.1; extra == "arrow"',
    'dask[array,dataframe,distributed]>=2.0.0; extra == "dask"',
    'pandas>=0.24.0; extra == "dask"',
    'pandas>=0.24.0; extra == "pandas"',
    'scikit-learn!=0.22.0; extra == "scikit-learn"',
]


def test_integration_extras_are_the_extras_named_for_the_package_they_install():
    assert integration_extras(LIGHTGBM_REQUIRES, "3.12") == ["dask", "pandas", "scikit-learn"]


def test_plain_and_platform_dependencies_are_not_integration_extras():
    requires = [
        "scipy",
        "nvidia-nccl-cu12; platform_system == 'Linux'",
        "graphviz; extra == 'plotting'",
    ]
    assert integration_extras(requires, "3.12") == []


def test_an_integration_extra_for_another_python_is_left_out():
    requires = ['tomli; extra == "tomli" and python_version < "3.11"']
    assert integration_extras(requires, "3.12") == []
    assert integration_extras(requires, "3.10") == ["tomli"]


# --- real lightgbm pickles (slow: one derived env per machine) -----------------------------------


@pytest.mark.slow
def test_a_pickled_lightgbm_booster_passes_nmr_test_pickle(lightgbm_pickles, live):
    booster, _ = lightgbm_pickles
    done = invoke("test", "--pickle", booster, "--live", live)
    assert done.exit_code == 0, done.output
    assert f"env: + lightgbm=={LIGHTGBM_PIN} (imported by the pickle)" in done.output
    assert f"scipy=={RUNTIME.pins['scipy']}" in done.output  # a dependency, at the image's pin
    assert "booster.pkl: Pending -> Running -> Validating -> Success" in done.output


@pytest.mark.slow
def test_a_closure_over_a_fitted_lgbm_regressor_passes_nmr_test_pickle(regressor_pickle, live):
    done = invoke("test", "--pickle", regressor_pickle, "--live", live)
    assert done.exit_code == 0, done.output
    sklearn = RUNTIME.pins["scikit-learn"]
    assert f"env: + lightgbm=={LIGHTGBM_PIN} (imported by the pickle)" in done.output
    assert f"env: + scikit-learn=={sklearn} (lightgbm imports it when present)" in done.output
    assert "regressor.pkl: Pending -> Running -> Validating -> Success" in done.output


@pytest.mark.slow
def test_minimal_env_reproduces_the_missing_lightgbm_failure(lightgbm_pickles, live):
    booster, _ = lightgbm_pickles
    done = invoke("test", "--pickle", booster, "--live", live, "--minimal-env")
    assert done.exit_code == 1
    assert "env: +" not in done.output
    assert "reason: Import error reading pickle - No module named 'lightgbm'" in done.output


@pytest.mark.slow
def test_with_installs_a_package_the_pickle_imports_only_when_called(lightgbm_pickles, live):
    _, lazy = lightgbm_pickles
    without = invoke("test", "--pickle", lazy, "--live", live)
    assert without.exit_code == 1
    assert "No module named 'lightgbm'" in without.output
    assert f"hint: lightgbm=={LIGHTGBM_PIN} is in the image {DEFAULT}" in without.output
    assert "rerun with --with lightgbm" in without.output
    done = invoke("test", "--pickle", lazy, "--live", live, "--with", "LightGBM", "--json")
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.output)
    assert result["env"]["added"] == {
        "lightgbm": {"version": LIGHTGBM_PIN, "why": "--with"},
        "scikit-learn": {
            "version": RUNTIME.pins["scikit-learn"],
            "why": "lightgbm imports it when present",
        },
    }


@pytest.mark.slow
def test_derived_env_is_cached_apart_from_the_base_env_and_reused(lightgbm_pickles, monkeypatch):
    import builder.env as env_module

    def no_create(*args, **kwargs):
        raise AssertionError("the derived env was created again")

    monkeypatch.setattr(env_module, "_VERIFIED", {})  # forget this process's memo: hit the disk
    monkeypatch.setattr(env_module, "_create", no_create)
    derived = ensure_env(DEFAULT, extras=("lightgbm",))
    base = ensure_env(DEFAULT)
    assert derived.path != base.path
    assert derived.packages["lightgbm"] == LIGHTGBM_PIN
    assert derived.packages["scipy"] == RUNTIME.pins["scipy"]  # the image's full pin list
    assert "lightgbm" not in base.packages
    assert json.loads((derived.path / "nmr-env.json").read_text())["extras"] == {
        "lightgbm": LIGHTGBM_PIN
    }
