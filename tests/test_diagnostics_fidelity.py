"""Fidelity: the pickle's members, evaluated by the runtime's Python, vs the native library."""

from __future__ import annotations

import json

import numpy as np
import pytest

from builder.diagnostics import check_fidelity
from builder.diagnostics.fidelity import compare_member
from tests import synthdata
from tests.bad_pickles import support

lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A LightGBM model with NaN in its training data, packed as a one-member nmr bundle."""
    from builder.bundle import make_bundle
    from builder.config import load
    from builder.env import ensure_env
    from builder.pack import pack

    root = tmp_path_factory.mktemp("fidelity")
    X, y = synthdata.numerai_like(1500, 8, seed=3, nan_fraction=0.05)
    names = synthdata.feature_names(8)
    booster = lightgbm.train(
        {"objective": "regression", "num_leaves": 15, "verbose": -1, "seed": 0},
        lightgbm.Dataset(X, y, feature_name=names),
        num_boost_round=40,
    )
    (root / "model.txt").write_text(booster.model_to_string())
    data = root / "data"
    data.mkdir()
    live = synthdata.numerai_frame(synthdata.numerai_like(400, 8, seed=4, nan_fraction=0.05)[0])
    live.to_parquet(data / "live.parquet")
    features_json = {"feature_sets": {"all": names}, "targets": ["target"]}
    (data / "features.json").write_text(json.dumps(features_json))
    (root / "numerai.yaml").write_text(
        "version: 1\nruntime: numerai_predict_py_3_12:a78dedd\ndata:\n  dir: data\n  version: v5.2\n"
        "models:\n  nan_model:\n    artifact: model.txt\n    features: all\n"
    )
    project = load(root / "numerai.yaml")
    model = project.models[0]
    env = ensure_env(model.runtime)
    pickle_path = root / "model.pkl"
    pickle_path.write_bytes(pack(make_bundle(project, model), env).data)
    return {
        "pickle": pickle_path,
        "python": str(env.python),
        "live": data / "live.parquet",
        "model": model,
    }


def test_a_compiled_lightgbm_member_matches_native_bit_for_bit_with_nan(built):
    report = check_fidelity(built["pickle"], built["python"], built["live"], built["model"])
    (member,) = report.members
    assert report.ok
    assert member.format == "lightgbm"
    assert member.rows == 400
    assert member.max_abs_diff == 0.0
    assert member.skipped is None


def test_max_rows_bounds_the_live_sample(built):
    report = check_fidelity(
        built["pickle"], built["python"], built["live"], built["model"], max_rows=50
    )
    assert report.members[0].rows == 50


def test_one_ulp_off_a_tree_member_fails_its_zero_tolerance(built):
    member = built["model"].members[0]
    X, _ = synthdata.numerai_like(100, 8, seed=5)
    native = lightgbm.Booster(model_file=str(member.artifact)).predict(X).reshape(-1, 1)
    nudged = native.copy()
    nudged[7, 0] = np.nextafter(nudged[7, 0], np.inf)
    result = compare_member(member, X, nudged)
    assert not result.ok
    assert 0 < result.max_abs_diff < 1e-15
    assert compare_member(member, X, native).ok


def test_a_lightgbm_dump_model_json_member_is_skipped_not_failed(built, tmp_path):
    # nmr builds from dump_model JSON, but lightgbm.Booster cannot load that form to compare
    import dataclasses

    member = built["model"].members[0]
    dumped = tmp_path / "model.json"
    dumped.write_text(json.dumps(lightgbm.Booster(model_file=str(member.artifact)).dump_model()))
    X, _ = synthdata.numerai_like(20, 8, seed=6)

    result = compare_member(dataclasses.replace(member, artifact=dumped), X, np.zeros((20, 1)))

    assert result.ok
    assert "dump_model JSON" in result.skipped


def test_a_pickle_not_built_by_nmr_is_skipped(built, tmp_path):
    pickles = support.make_pickles(
        built["python"], {"plain": support.corpus_source("good_two_args")}, tmp_path
    )
    report = check_fidelity(pickles["plain"], built["python"], built["live"], built["model"])
    assert report.skipped == "not an nmr-built pickle"
    assert report.members == []


def test_onnx_members_may_differ_by_1e5_relative_but_not_more(tmp_path):
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    from builder.config import MemberConfig

    X, y = synthdata.numerai_like(300, 6, seed=7)
    regression = LinearRegression().fit(X, y * 100)  # outputs well above 1: relative applies
    onnx_model = skl2onnx.convert_sklearn(
        regression, initial_types=[("input", FloatTensorType([None, 6]))]
    )
    path = tmp_path / "linear.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    member = MemberConfig(
        artifact=path, format="onnx", features=tuple(synthdata.feature_names(6)), feature_set=None
    )
    from builder.artifacts import reader

    native = reader("onnx").native_predict(path, X, list(member.features))
    assert np.abs(native).max() > 10
    within = compare_member(member, X, native * (1 + 5e-6))
    beyond = compare_member(member, X, native * (1 + 5e-5))
    assert within.ok and within.tolerance == 1e-5
    assert not beyond.ok
    assert beyond.max_abs_diff > within.max_abs_diff > 0


# Runs in the runtime's Python: the bundle now hands its members -1 where the live data has NaN
# (a conversion bug of the kind an int8 fast path could have), through its own predict.
_FILLS_NAN = r"""
import sys

import cloudpickle
import pandas as pd

model = pd.read_pickle(sys.argv[1])


class FillsNan(type(model)):
    def predict(self, live_features, live_benchmark_models=None):
        return super().predict(live_features.fillna(-1.0), live_benchmark_models)


model.__class__ = FillsNan
with open(sys.argv[2], "wb") as handle:
    cloudpickle.dump(model, handle)
"""


def test_a_member_handed_other_values_than_the_live_data_fails(built, tmp_path):
    import subprocess

    broken = tmp_path / "fills_nan.pkl"
    subprocess.run(
        [built["python"], "-c", _FILLS_NAN, str(built["pickle"]), str(broken)],
        check=True,
        capture_output=True,
    )
    report = check_fidelity(broken, built["python"], built["live"], built["model"])
    (member,) = report.members
    assert member.input_differs
    assert not report.ok
    healthy = check_fidelity(built["pickle"], built["python"], built["live"], built["model"])
    assert not healthy.members[0].input_differs
