"""The CatBoost reader: which files it accepts, how it names features, and the models it
refuses with one clear sentence (categorical and text features, non-symmetric trees,
classifiers, exponent losses, multi-output models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from builder.artifacts import catboost as cb_reader
from builder.artifacts import infer_format, read
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from tests import catboost_fidelity as cf

catboost = pytest.importorskip("catboost")


def _model(**params):
    X, y = cf.data("int8", seed=500)
    return cf.train(X, y, iterations=5, **params)


def test_catboost_cbm_and_json_files_infer_the_catboost_format(tmp_path):
    model = _model()
    assert infer_format(cf.save(model, tmp_path, "cbm")) == "catboost"
    assert infer_format(cf.save(model, tmp_path, "json")) == "catboost"


def test_catboost_pickle_read_as_sklearn_format_equals_the_cbm(tmp_path):
    """A .pkl infers the sklearn format; a pickled CatBoostRegressor in it is read by the
    CatBoost reader, to the same trees as its .cbm."""
    model = _model(depth=3)
    from_pickle = read(cf.save(model, tmp_path, "pickle"), "sklearn")
    from_cbm = read(cf.save(model, tmp_path, "cbm"), "catboost")
    assert from_pickle.library == "catboost"
    assert np.array_equal(from_pickle.leaf_value, from_cbm.leaf_value)
    assert np.array_equal(from_pickle.threshold, from_cbm.threshold)


def test_catboost_records_the_training_frame_column_names(tmp_path):
    ens = cb_reader.read(cf.save(_model(), tmp_path, "cbm"))
    assert list(ens.feature_names) == cf.NAMES


def test_catboost_model_trained_on_an_array_takes_the_config_feature_names(tmp_path):
    X, y = cf.data("int8", seed=501)
    model = catboost.CatBoostRegressor(iterations=3, verbose=0, allow_writing_files=False)
    model.fit(X, y)
    path = cf.save(model, tmp_path, "cbm")
    names = [f"col_{i}" for i in range(cf.N_FEATURES)]
    assert list(cb_reader.read(path, names).feature_names) == names
    with pytest.raises(NmrError, match="list them"):
        cb_reader.read(path)


def test_catboost_oblivious_tree_levels_test_the_last_split_first(tmp_path):
    """Heap leaf p of the IR tree is CatBoost's leaf index p: the root tests the split that
    sets the most significant bit."""
    model = _model(depth=3)
    doc = cb_reader.model_document(model)
    ens = cb_reader.ensemble_from_document(doc)
    tree = doc["oblivious_trees"][0]
    assert ens.threshold[0] == tree["splits"][-1]["border"]
    assert ens.threshold[1] == ens.threshold[2] == tree["splits"][-2]["border"]
    assert np.array_equal(ens.leaf_value[7:15], tree["leaf_values"])


def test_catboost_categorical_features_are_refused_naming_them(tmp_path):
    X, y = cf.data("int8", seed=502)
    frame = pd.DataFrame(X, columns=cf.NAMES)
    frame["color"] = np.where(X[:, 0] > 2, "red", "blue")
    model = catboost.CatBoostRegressor(iterations=3, verbose=0, allow_writing_files=False)
    model.fit(frame, y, cat_features=["color"])
    with pytest.raises(NotSupportedYet, match=r"categorical features \(model.cbm: color\)"):
        cb_reader.read(cf.save(model, tmp_path, "cbm"))


def test_catboost_text_features_are_refused(tmp_path):
    X, y = cf.data("int8", seed=503, n_rows=400)
    frame = pd.DataFrame(X, columns=cf.NAMES)
    words = np.array(["up", "down", "flat", "wide", "narrow"])
    frame["note"] = [" ".join(words[[int(a), int(b)]]) for a, b in X[:, :2]]
    model = catboost.CatBoostRegressor(iterations=3, verbose=0, allow_writing_files=False)
    model.fit(frame, y, text_features=["note"])
    with pytest.raises(NotSupportedYet, match="text features"):
        cb_reader.read(cf.save(model, tmp_path, "cbm"))


@pytest.mark.parametrize("policy", ["Depthwise", "Lossguide"])
def test_catboost_non_symmetric_trees_are_refused(tmp_path, policy):
    model = _model(grow_policy=policy)
    with pytest.raises(NotSupportedYet, match="non-symmetric trees"):
        cb_reader.read(cf.save(model, tmp_path, "cbm"))


def test_catboost_classifier_is_refused_with_the_alternative(tmp_path):
    X, y = cf.data("int8", seed=504)
    model = catboost.CatBoostClassifier(iterations=3, verbose=0, allow_writing_files=False)
    model.fit(pd.DataFrame(X, columns=cf.NAMES), (y > 0.5).astype(int))
    with pytest.raises(NotSupportedYet, match=r"CatBoostClassifier.*`source:` slot"):
        read(cf.save(model, tmp_path, "pickle"), "sklearn")
    with pytest.raises(NotSupportedYet, match="loss Logloss"):
        cb_reader.read(cf.save(model, tmp_path, "cbm"))


def test_catboost_poisson_loss_is_refused(tmp_path):
    X, y = cf.data("int8", seed=505)
    model = cf.train(X, np.round(y * 4), iterations=3, loss_function="Poisson")
    with pytest.raises(NotSupportedYet, match="loss Poisson"):
        cb_reader.read(cf.save(model, tmp_path, "cbm"))


def test_catboost_multi_output_model_is_refused(tmp_path):
    X, y = cf.data("int8", seed=506)
    model = cf.train(X, np.stack([y, 1 - y], axis=1), iterations=3, loss_function="MultiRMSE")
    with pytest.raises(NotSupportedYet, match="2 outputs"):
        cb_reader.read(cf.save(model, tmp_path, "cbm"))


def test_catboost_damaged_file_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.cbm"
    path.write_bytes(b"CBM1 this is not a model")
    with pytest.raises(ArtifactError, match="broken.cbm: catboost cannot load it"):
        cb_reader.read(path)
    truncated = tmp_path / "broken.json"
    truncated.write_text('{"features_info": {"float_features": []}')
    with pytest.raises(ArtifactError, match="broken.json: not a readable CatBoost JSON"):
        cb_reader.read(truncated)
