"""CatBoost missing values: nan_mode Min sends NaN left (NaN becomes -inf), Max sends it right
(+inf), Forbidden compares NaN as is (``NaN > border`` is false, so left); the compiled model
follows each, bit for bit with CatBoost's RawFormulaVal, on both tree strategies."""

from __future__ import annotations

import numpy as np
import pytest

from builder.artifacts import catboost as cb_reader
from tests import catboost_fidelity as cf

pytest.importorskip("catboost")


def _nan_rows(seed: int) -> np.ndarray:
    rows = cf.test_rows("nan", seed=seed, n_rows=400)
    rows[:40] = np.nan  # whole rows missing: every split sees NaN
    return rows


@pytest.mark.parametrize("nan_mode", ["Min", "Max"])
def test_catboost_nan_mode_routes_missing_values_like_catboost(tmp_path, nan_mode):
    for i in range(4):
        X, y = cf.data("nan", seed=300 + i)
        path = cf.save(cf.train(X, y, nan_mode=nan_mode, depth=3 + i), tmp_path / f"m{i}", "cbm")
        rows = _nan_rows(300 + i)
        want = cf.native(path, rows)
        for strategy in ("bits", "walk"):
            cf.assert_exact(cf.ours(path, rows, strategy), want, f"{nan_mode} {strategy}")


def test_catboost_nan_mode_min_sends_nan_to_the_left_child(tmp_path):
    X, y = cf.data("nan", seed=310)
    ens = cb_reader.read(cf.save(cf.train(X, y, nan_mode="Min"), tmp_path, "cbm"))
    internal = ens.split_feature >= 0
    assert ens.default_left[internal].all()


def test_catboost_nan_mode_max_sends_nan_to_the_right_child(tmp_path):
    X, y = cf.data("nan", seed=311)
    ens = cb_reader.read(cf.save(cf.train(X, y, nan_mode="Max"), tmp_path, "cbm"))
    internal = ens.split_feature >= 0
    assert not ens.default_left[internal].any()


def test_catboost_forbidden_nan_mode_compares_nan_as_is(tmp_path):
    """Trained without NaN (Forbidden refuses NaN in training), NaN at predict time still gets
    an answer from CatBoost: the left side of every split."""
    X, y = cf.data("int8", seed=320)
    path = cf.save(cf.train(X, y, nan_mode="Forbidden", depth=5), tmp_path, "cbm")
    rows = _nan_rows(320)
    want = cf.native(path, rows)
    for strategy in ("bits", "walk"):
        cf.assert_exact(cf.ours(path, rows, strategy), want, f"Forbidden {strategy}")
