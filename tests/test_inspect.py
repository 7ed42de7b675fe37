"""`nmr inspect` on pickles that cannot load in the runtime's env: exit 1, and for each module
the pickle imports outside nmr's set, whether the numerai_predict image has it and this env not,
or the image does not have it either."""

from __future__ import annotations

import json

import cloudpickle
import numpy as np
import pytest
from typer.testing import CliRunner

from builder import runtimes
from builder.cli import app

runner = CliRunner()
TAG = runtimes.default_tag()

# A hand-made model as users write it: a closure over a fitted lightgbm.LGBMRegressor, in a
# namespace that is not importable (as a notebook's __main__), so cloudpickle pickles the
# function by value and the regressor by reference to lightgbm.sklearn.
CLOSURE = """
def make(model):
    def predict(live_features):
        return model.predict(live_features)
    return predict
"""


@pytest.fixture(scope="module")
def lightgbm_closure(tmp_path_factory):
    import lightgbm

    rng = np.random.default_rng(0)
    X, y = rng.random((200, 4)), rng.random(200)
    model = lightgbm.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1).fit(X, y)
    namespace = {"__name__": "nmr_notebook"}
    exec(compile(CLOSURE, "notebook.py", "exec"), namespace)
    path = tmp_path_factory.mktemp("inspect") / "closure.pkl"
    path.write_bytes(cloudpickle.dumps(namespace["make"](model)))
    return path


def _inspect(path, *args):
    return runner.invoke(app, ["inspect", str(path), "--runtime", TAG, *args])


def test_a_pickle_that_cannot_load_exits_1_naming_the_load_error(lightgbm_closure):
    result = _inspect(lightgbm_closure)
    assert result.exit_code == 1
    assert "No module named 'lightgbm'" in result.output
    assert f"error: {lightgbm_closure} cannot be loaded" in result.output


def test_a_module_the_image_has_but_the_env_lacks_is_said_so(lightgbm_closure):
    pin = runtimes.get(TAG).pins["lightgbm"]
    result = _inspect(lightgbm_closure)
    assert (
        f"module:     lightgbm: the image {TAG} has it (lightgbm=={pin}), this env does not"
        in result.output
    )
    assert "does not have it" not in result.output


def test_a_module_the_image_lacks_is_said_so(tmp_path):
    path = tmp_path / "fancy.pkl"
    path.write_bytes(b"\x80\x02cfancylib.core\nModel\nq\x00.")  # GLOBAL fancylib.core.Model
    result = _inspect(path)
    assert result.exit_code == 1
    assert f"module:     fancylib: the image {TAG} does not have it" in result.output


def test_json_output_exits_1_and_carries_each_module_s_availability(lightgbm_closure):
    result = _inspect(lightgbm_closure, "--json")
    assert result.exit_code == 1
    info = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    assert "No module named 'lightgbm'" in info["load_error"]
    (entry,) = info["modules_outside"]
    assert (entry["module"], entry["in_env"]) == ("lightgbm", False)
    assert entry["image_version"] == runtimes.get(TAG).pins["lightgbm"]


def test_python_2_builtins_names_are_not_reported_as_missing_modules(tmp_path):
    import pickle

    path = tmp_path / "protocol2.pkl"
    path.write_bytes(pickle.dumps({1, 2}, protocol=2))  # GLOBAL __builtin__.set
    result = _inspect(path)
    assert result.exit_code == 0, result.output
    assert "module:" not in result.output


def test_names_from_the_pickling_script_s_main_are_explained(tmp_path):
    path = tmp_path / "main.pkl"
    path.write_bytes(b"\x80\x02c__main__\nModel\nq\x00.")  # GLOBAL __main__.Model
    result = _inspect(path)
    assert result.exit_code == 1
    assert "module:     __main__: names defined in the script that made the pickle" in result.output
