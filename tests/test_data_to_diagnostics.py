"""The whole path: `nmr data download` from the sandbox with numerapi's own code, then `nmr test`
reports CORR, per-target CORR, BMC, FNC and exposure equal to numerai-tools on the written
predictions (to 1e-9)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring

from builder.config import load
from builder.sandbox.server import SandboxServer
from tests import numerai_reference

pytestmark = pytest.mark.slow
pytest.importorskip("lightgbm")
TOL = 1e-9


def nmr(*args, cwd, env=None, timeout=900):
    return subprocess.run(
        [sys.executable, "-c", "from builder.cli import main; main()", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def tested(tmp_path_factory):
    """`nmr init --example`, its data moved to a sandbox datasets directory (DIR/v5.2/...) and
    fetched back with `nmr data download`, then `nmr build` and `nmr test --json`."""
    root = tmp_path_factory.mktemp("e2e")
    project = root / "proj"
    done = nmr("init", "--example", str(project), cwd=root)
    assert done.returncode == 0, done.stderr
    served = root / "datasets" / "v5.2"
    shutil.move(project / "data", served)
    server = SandboxServer(root / "state", datasets_dir=root / "datasets").start()
    try:
        done = nmr("data", "download", cwd=project, env={"NUMERAI_API_URL": server.url})
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    for name in ("validation.parquet", "validation_benchmark_models.parquet", "features.json"):
        assert (project / "data" / name).read_bytes() == (served / name).read_bytes()
    done = nmr("build", cwd=project)
    assert done.returncode == 0, done.stderr
    done = nmr("test", "--json", cwd=project)
    assert done.returncode == 0, done.stderr + done.stdout
    slots = {s["slot"]: s for s in json.loads(done.stdout)}
    config = load(project / "numerai.yaml")
    return {"project": project, "slots": slots, "config": config}


def reference_for(tested, slot):
    project = tested["project"]
    predictions = pd.read_parquet(project / "build" / slot / "validation_predictions.parquet")
    validation = pd.read_parquet(project / "data" / "validation.parquet")
    benchmarks = pd.read_parquet(project / "data" / "validation_benchmark_models.parquet")
    features = list(tested["config"].model(slot).features)
    return predictions, numerai_reference.per_era(
        predictions, validation, features, benchmarks, "v52_lgbm_ender20"
    )


def per_era_json(slot_json) -> pd.DataFrame:
    rows = slot_json["validation"]["per_era"]
    return pd.DataFrame(rows).set_index("era").astype({"corr": float})


@pytest.mark.parametrize("slot", ["example_model", "example_ensemble"])
def test_written_predictions_have_an_id_index_and_era_and_prediction_columns(tested, slot):
    predictions, _ = reference_for(tested, slot)
    assert predictions.index.name == "id"
    assert list(predictions.columns) == ["era", "prediction"]
    validation = pd.read_parquet(tested["project"] / "data" / "validation.parquet", columns=["era"])
    assert sorted(predictions.index) == sorted(validation.index)


@pytest.mark.parametrize("slot", ["example_model", "example_ensemble"])
def test_nmr_test_json_metrics_equal_numerai_tools_on_the_written_predictions(tested, slot):
    _, reference = reference_for(tested, slot)
    reported = per_era_json(tested["slots"][slot])
    assert list(reported.index) == list(reference.index)
    columns = ["corr", "bmc", "fnc", "exposure"]
    columns += [c for c in reference.columns if c.startswith("corr_target_")]
    assert len(columns) == 4 + 8
    for column in columns:
        np.testing.assert_allclose(
            reported[column].astype(float),
            reference[column].astype(float),
            rtol=0,
            atol=TOL,
            equal_nan=True,
            err_msg=f"{slot}: {column}",
        )
    summary = tested["slots"][slot]["validation"]["summary"]
    corr = reference["corr"].astype(float)
    assert summary["corr"]["mean"] == pytest.approx(corr.mean(), abs=TOL)
    assert summary["corr"]["sharpe"] == pytest.approx(scoring.sharpe_ratio(corr), abs=TOL)
    assert summary["bmc"]["mean"] == pytest.approx(reference["bmc"].mean(), abs=TOL)
    assert summary["fnc"]["mean"] == pytest.approx(reference["fnc"].mean(), abs=TOL)
    assert summary["bmc_benchmark"] == "v52_lgbm_ender20"


def test_the_ensembles_member_metrics_equal_numerai_tools(tested):
    project = tested["project"]
    members = pd.read_parquet(
        project / "build" / "example_ensemble" / "validation_member_predictions.parquet"
    )
    predictions = pd.read_parquet(
        project / "build" / "example_ensemble" / "validation_predictions.parquet"
    )
    validation = pd.read_parquet(project / "data" / "validation.parquet", columns=["era", "target"])
    names = [
        m["name"] for m in tested["slots"]["example_ensemble"]["validation"]["summary"]["members"]
    ]
    assert list(members.columns) == names and len(names) == 2
    reported = per_era_json(tested["slots"]["example_ensemble"])
    data = validation.join(members).join(predictions[["prediction"]])
    for era, rows in data.groupby("era"):
        rows = rows.sort_index()
        for name in names:
            assert reported.loc[era, f"member_{name}_corr"] == pytest.approx(
                scoring.numerai_corr(rows[[name]], rows["target"]).iloc[0], abs=TOL
            )
            assert reported.loc[era, f"member_{name}_contribution"] == pytest.approx(
                scoring.correlation_contribution(
                    rows[[name]], rows["prediction"], rows["target"]
                ).iloc[0],
                abs=TOL,
            )


def test_every_slot_has_a_report_and_the_index_links_them(tested):
    build = tested["project"] / "build"
    index = (build / "report.html").read_text()
    for slot in ("example_model", "example_ensemble"):
        page = (build / slot / "report.html").read_text()
        assert "Cumulative validation CORR and BMC" in page
        assert f"href='{slot}/report.html'" in index
