"""The wrapper a `source:` slot ships when it has postprocessing: the user's function is called
by its own arity, its output becomes one value per live row (aligned on the live ids), and the
slot's steps run on that vector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from builder.kernels.source import SourcePredict1, SourcePredict2, prediction_values
from builder.kernels.steps import RankPerEra

INDEX = pd.Index(["n1", "n2", "n3"], name="id")
LIVE = pd.DataFrame({"era": "0001", "feature_a": [0, 4, 2]}, index=INDEX)


def test_series_output_is_aligned_on_the_live_ids():
    out = pd.Series([3.0, 1.0, 2.0], index=["n3", "n1", "n2"])
    assert prediction_values(out, INDEX).tolist() == [1.0, 2.0, 3.0]


def test_prediction_column_is_taken_from_a_wider_frame():
    out = pd.DataFrame({"other": [9, 9, 9], "prediction": [0.1, 0.2, 0.3]}, index=INDEX)
    assert prediction_values(out, INDEX).tolist() == [0.1, 0.2, 0.3]


def test_array_output_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="returned 2 values for 3 live rows"):
        prediction_values(np.array([0.1, 0.2]), INDEX)


def test_series_missing_a_live_id_is_refused_naming_it():
    with pytest.raises(ValueError, match="no prediction for id 'n3'"):
        prediction_values(pd.Series([0.1, 0.2], index=["n1", "n2"]), INDEX)


def test_several_unnamed_columns_are_refused():
    with pytest.raises(ValueError, match="returned 2 columns"):
        prediction_values(pd.DataFrame({"a": [1, 2, 3], "b": [1, 2, 3]}, index=INDEX), INDEX)


def test_wrapper_calls_a_one_argument_function_with_live_features_only():
    seen = []

    def predict(live_features):
        seen.append(len(live_features))
        return live_features["feature_a"].astype(float)

    out = SourcePredict2(predict, [RankPerEra()], {})(LIVE, pd.DataFrame(index=INDEX))
    assert seen == [3]
    assert out["prediction"].tolist() == [pytest.approx(1 / 3), 1.0, pytest.approx(2 / 3)]


def test_wrapper_passes_benchmarks_to_a_two_argument_function():
    def predict(live_features, live_benchmark_models):
        return live_benchmark_models["bench"]

    bench = pd.DataFrame({"bench": [0.3, 0.1, 0.2]}, index=INDEX)
    out = SourcePredict2(predict, [], {})(LIVE, bench)
    assert out["prediction"].tolist() == [0.3, 0.1, 0.2]


def test_legacy_wrapper_takes_one_argument():
    import inspect

    wrapper = SourcePredict1(lambda live: live["feature_a"], [], {})
    assert len(inspect.signature(wrapper).parameters) == 1
    assert wrapper(LIVE)["prediction"].tolist() == [0.0, 4.0, 2.0]
