"""`nmr supported` prints the code's registries, and the README's support section comes from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from builder import artifacts, supported
from builder.artifacts import lightgbm, sklearn, sklearn_models, xgboost
from builder.compile.onnx import SUPPORTED_OPS
from builder.steps import STEPS

README = Path(__file__).resolve().parents[1] / "README.md"


def _nmr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from builder.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def as_json() -> dict:
    proc = _nmr("supported", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_supported_json_lists_every_registered_onnx_op_with_its_opsets(as_json):
    listed = {(o["domain"], o["op"], o["min_opset"], o["max_opset"]) for o in as_json["onnx_ops"]}
    assert listed == {(s.domain_label, s.op, s.min_opset, s.max_opset) for s in SUPPORTED_OPS}


def test_supported_json_lists_every_artifact_format_with_its_stated_tolerance(as_json):
    assert {row["format"] for row in as_json["formats"]} == set(artifacts.FORMATS)
    stated = {(row["format"], row["family"], row["tolerance"]) for row in as_json["formats"]}
    assert stated == {(fmt, r.family, r.tolerance) for fmt, r in artifacts.support()}
    dense = next(r for r in as_json["formats"] if r["family"] == "scikit-learn dense")
    assert dense["tolerance"] == sklearn_models.DENSE_TOLERANCE


def test_supported_json_lists_the_readers_estimators_and_objectives(as_json):
    estimators = as_json["sklearn_estimators"]
    assert estimators["trees"] == list(sklearn.SUPPORTED)
    for family, names in sklearn_models.supported_estimators().items():
        assert estimators[family] == list(names)
    assert as_json["lightgbm_objectives"] == sorted(lightgbm.OBJECTIVES)
    assert as_json["xgboost_objectives"] == sorted(xgboost.OBJECTIVES)


def test_supported_json_lists_every_step_with_its_parameters(as_json):
    listed = {s["name"]: [p["name"] for p in s["parameters"]] for s in as_json["steps"]}
    assert listed == {spec.name: [p.name for p in spec.params] for spec in STEPS}


def test_supported_text_names_each_format_op_and_step():
    proc = _nmr("supported")
    assert proc.returncode == 0, proc.stderr
    for fmt in artifacts.FORMATS:
        assert f"  {fmt}: " in proc.stdout
    for spec in SUPPORTED_OPS:
        assert f"  {spec.op} ({spec.domain_label}, " in proc.stdout
    for step in STEPS:
        assert f" {step.name}: " in proc.stdout


def test_difference_cell_says_bit_for_bit_only_for_a_zero_tolerance():
    assert supported.difference(0.0) == "0.0 (bit for bit)"
    assert supported.difference(1e-12) == "at most 1e-12 relative"
    assert (
        supported.difference(0.0, "`RawFormulaVal`") == "0.0 (bit for bit) against `RawFormulaVal`"
    )


def test_readme_support_section_is_rendered_from_the_registries():
    assert supported.markdown() in README.read_text(encoding="utf-8")
