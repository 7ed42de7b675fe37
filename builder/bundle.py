"""One model slot of numerai.yaml + its compiled models -> the predict object that ships.

``make_bundle`` reads and compiles every artifact, fits the preprocessing statistics on
``data.train`` (only the columns the slot uses), checks that the output is guaranteed to satisfy
numerai-predict's [0, 1] rule, and returns a ``builder.kernels.bundle`` object (``Predict``, or
``PredictLegacy`` for the 1-argument form). Nothing here ships; the returned object does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builder import __version__, ir
from builder.compile.trees import fold_preprocessing
from builder.config.model import ModelConfig, Project, Step
from builder.errors import NmrError
from builder.kernels import bundle as kb
from builder.kernels import steps as ks
from builder.steps import BY_NAME as STEP_SPECS
from builder.steps import STEPS

# Postprocessing steps after which every value is inside [0, 1] whatever came before them
# (rank_per_era gives (0, 1]; blend_benchmark mixes two per-era ranks): builder/steps.py.
BOUNDED_STEPS = tuple(s.name for s in STEPS if s.stage == "post" and s.bounded)
UNBOUNDED_STEPS = tuple(s.name for s in STEPS if s.stage == "post" and not s.bounded)
# blend_benchmark without on_missing: skip. Numerai gives no second run on a round day, so a
# benchmark file without the column or some ids must not cost the submission; the unblended
# per-era rank is still a valid prediction, and the pickle logs that it was used.
BLEND_ON_MISSING_DEFAULT = STEP_SPECS["blend_benchmark"].param("on_missing").default
# Columns per chunk when fitting statistics on data.train: every preprocessing step acts on each
# column alone, so fitting column blocks one at a time is exact and bounds memory.
FIT_CHUNK_COLUMNS = 64


@dataclass(frozen=True)
class CompiledMember:
    """An artifact read into IR and compiled into a kernel evaluator."""

    member: object  # builder.config.MemberConfig
    model_ir: object  # ir.TreeEnsemble | ir.Graph
    evaluator: object  # a builder.kernels evaluator


def make_bundle(project: Project, model: ModelConfig, compiled=None) -> kb.Bundle:
    """The predict object for one slot. ``compiled`` (list of CompiledMember) skips compiling."""
    compiled = list(compiled) if compiled is not None else compile_members(model)
    check_output_range(project, model, compiled)
    needs_benchmarks = any(step.name == "blend_benchmark" for step in model.postprocessing)
    if model.deploy.legacy_signature and needs_benchmarks:
        raise NmrError(
            f"{_where(project, model)}: models.{model.slot}.deploy.legacy_signature: the "
            "1-argument predict receives no benchmarks, but blend_benchmark needs them; "
            "drop legacy_signature or the blend_benchmark step"
        )

    feature_names = _input_columns(compiled)
    index = {name: i for i, name in enumerate(feature_names)}
    members = [
        kb.Member(
            evaluator=c.evaluator,
            columns=np.array([index[name] for name in _member_columns(c)], dtype=np.int64),
            task=_task(c),
            weight=c.member.weight,
            preprocessing=fit_member_preprocessing(project, model, c),
        )
        for c in compiled
    ]
    preprocessing = fit_preprocessing(project, model, feature_names)
    postprocessing = [_post_step(project, model, step) for step in model.postprocessing]
    required = list(feature_names)
    for step in postprocessing:
        if isinstance(step, ks.Neutralize):
            required += [c for c in step.columns if c not in index and c not in required]
    cls = kb.PredictLegacy if model.deploy.legacy_signature else kb.Predict
    bundle = cls(
        feature_names=feature_names,
        preprocessing=preprocessing,
        members=members,
        ensemble=model.ensemble,
        postprocessing=postprocessing,
        required_columns=tuple(required),
        summary=summary(project, model, compiled, feature_names),
    )
    return fold_preprocessing(bundle)


def make_source_bundle(project: Project, model: ModelConfig):
    """What a ``source:`` slot ships: its function (imported and pickled by value in the env),
    bare when the slot has no postprocessing, else inside a ``kernels.source`` wrapper that
    runs the steps on its output."""
    from builder.kernels import source as ksrc
    from builder.pack import SourceFunction

    function = SourceFunction(
        root=project.root,
        path=_relative(project, model.source.path),
        function=model.source.function,
    )
    if not model.postprocessing:
        return function
    needs_benchmarks = any(step.name == "blend_benchmark" for step in model.postprocessing)
    if model.deploy.legacy_signature and needs_benchmarks:
        raise NmrError(
            f"{_where(project, model)}: models.{model.slot}.deploy.legacy_signature: the "
            "1-argument predict receives no benchmarks, but blend_benchmark needs them"
        )
    cls = ksrc.SourcePredict1 if model.deploy.legacy_signature else ksrc.SourcePredict2
    summary = {
        "nmr": __version__,
        "slot": model.slot,
        "runtime": model.runtime,
        "source": _relative(project, model.source.path),
        "function": model.source.function,
        "postprocessing": [_step_text(s) for s in model.postprocessing],
    }
    steps = [_post_step(project, model, step) for step in model.postprocessing]
    return cls(function=function, postprocessing=steps, summary=summary)


def compile_members(model: ModelConfig) -> list[CompiledMember]:
    """Read and compile every artifact of a slot."""
    from builder.artifacts import read
    from builder.compile import compile_model

    out = []
    for index, member in enumerate(model.members):
        try:
            model_ir = read(Path(member.artifact), member.format, member.features or None)
            compiled = compile_model(model_ir)
        except NmrError as error:
            # Readers name the artifact file; the user also needs the config line that uses it.
            key = f"ensemble[{index}].artifact" if model.ensemble else "artifact"
            where = str(member.mark or model.mark or "numerai.yaml")
            raise NmrError(f"{where}: models.{model.slot}.{key}: {error}") from error
        out.append(CompiledMember(member, model_ir, compiled))
    return out


def check_output_range(project: Project, model: ModelConfig, compiled) -> None:
    """NmrError unless every output value is guaranteed to lie in [0, 1] (or raw output was
    asked for with ``postprocessing: []``)."""
    if model.raw_output:
        return
    bounded = model.ensemble or all(_task(c) in ("binary", "multiclass") for c in compiled)
    breaker = None if bounded else "the model's raw output"
    for step in model.postprocessing:
        if step.name in BOUNDED_STEPS:
            bounded, breaker = True, None
        elif step.name in UNBOUNDED_STEPS:
            bounded, breaker = False, step.name
    if not bounded:
        raise NmrError(
            f"{_where(project, model)}: models.{model.slot}.postprocessing: after {breaker} the "
            "predictions are not guaranteed to lie in [0, 1], which numerai-predict requires; "
            "add `- rank_per_era: {}` as the last step (or write `postprocessing: []` to ship "
            "raw output and let `nmr test` check it on data)"
        )


def fit_preprocessing(project: Project, model: ModelConfig, columns: tuple[str, ...]) -> list:
    """Kernel preprocessing steps with statistics fitted on data.train, in config order.

    Each step is fitted on the train data as transformed by the steps before it (a standardize
    after clip sees clipped values), which is what the steps will see at predict time.
    """
    return _fit_steps(project, model, model.preprocessing, columns)


def fit_member_preprocessing(project: Project, model: ModelConfig, c: CompiledMember) -> list:
    """An ensemble member's own kernel steps, fitted on its columns of data.train as the slot's
    preprocessing leaves them (every step acts on each column alone, so refitting the slot's
    steps on the member's columns gives the same statistics)."""
    own = tuple(getattr(c.member, "preprocessing", ()) or ())
    if not own:
        return []
    chain = (*model.preprocessing, *own)
    return _fit_steps(project, model, chain, _member_columns(c))[len(model.preprocessing) :]


def _fit_steps(project: Project, model: ModelConfig, steps, columns: tuple[str, ...]) -> list:
    steps = tuple(steps)
    n = len(columns)
    needs_train = [s for s in steps if _needs_train(s)]
    fitted: list[dict] = [{} for _ in steps]
    if needs_train:
        train = project.data.train
        if train is None or not Path(train).is_file():
            step = needs_train[0]
            raise NmrError(
                f"{step.mark or _where(project, model)}: models.{model.slot}.preprocessing: "
                f"{step.name} computes its statistics from data.train, "
                + ("which is not set" if train is None else f"but {train} does not exist")
            )
        for start in range(0, n, FIT_CHUNK_COLUMNS):
            chunk = list(columns[start : start + FIT_CHUNK_COLUMNS])
            X = _read_train_columns(Path(train), chunk, model)
            for i, step in enumerate(steps):
                stats = _chunk_fit(step, X)
                for key, value in stats.items():
                    fitted[i].setdefault(key, []).append(value)
                X = _pre_step(step, stats, X.shape[1]).apply(X)
    out = []
    for i, step in enumerate(steps):
        stats = {key: np.concatenate(parts) for key, parts in fitted[i].items()}
        out.append(_pre_step(step, stats, n))
    return out


def summary(project: Project, model: ModelConfig, compiled, feature_names) -> dict:
    """Plain data describing the bundle (shipped inside it, shown by `nmr inspect`)."""
    members = []
    for c in compiled:
        entry = {
            "kind": c.member.format,
            "artifact": _relative(project, c.member.artifact),
            "task": _task(c),
            "features": len(_member_columns(c)),
            "weight": c.member.weight,
        }
        own = tuple(getattr(c.member, "preprocessing", ()) or ())
        if own:
            entry["preprocessing"] = [_step_text(s) for s in own]
        if isinstance(c.model_ir, ir.TreeEnsemble):
            entry["trees"] = int(c.model_ir.n_trees)
            entry["nodes"] = int(c.model_ir.n_nodes)
        elif isinstance(c.model_ir, ir.Graph):
            entry["onnx_nodes"] = len(c.model_ir.nodes)
        members.append(entry)
    return {
        "nmr": __version__,
        "slot": model.slot,
        "runtime": model.runtime,
        "signature": 1 if model.deploy.legacy_signature else 2,
        "features": len(feature_names),
        "ensemble": model.ensemble,
        "members": members,
        "preprocessing": [_step_text(s) for s in model.preprocessing],
        "postprocessing": [_step_text(s) for s in model.postprocessing],
        "raw_output": model.raw_output,
    }


# --- helpers ---------------------------------------------------------------------------------


def _needs_train(step: Step) -> bool:
    """Whether the step fits statistics on data.train (builder/steps.py ``fits_on_train``)."""
    spec = STEP_SPECS.get(step.name)
    fits = spec.fits_on_train if spec else ""
    return fits == "always" or (bool(fits) and step.get(fits) is None)


def _chunk_fit(step: Step, X: np.ndarray) -> dict:
    """This step's statistics on one column block of the (already transformed) train data."""
    if step.name == "fill_missing" and step.get("value") is None:
        with np.errstate(all="ignore"):
            values = (
                np.nanmedian(X, axis=0)
                if step.get("strategy") == "median"
                else np.nanmean(X, axis=0)
            )
        return {"values": values}
    if step.name == "standardize":
        with np.errstate(all="ignore"):
            mean = np.nanmean(X, axis=0)
            std = np.nanstd(X, axis=0)
        return {"mean": mean, "scale": std}
    return {}


def _pre_step(step: Step, stats: dict, n: int | None = None):
    """The kernel object of a preprocessing step (n: full column count for constant fills)."""
    if step.name == "fill_missing":
        if step.get("value") is not None:
            width = n if n is not None else 1
            return ks.FillMissing(np.full(width, float(step.get("value"))))
        # A column with no value at all in the train data has no median/mean: 0 keeps it defined.
        return ks.FillMissing(np.nan_to_num(stats["values"], nan=0.0))
    if step.name == "clip":
        lower, upper = step.get("min"), step.get("max")
        return ks.Clip(
            None if lower is None else float(lower), None if upper is None else float(upper)
        )
    if step.name == "standardize":
        mean = np.nan_to_num(stats["mean"], nan=0.0)
        scale = stats["scale"]
        # A constant (or empty) column has std 0: divide by 1 so it maps to 0 instead of NaN.
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return ks.Standardize(mean, scale)
    raise NmrError(f"{step.mark}: unknown preprocessing step {step.name!r}")


def _post_step(project: Project, model: ModelConfig, step: Step):
    if step.name == "neutralize":
        columns = step.feature_columns or tuple(step.get("features") or ())
        if isinstance(columns, str):
            columns = (columns,)
        if not columns:
            raise NmrError(f"{step.mark}: models.{model.slot}: neutralize needs features")
        proportion = step.get("proportion", STEP_SPECS["neutralize"].param("proportion").default)
        return ks.Neutralize(tuple(columns), float(proportion))
    if step.name == "blend_benchmark":
        return ks.BlendBenchmark(
            str(step.get("column")),
            float(step.get("weight")),
            str(step.get("on_missing", BLEND_ON_MISSING_DEFAULT)),
        )
    if step.name == "rank_per_era":
        return ks.RankPerEra()
    if step.name == "gaussianize_per_era":
        return ks.GaussianizePerEra()
    raise NmrError(f"{step.mark}: unknown postprocessing step {step.name!r}")


def _read_train_columns(train: Path, columns: list[str], model: ModelConfig) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        available = set(pq.read_schema(train).names)
    except (pa.ArrowException, OSError) as error:  # truncated / not parquet: ArrowInvalid
        raise NmrError(
            f"{train}: data.train is not a readable parquet file ({error}); models.{model.slot} "
            "fits its preprocessing on it"
        ) from error
    missing = [c for c in columns if c not in available]
    if missing:
        raise NmrError(
            f"{train}: data.train lacks {len(missing)} column(s) models.{model.slot} uses, "
            f"e.g. {', '.join(missing[:5])}"
        )
    try:
        table = pq.read_table(train, columns=columns)
    except (pa.ArrowException, OSError) as error:  # a footer that reads but corrupt pages
        raise NmrError(f"{train}: data.train could not be read ({error})") from error
    return table.to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)


def _member_columns(c: CompiledMember) -> tuple[str, ...]:
    names = tuple(getattr(c.evaluator, "feature_names", ()) or ())
    return names or tuple(c.member.features)


def _input_columns(compiled) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for c in compiled:
        for name in _member_columns(c):
            seen.setdefault(name, None)
    return tuple(seen)


def _task(c: CompiledMember) -> str:
    return getattr(c.evaluator, "task", None) or getattr(c.model_ir, "task", "regression")


def _step_text(step: Step) -> str:
    params = dict(step.params)
    if "features" in params and step.feature_columns:
        params["features"] = (
            params["features"]
            if isinstance(params["features"], str)
            else f"{len(step.feature_columns)} columns"
        )
    inner = ", ".join(f"{k}: {v}" for k, v in params.items())
    return f"{step.name}{{{inner}}}" if inner else step.name


def _relative(project: Project, path) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return path.name


def _where(project: Project, model: ModelConfig) -> str:
    return str(model.mark) if model.mark else project.config_path.name
