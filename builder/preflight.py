"""Cheap checks of every slot against its artifacts and data, before anything is compiled.

``nmr validate`` runs them after the config checks and ``nmr build`` runs them before building,
so a user sees every slot's problem at once, each at the numerai.yaml line of the member it
concerns, instead of meeting them one build at a time.

Each artifact is opened only as far as its header: a LightGBM model text up to its first tree,
an XGBoost document's ``learner`` fields (no tree is translated), an ONNX file without its
external weights. A scikit-learn pickle has no header; it is unpickled (the build does the same,
on the same user-named path) and only its class and fitted attributes are read.

Checks: empty or unreadable file, unsupported estimator or objective, feature count or names
that differ from the member's ``features``. Warnings: the project's data has missing values
but a member cannot take NaN and nothing fills them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from builder.config.model import MemberConfig, ModelConfig, Project
from builder.config.problems import Problem
from builder.errors import ArtifactError, NmrError

# Bytes of a LightGBM model text read at most while looking for its first tree; the header
# (objective, feature names) precedes the trees and is a few KB even for 2,748 features.
LIGHTGBM_HEADER_LIMIT = 4 * 1024 * 1024
# Data files whose missing values the NaN check looks at, in the order it reports them.
NAN_DATA = ("train", "validation", "live")


@dataclass(frozen=True)
class Header:
    """What a member's artifact says about itself, read without compiling it."""

    kind: str  # e.g. "LightGBM regression", "scikit-learn GradientBoostingRegressor"
    feature_names: tuple[str, ...]  # recorded names, () when the file records none
    width: int | None  # input count when known
    takes_nan: bool  # whether the model itself defines a prediction for NaN inputs


@dataclass(frozen=True)
class Report:
    """Every problem (errors) and warning of the checked slots, in file order."""

    errors: list[Problem]
    warnings: list[Problem]


def check_project(project: Project, slots=None) -> Report:
    """Check the artifacts and data of every slot (or of ``slots``); never raises for a slot's
    problem, so every slot's problems are reported together."""
    nan_shares = data_nan_shares(project)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for model in project.models:
        if slots and model.slot not in slots:
            continue
        for index, member in enumerate(model.members):
            path = member_path(model, index)
            if not member.features:  # only in a config that already failed: it says why
                continue
            try:
                header = read_header(member)
                check_features(member, header)
            except NmrError as error:
                errors.append(_problem(project, model, member, f"{path}.artifact", str(error)))
                continue
            warning = nan_warning(model, member, header, nan_shares, path)
            if warning:
                warnings.append(_problem(project, model, member, path, warning))
    order = lambda p: (p.file, p.line, p.col, p.path)  # noqa: E731
    return Report(sorted(errors, key=order), sorted(warnings, key=order))


def read_header(member: MemberConfig) -> Header:
    """The member's artifact header; ``ArtifactError`` / ``NotSupportedYet`` when it cannot
    be built."""
    path = Path(member.artifact)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ArtifactError(f"{path}: cannot read ({error.strerror})") from None
    if size == 0:
        raise ArtifactError(f"{path}: the file is empty")
    readers = {
        "lightgbm": _lightgbm_header,
        "xgboost": _xgboost_header,
        "sklearn": _sklearn_header,
        "onnx": _onnx_header,
    }
    if member.format not in readers:
        raise ArtifactError(f"{path}: unknown artifact format {member.format!r}")
    return readers[member.format](path)


def check_features(member: MemberConfig, header: Header) -> None:
    """NmrError when the member's configured features are not the model's inputs."""
    from builder.artifacts import bind_feature_names

    bind_feature_names(
        list(header.feature_names), list(member.features), header.width, str(member.artifact)
    )


