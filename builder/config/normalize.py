"""A model's config as plain, stable JSON data: what the lock hashes and `--json` prints.

Paths are relative to the project root (POSIX separators), so a copy of the project at another
path normalizes to the same data; keys are fixed and lists keep the config's order.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.config.model import ModelConfig, Step


def normalized(model: ModelConfig, root: Path) -> dict:
    """JSON-safe description of ``model`` with paths relative to ``root``."""
    return {
        "slot": model.slot,
        "ensemble": model.ensemble,
        "members": [
            {
                "artifact": _relative(member.artifact, root),
                "format": member.format,
                "feature_set": member.feature_set,
                "features": list(member.features),
                "weight": member.weight,
                "preprocessing": [step_dict(step) for step in member.preprocessing],
            }
            for member in model.members
        ],
        "preprocessing": [step_dict(step) for step in model.preprocessing],
        "postprocessing": [step_dict(step) for step in model.postprocessing],
        "raw_output": model.raw_output,
        "runtime": model.runtime,
        "deploy": {
            "create": model.deploy.create,
            "trigger": model.deploy.trigger,
            "data_version": model.deploy.data_version,
            "legacy_signature": model.deploy.legacy_signature,
            "disable_webhook": model.deploy.disable_webhook,
        },
    }


def step_dict(step: Step) -> dict:
    """A step as plain JSON data (name, params, resolved feature columns); numerai.lock's
    normalized config uses it too, so both describe a step the same way."""
    data = {"name": step.name, "params": {k: _plain(v) for k, v in step.params}}
    if step.feature_columns:
        data["feature_columns"] = list(step.feature_columns)
    return data


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(Path(path), Path(root))).as_posix()
