"""Issue 11's done-when for the slot kinds nmr does not compile from LightGBM/XGBoost files: a
project with a CatBoost .cbm slot, a `source:` slot using scikit-learn and a `pickle:` slot
builds, passes `nmr test` (the CatBoost slot bit for bit with catboost), and `nmr apply
--sandbox` deploys all three, then finds nothing to do."""

from __future__ import annotations

import json

import pytest

from tests.slotkit import built_project, nmr

pytest.importorskip("catboost")
pytestmark = pytest.mark.slow  # trains, builds three slots and deploys them (about a minute)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return built_project(tmp_path_factory, "kinds")


def test_every_slot_kind_builds_into_one_lock(project):
    lock = json.loads((project / "numerai.lock").read_text())
    assert sorted(lock["slots"]) == ["cb", "custom", "legacy"]
    for slot in ("cb", "custom", "legacy"):
        assert (project / lock["slots"][slot]["pickle"]["path"]).is_file()


def test_every_slot_kind_passes_nmr_test(project):
    result = nmr(project, "test", "--json")
    assert result.exit_code == 0, result.output
    outcomes = {o["slot"]: o for o in json.loads(result.stdout)}
    assert {slot: o["run"]["status"] for slot, o in outcomes.items()} == {
        "cb": "Success",
        "custom": "Success",
        "legacy": "Success",
    }
    (member,) = outcomes["cb"]["fidelity"]["members"]
    assert member["format"] == "catboost"
    assert member["max_abs_diff"] == 0.0


def test_compiled_catboost_pickle_imports_numpy_pandas_and_stdlib_only(project):
    from builder.pack import imported_globals, module_allowed

    data = (project / "build" / "cb" / "model.pkl").read_bytes()
    modules = {name.split(".")[0] for name in imported_globals(data)}
    assert "catboost" not in modules
    assert all(module_allowed(m) for m in modules), modules  # numpy, pandas, stdlib


def test_apply_sandbox_deploys_every_slot_kind_then_has_nothing_to_do(project):
    first = nmr(project, "apply", "--sandbox", "--yes")
    assert first.exit_code == 0, first.output
    assert "Apply complete: 3 applied, 0 failed." in first.output
    status = json.loads(nmr(project, "status", "--sandbox", "--json").stdout)
    assert {s["slot"]: s["validation_status"] for s in status["slots"]} == {
        "cb": "validated",
        "custom": "validated",
        "legacy": "validated",
    }
    again = nmr(project, "apply", "--sandbox", "--yes")
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output
