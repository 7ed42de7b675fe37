"""CatBoost scale_and_bias: RawFormulaVal is ``scale * sum(leaves) + bias``, the sum started at
0 (not at the bias), with the multiply skipped when scale is 1 and the add when bias is 0."""

from __future__ import annotations

import numpy as np
import pytest

from builder.artifacts import catboost as cb_reader
from tests import catboost_fidelity as cf

pytest.importorskip("catboost")

CASES = [(1.0, 0.0), (1.0, 0.37), (0.7, 0.0), (1.3, -0.21), (-2.5, 1e-3)]


@pytest.mark.parametrize(("scale", "bias"), CASES)
@pytest.mark.parametrize("form", cf.FORMS)
def test_catboost_scale_and_bias_is_applied_after_the_tree_sum(tmp_path, scale, bias, form):
    X, y = cf.data("nan", seed=400)
    model = cf.train(X, y, iterations=60, depth=6, learning_rate=0.1)
    model.set_scale_and_bias(scale, bias)
    path = cf.save(model, tmp_path, form)
    rows = cf.test_rows("nan", seed=400, n_rows=1000)
    cf.assert_exact(cf.ours(path, rows), cf.native(path, rows), f"{form} {scale} {bias}")


def test_catboost_boost_from_average_bias_is_read_from_the_model(tmp_path):
    """RMSE training starts from the target mean, which CatBoost stores as the bias."""
    X, y = cf.data("int8", seed=401)
    model = cf.train(X, y, boost_from_average=True)
    ens = cb_reader.read(cf.save(model, tmp_path, "cbm"))
    scale, bias = model.get_scale_and_bias()
    assert ens.transform == "catboost_scale_and_bias"
    assert ens.transform_params == {"scale": scale, "bias": bias}
    assert bias == pytest.approx(float(np.mean(y)), abs=1e-6)


def test_catboost_identity_scale_and_bias_compiles_to_no_transform(tmp_path):
    X, y = cf.data("int8", seed=402)
    model = cf.train(X, y, boost_from_average=False)
    ens = cb_reader.read(cf.save(model, tmp_path, "cbm"))
    assert ens.transform == "identity"
