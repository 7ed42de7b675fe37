"""The sandbox's validation worker: runs each uploaded pickle as Numerai's orchestrator does.

A created pickle gets a ``validation`` trigger whose status sequence mirrors the UI's run states
(Pending -> Running -> Validating -> Success, or Failed / Error; docs model-uploads.md, docs/design/numerai.md
§1.10); the container log lines become the trigger's ``triggerLogs``. What runs the pickle is a
``Validator`` callable, so the server does not depend on how the pickle is executed.
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from builder.sandbox.store import FAILED, VALIDATED, VALIDATING, Store

# (pickle_path, runtime_tag, on_status) -> (status, log); status is "success", "failed" or
# "error"; on_status(stage) may be called with "Running" / "Validating" as the run progresses.
Validator = Callable[[Path, str, Callable[[str], None]], tuple[str, str]]


def runner_validator(
    live_path: Path | None,
    benchmarks_path: Path | None = None,
    python: str | None = None,
) -> Validator:
    """A validator running the pickle through nmr's numerai-predict emulation (``nmr test``).

    The interpreter is the runtime's venv plus the image packages the pickle imports
    (``builder.envextras.env_for_pickle``) unless ``python`` is given.
    """

    def validate(pickle_path: Path, runtime_tag: str, on_status=None) -> tuple[str, str]:
        if live_path is None or not Path(live_path).exists():
            return (
                "error",
                "ERROR:root:the sandbox has no live data to validate with; start it with "
                "--live FILE (nmr apply --sandbox uses the project's data)",
            )
        try:
            from builder.envextras import env_for_pickle
            from builder.runner import run_pickle
        except ImportError as error:  # the runner stage is not installed in this checkout
            return "error", f"ERROR:root:sandbox validation unavailable: {error}"
        # Numerai's image has its ~140 packages installed: a pickle importing scikit-learn
        # (a source: or pickle: slot) gets them at the image's pins, an nmr-compiled one the
        # base env (builder/envextras.py)
        interpreter = python or env_for_pickle(pickle_path, runtime_tag).env.python
        # run_pickle keeps its default output directory (it holds the predictions CSV), so a
        # long-running sandbox would leave one /tmp/nmr-run-* per validation; the CSV is not
        # needed once the status and log are recorded.
        with tempfile.TemporaryDirectory(prefix="nmr-validate-") as output_dir:
            result = run_pickle(
                Path(pickle_path),
                interpreter,
                Path(live_path),
                benchmarks_path,
                output_dir=output_dir,
                on_status=on_status,
            )
        status = str(result.status).lower()
        if status not in ("success", "failed", "error"):
            status = "error"
        log = str(result.log or "")
        if status != "success" and result.reason and result.reason not in log:
            log += f"\nERROR:root:{result.reason}"
        return status, log

    return validate


class ValidationWorker:
    """One background thread draining a queue of trigger ids."""

    def __init__(self, store: Store, validator: Validator):
        self.store = store
        self.validator = validator
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="nmr-sandbox-worker", daemon=True)
        self._thread.start()

    def submit(self, trigger_id: str) -> None:
        self._queue.put(trigger_id)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def resume_unfinished(self) -> None:
        """Re-queue triggers a previous server process left pending (e.g. it was killed)."""
        for row in self.store.all(
            "SELECT id FROM triggers WHERE status IN ('pending', 'running', 'validating')"
            " ORDER BY inserted_at"
        ):
            self.submit(row["id"])

    def _run(self) -> None:
        while True:
            trigger_id = self._queue.get()
            if trigger_id is None:
                return
            try:
                self._process(trigger_id)
            except Exception as error:  # never let one pickle kill the worker
                self.store.add_status(trigger_id, "error", f"sandbox worker error: {error}")

    def _process(self, trigger_id: str) -> None:
        store = self.store
        trigger = store.one("SELECT * FROM triggers WHERE id = ?", (trigger_id,))
        pickle = store.one("SELECT * FROM pickles WHERE id = ?", (trigger["pickle_id"],))
        image = store.one("SELECT * FROM docker_images WHERE id = ?", (pickle["docker_image_id"],))
        is_validation = trigger["type"] == "validation"
        seen = ["pending"]

        def on_status(stage: str) -> None:
            stage = stage.lower()
            if stage in ("running", "validating") and stage not in seen:
                seen.append(stage)
                store.add_status(trigger_id, stage)

        on_status("running")
        if is_validation:
            _set_pickle_status(store, pickle["id"], VALIDATING)
        path = store.file_path(pickle["account_id"], pickle["filename"])
        status, log = self.validator(path, f"{image['image']}:{image['tag']}", on_status)
        store.add_logs(trigger_id, log)
        on_status("validating")
        description = None if status == "success" else _last_error_line(log)
        # The pickle's status first: a trigger that reads as finished implies a final pickle status.
        if is_validation:
            _set_pickle_status(store, pickle["id"], VALIDATED if status == "success" else FAILED)
        store.add_status(trigger_id, status, description)


def _set_pickle_status(store: Store, pickle_id: str, status: str) -> None:
    store.execute(
        "UPDATE pickles SET validation_status = ?, updated_at = ? WHERE id = ?",
        (status, time.time(), pickle_id),
    )


def _last_error_line(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip() and not line.startswith("-")]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["validation failed"])[-1]
