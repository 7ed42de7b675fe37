"""builder/steps.py is the one table of steps: the schema, the loader, the bundle and the shipped
kernel agree with it, step by step and parameter by parameter."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from builder import bundle
from builder.config import (
    POSTPROCESSING_STEPS,
    PREPROCESSING_STEPS,
    ConfigError,
    load,
    load_schema,
)
from builder.config.model import Step
from builder.kernels import steps as ks
from builder.steps import BY_NAME, STEPS, names

SCHEMA_DEFS = load_schema()["$defs"]
SCHEMA_STAGE = {"pre": "preprocessingStep", "post": "postprocessingStep"}


def _schema_step(spec) -> dict:
    return SCHEMA_DEFS[SCHEMA_STAGE[spec.stage]]["properties"][spec.name]


def _minimal_params(spec) -> dict:
    """The step's required parameters (and one of each alternative) with valid values."""
    values = {"number": 1.0, "string": "v2_benchmark", "features": "small"}
    params = {}
    for param in spec.params:
        wanted = param.required or param.name in (
            spec.exactly_one_of[:1] + spec.at_least_one_of[:1]
        )
        if wanted:
            params[param.name] = param.choices[0] if param.choices else values[param.type]
    if spec.name == "blend_benchmark":
        params["weight"] = 0.5
    return params


def test_schema_allows_exactly_the_registered_step_names_per_stage():
    assert PREPROCESSING_STEPS == names("pre")
    assert POSTPROCESSING_STEPS == names("post")


@pytest.mark.parametrize("spec", STEPS, ids=lambda s: s.name)
def test_schema_parameters_of_each_step_match_the_registry(spec):
    schema = _schema_step(spec)
    properties = schema.get("properties", {})
    assert sorted(properties) == sorted(p.name for p in spec.params)
    assert sorted(schema.get("required", [])) == sorted(p.name for p in spec.params if p.required)
    for param in spec.params:
        prop = properties[param.name]
        if param.choices:
            assert tuple(prop["enum"]) == param.choices, param.name
        elif param.type == "features":
            assert prop == {"$ref": "#/$defs/features"}, param.name
        else:
            assert prop["type"] == param.type, param.name
        assert prop.get("minimum") == param.minimum, param.name
        assert prop.get("maximum") == param.maximum, param.name


@pytest.mark.parametrize("spec", STEPS, ids=lambda s: s.name)
def test_schema_alternatives_of_each_step_match_the_registry(spec):
    schema = _schema_step(spec)
    exactly = [tuple(alt["required"]) for alt in schema.get("oneOf", [])]
    assert exactly == [(name,) for name in spec.exactly_one_of]
    assert (schema.get("minProperties") == 1) == bool(spec.at_least_one_of)


@pytest.mark.parametrize("spec", STEPS, ids=lambda s: s.name)
def test_each_step_ships_the_kernel_class_the_registry_names(spec):
    kernel = getattr(ks, spec.kernel)
    assert kernel.name == spec.name


@pytest.mark.parametrize("spec", STEPS, ids=lambda s: s.name)
def test_bundle_makes_the_registered_kernel_for_each_step(spec):
    params = tuple(sorted(_minimal_params(spec).items()))
    step = Step(spec.name, params, ("feature_a",) if spec.name == "neutralize" else ())
    if spec.stage == "pre":
        stats = {"values": np.zeros(2), "mean": np.zeros(2), "scale": np.ones(2)}
        made = bundle._pre_step(step, stats, n=2)
    else:
        made = bundle._post_step(None, None, step)
    assert type(made) is getattr(ks, spec.kernel)


def test_bundle_bounds_the_output_after_exactly_the_registered_bounded_steps():
    assert set(bundle.BOUNDED_STEPS) == {s.name for s in STEPS if s.bounded}
    assert set(bundle.BOUNDED_STEPS) | set(bundle.UNBOUNDED_STEPS) == set(names("post"))


def test_bundle_fits_on_train_exactly_the_steps_the_registry_says():
    fitted = {
        spec.name
        for spec in STEPS
        if bundle._needs_train(Step(spec.name, tuple(sorted(_minimal_params(spec).items()))))
    }
    assert fitted == {"standardize"}  # fill_missing with a value fits nothing
    assert bundle._needs_train(Step("fill_missing", (("strategy", "median"),)))


def test_registered_defaults_are_what_the_kernels_use_when_the_parameter_is_absent():
    neutralize = bundle._post_step(None, None, Step("neutralize", (), ("feature_a",)))
    assert neutralize.proportion == BY_NAME["neutralize"].param("proportion").default
    blend = bundle._post_step(
        None, None, Step("blend_benchmark", (("column", "c"), ("weight", 0.5)))
    )
    assert blend.on_missing == BY_NAME["blend_benchmark"].param("on_missing").default


@pytest.fixture
def project(config_project: Path) -> Path:
    return config_project  # tests/conftest.py


def _write_config(project: Path, spec, params: dict) -> Path:
    section = "preprocessing" if spec.stage == "pre" else "postprocessing"
    step = json.dumps({spec.name: params})
    tail = "\n                  - rank_per_era: {}" if spec.stage == "post" else ""
    (project / "numerai.yaml").write_text(
        textwrap.dedent(
            f"""
            version: 1
            models:
              m:
                artifact: artifacts/a.txt
                features: small
                {section}:
                  - {step}{tail}
            """
        ).lstrip("\n")
    )
    return project / "numerai.yaml"


@pytest.mark.parametrize("spec", STEPS, ids=lambda s: s.name)
def test_loader_accepts_each_step_with_its_registered_minimal_parameters(project, spec):
    (project / "data" / "train.parquet").write_bytes(b"placeholder: only its existence is checked")
    config = load(_write_config(project, spec, _minimal_params(spec)))
    (model,) = config.models
    loaded = model.preprocessing if spec.stage == "pre" else model.postprocessing
    assert loaded[0].name == spec.name


@pytest.mark.parametrize("spec", STEPS, ids=lambda s: s.name)
def test_loader_asks_for_train_data_exactly_for_steps_that_fit_on_it(project, spec):
    params = _minimal_params(spec)
    if spec.fits_on_train not in ("", "always"):
        # the fitting form: the parameter whose absence means "fit" replaced by its alternative
        params = {"strategy": "median"}
    path = _write_config(project, spec, params)
    if spec.fits_on_train:
        with pytest.raises(ConfigError, match="needs training data"):
            load(path)
    else:
        load(path)
