"""`nmr validate` opens every artifact's header and reports every slot's problem at its place."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import onnx
import pandas as pd
import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.config import load
from builder.errors import NmrError
from builder.preflight import check_project, read_header
from tests.buildkit import train_lightgbm, write_config, write_data
from tests.onnx_helpers import mlp_model

runner = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Data with missing values plus one real artifact of every format, trained on it."""
    root = tmp_path_factory.mktemp("preflight") / "project"
    root.mkdir()
    sets = write_data(root, nan_fraction=0.05)
    small = sets["small"]
    train_lightgbm(root, "small", small, seed=1)
    train_lightgbm(root, "medium", sets["medium"], seed=2)
    train = pd.read_parquet(root / "data" / "train.parquet")
    X, y = train[small].to_numpy(dtype=np.float64), train["target"].to_numpy()

    import xgboost as xgb

    booster = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(X, y),  # numpy input: the file records no feature names, only a count
        num_boost_round=5,
    )
    booster.save_model(str(root / "artifacts" / "xgb.json"))

    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor

    filled = np.nan_to_num(X, nan=2.0)
    forest = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0)
    forest.fit(pd.DataFrame(X, columns=small), y)
    gbr = GradientBoostingRegressor(n_estimators=3, max_depth=2, random_state=0).fit(filled, y)
    knn = KNeighborsRegressor(n_neighbors=3).fit(filled, y)  # no compiler for neighbours
    for name, est in (("forest", forest), ("gbr", gbr), ("knn", knn)):
        (root / "artifacts" / f"{name}.pkl").write_bytes(pickle.dumps(est))

    onnx.save(mlp_model([len(small), 4, 1]), str(root / "artifacts" / "mlp.onnx"))
    return root, sets


@pytest.fixture()
def project(template, tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(template[0], root)
    monkeypatch.chdir(root)  # problems name numerai.yaml relative to the working directory
    return root, template[1]


def _validate(root, *args):
    return runner.invoke(app, ["validate", "-f", str(root / "numerai.yaml"), *args])


def _lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line]


def test_validate_reports_every_broken_slot_each_at_its_artifact_line(project):
    root, _ = project
    (root / "artifacts" / "empty.txt").write_bytes(b"")
    good = (root / "artifacts" / "small.txt").read_text()
    (root / "artifacts" / "cut.txt").write_text(good[:200])
    write_config(
        root,
        """
        fine:
          artifact: artifacts/small.txt
          features: small
        wrong_features:
          artifact: artifacts/medium.txt
          features: small
        empty_file:
          artifact: artifacts/empty.txt
          features: small
        corrupt:
          artifact: artifacts/cut.txt
          features: small
        """,
    )
    result = _validate(root)
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("numerai.yaml:11:15: models.wrong_features.artifact: ")
    assert "trained on 12 features" in lines[0]
    assert lines[1] == (
        "numerai.yaml:14:15: models.empty_file.artifact: artifacts/empty.txt: the file is empty"
    )
    assert lines[2].startswith("numerai.yaml:17:15: models.corrupt.artifact: artifacts/cut.txt:")
    assert "not a LightGBM model" in lines[2]


def test_validate_reports_artifact_problems_next_to_config_problems_of_other_members(project):
    root, _ = project
    write_config(
        root,
        """
        blend:
          ensemble:
            - {artifact: artifacts/small.txt, features: no_such_set}
            - {artifact: artifacts/small.txt, features: medium}
        """,
    )
    result = _validate(root)
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 2, result.stderr
    assert "models.blend.ensemble[0].features: unknown feature set 'no_such_set'" in lines[0]
    assert lines[1].startswith("numerai.yaml:10:20: models.blend.ensemble[1].artifact: ")
    assert "config lists 'feature_" in lines[1]


def test_validate_refuses_an_unsupported_lightgbm_objective(project):
    root, sets = project
    text = (root / "artifacts" / "small.txt").read_text()
    (root / "artifacts" / "odd.txt").write_text(
        text.replace("objective=regression", "objective=my_custom_loss", 1)
    )
    write_config(root, "m:\n  artifact: artifacts/odd.txt\n  features: small\n")
    result = _validate(root)
    assert result.exit_code == 1
    assert "not supported yet: LightGBM objective 'my_custom_loss'" in result.stderr


def test_validate_refuses_an_unsupported_xgboost_objective(project):
    root, _ = project
    path = root / "artifacts" / "xgb.json"
    doc = json.loads(path.read_text())
    doc["learner"]["objective"]["name"] = "rank:pairwise"
    path.write_text(json.dumps(doc))
    write_config(root, "m:\n  artifact: artifacts/xgb.json\n  features: small\n")
    result = _validate(root)
    assert result.exit_code == 1
    assert "numerai.yaml:8:15: models.m.artifact: not supported yet: XGBoost objective" in (
        result.stderr
    )


