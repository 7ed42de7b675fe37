"""Live data and benchmarks of a test run: never silently substituted (builder/runner/live.py).

The project is `nmr init --example` plus a slot `blended` whose postprocessing reads the live
benchmarks (blend_benchmark), built once for the module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.config import load
from builder.errors import NmrError
from builder.runner.live import GIVEN, PROJECT, SYNTHETIC, choose_live

pytest.importorskip("lightgbm")

BLENDED = """
  blended:
    artifact: artifacts/lgbm_medium.txt
    features: medium
    postprocessing:
      - blend_benchmark: {column: v52_lgbm_ender20, weight: 0.5}
      - rank_per_era: {}
"""


# run_pickle's scratch directories go to pytest's tmp tree (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("scratch_in_tmp")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("live") / "proj"
    done = CliRunner().invoke(app, ["init", "--example", str(root)])
    assert done.exit_code == 0, done.output
    config = root / "numerai.yaml"
    config.write_text(config.read_text() + BLENDED)
    done = CliRunner().invoke(app, ["build", "blended", "example_model", "-f", str(config)])
    assert done.exit_code == 0, done.output
    return root


@pytest.fixture()
def copy(project, tmp_path, monkeypatch) -> Path:
    """A private copy of the built project, as the working directory."""
    root = tmp_path / "proj"
    shutil.copytree(project, root)
    monkeypatch.chdir(root)
    return root


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _live_copy(root: Path, name: str, extra_rows: int = 0) -> Path:
    """The project's live file under another name, with ``extra_rows`` new ids appended."""
    live = pd.read_parquet(root / "data" / "live.parquet")
    if extra_rows:
        extra = live.iloc[:extra_rows].copy()
        extra.index = pd.Index([f"new{i}" for i in range(extra_rows)], name=live.index.name)
        live = pd.concat([live, extra])
    path = root / name
    live.to_parquet(path)
    return path


def _models(root: Path, *slots: str):
    project = load(root / "numerai.yaml")
    return project, [project.model(slot) for slot in slots]


# --- choosing (unit) -------------------------------------------------------------------------


def test_a_given_live_file_gets_the_project_benchmarks_when_they_cover_its_ids(copy):
    project, models = _models(copy, "blended")
    live = _live_copy(copy, "my_live.parquet")
    inputs = choose_live(project, models, copy / "scratch", live=live)
    assert (inputs.live_source, inputs.benchmarks_source) == (GIVEN, PROJECT)
    assert inputs.benchmarks == project.data.live_benchmarks


def test_benchmarks_lacking_live_ids_are_refused_naming_the_step_the_file_and_the_count(copy):
    project, models = _models(copy, "blended")
    live = _live_copy(copy, "my_live.parquet", extra_rows=7)
    with pytest.raises(NmrError) as caught:
        choose_live(project, models, copy / "scratch", live=live)
    message = str(caught.value)
    assert message.startswith("blend_benchmark needs live benchmarks for every live id")
    assert f"{project.data.live_benchmarks} lacks 7 of the 507 ids in {live}" in message


def test_benchmarks_lacking_live_ids_are_used_with_a_note_when_no_step_reads_them(copy):
    project, models = _models(copy, "example_model")
    live = _live_copy(copy, "my_live.parquet", extra_rows=7)
    inputs = choose_live(project, models, copy / "scratch", live=live)
    assert inputs.benchmarks_source == PROJECT
    assert inputs.notes == ("live_benchmark_models.parquet lacks 7 of the 507 live ids",)


def test_benchmarks_are_synthetic_only_when_there_is_no_benchmark_file(copy):
    project, models = _models(copy, "blended")
    live = _live_copy(copy, "my_live.parquet")
    assert choose_live(project, models, copy, live=live).benchmarks_source == PROJECT
    (copy / "data" / "live_benchmark_models.parquet").unlink()
    inputs = choose_live(project, models, copy, live=live)
    assert (inputs.benchmarks, inputs.benchmarks_source) == (None, SYNTHETIC)


def test_given_benchmarks_are_used_as_they_are(copy):
    project, models = _models(copy, "blended")
    given = copy / "data" / "live_benchmark_models.parquet"
    inputs = choose_live(project, models, copy, benchmarks=given)
    assert (inputs.benchmarks, inputs.benchmarks_source) == (given, GIVEN)


# --- nmr test (end to end) ---------------------------------------------------------------------


def _predictions(result: dict) -> pd.Series:
    return pd.read_csv(result["run"]["predictions_path"], index_col="id")["prediction"]


