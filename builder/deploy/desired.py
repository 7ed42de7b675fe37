"""Desired state per slot from numerai.yaml + numerai.lock, and the local test apply runs first.

``from_build`` runs the build (which rebuilds only slots whose inputs changed, so it is a no-op
when numerai.lock is current) and takes each pickle's sha256 from it; ``from_lock`` only reads
numerai.lock (a slot missing from it is "known after build"). ``local_tester`` runs a pickle
through the numerai-predict emulation (what ``nmr test`` does) and remembers passing hashes in
``.nmr/tested/`` so a re-run does not test the same bytes twice.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from builder.config.model import ModelConfig, Project
from builder.deploy.plan import DesiredSlot
from builder.errors import NmrError


def from_build(project: Project, models: list[ModelConfig], log=None) -> list[DesiredSlot]:
    """Build what is out of date; ``log(BuildResult)`` is called per slot."""
    from builder.build import build_project

    results = {
        result.slot: result
        for result in build_project(project, slots=[m.slot for m in models], log=log)
    }
    return [
        _desired(project, model, results[model.slot].sha256, Path(results[model.slot].pickle_path))
        for model in models
    ]


def from_lock(project: Project, models: list[ModelConfig]) -> list[DesiredSlot]:
    """Hashes from numerai.lock for slots whose inputs are unchanged; None ("known after
    build") for the others."""
    from builder.build import build_project

    results = {
        result.slot: result
        for result in build_project(project, slots=[m.slot for m in models], check=True)
    }
    desired = []
    for model in models:
        result = results[model.slot]
        current = result.status == "up to date" and result.sha256
        desired.append(
            _desired(
                project,
                model,
                result.sha256 if current else None,
                Path(result.pickle_path) if current else None,
            )
        )
    return desired


def local_tester(project: Project, state_dir: Path):
    """A ``LocalTest`` for apply: the pickle must pass the numerai-predict emulation."""
    tested = Path(state_dir) / "tested"
    models = {model.slot: model for model in project.models}
    synthesizing = threading.Lock()  # apply tests slots from several threads; one live file

    def test(want: DesiredSlot) -> tuple[bool, str]:
        marker = tested / want.sha256
        if marker.exists():
            return True, ""
        from builder.envextras import env_for_pickle
        from builder.runner import run_pickle
        from builder.runner.live import choose_live

        try:
            with synthesizing:
                inputs = choose_live(project, [models[want.slot]], Path(state_dir))
        except NmrError as error:  # e.g. the benchmark file lacks live ids blend_benchmark needs
            return False, f"ERROR:root:{error}"
        # apply needs the verdict and the log, not the predictions CSV: run into a directory
        # removed afterwards (run_pickle's default output directory is kept on purpose).
        with tempfile.TemporaryDirectory(prefix="nmr-localtest-") as output_dir:
            result = run_pickle(
                want.pickle_path,
                # an nmr-compiled pickle gets the base env; a source:/pickle: slot's also gets
                # the image packages it imports, at the image's pins (builder/envextras.py)
                env_for_pickle(want.pickle_path, want.runtime).env.python,
                inputs.live,
                inputs.benchmarks,
                output_dir=output_dir,
            )
        if result.ok:
            tested.mkdir(parents=True, exist_ok=True)
            marker.write_text(want.slot + "\n")
            return True, result.log
        return False, f"{result.log}\nERROR:root:{result.reason or result.status}"

    return test


def live_data(project: Project, models: list[ModelConfig], state_dir: Path) -> Path:
    """The project's live parquet, or one synthesized for the slots' features (cached)."""
    from builder.runner.live import choose_live

    return choose_live(project, models, Path(state_dir), check_benchmarks=False).live


def previous_manifests(project: Project, remote_prefixes) -> dict[str, dict | None]:
    """Build manifests of the remote slots' pickles by hash prefix (builder.manifest.find:
    the local store, then numerai.lock and its git history); None where none is found."""
    from builder import manifest

    found = manifest.find_all(project.root, remote_prefixes)
    return {prefix: made for prefix, (made, _where) in found.items()}


def _desired(project: Project, model: ModelConfig, sha256, path) -> DesiredSlot:
    return DesiredSlot(
        slot=model.slot,
        sha256=sha256,
        pickle_path=path,
        runtime=model.runtime,
        data_version=model.deploy.data_version or project.data.version,
        create=model.deploy.create,
        trigger=model.deploy.trigger,
        manifest=_built_manifest(project, model.slot, sha256),
        disable_webhook=model.deploy.disable_webhook,
    )


def _built_manifest(project: Project, slot: str, sha256: str | None) -> dict | None:
    """The manifest numerai.lock records for this slot's pickle (None: not built yet)."""
    if sha256 is None:
        return None
    from builder.lock import read_lock

    manifest = read_lock(project)["slots"].get(slot, {}).get("manifest")
    return manifest if manifest and manifest.get("pickle_sha256") == sha256 else None