def test_validate_reports_the_feature_count_of_a_model_without_names(project):
    root, _ = project
    write_config(root, "m:\n  artifact: artifacts/xgb.json\n  features: medium\n")
    result = _validate(root)
    assert result.exit_code == 1
    assert "trained on 6 features but the config lists 12" in result.stderr


def test_validate_refuses_an_unsupported_sklearn_estimator(project):
    root, _ = project
    write_config(root, "m:\n  artifact: artifacts/knn.pkl\n  features: small\n")
    result = _validate(root)
    assert result.exit_code == 1
    assert "models.m.artifact: not supported yet: scikit-learn estimator" in result.stderr
    assert "KNeighborsRegressor" in result.stderr


def test_validate_checks_sklearn_feature_names_against_the_config(project):
    root, sets = project
    reordered = list(reversed(sets["small"]))  # same columns, any order: accepted
    write_config(root, f"m:\n  artifact: artifacts/forest.pkl\n  features: {reordered}\n")
    assert _validate(root).exit_code == 0
    write_config(root, "m:\n  artifact: artifacts/forest.pkl\n  features: medium\n")
    result = _validate(root)
    assert result.exit_code == 1
    assert "the model was trained on 6 features" in result.stderr


def test_validate_reports_an_onnx_input_narrower_than_the_features(project):
    root, _ = project
    write_config(
        root,
        """
        m:
          artifact: artifacts/mlp.onnx
          features: medium
          preprocessing: [fill_missing: {value: 2}]
        """,
    )
    result = _validate(root)
    assert result.exit_code == 1
    assert "trained on 6 features but the config lists 12" in result.stderr


def test_validate_reports_a_corrupt_onnx_file(project):
    root, _ = project
    (root / "artifacts" / "bad.onnx").write_bytes(b"\x08\x07garbage that is not protobuf")
    write_config(root, "m:\n  artifact: artifacts/bad.onnx\n  features: small\n")
    result = _validate(root)
    assert result.exit_code == 1
    assert "models.m.artifact: artifacts/bad.onnx: not a readable ONNX model" in result.stderr


