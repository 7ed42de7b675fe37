"""Validation work split into tasks (row ranges of whole eras) and run on a local pool.

``plan_tasks`` reads only the ``era`` column of the validation file and cuts it into tasks of
about ``TASK_ROWS`` rows that start and end on era boundaries. The cut depends on the file
alone, never on the number of workers, so ``--jobs 1`` and ``--jobs 8`` make the same task files
and the merged predictions are the same bytes.

``predict_tasks`` runs the tasks on ``jobs`` workers, each a ``model_child.py serve`` process of
the runtime's Python (the pickle loaded once per worker, as the container loads it); each task
writes ``pred-<task>.parquet``. ``merge_predictions`` streams those files, in task order, into
one parquet without holding them all.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.errors import NmrError

_CHILD = Path(__file__).with_name("model_child.py")
# About 20 tasks for a million rows: enough to keep a few workers busy to the end and to show
# progress, few enough that starting each task costs nothing next to predicting it.
TASK_ROWS = 50_000


@dataclass(frozen=True)
class Task:
    """Rows ``[start, end)`` of the validation file: whole eras."""

    index: int
    start: int
    end: int
    eras: int

    @property
    def rows(self) -> int:
        return self.end - self.start

    @property
    def name(self) -> str:
        return f"{self.index:05d}"


def default_jobs() -> int:
    """The CPUs this process may use (the affinity mask, as a container's CPU set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_tasks(validation_path, task_rows: int = TASK_ROWS) -> list[Task]:
    """Tasks of whole eras, about ``task_rows`` rows each (an era is never split), in file order.

    Raises NmrError when an era appears in two separate runs of rows (the file is not grouped by
    era, so no era-wise streaming can be right)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(validation_path)
    if "era" not in source.schema_arrow.names:
        raise NmrError(f"{validation_path}: no 'era' column, so it cannot be scored era by era")
    starts: list[int] = []  # first row of each era
    seen: set = set()
    previous = None
    offset = 0
    for group in range(source.num_row_groups):
        eras = source.read_row_group(group, columns=["era"]).column("era").combine_chunks()
        if len(eras) == 0:
            continue
        eras = eras.cast("string") if not eras.type.equals("string") else eras
        changes = [0] if eras[0].as_py() != previous else []
        if len(eras) > 1:
            differs = pc.not_equal(eras.slice(1), eras.slice(0, len(eras) - 1))
            changes += [i + 1 for i in pc.indices_nonzero(differs).to_pylist()]
        for i in changes:
            era = eras[i].as_py()
            if era in seen:
                raise NmrError(
                    f"{validation_path}: era {era!r} appears in two separate runs of rows "
                    "(row "
                    f"{offset + i}); sort the file by era so each era's rows are contiguous"
                )
            seen.add(era)
            starts.append(offset + i)
        previous = eras[len(eras) - 1].as_py()
        offset += len(eras)
    tasks: list[Task] = []
    bounds = [*starts, offset]
    first = 0
    for k in range(1, len(bounds)):
        if bounds[k] - bounds[first] >= task_rows or k == len(bounds) - 1:
            tasks.append(Task(len(tasks), bounds[first], bounds[k], k - first))
            first = k
    return tasks


def predict_tasks(
    pickle_path,
    python,
    validation_path,
    benchmarks_path,
    tasks: list[Task],
    out_dir: Path,
    jobs: int,
    on_rows: Callable[[int], None] | None = None,
    on_done: Callable[[Task], None] | None = None,
) -> None:
    """Predict every task on ``jobs`` runtime workers; ``on_rows(n)`` after each era,
    ``on_done(task)`` after each task (both called from worker threads, one at a time)."""
    jobs = max(1, min(jobs, len(tasks)))
    argv = [
        str(python),
        str(_CHILD),
        "serve",
        str(pickle_path),
        str(validation_path),
        str(benchmarks_path) if benchmarks_path else "-",
        str(out_dir),
    ]
    lock = threading.Lock()
    idle: queue.Queue = queue.Queue()
    workers: list[_Worker] = []
    failed = threading.Event()

    def run(task: Task) -> None:
        if failed.is_set():
            return
        try:
            worker = idle.get_nowait()
        except queue.Empty:
            worker = _Worker(argv, pickle_path)
            with lock:
                workers.append(worker)
        try:
            for rows in worker.run(task):
                if on_rows is not None:
                    with lock:
                        on_rows(rows)
        except NmrError:
            failed.set()
            raise
        idle.put(worker)
        if on_done is not None:
            with lock:
                on_done(task)

    try:
        with ThreadPoolExecutor(jobs, thread_name_prefix="nmr-validate") as pool:
            for future in [pool.submit(run, task) for task in tasks]:
                future.result()
    finally:
        for worker in workers:
            worker.close()


def merge_predictions(out_dir: Path, tasks: list[Task], target: Path, columns: dict) -> None:
    """``target`` = the task files' ``columns`` (file column -> name written) with the id index,
    in task order, one task in memory at a time."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for task in tasks:
            frame = pd.read_parquet(task_file(out_dir, task), columns=list(columns))
            table = pa.Table.from_pandas(frame.rename(columns=columns))
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def task_file(out_dir: Path, task: Task) -> Path:
    return Path(out_dir) / f"pred-{task.name}.parquet"


class _Worker:
    """One ``model_child.py serve`` process: the pickle loaded once, tasks sent one at a time."""

    def __init__(self, argv: list[str], pickle_path):
        self.pickle_path = pickle_path
        self.stderr_lines: list[str] = []
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        # drain stderr all along, so a chatty pickle never blocks on a full pipe
        self.stderr_thread = threading.Thread(target=self._drain, daemon=True)
        self.stderr_thread.start()
        self._expect("ready")

    def run(self, task: Task):
        """Yields the rows of each era predicted; returns when the task file is written."""
        try:
            self.proc.stdin.write(f"{task.name} {task.start} {task.end}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._fail()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self._fail()
            parts = line.split()
            if parts[:2] == ["done", task.name]:
                return
            if len(parts) == 3 and parts[:2] == ["rows", task.name]:
                yield int(parts[2])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr_thread.join(timeout=5)

    def _expect(self, word: str) -> None:
        line = self.proc.stdout.readline()
        if line.strip() != word:
            self._fail()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def _fail(self):
        self.proc.wait()
        self.stderr_thread.join(timeout=5)
        last = ("".join(self.stderr_lines).strip().splitlines() or ["no output"])[-1]
        raise NmrError(f"validation predictions failed for {self.pickle_path}: {last}")
