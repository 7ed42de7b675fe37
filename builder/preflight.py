"""Cheap checks of every slot against its artifacts and data, before anything is compiled.

``nmr validate`` runs them after the config checks and ``nmr build`` runs them before building,
so a user sees every slot's problem at once, each at the numerai.yaml line of the member it
concerns, instead of meeting them one build at a time.

Each artifact is opened only as far as its header: a LightGBM model text up to its first tree,
an XGBoost document's ``learner`` fields (no tree is translated), an ONNX file without its
external weights. A scikit-learn pickle has no header; it is unpickled and read by the
scikit-learn reader (as the build does, on the same user-named path), so what validate accepts
is exactly what the build compiles.

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
    # what NaN does to this model, when it cannot take it (ends the warning's first clause)
    nan_effect: str = "so its predictions would be NaN there"


@dataclass(frozen=True)
class Report:
    """Every problem (errors) and warning of the checked slots, in file order."""

    errors: list[Problem]
    warnings: list[Problem]


def check_project(project: Project, slots=None, config_problems=()) -> Report:
    """Check the artifacts and data of every slot (or of ``slots``); never raises for a slot's
    problem, so every slot's problems are reported together.

    ``config_problems``: the loader's problems of a config that failed; a member one of them
    concerns (its artifact, its features, or for a single model anything of the slot) is not
    checked, so no problem is reported twice.
    """
    touched = [p.path for p in config_problems]
    nan_shares = data_nan_shares(project)
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for model in project.models:
        if slots and model.slot not in slots:
            continue
        for index, member in enumerate(model.members):
            path = member_path(model, index)
            if any(t == path or t.startswith((path + ".", path + "[")) for t in touched):
                continue
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
    if member.format == "sklearn":
        return _sklearn_header(path, member.features)
    readers = {
        "lightgbm": _lightgbm_header,
        "xgboost": _xgboost_header,
        "onnx": _onnx_header,
    }
    if member.format in readers:
        return readers[member.format](path)
    return _any_reader_header(path, member)


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
                f"feature cells) but {header.kind} cannot take NaN, {header.nan_effect}; add "
                f"`preprocessing: [fill_missing: {{strategy: median}}]` to {where}"
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


def _sklearn_header(path: Path, features) -> Header:
    """A pickle has no header: it is unpickled and read by nmr's own scikit-learn reader, so
    validate accepts and refuses exactly the estimators the build compiles."""
    from builder.artifacts import read

    model = read(path, "sklearn", list(features))
    meta = getattr(model, "meta", None) or {}
    kind = f"scikit-learn {meta.get('estimator') or type(model).__name__}"
    names = tuple(getattr(model, "feature_names", ()) or ())
    if str(meta.get("estimator", "")).startswith("GradientBoosting"):
        # scikit-learn refuses NaN for GradientBoosting* (fit and predict); the compiled trees
        # send it right (ensemble/_gradient_boosting.pyx has no NaN branch)
        return Header(
            kind,
            names,
            len(names),
            False,
            "so NaN rows get an answer scikit-learn itself would refuse to give",
        )
    # readers of linear models and MLPs say whether their evaluator takes NaN (it raises)
    if getattr(model, "accepts_nan", True) is False:
        return Header(kind, names, len(names), False, "so the pickle would fail on NaN rows")
    return Header(kind, names, len(names), True)


def _onnx_header(path: Path) -> Header:
    try:
        import onnx
    except ImportError:
        raise ArtifactError(
            f"{path}: reading ONNX models needs the onnx package: pip install 'nmr[onnx]'"
        ) from None

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
    _check_onnx_ops(model, inputs[0].name, path)
    # An ONNX graph computes NaN in, NaN out (MatMul, Relu, ...); nmr does not prove otherwise
    # for the graphs that handle it (tree ensembles with missing_value_tracks_true).
    return Header("an ONNX graph", (), width, False)


def _check_onnx_ops(model, input_name: str, path: Path) -> None:
    """NotSupportedYet for the first op the compiler would refuse: an op outside its registry
    (or outside the registered opset range) on the path from the feature input to the output
    nmr predicts with. Ops that only see constants are folded at build time by onnx's reference
    evaluator, and Shape/Size pass on no values, so neither is checked (the reader folds them)."""
    from builder.artifacts.onnx import _choose_output
    from builder.compile.onnx import supported_op

    if model.functions:  # local functions are inlined by the reader; the build checks those
        return
    opsets = {(imp.domain or ""): int(imp.version) for imp in model.opset_import}
    if "ai.onnx" in opsets:
        opsets.setdefault("", opsets.pop("ai.onnx"))
    graph = model.graph
    output_name, _classifier = _choose_output(graph, path)
    producers = {out: node for node in graph.node for out in node.output}
    needed, stack = set(), [output_name]
    while stack:  # the nodes the chosen output depends on
        node = producers.get(stack.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input)
    carries_values = {input_name}
    for node in graph.node:  # ONNX lists nodes in topological order
        if not carries_values.intersection(node.input) or node.op_type in ("Shape", "Size"):
            continue
        carries_values.update(node.output)
        if id(node) not in needed:
            continue
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        opset = opsets.get(domain, 1)
        if supported_op(node.op_type, domain, opset) is None:
            from builder.errors import NotSupportedYet

            label = f"{domain}::{node.op_type}" if domain else node.op_type
            raise NotSupportedYet(
                f"ONNX op {label} (node {node.name!r}, opset {opset}) in {path.name}"
            )


def _any_reader_header(path: Path, member: MemberConfig) -> Header:
    """A format without a cheap header reader: the registered reader reads it whole (what the
    build does anyway); the config loader already refused formats nmr has no reader for."""
    from builder import artifacts

    model = artifacts.read(path, member.format, list(member.features))
    names = tuple(getattr(model, "feature_names", ()) or ())
    takes_nan = getattr(model, "accepts_nan", True) is not False
    return Header(f"the {member.format} model", names, len(names) or None, takes_nan)


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