def test_validate_json_lists_artifact_problems_and_exits_1(project):
    root, _ = project
    (root / "artifacts" / "empty.txt").write_bytes(b"")
    write_config(root, "m:\n  artifact: artifacts/empty.txt\n  features: small\n")
    result = _validate(root, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["problems"] == [
        {
            "file": "numerai.yaml",
            "line": 8,
            "col": 15,
            "path": "models.m.artifact",
            "message": "artifacts/empty.txt: the file is empty",
        }
    ]


def test_lightgbm_header_is_read_without_the_trees(project):
    root, _ = project
    text = (root / "artifacts" / "small.txt").read_text()
    head, _sep, _trees = text.partition("Tree=0")
    (root / "artifacts" / "head.txt").write_text(head + "Tree=0\nthis is not a tree\n")
    write_config(root, "m:\n  artifact: artifacts/head.txt\n  features: small\n")
    member = load(root / "numerai.yaml").models[0].members[0]
    header = read_header(member)
    assert header.kind == "LightGBM regression"
    assert header.width == 6
    assert header.takes_nan is True


def test_valid_project_has_no_artifact_problems(project):
    root, _ = project
    write_config(
        root,
        """
        a:
          artifact: artifacts/small.txt
          features: small
        b:
          ensemble:
            - {artifact: artifacts/medium.txt, features: medium}
            - {artifact: artifacts/xgb.json, features: small}
            - {artifact: artifacts/forest.pkl, features: small}
        """,
    )
    report = check_project(load(root / "numerai.yaml"))
    assert report.errors == [] and report.warnings == []


def test_nmr_test_synthesizes_live_data_with_the_projects_nan_share(project, tmp_path):
    from builder.runner.live import synthesized_live

    root, sets = project
    write_config(root, "m:\n  artifact: artifacts/small.txt\n  features: small\n")
    loaded = load(root / "numerai.yaml")
    path = synthesized_live([loaded.models[0]], tmp_path, loaded.data)
    live = pd.read_parquet(path)[sets["small"]]
    assert abs(live.isna().to_numpy().mean() - 0.05) < 0.01  # write_data's nan_fraction


def test_validate_warns_when_an_onnx_member_gets_nan_it_cannot_take(project):
    root, _ = project
    write_config(
        root,
        """
        blend:
          ensemble:
            - {artifact: artifacts/small.txt}
            - {artifact: artifacts/mlp.onnx}
          features: small
        """,
    )
    result = _validate(root)
    assert result.exit_code == 0, result.output  # a warning, not an error
    [warning] = _lines(result)
    assert warning.startswith("warning: numerai.yaml:10:20: models.blend.ensemble[1]: ")
    assert "train.parquet (train data) has missing values" in warning
    assert "an ONNX graph cannot take NaN" in warning
    assert "add `preprocessing: [fill_missing: {strategy: median}]` to this member" in warning


def test_a_member_fill_missing_silences_the_nan_warning(project):
    root, _ = project
    write_config(
        root,
        """
        blend:
          ensemble:
            - {artifact: artifacts/small.txt}
            - {artifact: artifacts/mlp.onnx, preprocessing: [fill_missing: {value: 2}]}
          features: small
        """,
    )
    result = _validate(root)
    assert result.exit_code == 0
    assert _lines(result) == []


def test_a_slot_fill_missing_silences_the_nan_warning(project):
    root, _ = project
    write_config(
        root,
        """
        m:
          artifact: artifacts/mlp.onnx
          features: small
          preprocessing: [fill_missing: {strategy: median}]
        """,
    )
    assert check_project(load(root / "numerai.yaml")).warnings == []


def test_gradient_boosting_without_nan_support_is_warned_about_too(project):
    root, _ = project
    write_config(root, "m:\n  artifact: artifacts/gbr.pkl\n  features: small\n")
    [warning] = check_project(load(root / "numerai.yaml")).warnings
    assert warning.path == "models.m"
    assert "scikit-learn GradientBoostingRegressor cannot take NaN" in warning.message


def test_build_prints_the_nan_warning_before_building(project):
    root, _ = project
    write_config(root, "m:\n  artifact: artifacts/gbr.pkl\n  features: small\n")
    result = runner.invoke(app, ["build", "--check", "-f", str(root / "numerai.yaml")])
    assert "warning:" not in result.stderr  # --check builds nothing and stays quiet
    from builder.cli.build import _warnings

    [warning] = _warnings(load(root / "numerai.yaml"), None, check=False)
    assert "GradientBoostingRegressor cannot take NaN" in warning.message


def test_a_format_without_a_header_reader_is_read_by_its_registered_reader(project, monkeypatch):
    import dataclasses

    from builder import artifacts

    root, sets = project
    # a format added later (e.g. a new library) has a reader but no cheap header function
    monkeypatch.setitem(artifacts.FORMATS, "newlib", "builder.artifacts.lightgbm")
    write_config(root, "m:\n  artifact: artifacts/medium.txt\n  features: medium\n")
    member = load(root / "numerai.yaml").models[0].members[0]
    header = read_header(dataclasses.replace(member, format="newlib"))
    assert header.feature_names == tuple(sets["medium"]) and header.takes_nan
    wrong = dataclasses.replace(member, format="newlib", features=tuple(sets["small"]))
    with pytest.raises(NmrError, match="trained on 12 features"):
        read_header(wrong)


def test_a_config_problem_of_one_slot_does_not_hide_a_slot_whose_name_it_starts(project):
    root, _ = project
    (root / "artifacts" / "empty.txt").write_bytes(b"")
    write_config(
        root,
        """
        ab:
          artifact: artifacts/small.txt
          features: no_such_set
        abc:
          artifact: artifacts/empty.txt
          features: small
        """,
    )
    lines = _lines(_validate(root))
    assert len(lines) == 2, lines
    assert "models.ab.features: unknown feature set" in lines[0]
    assert "models.abc.artifact: artifacts/empty.txt: the file is empty" in lines[1]


def _onnx_graph(nodes, initializers=()):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_validate_refuses_an_onnx_op_the_compiler_lacks_on_the_input_path(project):
    from onnx import helper

    root, _ = project
    model = _onnx_graph(
        [
            helper.make_node("Relu", ["x"], ["h"], name="relu"),
            helper.make_node("Hardmax", ["h"], ["y"], name="hard", axis=1),
        ]
    )
    onnx.save(model, str(root / "artifacts" / "hard.onnx"))
    write_config(
        root, "m:\n  artifact: artifacts/hard.onnx\n  features: small\n  postprocessing: []\n"
    )
    result = _validate(root)
    assert result.exit_code == 1
    assert (
        "models.m.artifact: not supported yet: ONNX op Hardmax (node 'hard', opset 17) in "
        "hard.onnx" in result.stderr
    )


def test_validate_accepts_an_unregistered_onnx_op_that_only_sees_constants(project):
    from onnx import helper, numpy_helper

    root, _ = project
    model = _onnx_graph(
        [
            # folded at build time by onnx's reference evaluator: never reaches the kernel
            helper.make_node("Hardmax", ["w"], ["w_hard"], name="const", axis=1),
            helper.make_node("MatMul", ["x", "w_hard"], ["y"], name="mm"),
        ],
        [numpy_helper.from_array(np.eye(6, 1, dtype=np.float32), "w")],
    )
    onnx.save(model, str(root / "artifacts" / "folded.onnx"))
    write_config(
        root,
        "m:\n  artifact: artifacts/folded.onnx\n  features: small\n"
        "  preprocessing: [fill_missing: {value: 2}]\n",
    )
    result = _validate(root)
    assert result.exit_code == 0, result.stderr


def test_a_missing_artifact_is_reported_once_by_the_config_check(project):
    root, _ = project
    write_config(root, "m:\n  artifact: artifacts/nowhere.txt\n  features: small\n")
    lines = _lines(_validate(root))
    assert len(lines) == 1, lines
    assert "models.m.artifact: artifact file not found" in lines[0]
