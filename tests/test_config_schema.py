"""numerai.schema.json: a valid 2020-12 schema, shipped in the wheel, matched by the example."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from builder.config import (
    POSTPROCESSING_STEPS,
    PREPROCESSING_STEPS,
    load,
    load_schema,
    schema_path,
)
from builder.datasets import SMALL, synthesize

REPO = Path(__file__).resolve().parents[1]


def test_schema_is_a_valid_draft_2020_12_schema():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_checkout_loader_reads_the_schema_at_the_repository_root():
    assert schema_path() == REPO / "schema" / "numerai.schema.json"


def test_step_names_come_from_the_schema():
    assert PREPROCESSING_STEPS == ("fill_missing", "clip", "standardize")
    assert POSTPROCESSING_STEPS == (
        "neutralize",
        "blend_benchmark",
        "rank_per_era",
        "gaussianize_per_era",
    )


def _schema_keys(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.add(key)
            _schema_keys(value, found)
        for value in node.values():
            _schema_keys(value, found)
    elif isinstance(node, list):
        for value in node:
            _schema_keys(value, found)
    return found


def _yaml_keys(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            _yaml_keys(value, found)
    elif isinstance(node, list):
        for value in node:
            _yaml_keys(value, found)
    return found


def test_example_file_shows_every_field_of_the_schema():
    example = yaml.safe_load((REPO / "numerai.yaml.example").read_text())
    missing = _schema_keys(load_schema(), set()) - _yaml_keys(example, set())
    assert not missing, f"numerai.yaml.example lacks {sorted(missing)}"


def test_example_file_validates_next_to_its_data_and_artifacts(tmp_path):
    shutil.copy(REPO / "numerai.yaml.example", tmp_path / "numerai.yaml")
    synthesize(tmp_path / "data", sizes=SMALL)
    (tmp_path / "artifacts").mkdir()
    for name in ("lgbm.txt", "a.txt", "mlp.onnx"):
        (tmp_path / "artifacts" / name).write_text("placeholder: validation checks existence")
    for name in ("src/predict.py", "legacy/model.pkl"):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_text("placeholder: validation checks existence")
    project = load(tmp_path / "numerai.yaml")
    assert [m.slot for m in project.models] == ["my_model", "my_ensemble", "my_custom", "my_legacy"]
    assert [m.kind for m in project.models] == ["artifact", "ensemble", "source", "pickle"]


@pytest.mark.slow
def test_wheel_ships_the_schema_and_the_installed_loader_finds_it(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("nmr-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = json.loads(archive.read("builder/schema/numerai.schema.json"))
        archive.extractall(tmp_path / "site")
    assert shipped == load_schema()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from builder.config.schema import schema_path; print(schema_path())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "site")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert out == str(tmp_path / "site" / "builder" / "schema" / "numerai.schema.json")
