"""The preprocessing and postprocessing steps of numerai.yaml, one registration per step.

``STEPS`` is the one table of what a step is: its name, its stage (``pre`` acts on the feature
matrix, ``post`` on the prediction vector), its parameters with type, range and default, whether
it fits statistics on ``data.train``, whether its output is bounded to [0, 1], and the class in
``builder/kernels/steps.py`` that ships. The schema (``schema/numerai.schema.json``), the loader
(``builder/config/loader.py``), the bundle (``builder/bundle.py``) and the kernel are checked
against it by tests/test_steps_registry.py, and ``nmr supported`` and the README print it.

Nothing here ships: the kernel classes do (kernels never import this module).
"""

from __future__ import annotations

from dataclasses import dataclass

_KINDS = {"features": "a feature set name or a list of columns"}


@dataclass(frozen=True)
class Param:
    """One parameter of a step, as numerai.yaml spells it."""

    name: str
    type: str  # "number", "string", "features" (a feature-set name or a list of columns)
    required: bool = False
    default: object = None  # None: no default (absent means "not applied")
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # a closed set of strings (the type is then "string")

    def describe(self) -> str:
        """``weight: number in [0, 1], required`` -- one line for tables and `nmr supported`."""
        kind = " or ".join(self.choices) if self.choices else _KINDS.get(self.type, self.type)
        if self.minimum is not None or self.maximum is not None:
            low = "-inf" if self.minimum is None else f"{self.minimum:g}"
            high = "inf" if self.maximum is None else f"{self.maximum:g}"
            kind += f" in [{low}, {high}]"
        if self.required:
            kind += ", required"
        elif self.default is not None:
            kind += f", default {self.default}"
        return f"{self.name}: {kind}"


@dataclass(frozen=True)
class StepSpec:
    """One step: what numerai.yaml accepts and what the pickle runs."""

    name: str
    stage: str  # "pre" | "post"
    kernel: str  # the class name in builder/kernels/steps.py
    summary: str
    params: tuple[Param, ...] = ()
    # exactly one of these must be given (fill_missing: value or strategy)
    exactly_one_of: tuple[str, ...] = ()
    # at least one of these must be given (clip: min, max or both)
    at_least_one_of: tuple[str, ...] = ()
    fits_on_train: str = ""  # "": never; "always"; or the parameter whose absence means "fit"
    bounded: bool = False  # post steps: every output value is inside [0, 1] whatever came in

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        "fill_missing",
        "pre",
        "FillMissing",
        "Replace NaN features by a constant value or by the train-data median/mean of each column.",
        (Param("value", "number"), Param("strategy", "string", choices=("median", "mean"))),
        exactly_one_of=("value", "strategy"),
        fits_on_train="value",
    ),
    StepSpec(
        "clip",
        "pre",
        "Clip",
        "Clip features into [min, max].",
        (Param("min", "number"), Param("max", "number")),
        at_least_one_of=("min", "max"),
    ),
    StepSpec(
        "standardize",
        "pre",
        "Standardize",
        "(x - mean) / std per column, with means and stds from the train data, baked into the "
        "pickle.",
        fits_on_train="always",
    ),
    StepSpec(
        "neutralize",
        "post",
        "Neutralize",
        "Subtract proportion of the prediction's linear exposure to the features, per era.",
        (
            Param("features", "features", required=True),
            Param("proportion", "number", default=1.0, minimum=0, maximum=1),
        ),
    ),
    StepSpec(
        "blend_benchmark",
        "post",
        "BlendBenchmark",
        "Blend the prediction with a benchmark model column from live_benchmark_models.",
        (
            Param("column", "string", required=True),
            Param("weight", "number", required=True, minimum=0, maximum=1),
            # skip: Numerai gives no second run on a round day, so a benchmark file without
            # the column must not cost the submission (builder/kernels/steps.py BlendBenchmark)
            Param("on_missing", "string", default="skip", choices=("skip", "fail")),
        ),
        bounded=True,
    ),
    StepSpec(
        "rank_per_era",
        "post",
        "RankPerEra",
        "Rank predictions within each era into (0, 1).",
        bounded=True,
    ),
    StepSpec(
        "gaussianize_per_era",
        "post",
        "GaussianizePerEra",
        "Rank then map through the normal quantile function, per era.",
    ),
)

BY_NAME: dict[str, StepSpec] = {spec.name: spec for spec in STEPS}


def names(stage: str) -> tuple[str, ...]:
    """The step names of one stage ("pre" or "post"), in registry order."""
    return tuple(spec.name for spec in STEPS if spec.stage == stage)