def data_nan_shares(project: Project) -> dict[str, tuple[Path, dict[str, float]]]:
    """Per data file (train/validation/live) with missing feature values: its path and each
    column's share of missing values (parquet footer statistics only)."""
    from builder.datasets import column_null_shares

    shares: dict[str, tuple[Path, dict[str, float]]] = {}
    for name in NAN_DATA:
        path = getattr(project.data, name)
        if path is None or not Path(path).is_file():
            continue
        try:
            per_column = column_null_shares(Path(path))
        except Exception:  # unreadable data is reported by the stages that read it
            continue
        if per_column:
            shares[name] = (Path(path), per_column)
    return shares


def nan_warning(model: ModelConfig, member: MemberConfig, header: Header, shares, path: str):
    """One sentence when the data has NaN in this member's columns, the member cannot take
    NaN and no fill_missing step (of the slot or of the member) replaces it; else None."""
    if header.takes_nan:
        return None
    steps = (*model.preprocessing, *member.preprocessing)
    if any(step.name == "fill_missing" for step in steps):
        return None
    columns = list(member.features)
    if not columns:
        return None
    for name, (file, per_column) in shares.items():
        share = sum(per_column.get(c, 0.0) for c in columns) / len(columns)
        if share > 0:
            where = "this member" if model.ensemble else "the model"
            return (
                f"{file.name} ({name} data) has missing values ({share:.2%} of this member's "
                f"feature cells) but {header.kind} cannot take NaN, so its predictions would be "
                f"NaN there; add `preprocessing: [fill_missing: {{strategy: median}}]` to {where}"
            )
    return None


def member_path(model: ModelConfig, index: int) -> str:
    """``models.<slot>`` for a single model, ``models.<slot>.ensemble[i]`` for a member."""
    base = f"models.{model.slot}"
    return f"{base}.ensemble[{index}]" if model.ensemble else base


# --- one header reader per format ------------------------------------------------------------


def _lightgbm_header(path: Path) -> Header:
    from builder.artifacts.lightgbm import OBJECTIVES

    with path.open("rb") as f:
        if f.read(64).lstrip()[:1] == b"{":
            f.seek(0)
            return _lightgbm_json_header(path, f.read())
        f.seek(0)
        header: dict[str, str] = {}
        read, found = 0, False
        for raw in f:
            read += len(raw)
            line = raw.decode("utf-8", errors="replace").strip()
            if line.startswith("Tree="):
                found = True
                break
            key, sep, value = line.partition("=")
            if sep:
                header[key.strip()] = value.strip()
            if read > LIGHTGBM_HEADER_LIMIT:
                break
    if not found or "version" not in header:
        raise ArtifactError(f"{path}: not a LightGBM model text (no header and 'Tree=' blocks)")
    objective = (header.get("objective") or "custom").split()
    name = objective[0] if objective else "custom"
    _supported_objective("LightGBM", name, OBJECTIVES, path)
    names = header.get("feature_names", "").split()
    width = int(header.get("max_feature_idx", "-1")) + 1
    return Header(f"LightGBM {name}", _named(names), width or None, True)


def _lightgbm_json_header(path: Path, data: bytes) -> Header:
    from builder.artifacts.lightgbm import OBJECTIVES

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise ArtifactError(f"{path}: not a readable LightGBM model ({error})") from None
    if not isinstance(doc, dict) or "tree_info" not in doc:
        raise ArtifactError(f"{path}: not a LightGBM dump_model document (no 'tree_info')")
    objective = str(doc.get("objective") or "custom").split()
    name = objective[0] if objective else "custom"
    _supported_objective("LightGBM", name, OBJECTIVES, path)
    names = [str(n) for n in doc.get("feature_names") or []]
    width = int(doc.get("max_feature_idx", -1)) + 1
    return Header(f"LightGBM {name}", _named(names), width or None, True)


