"""numerai.yaml -> Project: find the file, parse with marks, check the schema, resolve, check meaning.

Every problem found is collected (YAML duplicates, schema violations, missing files, unknown
feature sets, columns and runtime tags, ...) and raised together as one ``ConfigError``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from builder.config.model import (
    DataConfig,
    DeployConfig,
    Mark,
    MemberConfig,
    ModelConfig,
    PickleConfig,
    Project,
    SourceConfig,
    Step,
)
from builder.config.problems import ConfigError, Problem, format_path
from builder.config.schema import schema_problems, suggest
from builder.config.yamlmarks import Parsed, parse_yaml
from builder.errors import NmrError

CONFIG_NAME = "numerai.yaml"
DEFAULT_DATA_DIR = "data"
# numerai-predict HEAD reads v5.2 files by default (predict.py --dataset, docs/design/numerai.md §1.2).
DEFAULT_DATA_VERSION = "v5.2"
# Written nowhere but implied: a slot with no postprocessing gets per-era ranks, so the output
# is always inside [0, 1] as predict.py demands (docs/design/numerai.md §1.6).
DEFAULT_POSTPROCESSING = (Step("rank_per_era"),)
DATA_FILES = {
    "train": "train.parquet",
    "validation": "validation.parquet",
    "live": "live.parquet",
    "live_benchmarks": "live_benchmark_models.parquet",
    "validation_benchmarks": "validation_benchmark_models.parquet",
}
_MAX_COLUMN_PROBLEMS = 20


def find_config(start: Path | None = None) -> Path:
    """The numerai.yaml to use: ``NMR_CONFIG`` (only when ``start`` is None), else the first
    numerai.yaml in ``start`` (default: the working directory) or one of its parents."""
    if start is None:
        env = os.environ.get("NMR_CONFIG")
        if env:
            path = Path(env).expanduser()
            if not path.is_file():
                raise NmrError(f"NMR_CONFIG={env} does not name an existing file")
            return path.resolve()
        start = Path.cwd()
    start = Path(start).expanduser().resolve()
    if start.is_file():
        return start
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise NmrError(
        f"no {CONFIG_NAME} in {start} or any parent directory; run `nmr init` or pass -f FILE"
    )


def load(path: Path | None = None) -> Project:
    """Load and validate numerai.yaml; ``path`` None means discovery (see ``find_config``).

    Raises ``ConfigError`` listing every problem, each at its line and column.
    """
    config_path = Path(path).expanduser().resolve() if path is not None else find_config()
    if config_path.is_dir():
        config_path = config_path / CONFIG_NAME
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NmrError(f"{config_path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise NmrError(f"{config_path}: cannot read: {error}") from None
    return load_text(text, config_path)


def load_text(text: str, config_path: Path) -> Project:
    """Validate ``text`` as if it were the file at ``config_path`` (paths resolve next to it)."""
    config_path = Path(config_path).resolve()
    display = _display_name(config_path)
    parsed = parse_yaml(text, display)
    if parsed.problems and parsed.data is None:
        raise ConfigError(parsed.problems)
    if parsed.empty:
        raise ConfigError(
            [
                Problem(
                    display,
                    1,
                    1,
                    "",
                    "the file is empty; start from `nmr init` or numerai.yaml.example",
                )
            ]
        )
    if not isinstance(parsed.data, dict):
        mark = parsed.mark(())
        kind = "a list" if isinstance(parsed.data, list) else f"the value {parsed.data!r}"
        raise ConfigError(
            [
                Problem(
                    display,
                    mark.line,
                    mark.col,
                    "",
                    f"the top level must be a mapping (version:, runtime:, data:, models:), found {kind}",
                )
            ]
        )
    problems = list(parsed.problems) + [
        p for p in schema_problems(parsed) if (p.path, p.line, p.col) not in parsed.broken
    ]
    project = _Resolver(parsed, config_path, problems).project()
    if problems:
        error = ConfigError(problems)
        # what could be resolved, so `nmr validate` can also check the artifacts of the slots
        # the config problems do not concern (every slot's problem in one run)
        error.project = project
        raise error
    return project


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Resolver:
    """Builds the Project from schema-checked data, adding problems that need the file system,
    features.json or the runtime catalog. It reads only values of the right type, so a value the
    schema already reported is not reported twice."""

    def __init__(self, parsed: Parsed, config_path: Path, problems: list[Problem]):
        self.parsed = parsed
        self.doc: dict = parsed.data
        self.config_path = config_path
        self.root = config_path.parent
        self.problems = problems
        self._feature_sets: dict[str, list[str]] | None = None
        self._features_json_problem: str | None = None

    # -- problems ----------------------------------------------------------------------------

    def problem(self, path: tuple, message: str, *, key: bool = False) -> None:
        mark = self.parsed.mark(path, key=key)
        self.problems.append(Problem(mark.file, mark.line, mark.col, format_path(path), message))

    def mark(self, path: tuple, *, key: bool = False) -> Mark:
        return self.parsed.mark(path, key=key)

    # -- sections ----------------------------------------------------------------------------

    def project(self) -> Project:
        from builder import runtimes

        version = self.doc.get("version")
        runtime = _typed(self.doc, "runtime", str)
        if runtime is not None:
            runtime = self.check_runtime(runtime, ("runtime",))
        else:
            runtime = runtimes.default_tag()
        self.data = self.data_config()
        models = []
        for slot, raw in _typed(self.doc, "models", dict, {}).items():
            if isinstance(raw, dict):
                models.append(self.model(slot, raw, runtime))
        return Project(
            config_path=self.config_path,
            root=self.root,
            version=version if isinstance(version, int) else 1,
            runtime=runtime,
            data=self.data,
            models=tuple(models),
        )

    def data_config(self) -> DataConfig:
        raw = _typed(self.doc, "data", dict, {})
        directory = (self.root / _typed(raw, "dir", str, DEFAULT_DATA_DIR)).resolve()
        files: dict[str, Path | None] = {}
        for key, default_name in DATA_FILES.items():
            name = _typed(raw, key, str)
            if name is None:
                default = directory / default_name
                files[key] = default if default.is_file() else None
                continue
            path = directory / name
            if not path.is_file():
                self.problem(("data", key), f"file not found: {path}")
            files[key] = path
        bmc_benchmark = _typed(raw, "bmc_benchmark", str)
        bench = files.get("validation_benchmarks")
        if bmc_benchmark is not None and bench is not None and bench.is_file():
            self.check_columns_of(bench, bmc_benchmark, ("data", "bmc_benchmark"))
        return DataConfig(
            dir=directory,
            version=_typed(raw, "version", str, DEFAULT_DATA_VERSION),
            features_json=directory / "features.json",
            bmc_benchmark=bmc_benchmark,
            **files,
        )

    def model(self, slot: str, raw: dict, default_runtime: str) -> ModelConfig:
        base = ("models", slot)
        runtime = _typed(raw, "runtime", str)
        if runtime is not None:
            runtime = self.check_runtime(runtime, (*base, "runtime"))
        default_features = None
        if "features" in raw:
            default_features = self.features(raw["features"], (*base, "features"))
        members: list[MemberConfig] = []
        is_ensemble = "ensemble" in raw and "artifact" not in raw
        if isinstance(raw.get("artifact"), str):
            if "features" not in raw and "ensemble" not in raw:
                self.problem(
                    base,
                    "needs features: a feature set from features.json or a list of columns",
                    key=True,
                )
            members.append(
                self.member(
                    raw, base, default_features, raw.get("features"), fmt_key=(*base, "format")
                )
            )
        elif isinstance(raw.get("ensemble"), list):
            if "format" in raw:
                self.problem(
                    (*base, "format"),
                    "format belongs to each ensemble member, not to the model",
                    key=True,
                )
            for i, item in enumerate(raw["ensemble"]):
                if not isinstance(item, dict) or not isinstance(item.get("artifact"), str):
                    continue
                path = (*base, "ensemble", i)
                features, spec = default_features, raw.get("features")
                if "features" in item:
                    features, spec = (
                        self.features(item["features"], (*path, "features")),
                        item["features"],
                    )
                elif "features" not in raw:
                    self.problem(
                        path,
                        "needs features: set features on this member or on the model",
                    )
                members.append(
                    self.member(
                        item,
                        path,
                        features,
                        spec,
                        fmt_key=(*path, "format"),
                        steps=self.steps(item, path, "preprocessing"),
                    )
                )
        preprocessing = self.steps(raw, base, "preprocessing")
        if "postprocessing" in raw and isinstance(raw["postprocessing"], list):
            postprocessing = self.steps(raw, base, "postprocessing")
            raw_output = len(raw["postprocessing"]) == 0
        else:
            postprocessing, raw_output = DEFAULT_POSTPROCESSING, False
        shipped = self.shipped_slot(raw, base, default_features)
        if shipped is not None:
            # a source: function returns its own predictions: nmr adds postprocessing only
            # when asked (a pickle: slot cannot be wrapped at all, see shipped_slot)
            if "postprocessing" not in raw:
                postprocessing, raw_output = (), True
        else:
            shipped = {}
            if "function" in raw:
                self.problem(
                    (*base, "function"), "function applies to source: slots only", key=True
                )
        return ModelConfig(
            slot=slot,
            members=tuple(members),
            ensemble=is_ensemble,
            preprocessing=preprocessing,
            postprocessing=postprocessing,
            raw_output=raw_output,
            runtime=runtime or default_runtime,
            deploy=self.deploy(_typed(raw, "deploy", dict, {})),
            mark=self.mark(base, key=True),
            **shipped,
        )

    def shipped_slot(self, raw: dict, base: tuple, features) -> dict | None:
        """The ModelConfig fields of a source: or pickle: slot (None for other slots)."""
        key = "source" if isinstance(raw.get("source"), str) else None
        if key is None and isinstance(raw.get("pickle"), str):
            key = "pickle"
        if key is None or "artifact" in raw or "ensemble" in raw:
            return None
        path = (self.root / raw[key]).resolve()
        if not path.is_file():
            self.problem((*base, key), f"{key} file not found: {path}")
        elif key == "source" and path.suffix != ".py":
            self.problem((*base, key), f"{raw[key]!r} is not a Python file (.py)")
        elif key == "source" and not path.is_relative_to(self.root.resolve()):
            # its project modules and the files it reads are found and hashed under the root
            self.problem(
                (*base, key),
                f"{raw[key]!r} is outside the project: put the source under {self.root}",
            )
        for other in ("format", "preprocessing"):
            if other in raw:
                self.problem(
                    (*base, other),
                    f"{other} does not apply to a {key}: slot (its code sees the raw live "
                    "features; do this inside it)",
                    key=True,
                )
        if key == "pickle":
            for other in ("function", "postprocessing"):
                if other in raw:
                    self.problem(
                        (*base, other),
                        f"{other} does not apply to a pickle: slot, which ships as it is; "
                        "use a source: slot to wrap your code with nmr's postprocessing",
                        key=True,
                    )
        if features is None and "features" not in raw:
            sets = self.feature_sets(base, required=False) or {}
            features = list(sets.get("all") or sorted(_known_columns(sets))) if sets else []
        out = {"slot_features": tuple(features or ())}
        if key == "source":
            function = _typed(raw, "function", str, "predict")
            out["source"] = SourceConfig(path=path, function=function)
        else:
            out["pickle"] = PickleConfig(path=path)
        return out

    def member(
        self, raw: dict, path: tuple, features, spec, *, fmt_key: tuple, steps: tuple = ()
    ) -> MemberConfig:
        from builder.artifacts import FORMATS, infer_format

        written = raw["artifact"]
        artifact = (self.root / written).resolve()
        exists = artifact.is_file()
        if not exists:
            self.problem((*path, "artifact"), f"artifact file not found: {artifact}")
        fmt = _typed(raw, "format", str)
        if fmt is None:
            fmt = infer_format(artifact) if exists or artifact.suffix != ".json" else None
            if fmt is None and exists:
                self.problem(
                    (*path, "artifact"),
                    f"cannot infer the artifact format of {written!r} from its name or content; "
                    f"set format: {' | '.join(FORMATS)}",
                )
        return MemberConfig(
            artifact=artifact,
            format=fmt or "unknown",
            features=tuple(features or ()),
            feature_set=spec if isinstance(spec, str) else None,
            weight=float(_number(raw, "weight", 1.0)),
            mark=self.mark((*path, "artifact")),
            preprocessing=steps,
        )

    def steps(self, raw: dict, base: tuple, section: str) -> tuple[Step, ...]:
        items = _typed(raw, section, list, [])
        steps = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            name, params = next(iter(item.items()))
            path = (*base, section, i, name)
            if params is None:
                params = {}
            if not isinstance(params, dict):
                continue
            steps.append(self.step(name, params, path))
        return tuple(steps)

    def step(self, name: str, params: dict, path: tuple) -> Step:
        columns: tuple[str, ...] = ()
        if name in ("fill_missing", "standardize"):
            strategy = params.get("strategy") if name == "fill_missing" else "mean and std"
            if isinstance(strategy, str) and self.data.train is None:
                self.problem(
                    path,
                    f"{name} with {strategy} needs training data: set data.train or put "
                    f"{DATA_FILES['train']} in {self.data.dir}",
                    key=True,
                )
        elif name == "clip":
            low, high = _number(params, "min", None), _number(params, "max", None)
            if low is not None and high is not None and low > high:
                self.problem(path, f"min ({low}) is greater than max ({high})", key=True)
        elif name == "neutralize" and "features" in params:
            columns = tuple(self.features(params["features"], (*path, "features")) or ())
        elif name == "blend_benchmark" and isinstance(params.get("column"), str):
            self.check_benchmark_column(params["column"], (*path, "column"))
        frozen = tuple(sorted((k, _freeze(v)) for k, v in params.items()))
        return Step(name, frozen, columns, self.mark(path, key=True))

    def deploy(self, raw: dict) -> DeployConfig:
        return DeployConfig(
            create=_typed(raw, "create", bool, False),
            trigger=_typed(raw, "trigger", bool, False),
            data_version=_typed(raw, "data_version", str),
            legacy_signature=_typed(raw, "legacy_signature", bool, False),
            disable_webhook=_typed(raw, "disable_webhook", bool, False),
        )

    # -- checks against the world ------------------------------------------------------------

    def check_runtime(self, tag: str, path: tuple) -> str:
        """The catalog tag for ``tag``: an alias (the image name without ``:ref``, as
        ``nmr runtimes`` documents) becomes its full tag, so the lock and the deploy state
        record one spelling."""
        from builder import runtimes

        known = runtimes.known_tags()
        if tag in known:
            return tag
        alias_of = {a: r.tag for r in runtimes.runtimes() for a in r.aliases}
        if tag in alias_of:
            return alias_of[tag]
        close = suggest(tag, known, listing=False)
        self.problem(path, f"unknown runtime {tag!r}{close} (known: {', '.join(known)})")
        return tag

    def check_benchmark_column(self, column: str, path: tuple) -> None:
        benchmarks = self.data.live_benchmarks
        if benchmarks is None or not benchmarks.is_file():
            return
        self.check_columns_of(benchmarks, column, path)

    def check_columns_of(self, benchmarks: Path, column: str, path: tuple) -> None:
        """A problem at ``path`` unless ``column`` is a model column of that benchmark file."""
        try:
            import pyarrow.parquet as pq

            # the file's id index (and an era column, if any) are stored as columns but are
            # not benchmark predictions to blend with
            names = [
                n
                for n in pq.read_schema(benchmarks).names
                if not n.startswith("__") and n not in ("id", "era")
            ]
        except Exception as error:  # a corrupt file: say so where the column is named
            self.problem(path, f"cannot read the columns of {benchmarks}: {error}")
            return
        if column not in names:
            self.problem(
                path,
                f"column {column!r} is not in {benchmarks.name}{suggest(column, names)}",
            )

    def features(self, spec, path: tuple) -> list[str] | None:
        """Resolve a feature spec (set name or column list) to columns; None after a problem."""
        if isinstance(spec, str):
            sets = self.feature_sets(path)
            if sets is None:
                return None
            if spec not in sets:
                close = suggest(spec, sets, listing=False)
                self.problem(
                    path,
                    f"unknown feature set {spec!r}{close} (known in "
                    f"{self.data.features_json.name}: {', '.join(sets)})",
                )
                return None
            return list(sets[spec])
        if isinstance(spec, list) and all(isinstance(c, str) for c in spec):
            sets = self.feature_sets(path, required=False)
            if sets:
                known = _known_columns(sets)
                unknown = [(i, c) for i, c in enumerate(spec) if c not in known]
                for i, column in unknown[:_MAX_COLUMN_PROBLEMS]:
                    close = suggest(column, known, listing=False)
                    self.problem(
                        (*path, i),
                        f"unknown feature column {column!r}{close} (not in "
                        f"{self.data.features_json.name})",
                    )
                if len(unknown) > _MAX_COLUMN_PROBLEMS:
                    self.problem(
                        path,
                        f"... and {len(unknown) - _MAX_COLUMN_PROBLEMS} more unknown feature columns",
                    )
            return list(spec)
        return None

    def feature_sets(self, path: tuple, *, required: bool = True) -> dict[str, list[str]] | None:
        """features.json's feature_sets (read once); reports why it is unusable when required."""
        if self._feature_sets is None and self._features_json_problem is None:
            self._feature_sets, self._features_json_problem = _read_feature_sets(
                self.data.features_json
            )
        if self._feature_sets is None and required:
            self.problem(
                path,
                f"feature sets come from features.json, but {self._features_json_problem}",
            )
        return self._feature_sets


def _read_feature_sets(path: Path) -> tuple[dict[str, list[str]] | None, str | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, (
            f"{path} does not exist (create it with `nmr data synth {path.parent}` "
            "or download Numerai's data)"
        )
    except (OSError, ValueError) as error:
        return None, f"{path} cannot be read: {error}"
    sets = doc.get("feature_sets") if isinstance(doc, dict) else None
    if not isinstance(sets, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in sets.values()
    ):
        return None, f"{path} has no feature_sets mapping of names to column lists"
    return sets, None


def _known_columns(sets: dict[str, list[str]]) -> set[str]:
    if "all" in sets:
        return set(sets["all"])
    return {c for columns in sets.values() for c in columns}


def _typed(raw: dict, key: str, kind: type, default=None):
    value = raw.get(key, default)
    if kind is not bool and isinstance(value, bool):
        return default
    return value if isinstance(value, kind) else default


def _number(raw: dict, key: str, default):
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return value


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value
