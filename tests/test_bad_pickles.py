"""Each deliberately broken pickle fails in the emulated container with Numerai's exact words.

Pickles are made inside the runtime's Python 3.12 venv (numpy, pandas, cloudpickle, pyarrow at
the image's pins) and run there by ``run_pickle``, with short limits where a limit is the point.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from builder.runner import (
    FAILED,
    SEGFAULT_MESSAGE,
    SUCCESS,
    Limits,
    run_pickle,
)
from tests.bad_pickles import support

HELP_BLOCK = """
--------------------------------------------------------------------------------
Debug your pickle model locally via docker command:

    docker run -i --rm -v "$PWD:$PWD" ghcr.io/numerai/numerai_predict_py_3_12:a78dedd --debug --model $PWD/[PICKLE_FILE]

Try our other support resources:
    [Github]  https://github.com/numerai/numerai-predict
    [Discord] https://discord.com/channels/894652647515226152/1089652477957246996
--------------------------------------------------------------------------------
"""

FAST = Limits(timeout_s=60)

CORPUS = [
    "returns_none",
    "returns_series",
    "zero_rows",
    "nan_prediction",
    "out_of_range",
    "plus_inf",
    "zero_args",
    "three_args",
    "not_callable",
    "raises_inside",
    "imports_lightgbm_at_load",
    "imports_lightgbm_at_call",
    "sleeps",
    "allocates",
    "segfaults",
    "duplicate_ids",
    "constant",
    "missing_ids",
    "no_id_index",
    "not_a_pickle",
    "empty_file",
    "type_error_at_load",
    "good_one_arg",
    "default_second_arg",
    "star_args",
    "callable_instance",
    "good_two_args",
]


# run_pickle's scratch directories go to pytest's tmp tree (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("scratch_in_tmp")


@pytest.fixture(scope="module")
def corpus(python, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    sources = {name: support.corpus_source(name) for name in CORPUS}
    return support.make_pickles(python, sources, out)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    return support.write_live(tmp_path_factory.mktemp("live") / "live.parquet")


def run(corpus, name, python, live, limits=FAST):
    # each run writes its CSV next to its pickle, in pytest's temporary tree
    output_dir = corpus[name].parent / f"out-{name}-{limits.memory_mb}-{limits.timeout_s}"
    return run_pickle(corpus[name], python, live, limits=limits, output_dir=output_dir)


def assert_predict_py_failure(result, message):
    """predict.py's own failure: exit 1, the ERROR line, then the help block."""
    assert result.status == FAILED
    assert result.exit_code == 1
    assert result.reason == message
    assert f"ERROR:root:{message}\n" in result.log
    assert result.log.endswith(HELP_BLOCK)


def test_returning_none_fails_with_returned_none(corpus, python, live):
    result = run(corpus, "returns_none", python, live)
    assert_predict_py_failure(result, "Pickle function is invalid - returned None")


def test_returning_a_series_fails_naming_the_series_type(corpus, python, live):
    result = run(corpus, "returns_series", python, live)
    assert_predict_py_failure(
        result,
        "Pickle function is invalid - returned <class 'pandas.core.series.Series'> "
        "instead of pd.DataFrame",
    )


def test_returning_zero_rows_fails_with_0_predictions(corpus, python, live):
    result = run(corpus, "zero_rows", python, live)
    assert_predict_py_failure(result, "Pickle function returned 0 predictions")


def test_a_nan_prediction_fails(corpus, python, live):
    result = run(corpus, "nan_prediction", python, live)
    assert_predict_py_failure(result, "Pickle function returned at least 1 NaN prediction")


def test_values_outside_0_1_fail_the_range_check(corpus, python, live):
    result = run(corpus, "out_of_range", python, live)
    assert_predict_py_failure(
        result, "Pickle function returned invalid predictions. Ensure values are between 0 and 1."
    )


def test_plus_inf_passes_the_nan_check_but_fails_the_range_check(corpus, python, live):
    result = run(corpus, "plus_inf", python, live)
    assert_predict_py_failure(
        result, "Pickle function returned invalid predictions. Ensure values are between 0 and 1."
    )


def test_zero_arguments_are_rejected_without_loading_benchmarks(corpus, python, live):
    result = run(corpus, "zero_args", python, live)
    assert_predict_py_failure(
        result, f"Invalid pickle function - {corpus['zero_args']} must have 1 or 2 arguments"
    )
    assert "live_benchmark_models.parquet" not in result.log


