"""Packing inside the runtime env: loads and runs without nmr, same bytes every time, and the
dependency scan refuses pickles that import anything beyond numpy/pandas/cloudpickle/stdlib."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cloudpickle
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from builder import runtimes
from builder.bundle import make_bundle
from builder.config import load
from builder.env import ensure_env
from builder.errors import NmrError
from builder.pack import check_imports, encode, imported_globals, inspect_pickle, pack, pack_many
from tests.buildkit import run_pickle_in_env, train_lightgbm, write_config, write_data
from tests.numerai_reference import rank_per_era

MODELS = """
m:
  artifact: artifacts/reg.txt
  features: small
  preprocessing:
    - fill_missing: {value: 2}
    - clip: {min: 0, max: 4}
  postprocessing:
    - neutralize: {features: small, proportion: 0.5}
    - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.2}
    - rank_per_era: {}
"""


@pytest.fixture(scope="module")
def env():
    # Shared by every test that packs: created once per machine (cached under ~/.cache/nmr).
    return ensure_env(runtimes.default_tag())


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack") / "project"
    root.mkdir()
    sets = write_data(root, nan_fraction=0.05)
    train_lightgbm(root, "reg", sets["small"], seed=4)
    write_config(root, MODELS)
    return root, sets


def _packed(root, env):
    project = load(root / "numerai.yaml")
    return pack(make_bundle(project, project.models[0]), env)


def _reference(root, features, live, bench):
    """The config's steps in plain numpy/pandas on the native LightGBM output."""
    booster = lgb.Booster(model_file=str(root / "artifacts" / "reg.txt"))
    X = live[features].fillna(2).clip(0, 4)
    p = booster.predict(X.to_numpy(dtype=np.float64))
    eras = live["era"].to_numpy()
    for era in np.unique(eras):
        rows = eras == era
        E = live.loc[rows, features]
        E = E.fillna(E.mean()).to_numpy()
        design = np.column_stack([np.ones(rows.sum()), E])
        coef = np.linalg.pinv(design) @ p[rows]
        fit = E @ coef[1:]
        p[rows] = p[rows] - 0.5 * (fit - fit.mean())
    b = bench["v52_lgbm_ender20"].reindex(live.index).to_numpy()
    blended = 0.8 * rank_per_era(p, eras) + 0.2 * rank_per_era(b, eras)
    return rank_per_era(blended, eras)


