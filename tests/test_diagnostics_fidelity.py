"""Fidelity: the pickle's members, evaluated by the runtime's Python, vs the native library."""

from __future__ import annotations

import numpy as np
import pytest

from builder.diagnostics import check_fidelity
from builder.diagnostics.fidelity import compare_member
from tests.bad_pickles import support

lightgbm = pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A LightGBM model with NaN in its training data, packed as a one-member nmr bundle."""
    from builder.bundle import make_bundle
    from builder.config import load
    from builder.env import ensure_env
    from builder.pack import pack
    from tests import synthdata

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
    (data / "features.json").write_text('{"feature_sets": {"all": %s}, "targets": ["target"]}' % str(names).replace("'", '"'))
    (root / "numerai.yaml").write_text(
        "version: 1\nruntime: numerai_predict_py_3_12:a78dedd\ndata:\n  dir: data\n  version: v5.2\n"
        "models:\n  nan_model:\n    artifact: model.txt\n    features: all\n"
    )
    project = load(root / "numerai.yaml")
    model = project.models[0]
    env = ensure_env(model.runtime)
    pickle_path = root / "model.pkl"
    pickle_path.write_bytes(pack(make_bundle(project, model), env).data)
    return {"pickle": pickle_path, "python": str(env.python), "live": data / "live.parquet", "model": model}


def test_a_compiled_lightgbm_member_matches_native_bit_for_bit_with_nan(built):
    report = check_fidelity(built["pickle"], built["python"], built["live"], built["model"])
    (member,) = report.members
    assert report.ok
    assert member.format == "lightgbm"
    assert member.rows == 400
    assert member.max_abs_diff == 0.0
    assert member.skipped is None


def test_max_rows_bounds_the_live_sample(built):
    report = check_fidelity(built["pickle"], built["python"], built["live"], built["model"], max_rows=50)
    assert report.members[0].rows == 50


def test_one_ulp_off_a_tree_member_fails_its_zero_tolerance(built):
    member = built["model"].members[0]
    X, _ = __import__("tests.synthdata", fromlist=["x"]).numerai_like(100, 8, seed=5)
    native = lightgbm.Booster(model_file=str(member.artifact)).predict(X).reshape(-1, 1)
    nudged = native.copy()
    nudged[7, 0] = np.nextafter(nudged[7, 0], np.inf)
    result = compare_member(member, X, nudged)
    assert not result.ok
    assert 0 < result.max_abs_diff < 1e-15
    assert compare_member(member, X, native).ok


def test_a_pickle_not_built_by_nmr_is_skipped(built, tmp_path):
    pickles = support.make_pickles(
        built["python"], {"plain": support.corpus_source("good_two_args")}, tmp_path
    )
    report = check_fidelity(pickles["plain"], built["python"], built["live"], built["model"])
    assert report.skipped == "not an nmr-built pickle"
    assert report.members == []
