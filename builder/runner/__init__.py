"""Run a pickle the way Numerai's numerai-predict container does, under its limits.

``run_pickle`` starts the runtime venv's python on our re-implementation of predict.py
(``predict_child.py``, copied to a scratch directory as ``predict.py``), with the production
limits (``limits.Limits``), then applies Numerai's server-side submission checks
(``submission.py``) to the CSV it wrote. The result mirrors what Numerai's UI shows: a status
sequence Pending -> Running -> Validating -> Success, or Failed / Error.

* Failed: the pickle ran and did something Numerai rejects (exit 1 from predict.py, a crash
  by signal, out of memory, timeout, or a CSV that fails the submission checks).
* Error: the emulation itself could not run the pickle (no such file, interpreter or live
  data); nothing was learned about the pickle.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from builder.runner.limits import MIB, Limits, child_env, network_isolation, tree_rss_bytes
from builder.runner.limits import wrap_command as _wrap_command

if TYPE_CHECKING:  # submission imports pandas; the CLI imports this module at start-up
    from builder.runner.submission import SubmissionCheck

__all__ = [
    "Limits",
    "RunResult",
    "run_pickle",
    "read_ids",
    "PENDING",
    "RUNNING",
    "VALIDATING",
    "SUCCESS",
    "FAILED",
    "ERROR",
    "SEGFAULT_MESSAGE",
]

PENDING, RUNNING, VALIDATING = "Pending", "Running", "Validating"
SUCCESS, FAILED, ERROR = "Success", "Failed", "Error"

# Not printed by predict.py: Numerai's orchestrator puts this in the trigger status
# description when the container dies by signal (numerai/example-scripts SKILL.md).
SEGFAULT_MESSAGE = "Segmentation fault! Ensure python and library versions match our environment."
OUT_OF_MEMORY = "Out of memory"
TIMEOUT = "Timeout"

# image a78dedd sets GIT_REF at build time; predict.py prints it in its first log line
DEFAULT_GIT_REF = "a78dedd"

_CHILD_SCRIPT = Path(__file__).with_name("predict_child.py")


@dataclass
class RunResult:
    status: str  # Success | Failed | Error
    statuses: list[str]  # every status the run went through, in order
    exit_code: int | None  # container-style: 128 + signal number for a signal death
    log: str  # predict.py's stdout+stderr
    wall_time_s: float
    peak_rss_mb: float | None
    rows: int | None  # rows in the predictions CSV
    predictions_path: Path | None
    reason: str | None  # one line: why it failed ("" / None on success)
    pickle_path: Path
    python: str
    network_isolation: str  # "namespace" | "socket-block" | "allowed"
    signal: str | None = None  # e.g. "SIGSEGV" when the child died by signal
    notes: list[str] = field(default_factory=list)  # e.g. extra ids ignored, synthesized data
    submission: SubmissionCheck | None = None

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    def to_dict(self) -> dict:
        data = asdict(self)
        data["pickle_path"] = str(self.pickle_path)
        data["predictions_path"] = str(self.predictions_path) if self.predictions_path else None
        return data


def run_pickle(
    pickle_path,
    python,
    live_path,
    benchmarks_path=None,
    limits: Limits = Limits(),
    output_dir=None,
    debug: bool = False,
    git_ref: str = DEFAULT_GIT_REF,
    on_status: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``pickle_path`` with interpreter ``python`` on the live parquet ``live_path``.

    ``benchmarks_path`` None: a benchmark-models parquet is synthesized for the live ids (a
    2-argument pickle needs one; the container would download it). ``output_dir`` None: a
    fresh temporary directory (kept: it holds the predictions CSV). ``on_status`` is called
    with each status as the run reaches it.
    """
    pickle_path = Path(pickle_path)
    statuses: list[str] = []

    def advance(status: str) -> None:
        statuses.append(status)
        if on_status is not None:
            on_status(status)

    isolation = "allowed" if limits.network else network_isolation()

    def early_error(reason: str) -> RunResult:
        advance(ERROR)
        return RunResult(
            ERROR, statuses, None, "", 0.0, None, None, None, reason, pickle_path, str(python),
            isolation,
        )  # fmt: skip

    advance(PENDING)
    if not pickle_path.is_file():
        return early_error(f"pickle not found: {pickle_path}")
    if not (Path(python).is_file() and os.access(python, os.X_OK)):
        return early_error(f"python interpreter not found: {python}")
    live_path = Path(live_path)
    if not live_path.is_file():
        return early_error(f"live data not found: {live_path}")

    try:
        live_ids = read_ids(live_path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        return early_error(f"live data unreadable: {live_path}: {error}")

    work = Path(tempfile.mkdtemp(prefix="nmr-run-"))
    output = Path(output_dir) if output_dir is not None else work / "output"
    output.mkdir(parents=True, exist_ok=True)
    try:
        return _run_in(
            work, output, pickle_path, python, live_path, live_ids, benchmarks_path, limits,
            debug, git_ref, isolation, statuses, advance, early_error,
        )  # fmt: skip
    finally:
        # keep only the output directory (it may live inside ``work``)
        for item in work.iterdir():
            if item != output:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        if output_dir is not None:
            work.rmdir()


def _run_in(
    work, output, pickle_path, python, live_path, live_ids, benchmarks_path, limits, debug,
    git_ref, isolation, statuses, advance, early_error,
) -> RunResult:  # fmt: skip
    script = work / "predict.py"
    shutil.copyfile(_CHILD_SCRIPT, script)

    notes: list[str] = []
    if benchmarks_path is None:
        benchmarks_path = work / "live_benchmark_models.parquet"
        _synthesize_benchmarks(live_ids, benchmarks_path)
        notes.append("benchmark models synthesized for the live ids (none given)")
    benchmarks_path = Path(benchmarks_path)

    argv = [
        str(python),
        str(script),
        "--model",
        str(pickle_path.resolve()),
        "--dataset",
        str(live_path.resolve()),
        "--benchmarks",
        str(benchmarks_path.resolve()),
        "--output_dir",
        str(output.resolve()),
    ]
    if debug:
        argv.append("--debug")
    argv, extra_env = _wrap_command(argv, limits)
    env = _child_env(git_ref, {**extra_env, **child_env(limits)})

    advance(RUNNING)
    log_path = work / "predict.log"
    try:
        outcome = _supervise(argv, env, work, log_path, limits)
    except OSError as error:  # the interpreter could not be started at all
        return early_error(f"could not start {python}: {error}")
    log = log_path.read_text(errors="replace")
    if outcome.returncode in (126, 127) and "Running numerai-predict" not in log:
        # 126/127 before predict.py's banner: unshare (or the shell it falls back to) could
        # not execute the interpreter, so nothing of the pickle ran
        detail = log.strip().splitlines()[-1] if log.strip() else f"exit {outcome.returncode}"
        return early_error(f"could not start {python}: {detail}")

    exit_code, sig_name, reason = _classify(outcome, log)
    result = RunResult(
        FAILED,
        statuses,
        exit_code,
        log,
        outcome.wall_time_s,
        outcome.peak_rss_bytes / MIB if outcome.peak_rss_bytes else None,
        None,
        None,
        reason,
        pickle_path,
        str(python),
        isolation,
        sig_name,
        notes,
    )
    if exit_code != 0:
        advance(FAILED)
        return result

    advance(VALIDATING)
    csvs = sorted(output.glob("live_predictions-*.csv"), key=lambda p: p.stat().st_mtime)
    if not csvs:
        result.reason = "predict.py exited 0 but wrote no live_predictions-*.csv"
        advance(FAILED)
        return result
    result.predictions_path = csvs[-1]
    from builder.runner.submission import validate_submission_csv

    check = validate_submission_csv(result.predictions_path, live_ids)
    result.submission = check
    result.rows = check.rows
    if check.extra_ids:
        notes.append(f"{len(check.extra_ids)} ids not in the live data are ignored by Numerai")
    if not check.ok:
        result.reason = check.message
        advance(FAILED)
        return result
    result.status = SUCCESS
    result.reason = None
    advance(SUCCESS)
    return result


@dataclass
class _Outcome:
    returncode: int
    wall_time_s: float
    peak_rss_bytes: int
    killed_for: str | None  # TIMEOUT | OUT_OF_MEMORY | None


def _supervise(argv, env, cwd: Path, log_path: Path, limits: Limits) -> _Outcome:
    """Run the child, sampling memory and the clock; kill its process group past a limit."""
    memory_limit = limits.memory_mb * MIB if limits.memory_mb is not None else None
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    peak = 0
    killed_for = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        elapsed = time.monotonic() - started
        rss = tree_rss_bytes(proc.pid)
        peak = max(peak, rss)
        if killed_for is None:
            if memory_limit is not None and rss > memory_limit:
                killed_for = OUT_OF_MEMORY
            elif limits.timeout_s is not None and elapsed > limits.timeout_s:
                killed_for = TIMEOUT
            if killed_for is not None:
                _kill_group(proc.pid)
        time.sleep(limits.sample_interval_s)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    _kill_group(proc.pid)  # leftovers the model may have spawned
    peak = max(peak, usage.ru_maxrss * 1024)  # Linux reports ru_maxrss in KiB
    return _Outcome(proc.returncode, wall, peak, killed_for)


def _classify(outcome: _Outcome, log: str) -> tuple[int, str | None, str | None]:
    """(container-style exit code, signal name, one-line reason) for a finished child."""
    code = outcome.returncode
    if outcome.killed_for is not None:
        return 128 + signal.SIGKILL, "SIGKILL", outcome.killed_for
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGSEGV:
            return 128 + sig, sig.name, SEGFAULT_MESSAGE
        if sig == signal.SIGKILL:
            # nobody but the kernel's OOM killer sends SIGKILL to our child unprompted
            return 128 + sig, sig.name, OUT_OF_MEMORY
        return 128 + sig, sig.name, f"Killed by {sig.name}"
    if code == 0:
        return 0, None, None
    if "MemoryError" in log:
        return code, None, OUT_OF_MEMORY
    return code, None, _reason_from_log(log)


_ERROR_LINE = re.compile(r"^ERROR:root:(.*)$")


def _reason_from_log(log: str) -> str:
    """The most telling line of a failed predict.py log."""
    lines = log.splitlines()
    first_error = None
    for line in lines:
        match = _ERROR_LINE.match(line)
        if match:
            first_error = match.group(1).strip()
            break
    exception_line = _last_exception_line(lines)
    if first_error and exception_line and exception_line.endswith(first_error):
        return exception_line  # logging.exception(e): "ValueError: boom" beats "boom"
    return first_error or exception_line or "predict.py exited with an error"


def _last_exception_line(lines: list[str]) -> str | None:
    """The ``Type: message`` line that closes the last traceback in the log."""
    last = None
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback and line and not line[0].isspace():
            last = line.strip()
            in_traceback = False
    return last


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child_env(git_ref: str, extra: dict[str, str]) -> dict[str, str]:
    # A clean environment: nothing from the builder's venv (PYTHONPATH, VIRTUAL_ENV) may leak
    # into the emulated container.
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "GIT_REF": git_ref,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(extra)
    return env


def read_ids(live_path: Path):
    """The live universe: the parquet's ``id`` index (or ``id`` column), as strings."""
    import pandas as pd

    frame = pd.read_parquet(live_path, columns=[])
    if frame.index.name != "id":
        try:
            frame = pd.read_parquet(live_path, columns=["id"]).set_index("id")
        except (KeyError, ValueError):
            pass  # no id anywhere: the row index is all there is
    return pd.Index(frame.index.astype(str))


def _synthesize_benchmarks(live_ids, path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = len(live_ids)
    columns = ["v52_lgbm_ender20", "v52_lgbm_teager2b20"]
    data = {c: (rng.permutation(n) + 0.5) / max(n, 1) for c in columns}
    frame = pd.DataFrame(data, index=pd.Index(live_ids, name="id"))
    frame.to_parquet(path)
