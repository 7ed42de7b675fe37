"""``nmr test --dask``: the validation tasks on a Dask distributed cluster.

The worker env is the runtime's env (the image's Python, numpy, pandas, pyarrow, cloudpickle
pins) plus ``distributed`` at ``DISTRIBUTED_VERSION``, installed into a site directory of its
own with the image's pins as constraints (so a dependency both need, e.g. cloudpickle or
pyyaml, stays at the image's version) and put on ``PYTHONPATH``. The client is
builder/diagnostics/dask_driver.py, run by that same Python: client and workers share every
version, and tasks name their function by module path. ``worker_command`` is what a user runs on
another machine (after ``nmr dask worker-env`` there) to join a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.errors import NmrError

# distributed for the worker env: a pin, so every machine of a cluster gets the same one.
DISTRIBUTED_VERSION = "2026.8.0"
ENV_VAR = "NMR_DASK_SCHEDULER"
_DRIVER = Path(__file__).with_name("dask_driver.py")


@dataclass(frozen=True)
class WorkerEnv:
    python: Path  # the runtime env's interpreter
    site: Path  # distributed and its dependencies

    def environ(self) -> dict[str, str]:
        """The process environment that runs ``python`` with ``distributed`` importable."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONPATH"] = os.pathsep.join([str(self.site), str(_DRIVER.parent)])
        return env

    def worker_command(self, scheduler: str = "tcp://SCHEDULER:8786") -> str:
        """One shell line starting a Dask worker in this env (one thread: one task per core)."""
        return (
            f"PYTHONPATH={self.site}:{_DRIVER.parent} {self.python} -m distributed.cli.dask_worker "
            f"{scheduler} --nthreads 1"
        )


def worker_env(runtime_tag: str, python=None) -> WorkerEnv:
    """The worker env of a runtime, created on first use (a pip install into its own directory,
    next to the runtime's cached env; safe to rerun)."""
    from builder import runtimes
    from builder.env import ensure_env

    runtime = runtimes.get(runtime_tag)
    base = ensure_env(runtime.tag, python)
    site = base.path.with_name(f"{base.path.name}-dask-{DISTRIBUTED_VERSION}")
    marker = site / ".nmr-complete"
    if marker.exists():
        return WorkerEnv(base.python, site)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        pins.write("".join(f"{name}=={version}\n" for name, version in runtime.pins.items()))
    try:
        cmd = [
            str(base.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--upgrade", "--target", str(site), "--constraint", pins.name,
            f"distributed=={DISTRIBUTED_VERSION}",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(pins.name)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise NmrError(
            f"could not install distributed=={DISTRIBUTED_VERSION} for {runtime.tag}: {last}"
        )
    marker.write_text(DISTRIBUTED_VERSION + "\n")
    return WorkerEnv(base.python, site)


def predict_tasks_dask(
    scheduler: str,
    env: WorkerEnv,
    pickle_path,
    validation_path,
    benchmarks_path,
    tasks,
    out_dir: Path,
    workers: int,
    on_done: Callable | None = None,
) -> None:
    """Predict every task on the cluster at ``scheduler`` ("local": a ``LocalCluster`` of
    ``workers`` processes); ``on_done(task)`` as each task file lands in ``out_dir``."""
    by_name = {task.name: task for task in tasks}
    spec = {
        "scheduler": scheduler,
        "workers": max(1, workers),
        "pickle": str(pickle_path),
        "validation": str(validation_path),
        "benchmarks": str(benchmarks_path) if benchmarks_path else None,
        "out_dir": str(out_dir),
        "tasks": [[t.name, t.start, t.end] for t in tasks],
    }
    spec_path = Path(out_dir) / "dask-spec.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [str(env.python), str(_DRIVER), str(spec_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env.environ(),
    )
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    drain.start()
    done: set[str] = set()
    for line in proc.stdout:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "done" and parts[1] in by_name:
            done.add(parts[1])
            if on_done is not None:
                on_done(by_name[parts[1]])
    proc.wait()
    drain.join(timeout=10)
    if proc.returncode != 0 or len(done) != len(tasks):
        last = _last_error(errors)
        raise NmrError(
            f"validation predictions on Dask ({scheduler}) failed for {pickle_path}: {last}"
        )


def _last_error(lines: list[str]) -> str:
    """The last line of the driver's traceback (Dask logs warnings to stderr too)."""
    text = [line.strip() for line in lines if line.strip()]
    for line in reversed(text):
        if not line.startswith(("File ", "^", "~")) and "WARNING" not in line:
            return line
    return text[-1] if text else "no output"