def _xgboost_header(path: Path) -> Header:
    from builder.artifacts.xgboost import OBJECTIVES, load_document

    learner = load_document(path)["learner"]
    try:
        name = str(learner.get("objective", {}).get("name", ""))
        width = int(learner.get("learner_model_param", {}).get("num_feature", 0) or 0)
        names = [str(n) for n in learner.get("feature_names") or []]
    except (AttributeError, TypeError, ValueError) as error:
        raise ArtifactError(f"{path}: incomplete or damaged XGBoost model ({error})") from None
    _supported_objective("XGBoost", name, OBJECTIVES, path)
    return Header(f"XGBoost {name}", tuple(names), width or None, True)


def _sklearn_header(path: Path) -> Header:
    from builder.artifacts.sklearn import SUPPORTED, load_estimator
    from builder.errors import NotSupportedYet

    est = load_estimator(path)
    cls = type(est)
    library = cls.__module__.split(".")[0]
    kind = cls.__name__
    if library in ("xgboost", "lightgbm"):
        # pickled XGBRegressor / LGBMRegressor: the reader compiles their booster (regressors)
        if hasattr(est, "classes_") or "Classifier" in kind or "Ranker" in kind:
            raise NotSupportedYet(
                f"pickled {cls.__module__}.{kind} (save its booster with save_model and point "
                f"the artifact at that file) ({path.name})"
            )
        takes_nan = True
    elif kind not in SUPPORTED:
        raise NotSupportedYet(f"scikit-learn estimator {cls.__module__}.{kind} ({path.name})")
    else:
        # GradientBoosting* predict has no NaN branch and scikit-learn refuses NaN input for
        # it (ensemble/_gradient_boosting.pyx); the other supported trees route NaN.
        takes_nan = not kind.startswith("GradientBoosting")
    if not hasattr(est, "n_features_in_"):
        raise ArtifactError(f"{path}: the {kind} is not fitted")
    recorded = getattr(est, "feature_names_in_", None)
    names = tuple(str(n) for n in recorded) if recorded is not None else ()
    return Header(f"scikit-learn {kind}", names, int(est.n_features_in_), takes_nan)


def _onnx_header(path: Path) -> Header:
    import onnx

    from builder.artifacts.onnx import _input_signature
    from builder.errors import NotSupportedYet

    try:
        # external tensors (model.onnx.data) are weights, not header: leave them on disk
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf DecodeError and friends
        raise ArtifactError(f"{path}: not a readable ONNX model ({error})") from None
    if not model.graph.node:
        raise ArtifactError(f"{path}: the ONNX graph has no nodes")
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise NotSupportedYet(
            f"ONNX graphs with {len(inputs)} inputs ({names}) in {path.name}; nmr feeds one "
            "feature matrix"
        )
    _dtype, width = _input_signature(inputs[0], path)
    # An ONNX graph computes NaN in, NaN out (MatMul, Relu, ...); nmr does not prove otherwise
    # for the graphs that handle it (tree ensembles with missing_value_tracks_true).
    return Header("an ONNX graph", (), width, False)


def _supported_objective(library: str, name: str, known, path: Path) -> None:
    from builder.errors import NotSupportedYet

    if name not in known:
        raise NotSupportedYet(
            f"{library} objective {name!r} in {path} (supported: {', '.join(sorted(known))})"
        )


def _named(names: list[str]) -> tuple[str, ...]:
    """LightGBM writes Column_0.. when trained without names; those count as no names."""
    if names and all(n == f"Column_{i}" for i, n in enumerate(names)):
        return ()
    return tuple(names)


def _problem(project: Project, model: ModelConfig, member: MemberConfig, path: str, message: str):
    # readers name the file by its absolute path; the place in numerai.yaml already says which
    # member it is, so the file is shown as the config wrote it (relative to the project)
    artifact = Path(member.artifact)
    try:
        shown = artifact.relative_to(project.root).as_posix()
    except ValueError:
        shown = str(artifact)
    message = message.replace(str(artifact), shown)
    mark = member.mark or model.mark
    file = mark.file if mark else project.config_path.name
    line, col = (mark.line, mark.col) if mark else (1, 1)
    return Problem(file, line, col, path, message)
