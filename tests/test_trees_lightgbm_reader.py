"""LightGBM reader: both file formats give the same IR; bad and unsupported inputs fail with
one sentence naming the file and the thing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from builder.artifacts import infer_format
from builder.artifacts import lightgbm as reader
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from tests.lightgbm_fidelity import save_both, train
from tests.synthdata import numerai_like


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lgb")
    X, y = numerai_like(400, 6, seed=0, nan_fraction=0.1)
    booster = train({"objective": "binary", "num_leaves": 7}, X, y > 0.5, 6)
    return save_both(booster, tmp)


def test_text_and_dump_json_give_identical_ir(saved):
    text, dump = (reader.read(p) for p in saved)
    for field in (
        "tree_offsets",
        "split_feature",
        "threshold",
        "left_child",
        "right_child",
        "default_left",
        "nan_as_zero",
        "zero_as_missing",
        "leaf_value",
        "tree_class",
    ):
        assert np.array_equal(getattr(text, field), getattr(dump, field)), field
    assert (text.transform, text.task, text.transform_params) == (
        dump.transform,
        dump.task,
        dump.transform_params,
    )


def test_registry_infers_lightgbm_for_text_and_dump_json(saved):
    assert [infer_format(p) for p in saved] == ["lightgbm", "lightgbm"]


def test_generic_column_names_take_the_given_feature_names(saved):
    names = [f"feature_{i}" for i in range(6)]
    assert reader.read(saved[0], names).feature_names == tuple(names)


def test_wrong_number_of_feature_names_names_both_counts(saved):
    with pytest.raises(NmrError, match="trained on 6 features but the config lists 2"):
        reader.read(saved[0], ["a", "b"])


def test_named_model_accepts_any_order_but_rejects_other_feature_names(tmp_path):
    import pandas as pd

    X, y = numerai_like(300, 3, seed=1)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    text, _ = save_both(train({}, frame, y, 3), tmp_path)
    assert reader.read(text).feature_names == ("a", "b", "c")
    with pytest.raises(NmrError, match="including 'b', which the config does not list"):
        reader.read(text, ["a", "x", "c"])
    assert reader.read(text, ["c", "a", "b"]).feature_names == ("a", "b", "c")


def test_unknown_objective_is_not_supported_yet(saved, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(saved[0].read_text().replace("objective=binary", "objective=mystery"))
    with pytest.raises(NotSupportedYet, match="not supported yet: LightGBM objective 'mystery'"):
        reader.read(bad)


def test_pandas_categorical_columns_are_not_supported_yet(tmp_path):
    import pandas as pd

    X, y = numerai_like(300, 3, seed=1)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["a"] = frame["a"].astype(int).astype("category")
    text, dump = save_both(train({"min_data_per_group": 5}, frame, y, 3), tmp_path)
    for path in (text, dump):
        with pytest.raises(NotSupportedYet, match="pandas categorical"):
            reader.read(path)


def test_garbage_file_is_an_artifact_error_naming_the_file(tmp_path):
    bad = tmp_path / "model.txt"
    bad.write_text("hello\n")
    with pytest.raises(ArtifactError, match="model.txt"):
        reader.read(bad)


def test_tree_with_wrong_leaf_count_is_an_artifact_error_naming_the_tree(saved, tmp_path):
    text = saved[0].read_text()
    cut = tmp_path / "cut.txt"
    cut.write_text(text.replace("leaf_value=", "leaf_value=1 ", 1))
    with pytest.raises(ArtifactError, match="Tree=0 has 8 leaf_value values"):
        reader.read(cut)


def test_missing_file_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="cannot read"):
        reader.read(tmp_path / "nope.txt")


def test_json_without_tree_info_is_an_artifact_error(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"learner": {}}))
    with pytest.raises(ArtifactError, match="tree_info"):
        reader.read(bad)


def test_native_predict_matches_booster_and_refuses_dump_json(saved):
    X, _ = numerai_like(50, 6, seed=3)
    out = reader.native_predict(saved[0], X)
    assert out.shape == (50, 1)
    with pytest.raises(NotSupportedYet, match="dump_model JSON"):
        reader.native_predict(saved[1], X)