def test_three_arguments_are_rejected_after_loading_benchmarks(corpus, python, live):
    result = run(corpus, "three_args", python, live)
    assert_predict_py_failure(
        result, f"Invalid pickle function - {corpus['three_args']} must have 1 or 2 arguments"
    )
    assert "Loading live features " in result.log
    assert "live_benchmark_models.parquet" in result.log


def test_a_non_callable_pickle_dies_with_a_bare_traceback_and_no_help(corpus, python, live):
    result = run(corpus, "not_callable", python, live)
    assert result.status == FAILED
    assert result.exit_code == 1
    assert result.reason == "TypeError: {'weights': [0.5, 0.25]} is not a callable object"
    assert "Traceback (most recent call last):" in result.log
    assert "Debug your pickle model locally" not in result.log


def test_an_exception_inside_predict_is_logged_with_its_traceback(corpus, python, live):
    result = run(corpus, "raises_inside", python, live)
    assert result.status == FAILED
    assert result.exit_code == 1
    assert result.reason == "ValueError: feature_9999 is not in live_features"
    assert "ERROR:root:feature_9999 is not in live_features\nTraceback" in result.log
    assert result.log.endswith(HELP_BLOCK)


def test_a_pickle_naming_lightgbm_fails_to_load_in_a_numpy_only_runtime(corpus, python, live):
    result = run(corpus, "imports_lightgbm_at_load", python, live)
    assert_predict_py_failure(result, "Import error reading pickle - No module named 'lightgbm'")


def test_importing_lightgbm_inside_predict_fails_at_call_time(corpus, python, live):
    result = run(corpus, "imports_lightgbm_at_call", python, live)
    assert result.status == FAILED
    assert result.exit_code == 1
    assert result.reason == "ModuleNotFoundError: No module named 'lightgbm'"


def test_sleeping_past_the_wall_limit_is_a_timeout(corpus, python, live):
    result = run(corpus, "sleeps", python, live, Limits(timeout_s=2))
    assert result.status == FAILED
    assert result.reason == "Timeout"
    assert result.exit_code == 137
    assert 2 <= result.wall_time_s < 10


def test_allocating_past_the_memory_limit_is_out_of_memory(corpus, python, live):
    # the resident-set watchdog kills it (address-space backstop far away)
    limits = Limits(timeout_s=60, memory_mb=400, address_space_headroom_mb=16384)
    result = run(corpus, "allocates", python, live, limits)
    assert result.status == FAILED
    assert result.reason == "Out of memory"
    assert result.exit_code == 137
    assert result.peak_rss_mb > 400


def test_an_allocation_beyond_the_address_space_backstop_is_out_of_memory(corpus, python, live):
    # 1.5 GB at once cannot be mapped under 400 MB + 300 MB of address space: MemoryError
    limits = Limits(timeout_s=60, memory_mb=400, address_space_headroom_mb=600)
    result = run(corpus, "allocates", python, live, limits)
    assert result.status == FAILED
    assert result.reason == "Out of memory"
    assert result.exit_code == 1
    assert "MemoryError" in result.log


def test_a_segfault_is_reported_as_numerai_reports_it(corpus, python, live):
    result = run(corpus, "segfaults", python, live)
    assert result.status == FAILED
    assert result.reason == SEGFAULT_MESSAGE
    assert result.signal == "SIGSEGV"
    assert result.exit_code == 139


def test_a_pickle_made_by_another_python_minor_crashes_like_in_production(python, live, tmp_path):
    if support.this_python_minor() == "3.12":
        pytest.skip("the test process must run a Python other than the runtime's 3.12")
    source = support.corpus_source("good_two_args")
    pickle_path = support.make_pickle_here(source, tmp_path / "other_python.pkl")
    result = run_pickle(pickle_path, python, live, limits=FAST)
    assert result.status == FAILED
    if support.this_python_minor() == "3.11":
        # 3.11 code objects load in 3.12 (same constructor) and crash when run
        assert result.reason == SEGFAULT_MESSAGE
    else:
        # other minors' code objects do not even construct: TypeError while unpickling
        assert result.reason in (SEGFAULT_MESSAGE, "Pickle incompatible with 3.12")


def test_duplicate_ids_pass_predict_py_but_fail_the_submission_check(corpus, python, live):
    result = run(corpus, "duplicate_ids", python, live)
    assert result.status == FAILED
    assert result.exit_code == 0
    assert "Validating" in result.statuses
    assert result.reason == "invalid_submission_ids: Duplicates detected in id for live period."


