"""Typed, immutable view of a validated numerai.yaml (what every later stage consumes).

``builder.config.load(path)`` returns a ``Project``; all paths are absolute, resolved against the
config file's directory; feature sets are resolved to column lists from ``features.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import NmrError


@dataclass(frozen=True)
class Mark:
    """Where a value sits in numerai.yaml (1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Step:
    """One preprocessing/postprocessing step, e.g. ``clip: {min: 0, max: 4}``.

    ``params`` is a tuple of (key, value) pairs sorted by key, so the step is hashable and its
    normalized form is stable; ``dict(step.params)`` gives the mapping. A ``features`` param
    naming a feature set is resolved to ``feature_columns``.
    """

    name: str
    params: tuple[tuple[str, object], ...] = ()
    feature_columns: tuple[str, ...] = ()
    mark: Mark | None = field(default=None, compare=False)

    def get(self, key: str, default=None):
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class MemberConfig:
    """One trained artifact: the whole model of a slot, or one member of an ensemble."""

    artifact: Path
    format: str  # lightgbm | xgboost | sklearn | onnx | catboost (inferred when not given)
    features: tuple[str, ...]  # column names, in the order the model was trained on
    feature_set: str | None  # the feature set name, when features came from one
    weight: float = 1.0
    mark: Mark | None = field(default=None, compare=False)
    # an ensemble member's own steps, applied to its columns after the slot's preprocessing
    # (so one member can be filled while another keeps its native NaN handling)
    preprocessing: tuple[Step, ...] = ()


@dataclass(frozen=True)
class SourceConfig:
    """A ``source:`` slot: Python code nmr packs with the runtime's own interpreter."""

    path: Path  # the .py file (absolute)
    function: str = "predict"  # the callable it defines


@dataclass(frozen=True)
class PickleConfig:
    """A ``pickle:`` slot: a pickle made elsewhere, shipped as it is."""

    path: Path  # absolute


@dataclass(frozen=True)
class DeployConfig:
    create: bool = False
    trigger: bool = False
    data_version: str | None = None  # None: use data.version
    legacy_signature: bool = False
    disable_webhook: bool = False  # apply may clear the slot's compute webhook first


@dataclass(frozen=True)
class ModelConfig:
    slot: str  # the Numerai model slot name (key under models:)
    members: tuple[MemberConfig, ...]
    ensemble: bool  # True when configured with ensemble:
    preprocessing: tuple[Step, ...]
    postprocessing: tuple[Step, ...]
    raw_output: bool  # True when postprocessing: [] was written explicitly
    runtime: str  # runtime tag, e.g. numerai_predict_py_3_12:a78dedd
    deploy: DeployConfig
    mark: Mark | None = field(default=None, compare=False)
    source: SourceConfig | None = None  # set for a source: slot (members is empty)
    pickle: PickleConfig | None = None  # set for a pickle: slot (members is empty)
    # source:/pickle: slots: the columns they read, for test data and checks (from features:,
    # else every column of features.json)
    slot_features: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """How the slot's pickle is made: artifact | ensemble (compiled), source (packed by
        the runtime) or pickle (shipped as is)."""
        if self.source is not None:
            return "source"
        if self.pickle is not None:
            return "pickle"
        return "ensemble" if self.ensemble else "artifact"

    @property
    def features(self) -> tuple[str, ...]:
        """Union of every member's features, in first-seen order."""
        if not self.members:
            return tuple(self.slot_features)
        seen: dict[str, None] = {}
        for member in self.members:
            for name in member.features:
                seen.setdefault(name, None)
        return tuple(seen)


@dataclass(frozen=True)
class DataConfig:
    dir: Path
    version: str
    features_json: Path
    train: Path | None = None
    validation: Path | None = None
    live: Path | None = None
    live_benchmarks: Path | None = None
    validation_benchmarks: Path | None = None
    bmc_benchmark: str | None = None  # None: the data version's main benchmark column


@dataclass(frozen=True)
class Project:
    config_path: Path
    root: Path  # directory of numerai.yaml
    version: int
    runtime: str
    data: DataConfig
    models: tuple[ModelConfig, ...]

    def model(self, slot: str) -> ModelConfig:
        for model in self.models:
            if model.slot == slot:
                return model
        raise KeyError(slot)

    def select(self, slots) -> list[ModelConfig]:
        """The slots a command acts on, in numerai.yaml's order (all when ``slots`` is empty).

        The one slot selection of build, test, plan and apply: an unknown name fails naming
        every unknown one and the slots the config has.
        """
        if not slots:
            return list(self.models)
        known = [model.slot for model in self.models]
        unknown = [name for name in dict.fromkeys(slots) if name not in known]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise NmrError(
                f"no model slot {names} in {self.config_path.name} "
                f"(slots: {', '.join(known) or 'none'})"
            )
        wanted = set(slots)
        return [model for model in self.models if model.slot in wanted]
