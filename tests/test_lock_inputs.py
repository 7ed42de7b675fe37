"""Every file an artifact's reader opens is an input of numerai.lock: an ONNX model saved with
external data (``model.onnx`` + ``model.onnx.data``, as torch's exporter writes large models)
is rebuilt when only the ``.data`` file changes, and a missing ``.data`` file is one clear error
at the numerai.yaml line that names the artifact."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import numpy_helper

import builder.lock as locks
from builder.artifacts import input_files, read
from builder.artifacts import onnx as onnx_reader
from builder.config import load
from builder.errors import NmrError
from builder.pack import kernel_sources_digest
from tests.buildkit import copy_project, nmr_cli, train_lightgbm, write_config, write_data

MODELS = """
mlp:
  artifact: artifacts/model.onnx
  features: small
  postprocessing: []
"""


@pytest.fixture(scope="module")
def built_template(tmp_path_factory):
    """A project whose one slot is an MLP (trained on the project's data) stored as
    model.onnx + model.onnx.data, built once."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    root = tmp_path_factory.mktemp("inputs") / "project"
    root.mkdir()
    sets = write_data(root, nan_fraction=0.0)
    train = pd.read_parquet(root / "data" / "train.parquet")
    X = train[sets["small"]].to_numpy(dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a few iterations are enough here
        mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0)
        mlp.fit(X, train["target"].to_numpy())
    (root / "artifacts").mkdir()
    _save_with_external_data(to_onnx(mlp, X[:1], target_opset=17), root / "artifacts")
    write_config(root, MODELS)
    result = nmr_cli("build", "-f", root / "numerai.yaml")
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture()
def project(built_template, tmp_path):
    return copy_project(built_template, tmp_path)


def _save_with_external_data(model, folder):
    # onnx moves only tensors held in raw_data; skl2onnx writes float_data, so re-encode
    for tensor in model.graph.initializer:
        if not tensor.HasField("raw_data"):
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    onnx.save_model(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )


def _change_only_the_external_data(root):
    """New weights in model.onnx.data; model.onnx keeps its bytes (same names, offsets, sizes)."""
    folder = root / "artifacts"
    onnx_bytes = (folder / "model.onnx").read_bytes()
    model = onnx.load(str(folder / "model.onnx"))
    tensor = next(t for t in model.graph.initializer if t.name == "intercepts1")  # output bias
    changed = numpy_helper.to_array(tensor) + np.float32(0.25)
    tensor.CopyFrom(numpy_helper.from_array(changed, tensor.name))
    (folder / "model.onnx.data").unlink()  # onnx appends to an existing data file
    _save_with_external_data(model, folder)
    assert (folder / "model.onnx").read_bytes() == onnx_bytes


def _build(root, *args):
    return nmr_cli("build", "-f", root / "numerai.yaml", *args)


def _inputs(root):
    project = load(root / "numerai.yaml")
    return locks.slot_inputs(project, project.models[0], kernel_sources_digest())


def test_onnx_reader_names_the_model_file_then_its_external_data_file(project):
    folder = project / "artifacts"
    assert input_files(folder / "model.onnx", "onnx") == (
        folder / "model.onnx",
        folder / "model.onnx.data",
    )


def test_single_file_formats_name_only_the_artifact(tmp_path):
    sets = write_data(tmp_path, nan_fraction=0.0)
    path = train_lightgbm(tmp_path, "reg", sets["small"])
    assert input_files(path, "lightgbm") == (path,)


def test_lock_records_the_external_data_file_with_its_sha256(project):
    artifact = json.loads((project / "numerai.lock").read_text())["slots"]["mlp"]["inputs"][
        "artifacts"
    ][0]
    data = project / "artifacts" / "model.onnx.data"
    assert artifact["path"] == "artifacts/model.onnx"
    assert artifact["side_files"] == [
        {"path": "artifacts/model.onnx.data", "sha256": locks.file_sha256(data)}
    ]


def test_changing_only_the_external_data_invalidates_artifacts(project):
    before = _inputs(project)
    _change_only_the_external_data(project)
    assert locks.changed_inputs({"inputs": before}, _inputs(project)) == ["artifacts"]


def test_build_check_exits_1_when_only_the_external_data_changed(project):
    _change_only_the_external_data(project)
    result = _build(project, "--check")
    assert result.exit_code == 1
    assert "mlp: out of date (artifacts)" in result.output


def test_build_rebuilds_a_different_pickle_when_only_the_external_data_changed(project):
    old_sha = json.loads((project / "numerai.lock").read_text())["slots"]["mlp"]["pickle"]["sha256"]
    _change_only_the_external_data(project)
    result = _build(project)
    assert result.exit_code == 0, result.output
    assert "mlp: built" in result.output
    new_sha = json.loads((project / "numerai.lock").read_text())["slots"]["mlp"]["pickle"]["sha256"]
    assert new_sha != old_sha
    assert _build(project, "--check").exit_code == 0


def test_reader_takes_the_weights_from_the_external_data_file(project):
    path = project / "artifacts" / "model.onnx"
    before = onnx_reader.read(path)
    _change_only_the_external_data(project)
    after = onnx_reader.read(path)
    changed = [
        name
        for name, value in before.initializers.items()
        if not np.array_equal(value, after.initializers[name])
    ]
    assert len(changed) == 1


def test_noop_check_of_an_unchanged_onnx_artifact_does_not_import_onnx(project):
    # the side-file list is memoized by the .onnx file's (path, size, mtime), like file hashes
    script = (
        "import sys; from builder.build import build_project; from builder.config import load; "
        f"r = build_project(load({str(project / 'numerai.yaml')!r}), check=True); "
        "print(r[0].status, 'onnx' in sys.modules)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert [run.stdout.split() for run in runs] == [
        ["up", "to", "date", "True"],
        ["up", "to", "date", "False"],
    ]


def test_missing_external_data_file_is_one_error_naming_it_and_the_config_line(project):
    assert _build(project, "--check").exit_code == 0  # the side-file list is now memoized
    (project / "artifacts" / "model.onnx.data").unlink()
    result = _build(project, "--check")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert re.match(
        r"error: \S*numerai\.yaml:8:\d+: models\.mlp\.artifact: model\.onnx: the external "
        r"data file 'model\.onnx\.data' \(of tensor '\w+'\) does not exist",
        lines[0],
    ), lines[0]
    assert "does not exist" in lines[0]


def test_external_data_outside_the_model_folder_is_refused_naming_the_tensor(tmp_path):
    from onnx import helper

    weight = numpy_helper.from_array(np.ones((3, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "models").mkdir()
    onnx.save_model(
        model,
        str(tmp_path / "models" / "m.onnx"),
        save_as_external_data=True,
        location="m.onnx.data",
        size_threshold=0,
    )
    # move the data one folder up and point the tensor there
    (tmp_path / "models" / "m.onnx.data").rename(tmp_path / "m.onnx.data")
    stored = onnx.load(str(tmp_path / "models" / "m.onnx"), load_external_data=False)
    for entry in stored.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../m.onnx.data"
    onnx.save_model(stored, str(tmp_path / "models" / "m.onnx"))
    with pytest.raises(
        NmrError, match=r"tensor 'w' names external data '\.\./m\.onnx\.data' outside"
    ):
        input_files(tmp_path / "models" / "m.onnx", "onnx")


_OPENED: list[Path] | None = None  # files opened while a test records, else None


def _record_opens(event, args):
    # an audit hook cannot be removed, so it only records while a test asks it to
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, Path)):
        _OPENED.append(Path(args[0]).resolve())


sys.addaudithook(_record_opens)


def _write_artifact(kind, root, features):
    """A small real model of each format, trained on the project's data."""
    import joblib
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingRegressor

    if kind == "lightgbm":
        return train_lightgbm(root, "reg", features)
    train = pd.read_parquet(root / "data" / "train.parquet")
    X, y = train[features], train["target"]
    path = root / "artifacts" / f"model.{ {'xgboost': 'json', 'sklearn': 'joblib'}[kind] }"
    if kind == "xgboost":
        booster = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, y), 4)
        booster.save_model(str(path))
    else:
        joblib.dump(HistGradientBoostingRegressor(max_iter=4).fit(X, y), path)
    return path


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost", "sklearn"])
def test_reader_opens_no_project_file_it_does_not_name(kind, tmp_path):
    global _OPENED
    sets = write_data(tmp_path, nan_fraction=0.0)
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    path = _write_artifact(kind, tmp_path, sets["small"])
    _OPENED = []
    try:
        read(path, kind, sets["small"])
        opened = {f for f in _OPENED if f.is_relative_to(tmp_path.resolve())}
    finally:
        _OPENED = None
    assert opened == {p.resolve() for p in input_files(path, kind)}
