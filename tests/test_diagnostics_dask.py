"""`nmr test --dask`: the validation tasks on a Dask LocalCluster of runtime-Python workers give
the same predictions and per-era metrics as the local pool, even when a worker dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.diagnostics import run_validation
from tests import synthdata
from tests.bad_pickles import support

pytestmark = pytest.mark.slow

# Ranks within what it is given (so it is right only on whole eras); slow enough that a worker
# can be killed while tasks are still running.
SLOW_RANKS = """
import os
import time


def predict(live_features):
    assert live_features["era"].nunique() == 1, "one era per call"
    if os.environ.get("NMR_TEST_RUNNING"):  # tells the test which process is predicting
        with open(os.environ["NMR_TEST_RUNNING"], "a") as handle:
            handle.write(f"{os.getpid()}\\n")
    time.sleep(SLEEP)
    score = live_features["feature_0000"] * 10 + live_features["feature_0001"]
    return score.rank(pct=True).to_frame("prediction")


SLEEP = 0
MODEL = predict
"""


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    """8 eras x 60 rows in row groups of 50 (eras straddle row groups)."""
    root = tmp_path_factory.mktemp("dask-validation")
    frames = []
    for e in range(8):
        X, y = synthdata.numerai_like(60, 4, seed=30 + e)
        frame = synthdata.numerai_frame(X, era=f"{575 + e:04d}")
        frame.index = pd.Index([f"e{e}_{i}" for i in range(60)], name="id")
        frame["target"] = y
        frames.append(frame)
    path = root / "validation.parquet"
    pq.write_table(pa.Table.from_pandas(pd.concat(frames)), path, row_group_size=50)
    return path


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    sources = {"fast": SLOW_RANKS, "slow": SLOW_RANKS.replace("SLEEP = 0", "SLEEP = 1.5")}
    return support.make_pickles(support.runtime_python(), sources, tmp_path_factory.mktemp("p"))


@pytest.fixture(scope="module")
def local_run(validation, pickles, tmp_path_factory):
    out = tmp_path_factory.mktemp("jobs1")
    return run_validation(
        pickles["fast"], support.runtime_python(), validation, out_dir=out, jobs=1, task_rows=120
    )


def test_dask_local_gives_the_same_predictions_and_metrics_as_jobs_1(
    validation, pickles, local_run, tmp_path
):
    report = run_validation(
        pickles["fast"],
        support.runtime_python(),
        validation,
        out_dir=tmp_path,
        jobs=2,
        task_rows=120,
        dask="local",
    )
    assert report.predictions_path.read_bytes() == local_run.predictions_path.read_bytes()
    pd.testing.assert_frame_equal(report.per_era, local_run.per_era)


def test_a_worker_killed_mid_run_costs_a_retry_never_a_wrong_or_missing_era(
    validation, pickles, local_run, tmp_path, monkeypatch
):
    running = tmp_path / "running.txt"
    monkeypatch.setenv("NMR_TEST_RUNNING", str(running))
    killed: list[int] = []
    finished = threading.Event()

    def kill_a_worker():
        # the first process to predict an era is a Dask worker in the middle of a task
        while not finished.is_set():
            if running.exists() and running.read_text().strip():
                pid = int(running.read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    try:
        report = run_validation(
            pickles["slow"],
            support.runtime_python(),
            validation,
            out_dir=tmp_path / "out",
            jobs=2,
            task_rows=120,  # 4 tasks of 2 eras, 1.5 s per era
            dask="local",
        )
    finally:
        finished.set()
        killer.join()
    assert killed, "the run ended before a worker could be killed"
    assert len(running.read_text().split()) > 8  # the killed task's eras were predicted again
    assert report.predictions_path.read_bytes() == local_run.predictions_path.read_bytes()
    pd.testing.assert_frame_equal(report.per_era, local_run.per_era)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            children.setdefault(_parent(int(entry)), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def test_worker_env_command_starts_the_runtimes_python_with_the_pinned_distributed():
    import shlex
    import subprocess

    from builder.diagnostics.dask_pool import DISTRIBUTED_VERSION
    from tests.buildkit import nmr_cli

    done = nmr_cli("dask", "worker-env", "--scheduler", "tcp://10.1.2.3:8786")
    assert done.exit_code == 0, done.output
    command = done.output.strip().splitlines()[-1].split()
    assert command[-3:] == ["tcp://10.1.2.3:8786", "--nthreads", "1"]
    variable, python = command[0], command[1]
    assert python == support.runtime_python()
    env = {**os.environ, "PYTHONPATH": variable.split("=", 1)[1]}
    probe = "import distributed, sys; print(distributed.__version__, sys.version_info[:2])"
    out = subprocess.run(shlex.split(f"{python} -c '{probe}'"), env=env, capture_output=True)
    assert out.stdout.decode().split()[0] == DISTRIBUTED_VERSION, out.stderr
