"""Refusals that help: an estimator or Pipeline step nmr does not compile is refused naming
it, then what to do instead, in this order: the supported equivalent when one exists, an
skl2onnx export, a ``source:`` slot."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin

from builder.errors import NotSupportedYet
from tests.sklearn_fidelity import compiled, data

lm = pytest.importorskip("sklearn.linear_model")
pipeline = pytest.importorskip("sklearn.pipeline")
pre = pytest.importorskip("sklearn.preprocessing")
compose = pytest.importorskip("sklearn.compose")
neighbors = pytest.importorskip("sklearn.neighbors")


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own transformer (module-level so joblib can pickle it)."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2


def _fit(est):
    X, y = data("float", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _message(est, tmp_path) -> str:
    with pytest.raises(NotSupportedYet) as info:
        compiled(_fit(est), tmp_path)
    return str(info.value)


def _in_order(message: str, *parts: str) -> bool:
    positions = [message.find(part) for part in parts]
    return all(p >= 0 for p in positions) and positions == sorted(positions)


def test_function_transformer_step_is_refused_naming_the_step_then_the_alternatives(tmp_path):
    est = pipeline.Pipeline([("logs", pre.FunctionTransformer(np.log1p)), ("ridge", lm.Ridge())])
    message = _message(est, tmp_path)
    assert "Pipeline step 'logs' (sklearn.preprocessing._function_transformer." in message
    assert _in_order(message, "'logs'", "preprocessing in numerai.yaml", "skl2onnx", "source:")


def test_column_transformer_step_suggests_a_whole_pipeline_step_first(tmp_path):
    columns = compose.ColumnTransformer([("scale", pre.StandardScaler(), [0, 1])])
    est = pipeline.make_pipeline(columns, lm.Ridge())
    message = _message(est, tmp_path)
    assert _in_order(message, "ColumnTransformer", "as a Pipeline step", "skl2onnx", "source:")


def test_custom_transformer_class_is_refused_with_skl2onnx_then_source_slot(tmp_path):
    message = _message(pipeline.make_pipeline(Doubler(), lm.Ridge()), tmp_path)
    assert "Pipeline step 'doubler' (tests.test_sklearn_refusals.Doubler)" in message
    assert _in_order(message, "Doubler", "skl2onnx", "`source: predict.py` slot")


def test_unknown_estimator_is_refused_naming_its_class(tmp_path):
    message = _message(neighbors.KNeighborsRegressor(), tmp_path)
    assert message.startswith("not supported yet: scikit-learn estimator ")
    assert "KNeighborsRegressor" in message
    assert _in_order(message, "KNeighborsRegressor", "skl2onnx", "source:")


def test_unknown_final_estimator_of_a_pipeline_is_refused(tmp_path):
    est = pipeline.make_pipeline(pre.StandardScaler(), neighbors.KNeighborsRegressor())
    message = _message(est, tmp_path)
    assert "Pipeline step 'kneighborsregressor'" in message


def test_stacking_regressor_suggests_voting_regressor_first(tmp_path):
    ensemble = pytest.importorskip("sklearn.ensemble")
    est = ensemble.StackingRegressor([("a", lm.Ridge()), ("b", lm.Lasso())], cv=2)
    message = _message(est, tmp_path)
    assert _in_order(message, "StackingRegressor", "VotingRegressor", "skl2onnx", "source:")


class Custom(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        return np.zeros(len(X))


def test_custom_estimator_inside_voting_regressor_is_refused_naming_the_member(tmp_path):
    ensemble = pytest.importorskip("sklearn.ensemble")
    est = ensemble.VotingRegressor([("mine", Custom()), ("r", lm.Ridge())])
    message = _message(est, tmp_path)
    assert "Custom" in message and "VotingRegressor member 'mine'" in message


def test_nmr_build_refuses_the_step_in_one_line_naming_the_config_place(tmp_path):
    import joblib
    import pandas as pd
    from typer.testing import CliRunner

    from builder.cli import app
    from tests.buildkit import write_config, write_data

    sets = write_data(tmp_path)
    train = pd.read_parquet(tmp_path / "data" / "train.parquet")
    est = pipeline.make_pipeline(pre.FunctionTransformer(np.log1p), lm.Ridge())
    est.fit(train[sets["small"]].fillna(0), train["target"])
    (tmp_path / "artifacts").mkdir()
    joblib.dump(est, tmp_path / "artifacts" / "logs.joblib")
    write_config(tmp_path, "logs:\n  artifact: artifacts/logs.joblib\n  features: small\n")
    done = CliRunner().invoke(app, ["build", "-f", str(tmp_path / "numerai.yaml")])
    assert done.exit_code == 1
    lines = done.output.strip().splitlines()
    # one located line for the slot, then the build's summary of failed slots
    assert len(lines) == 2 and lines[1] == "error: 1 of 1 slot(s) failed to build: logs", (
        done.output
    )
    assert "numerai.yaml:" in lines[0] and "models.logs.artifact:" in lines[0]
    assert "Pipeline step 'functiontransformer'" in lines[0]
    assert "Traceback" not in done.output


def test_a_pickle_of_a_class_from_the_saving_script_is_refused_naming_the_way_out(tmp_path):
    import subprocess
    import sys

    from builder.artifacts import sklearn as sk_reader
    from builder.errors import ArtifactError

    script = (
        "import joblib, numpy as np\n"
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "from sklearn.linear_model import Ridge\n"
        "from sklearn.pipeline import make_pipeline\n"
        "class Mine(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None): return self\n"
        "    def transform(self, X): return X\n"
        "X = np.arange(20.0).reshape(10, 2)\n"
        "joblib.dump(make_pipeline(Mine(), Ridge()).fit(X, X[:, 0]), 'm.joblib')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    with pytest.raises(ArtifactError, match=r"defined in the script .*`source:` slot"):
        sk_reader.read(tmp_path / "m.joblib", ["a", "b"])
