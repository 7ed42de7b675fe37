"""The XGBoost reader: document parsing (JSON / UBJSON, 1.7 - 3.x layouts) and the IR it builds."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from builder.artifacts import ubjson
from builder.artifacts import xgboost as xgb_reader
from builder.compile import compile_model
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from tests.synthdata import feature_names, numerai_like

xgb = pytest.importorskip("xgboost")

FIXTURES = Path(__file__).parent / "fixtures" / "xgboost"
NAMES = feature_names(5)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    X, y = numerai_like(300, 5, seed=1, nan_fraction=0.1)
    booster = xgb.train(
        {"max_depth": 3, "nthread": 1, "objective": "binary:logistic"},
        xgb.DMatrix(X, (y > 0.5).astype(int), feature_names=NAMES),
        4,
    )
    d = tmp_path_factory.mktemp("xgb")
    booster.save_model(d / "m.json")
    booster.save_model(d / "m.ubj")
    return d, booster


def _doc(small_model) -> dict:
    return json.loads((small_model[0] / "m.json").read_text())


def _plain(value):
    """UBJSON arrays as lists with float32 values widened like json.loads gives them."""
    if isinstance(value, np.ndarray):
        return [float(v) if value.dtype.kind == "f" else int(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_ubjson_decoder_reads_ubj_as_the_same_document_as_json(small_model):
    d, _ = small_model
    from_ubj = _plain(ubjson.loads((d / "m.ubj").read_bytes()))
    from_json = json.loads((d / "m.json").read_text())
    tree_u = from_ubj["learner"]["gradient_booster"]["model"]["trees"][0]
    tree_j = from_json["learner"]["gradient_booster"]["model"]["trees"][0]
    # float32 values: UBJ holds the exact float32, JSON its shortest decimal; equal as float32
    np.testing.assert_array_equal(
        np.float32(tree_u["split_conditions"]), np.float32(tree_j["split_conditions"])
    )
    assert tree_u["left_children"] == tree_j["left_children"]
    assert from_ubj["learner"]["objective"] == from_json["learner"]["objective"]
    assert from_ubj["learner"]["learner_model_param"] == from_json["learner"]["learner_model_param"]


def test_ubjson_decoder_reports_a_truncated_file_as_artifact_error(small_model):
    data = (small_model[0] / "m.ubj").read_bytes()
    with pytest.raises(ArtifactError, match="unexpected end of file"):
        ubjson.loads(data[: len(data) // 2], source="m.ubj")


def test_ubjson_decoder_handles_unoptimized_containers_and_scalars():
    # '{' keys, '[' without count, strings, ints of each width, float64, true/false/null
    data = (
        b"{"
        + b"i\x01a"
        + b"["
        + b"i\xff"
        + b"U\xff"
        + b"I\x01\x00"
        + b"l\x00\x01\x00\x00"
        + b"]"
        + b"i\x01b"
        + b"D"
        + np.float64(0.1).byteswap().tobytes()
        + b"i\x01c"
        + b"SU\x03xyz"
        + b"i\x01d"
        + b"[$i#U\x03\x01\x02\x03"
        + b"i\x01e"
        + b"[TFZ]"
        + b"}"
    )
    assert _plain(ubjson.loads(data)) == {
        "a": [-1, 255, 256, 65536],
        "b": 0.1,
        "c": "xyz",
        "d": [1, 2, 3],
        "e": [True, False, None],
    }


def test_xgboost_splits_are_float32_strict_less_with_nan_default(small_model):
    ens = xgb_reader.read(small_model[0] / "m.json")
    assert (ens.compare, ens.input_dtype, ens.accumulate_dtype) == ("<", "float32", "float32")
    internal = ens.split_feature >= 0
    # thresholds are float32 values held in float64
    np.testing.assert_array_equal(
        ens.threshold, ens.threshold.astype(np.float32).astype(np.float64)
    )
    assert not ens.nan_as_zero.any() and not ens.zero_as_missing.any()
    assert ens.leaf_value[internal].tolist() == [0.0] * int(internal.sum())
    assert ens.transform == "xgboost_sigmoid" and ens.task == "binary"
    assert ens.init.dtype == np.float32


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("5E-1", [0.0]), ("[5E-1]", [0.0]), ("[7.310586E-1]", [np.float32(1.0)])],
)
def test_xgboost_logistic_base_score_forms_become_logit_margin(small_model, stored, expected):
    doc = _doc(small_model)
    doc["learner"]["learner_model_param"]["base_score"] = stored
    ens = xgb_reader.ensemble_from_document(doc)
    np.testing.assert_allclose(ens.init, np.asarray(expected, dtype=np.float32), atol=1e-7)


def test_xgboost_vector_base_score_is_one_margin_per_class(small_model):
    doc = _doc(small_model)
    doc["learner"]["objective"] = {"name": "multi:softprob"}
    mp = doc["learner"]["learner_model_param"]
    mp["num_class"] = "3"
    mp["base_score"] = "[-1.5E-1,2.5E-1,1E0]"
    trees = doc["learner"]["gradient_booster"]["model"]
    trees["tree_info"] = [i % 3 for i in range(len(trees["trees"]))]
    ens = xgb_reader.ensemble_from_document(doc)
    np.testing.assert_array_equal(ens.init, np.float32([-0.15, 0.25, 1.0]))
    assert ens.n_outputs == 3 and ens.tree_class.tolist() == trees["tree_info"]


def test_xgboost_base_score_vector_of_wrong_length_is_an_artifact_error(small_model):
    doc = _doc(small_model)
    doc["learner"]["learner_model_param"]["base_score"] = "[1E-1,2E-1]"
    with pytest.raises(ArtifactError, match="base_score has 2 values for 1 outputs"):
        xgb_reader.ensemble_from_document(doc)


@pytest.mark.parametrize("objective", ["reg:absoluteerror", "rank:pairwise", "survival:cox"])
def test_xgboost_unsupported_objective_is_named(small_model, objective):
    doc = _doc(small_model)
    doc["learner"]["objective"] = {"name": objective}
    with pytest.raises(NotSupportedYet, match=f"XGBoost objective '{objective}'"):
        xgb_reader.ensemble_from_document(doc)


def test_xgboost_gblinear_booster_is_not_supported_yet(small_model):
    doc = _doc(small_model)
    doc["learner"]["gradient_booster"] = {"name": "gblinear", "model": {"weights": [0.0]}}
    with pytest.raises(NotSupportedYet, match="gblinear"):
        xgb_reader.ensemble_from_document(doc)


def test_xgboost_multi_target_model_is_not_supported_yet(small_model):
    doc = _doc(small_model)
    doc["learner"]["learner_model_param"]["num_target"] = "2"
    with pytest.raises(NotSupportedYet, match="num_target=2"):
        xgb_reader.ensemble_from_document(doc)


def test_xgboost_dart_leaves_are_float32_products_with_weight_drop(small_model):
    doc = _doc(small_model)
    gbtree = doc["learner"]["gradient_booster"]
    n = len(gbtree["model"]["trees"])
    weights = [0.3333333, 1.0, 0.7, 0.123456789][:n]
    doc["learner"]["gradient_booster"] = {"name": "dart", "gbtree": gbtree, "weight_drop": weights}
    ens = xgb_reader.ensemble_from_document(doc)
    tree = gbtree["model"]["trees"][0]
    leaves = np.asarray(tree["left_children"]) == -1
    expected = np.float32(tree["split_conditions"])[leaves] * np.float32(weights[0])
    got = ens.leaf_value[ens.tree_offsets[0] : ens.tree_offsets[1]][
        ens.split_feature[: ens.tree_offsets[1]] < 0
    ]
    np.testing.assert_array_equal(np.sort(got), np.sort(expected.astype(np.float64)))
    assert ens.meta["booster"] == "dart"


def test_xgboost_dart_state_inside_gbtree_layout_is_accepted(small_model):
    # 3.3 moved DART state into GBTree; accept weight_drop beside or inside the model dict
    doc = _doc(small_model)
    model = doc["learner"]["gradient_booster"]["model"]
    model["weight_drop"] = [0.5] * len(model["trees"])
    ens = xgb_reader.ensemble_from_document(doc)
    assert ens.meta["booster"] == "dart"
    plain = xgb_reader.ensemble_from_document(_doc(small_model))
    np.testing.assert_array_equal(
        ens.leaf_value, (plain.leaf_value.astype(np.float32) * np.float32(0.5))
    )


def test_xgboost_unreachable_pruned_nodes_are_dropped(small_model):
    doc = _doc(small_model)
    tree = doc["learner"]["gradient_booster"]["model"]["trees"][0]
    # append a deleted node (as pruning leaves them) that nothing points to
    for key, filler in [
        ("left_children", -1),
        ("right_children", -1),
        ("split_conditions", 123.0),
        ("split_indices", 0),
        ("default_left", 0),
        ("split_type", 0),
        ("parents", 0),
        ("base_weights", 0.0),
        ("loss_changes", 0.0),
        ("sum_hessian", 0.0),
    ]:
        tree[key] = list(tree[key]) + [filler]
    n_before = len(tree["left_children"])
    ens = xgb_reader.ensemble_from_document(doc)
    assert ens.tree_offsets[1] == n_before - 1
    assert 123.0 not in ens.leaf_value.tolist()


def test_xgboost_categorical_children_are_swapped_into_in_set_left(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(300, 2)).astype(np.float64)
    y = np.isin(X[:, 0], [1, 3]) * 1.0
    frame = pd.DataFrame({"a": pd.Categorical(X[:, 0].astype(int)), "b": X[:, 1]})
    booster = xgb.train(
        {"max_cat_to_onehot": 1, "max_depth": 1, "nthread": 1},
        xgb.DMatrix(frame, y, enable_categorical=True),
        1,
    )
    booster.save_model(tmp_path / "c.json")
    tree = json.loads((tmp_path / "c.json").read_text())["learner"]["gradient_booster"]["model"][
        "trees"
    ][0]
    ens = xgb_reader.read(tmp_path / "c.json")
    assert ens.is_categorical[0]
    # library: categories in the split's set go to right_children[0]
    lib_right_leaf = tree["split_conditions"][tree["right_children"][0]]
    assert ens.leaf_value[ens.left_child[0]] == np.float32(lib_right_leaf)
    words = ens.cat_words[ens.cat_offsets[0] : ens.cat_offsets[1]]
    in_set = {v for v in range(32) if words[0] >> v & 1}
    lib_set = set(tree["categories"])
    assert in_set == lib_set
    assert not ens.default_left[0]  # NaN: the library's default side is its left (IR right)


def test_xgboost_config_must_name_the_model_columns_in_any_order(small_model):
    d = small_model[0]
    wrong = list(NAMES)
    wrong[2] = "feature_other"
    with pytest.raises(NmrError, match="including 'feature_0002', which the config does not list"):
        xgb_reader.read(d / "m.json", wrong)
    with pytest.raises(NmrError, match="lists 'feature_9999', which the model does not use"):
        xgb_reader.read(d / "m.json", NAMES + ["feature_9999"])
    # the model's own order wins (the evaluator selects columns by name)
    assert xgb_reader.read(d / "m.json", NAMES[::-1]).feature_names == tuple(NAMES)


def test_xgboost_model_without_feature_names_takes_config_names(tmp_path):
    X, y = numerai_like(200, 3, seed=2)
    xgb.train({"nthread": 1}, xgb.DMatrix(X, y), 2).save_model(tmp_path / "m.ubj")
    with pytest.raises(NmrError, match="records no feature names"):
        xgb_reader.read(tmp_path / "m.ubj")
    with pytest.raises(NmrError, match="trained on 3 features but the config lists 2"):
        xgb_reader.read(tmp_path / "m.ubj", ["a", "b"])
    assert xgb_reader.read(tmp_path / "m.ubj", ["a", "b", "c"]).feature_names == ("a", "b", "c")


def test_xgboost_non_model_json_is_an_artifact_error(tmp_path):
    (tmp_path / "x.json").write_text('{"tree_info": []}')
    with pytest.raises(ArtifactError, match="no 'learner' key"):
        xgb_reader.read(tmp_path / "x.json")
    (tmp_path / "y.json").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ArtifactError, match="neither JSON nor UBJSON"):
        xgb_reader.read(tmp_path / "y.json")


def test_xgboost_document_missing_a_tree_field_is_an_artifact_error_naming_it(
    small_model, tmp_path
):
    doc = _doc(small_model)
    del doc["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"]
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"edited\.json: incomplete .*'split_conditions'"):
        xgb_reader.read(tmp_path / "edited.json")


def _fixture_cases():
    for version_dir in sorted(FIXTURES.glob("*.*.*")):
        for model in sorted(version_dir.glob("*.json")) + sorted(version_dir.glob("*.ubj")):
            if model.name != "VERSION.json":
                yield pytest.param(model, id=f"{version_dir.name}/{model.name}")


@pytest.mark.parametrize("model", list(_fixture_cases()))
def test_xgboost_files_written_by_older_versions_predict_exactly(model):
    # Files and predictions were made by xgboost 1.7.6 / 2.1.4 / 3.0.5 (tests/fixtures/xgboost/
    # make_fixtures.py): scalar "5E-1"-style base_score, pre-3.1 layouts, DART wrapper,
    # early-stopping attributes, random forests.
    X = np.load(model.parent / "X.npy")
    expected = np.load(model.parent / f"{model.name.split('.')[0]}.pred.npy")
    ours = compile_model(xgb_reader.read(model)).predict(X)
    assert ours.shape == expected.shape
    assert np.max(np.abs(ours - expected)) == 0.0


def test_xgboost_fixture_versions_cover_pre_3_layouts():
    versions = sorted(
        json.loads((d / "VERSION.json").read_text())["xgboost"] for d in FIXTURES.glob("*.*.*")
    )
    assert versions == ["1.7.6", "2.1.4", "3.0.5"]
    doc = json.loads((FIXTURES / "1.7.6" / "reg.json").read_text())
    assert not doc["learner"]["learner_model_param"]["base_score"].startswith("[")  # scalar form


def test_xgboost_reader_does_not_mutate_the_document(small_model):
    doc = _doc(small_model)
    before = copy.deepcopy(doc)
    xgb_reader.ensemble_from_document(doc)
    assert doc == before


def test_xgboost_reader_works_without_the_xgboost_package(tmp_path):
    # The build reads .json / .ubj itself; xgboost is only needed for native predictions.
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['xgboost'] = None\n"
        "from builder.artifacts import xgboost as r\n"
        f"e = r.read({str(FIXTURES / '2.1.4' / 'multi.ubj')!r})\n"
        "print(e.n_trees, e.n_outputs)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        check=True,
    )
    assert out.stdout.split() == ["18", "3"]


def test_xgboost_files_are_inferred_and_compiled_through_the_registry(small_model):
    from builder.artifacts import infer_format
    from builder.compile import compile_artifact

    d, booster = small_model
    assert infer_format(d / "m.json") == "xgboost"
    assert infer_format(d / "m.ubj") == "xgboost"
    X, _ = numerai_like(50, 5, seed=12)
    ours = compile_artifact(d / "m.ubj", "xgboost").predict(X.astype(np.int8))
    native = booster.predict(xgb.DMatrix(X, feature_names=NAMES)).reshape(-1, 1)
    assert np.max(np.abs(ours - native)) == 0.0


def test_xgboost_document_missing_its_trees_is_one_damaged_model_error(small_model, tmp_path):
    doc = _doc(small_model)
    del doc["learner"]["gradient_booster"]["model"]["trees"]
    (tmp_path / "cut.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"incomplete or damaged XGBoost model \(KeyError"):
        xgb_reader.read(tmp_path / "cut.json", NAMES)