def test_pickle_runs_in_the_bare_runtime_env_like_the_native_model_with_the_steps(
    project_dir, env, tmp_path
):
    root, sets = project_dir
    packed = _packed(root, env)
    path = tmp_path / "model.pkl"
    path.write_bytes(packed.data)
    live_path = root / "data" / "live.parquet"
    bench_path = root / "data" / "live_benchmark_models.parquet"
    info = run_pickle_in_env(env.python, path, live_path, bench_path, tmp_path / "out.parquet")
    assert info == {"arity": 2, "type": "DataFrame", "builder_loaded": False}
    assert set(env.packages) >= {"numpy", "pandas", "cloudpickle", "pyarrow"}
    assert {k: env.packages[k] for k in ("numpy", "pandas", "cloudpickle", "pyarrow")} == (
        runtimes.get(runtimes.default_tag()).bundle_pins
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    live = pd.read_parquet(live_path)
    assert out.index.equals(live.index)
    expected = _reference(root, sets["small"], live, pd.read_parquet(bench_path))
    np.testing.assert_allclose(out["prediction"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_packing_twice_gives_identical_bytes(project_dir, env):
    root, _ = project_dir
    assert _packed(root, env).sha256 == _packed(root, env).sha256


def test_a_copy_of_the_project_at_another_path_gives_identical_bytes(project_dir, env, tmp_path):
    root, _ = project_dir
    copy = tmp_path / "elsewhere" / "deeper" / "copy"
    shutil.copytree(root, copy)
    assert _packed(copy, env).sha256 == _packed(root, env).sha256


def test_pickle_bytes_name_neither_builder_nor_any_local_path(project_dir, env):
    root, _ = project_dir
    data = _packed(root, env).data
    # Kernel classes are rebuilt by value under the name nmr_kernels; "builder" may appear only
    # in docstrings, never as something the pickle imports.
    assert not [g for g in imported_globals(data) if g.startswith(("builder", "nmr_kernels"))]
    assert b"nmr_kernels.bundle" in data  # the classes' __module__
    assert str(root).encode() not in data
    assert str(env.path).encode() not in data
    assert b"/work/" not in data and b"/tmp/" not in data


def test_packed_pickle_imports_only_numpy_pandas_cloudpickle_and_stdlib(project_dir, env):
    root, _ = project_dir
    packed = _packed(root, env)
    assert {"numpy", "pandas", "cloudpickle"} <= set(packed.modules)
    outside_stdlib = {m for m in packed.modules if m not in sys.stdlib_module_names}
    assert outside_stdlib == {"numpy", "pandas", "cloudpickle"}
    assert packed.parameters == ("live_features", "live_benchmark_models")


def test_dependency_scan_refuses_a_pickle_referencing_lightgbm(project_dir):
    root, _ = project_dir
    booster = lgb.Booster(model_file=str(root / "artifacts" / "reg.txt"))
    data = pickle.dumps(booster)
    with pytest.raises(NmrError, match=r"imports lightgbm\.basic\.Booster"):
        check_imports(data)


def test_dependency_scan_sees_modules_cloudpickle_imports_by_name():
    import lightgbm

    def uses_lightgbm():
        return lightgbm.__version__

    uses_lightgbm.__module__ = "__main__"  # pickled by value, lightgbm by subimport("lightgbm")
    data = cloudpickle.dumps(uses_lightgbm)
    assert "lightgbm" in imported_globals(data)
    with pytest.raises(NmrError, match="imports lightgbm"):
        check_imports(data)


def test_encode_refuses_objects_whose_class_is_not_a_kernel():
    class Outsider:
        def __init__(self):
            self.x = 1

    with pytest.raises(NmrError, match="is not a builder.kernels class"):
        encode(Outsider())


@pytest.mark.parametrize(
    "content", [b"version: 1\nmodels: {}\n", pickle.dumps(list(range(50)))[:40]]
)
def test_inspect_refuses_a_file_that_is_not_a_whole_pickle_naming_it(tmp_path, content):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(NmrError, match=r"model\.pkl: not a pickle file, or a truncated one"):
        inspect_pickle(path)


def test_inspect_reports_signature_and_bundle_summary(project_dir, env, tmp_path):
    root, _ = project_dir
    path = tmp_path / "model.pkl"
    path.write_bytes(_packed(root, env).data)
    info = inspect_pickle(path, env.python)
    assert info["parameters"] == ["live_features", "live_benchmark_models"]
    assert info["type"] == "nmr_kernels.bundle.Predict"
    summary = info["summary"]
    assert summary["slot"] == "m"
    assert summary["members"][0]["kind"] == "lightgbm"
    assert summary["members"][0]["trees"] == 12
    assert summary["postprocessing"][-1] == "rank_per_era"
    assert info["refused"] == []


def test_builder_hash_seed_does_not_change_the_bytes(project_dir, env):
    # The builder's own string hashing (set and dict-of-set orders) must not leak into the spec.
    root, _ = project_dir
    script = (
        "import sys\n"
        "from builder.bundle import make_bundle\n"
        "from builder.config import load\n"
        "from builder.env import ensure_env\n"
        "from builder.pack import pack\n"
        "p = load(sys.argv[1]); m = p.models[0]\n"
        "print(pack(make_bundle(p, m), ensure_env(m.runtime)).sha256)\n"
    )
    digests = set()
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script, str(root / "numerai.yaml")],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONHASHSEED=seed),
            cwd=str(Path(__file__).resolve().parents[1]),
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip().splitlines()[-1])
    assert digests == {_packed(root, env).sha256}


@pytest.mark.slow
def test_oldest_runtime_packs_deterministically_and_runs_with_its_own_libraries(
    project_dir, tmp_path
):
    # numerai_predict_py_3_10: numpy 1.26 and cloudpickle 2.2.1, the most distant from the
    # builder's libraries; creates (once per machine) a second env.
    root, _ = project_dir
    env310 = ensure_env("numerai_predict_py_3_10:19d1769")
    first, second = _packed(root, env310), _packed(root, env310)
    assert first.sha256 == second.sha256 and first.python_version.startswith("3.10.")
    path = tmp_path / "model.pkl"
    path.write_bytes(first.data)
    live_path = root / "data" / "live.parquet"
    bench_path = root / "data" / "live_benchmark_models.parquet"
    info = run_pickle_in_env(env310.python, path, live_path, bench_path, tmp_path / "out.parquet")
    assert info["arity"] == 2 and not info["builder_loaded"]
    project = load(root / "numerai.yaml")
    expected = make_bundle(project, project.models[0])(
        pd.read_parquet(live_path), pd.read_parquet(bench_path)
    )
    got = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_allclose(got["prediction"], expected["prediction"], rtol=0, atol=1e-12)


def test_packing_several_objects_in_one_run_gives_each_its_own_bytes(project_dir, env):
    root, _ = project_dir
    project = load(root / "numerai.yaml")
    bundle = make_bundle(project, project.models[0])
    legacy = load(
        write_config(
            root,
            MODELS.replace("    - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.2}\n", "")
            + "  deploy: {legacy_signature: true}\n",
            name="legacy.yaml",
        )
    )
    other = make_bundle(legacy, legacy.models[0])
    batch = pack_many([bundle, other], env)
    assert [p.sha256 for p in batch] == [pack(bundle, env).sha256, pack(other, env).sha256]
    assert batch[1].parameters == ("live_features",)
