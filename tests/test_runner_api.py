"""run_pickle: statuses, limits, log format and result fields, in the real runtime venv."""

from __future__ import annotations

import pandas as pd
import pytest

from builder.runner import ERROR, SUCCESS, Limits, run_pickle
from tests.bad_pickles import support

REPORTS_CPUS = """
import os
import sys


def predict(live_features, live_benchmark_models):
    print(f"cpus={len(os.sched_getaffinity(0))}", file=sys.stderr)
    return live_features["feature_0000"].rank(pct=True).to_frame("prediction")


MODEL = predict
"""

USES_BENCHMARK = """
def predict(live_features, live_benchmark_models):
    return live_benchmark_models.reindex(live_features.index)[["my_benchmark"]].rename(
        columns={"my_benchmark": "prediction"}
    )


MODEL = predict
"""


# run_pickle's scratch directories go to pytest's tmp tree (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("scratch_in_tmp")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    return support.write_live(tmp_path_factory.mktemp("live") / "live.parquet")


@pytest.fixture(scope="module")
def pickles(python, tmp_path_factory):
    sources = {
        "good": support.corpus_source("good_two_args"),
        "cpus": REPORTS_CPUS,
        "benchmark": USES_BENCHMARK,
        "none": support.corpus_source("returns_none"),
    }
    return support.make_pickles(python, sources, tmp_path_factory.mktemp("pickles"))


def test_statuses_are_reported_in_order_as_the_run_reaches_them(pickles, python, live):
    seen = []
    result = run_pickle(pickles["good"], python, live, on_status=seen.append)
    assert seen == ["Pending", "Running", "Validating", "Success"]
    assert result.statuses == seen


def test_a_failed_run_stops_before_validating(pickles, python, live):
    result = run_pickle(pickles["none"], python, live)
    assert result.statuses == ["Pending", "Running", "Failed"]


def test_the_log_starts_like_numerai_predict_with_the_image_ref(pickles, python, live):
    result = run_pickle(pickles["good"], python, live, git_ref="a78dedd")
    lines = result.log.splitlines()
    assert lines[0] == "INFO:root:Running numerai-predict:a78dedd - Python 3.12"
    assert lines[1] == f"INFO:root:Loading model {pickles['good'].resolve()}"
    assert lines[2] == f"INFO:root:Using local {live.resolve()} for live data"
    assert "INFO:root:Predicting on 200 rows of live features" in lines
    assert "INFO:root:Generated 200 predictions" in lines
    assert lines[-1].startswith("INFO:root:Saving predictions to ")


def test_debug_adds_the_model_repr_at_debug_level(pickles, python, live):
    result = run_pickle(pickles["good"], python, live, debug=True)
    assert result.status == SUCCESS
    assert "DEBUG:root:<function predict at " in result.log


def test_the_child_sees_one_cpu_by_default(pickles, python, live):
    result = run_pickle(pickles["cpus"], python, live)
    assert result.status == SUCCESS, result.log
    assert "cpus=1" in result.log


def test_cpu_pinning_can_be_turned_off(pickles, python, live):
    import os

    result = run_pickle(pickles["cpus"], python, live, limits=Limits(cpus=None))
    assert f"cpus={len(os.sched_getaffinity(0))}" in result.log


def test_predictions_land_in_the_output_dir_with_the_live_ids(pickles, python, live, tmp_path):
    result = run_pickle(pickles["good"], python, live, output_dir=tmp_path / "out")
    assert result.predictions_path.parent == tmp_path / "out"
    assert result.predictions_path.name.startswith("live_predictions-")
    written = pd.read_csv(result.predictions_path)
    assert list(written.columns) == ["id", "prediction"]
    assert list(written["id"]) == support.live_ids(live)


def test_given_benchmarks_are_passed_to_a_two_argument_pickle(pickles, python, live, tmp_path):
    ids = support.live_ids(live)
    bench = pd.DataFrame(
        {"my_benchmark": [(i + 0.5) / len(ids) for i in range(len(ids))]},
        index=pd.Index(ids, name="id"),
    )
    bench_path = tmp_path / "bench.parquet"
    bench.to_parquet(bench_path)
    result = run_pickle(pickles["benchmark"], python, live, benchmarks_path=bench_path)
    assert result.status == SUCCESS, result.log
    written = pd.read_csv(result.predictions_path, index_col="id")
    assert written["prediction"].tolist() == pytest.approx(bench["my_benchmark"].tolist())


def test_wall_time_and_peak_rss_are_measured(pickles, python, live):
    result = run_pickle(pickles["good"], python, live)
    assert 0 < result.wall_time_s < 30
    assert 30 < result.peak_rss_mb < 1000  # python + pandas + pyarrow are tens of MB


def test_a_missing_pickle_is_an_error_not_a_failure(python, live, tmp_path):
    result = run_pickle(tmp_path / "nope.pkl", python, live)
    assert result.status == ERROR
    assert result.statuses == ["Pending", "Error"]
    assert result.reason == f"pickle not found: {tmp_path / 'nope.pkl'}"


def test_a_missing_interpreter_is_an_error(pickles, live, tmp_path):
    result = run_pickle(pickles["good"], tmp_path / "python3", live)
    assert result.status == ERROR
    assert result.reason.startswith("python interpreter not found")


def test_missing_live_data_is_an_error(pickles, python, tmp_path):
    result = run_pickle(pickles["good"], python, tmp_path / "live.parquet")
    assert result.status == ERROR
    assert result.reason == f"live data not found: {tmp_path / 'live.parquet'}"


def test_defaults_are_production_limits():
    limits = Limits()
    assert (limits.cpus, limits.memory_mb, limits.timeout_s, limits.network) == (
        1,
        4096,
        600.0,
        False,
    )


def test_result_serializes_to_plain_json(pickles, python, live):
    import json

    result = run_pickle(pickles["good"], python, live)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["status"] == "Success"
    assert data["rows"] == 200


def test_an_interpreter_that_cannot_be_executed_is_an_error(pickles, live, tmp_path):
    fake = tmp_path / "python3"
    fake.write_bytes(b"\x00\x01 not an executable format")
    fake.chmod(0o755)
    result = run_pickle(pickles["good"], fake, live, limits=Limits(network=True))
    assert result.status == ERROR
    assert result.statuses == ["Pending", "Running", "Error"]
    assert result.reason.startswith(f"could not start {fake}: [Errno 8] Exec format error")


def test_an_unexecutable_interpreter_is_an_error_inside_the_network_namespace_too(
    pickles, live, tmp_path
):
    fake = tmp_path / "python3"
    fake.write_bytes(b"\x00\x01 not an executable format")
    fake.chmod(0o755)
    result = run_pickle(pickles["good"], fake, live)
    assert result.status == ERROR
    assert result.reason.startswith(f"could not start {fake}")