def test_nmr_test_live_without_benchmarks_blends_the_project_benchmarks(copy):
    live = _live_copy(copy, "my_live.parquet")
    bench = copy / "data" / "live_benchmark_models.parquet"
    plain = invoke("test", "blended", "--live", live, "--no-diagnostics", "--json")
    assert plain.exit_code == 0, plain.output
    (result,) = json.loads(plain.output)
    assert result["inputs"]["benchmarks_source"] == "project"
    assert result["synthetic"] == []
    first = _predictions(result)
    explicit = invoke(
        "test", "blended", "--live", live, "--benchmarks", bench, "--no-diagnostics", "--json"
    )
    (result,) = json.loads(explicit.output)
    pd.testing.assert_series_equal(first, _predictions(result))


def test_nmr_test_refuses_live_ids_the_benchmark_file_lacks_for_blend_benchmark(copy):
    live = _live_copy(copy, "my_live.parquet", extra_rows=3)
    done = invoke("test", "blended", "example_model", "--live", live, "--no-diagnostics")
    assert done.exit_code == 1
    assert "blended: Pending -> Error" in done.output
    assert "reason: blend_benchmark needs live benchmarks for every live id" in done.output
    assert "lacks 3 of the 503 ids" in done.output
    assert "Traceback" not in done.output
    # the other slot reads no benchmarks: it still runs, and is told what the file lacks
    assert "example_model: Pending -> Running -> Validating -> Success" in done.output
    assert "note: live_benchmark_models.parquet lacks 3 of the 503 live ids" in done.output


def test_synthetic_benchmarks_label_the_predictions_that_depend_on_them(copy):
    (copy / "data" / "live_benchmark_models.parquet").unlink()
    label = "benchmarks: synthetic (no file); the predictions depend on them"
    text = invoke("test", "blended", "--no-diagnostics")
    assert text.exit_code == 0, text.output
    assert f"note: {label} through blend_benchmark" in text.output
    assert f"note: {label}" in (copy / "build" / "blended" / "report.html").read_text()
    done = invoke("test", "blended", "--no-diagnostics", "--json")
    (result,) = json.loads(done.output)
    assert result["inputs"]["benchmarks_source"] == "synthetic"
    assert result["synthetic"] == [f"{label} through blend_benchmark"]


def test_synthetic_benchmarks_label_nothing_for_a_slot_that_does_not_read_them(copy):
    (copy / "data" / "live_benchmark_models.parquet").unlink()
    done = invoke("test", "example_model", "--no-diagnostics", "--json")
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.output)
    assert result["inputs"]["benchmarks_source"] == "synthetic"
    assert result["synthetic"] == []


def test_synthetic_live_data_labels_the_predictions_and_the_benchmarks_made_for_it(copy):
    (copy / "data" / "live.parquet").unlink()
    done = invoke("test", "blended", "--no-diagnostics", "--json")
    assert done.exit_code == 0, done.output
    (result,) = json.loads(done.output)
    assert result["inputs"]["live_source"] == "synthetic"
    assert result["synthetic"] == [
        "live data: synthetic (no live file), so the predictions are too",
        "benchmarks: synthetic (for the synthetic live ids); the predictions depend on them "
        "through blend_benchmark",
    ]


def test_apply_local_test_refuses_benchmarks_lacking_live_ids_for_blend_benchmark(copy):
    from builder.deploy.desired import local_tester
    from builder.deploy.plan import DesiredSlot

    bench_path = copy / "data" / "live_benchmark_models.parquet"
    bench = pd.read_parquet(bench_path)
    bench.iloc[4:].to_parquet(bench_path)  # 4 live ids lost
    project = load(copy / "numerai.yaml")
    pickle = copy / "build" / "blended" / "model.pkl"
    want = DesiredSlot("blended", "0" * 64, pickle, project.model("blended").runtime, "v5.2")
    ok, log = local_tester(project, copy / ".nmr")(want)
    assert not ok
    assert "ERROR:root:blend_benchmark needs live benchmarks for every live id" in log
    assert "lacks 4 of the 500 ids" in log


def test_pickle_features_resolve_a_feature_set_name_and_refuse_an_unknown_one(tmp_path):
    from types import SimpleNamespace

    from builder.testing import _pickle_features

    path = tmp_path / "features.json"
    path.write_text(json.dumps({"feature_sets": {"small": ["feature_a", "feature_b"]}}))
    project = SimpleNamespace(data=SimpleNamespace(features_json=path))
    assert _pickle_features("small", project) == ["feature_a", "feature_b"]
    assert _pickle_features("feature_a, feature_c", project) == ["feature_a", "feature_c"]
    assert _pickle_features(None, project) is None
    with pytest.raises(NmrError, match=r"--features 'large': not a feature set .*known: small"):
        _pickle_features("large", project)