def test_constant_predictions_fail_the_non_zero_std_check(corpus, python, live):
    result = run(corpus, "constant", python, live)
    assert result.status == FAILED
    assert result.exit_code == 0
    assert result.reason == (
        "invalid_submission_values: submission must have non-zero standard deviation"
    )


def test_missing_ids_fail_the_submission_check(corpus, python, live):
    result = run(corpus, "missing_ids", python, live)
    assert result.status == FAILED
    assert result.exit_code == 0
    assert result.reason == (
        "invalid_submission_ids: Not enough stocks submitted. Are you using the latest live ids "
        "or live universe? (100 of 200 live ids missing)"
    )


def test_a_frame_without_the_id_index_fails_the_header_check(corpus, python, live):
    result = run(corpus, "no_id_index", python, live)
    assert result.status == FAILED
    assert result.exit_code == 0
    assert result.reason.startswith("invalid_submission_headers: headers must be one of ['id']")


def test_bytes_that_are_not_a_pickle_are_an_invalid_pickle(corpus, python, live):
    result = run(corpus, "not_a_pickle", python, live)
    assert_predict_py_failure(result, "Invalid pickle - invalid load key, 'n'.")


def test_an_empty_file_dies_with_an_uncaught_eoferror(corpus, python, live):
    result = run(corpus, "empty_file", python, live)
    assert result.status == FAILED
    assert result.exit_code == 1
    assert result.reason == "EOFError: Ran out of input"
    assert "Debug your pickle model locally" not in result.log


def test_a_type_error_while_loading_is_reported_as_python_incompatibility(corpus, python, live):
    result = run(corpus, "type_error_at_load", python, live)
    assert_predict_py_failure(result, "Pickle incompatible with 3.12")


def test_a_one_argument_pickle_runs_without_benchmarks(corpus, python, live):
    result = run(corpus, "good_one_arg", python, live)
    assert result.status == SUCCESS, result.log
    assert result.rows == 200
    assert "live_benchmark_models.parquet" not in result.log


def test_a_two_argument_pickle_receives_the_benchmarks(corpus, python, live):
    result = run(corpus, "good_two_args", python, live)
    assert result.status == SUCCESS, result.log
    assert result.statuses == ["Pending", "Running", "Validating", "Success"]
    assert result.rows == 200
    assert result.predictions_path.read_text().startswith("id,prediction\n")


@pytest.mark.parametrize(
    "name, benchmarks_loaded",
    [("default_second_arg", True), ("star_args", False), ("callable_instance", False)],
)
def test_parameters_are_counted_as_inspect_signature_counts_them(
    corpus, python, live, name, benchmarks_loaded
):
    result = run(corpus, name, python, live)
    assert result.status == SUCCESS, result.log
    assert ("live_benchmark_models.parquet" in result.log) == benchmarks_loaded


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802  (http.server's naming)
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    _Recorder.hits = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_opening_a_socket_fails_without_network(python, live, tmp_path, http_server):
    port = http_server.server_address[1]
    source = support.corpus_source("opens_socket", PORT=port)
    pickles = support.make_pickles(python, {"opens_socket": source}, tmp_path)
    result = run_pickle(pickles["opens_socket"], python, live, limits=FAST)
    assert result.status == FAILED
    assert result.reason == "OSError: [Errno 101] Network is unreachable"
    assert _Recorder.hits == []


def test_the_same_socket_pickle_reaches_the_server_when_network_is_allowed(
    python, live, tmp_path, http_server
):
    port = http_server.server_address[1]
    source = support.corpus_source("opens_socket", PORT=port)
    pickles = support.make_pickles(python, {"opens_socket": source}, tmp_path)
    result = run_pickle(pickles["opens_socket"], python, live, limits=Limits(network=True))
    assert result.status == SUCCESS, result.log
    assert _Recorder.hits == ["/exfiltrate"]


def test_without_unshare_sockets_are_blocked_inside_the_child(
    python, live, tmp_path, http_server, monkeypatch
):
    from builder.runner import limits as runner_limits

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `unshare` on PATH: the fallback path
    runner_limits._unshare_works.cache_clear()
    try:
        port = http_server.server_address[1]
        source = support.corpus_source("opens_socket", PORT=port)
        pickles = support.make_pickles(python, {"opens_socket": source}, tmp_path)
        result = run_pickle(pickles["opens_socket"], python, live, limits=FAST)
    finally:
        runner_limits._unshare_works.cache_clear()
    assert result.network_isolation == "socket-block"
    assert result.status == FAILED
    assert result.reason == "OSError: [Errno 101] Network is unreachable"
    assert _Recorder.hits == []
