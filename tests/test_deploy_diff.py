"""The attribute-level diff of two build manifests, and its Terraform-style lines."""

from __future__ import annotations

import copy

from builder import manifest
from builder.deploy.diff import describe, diff

FEATURES = [f"feature_{i:04d}" for i in range(40)]


def _artifact(
    path="artifacts/lgbm.txt", sha="1a2b3c" + "0" * 58, trees=2000, objective="regression"
):
    return {
        "path": path,
        "format": "lightgbm",
        "sha256": sha,
        "summary": {"format": "lightgbm", "objective": objective, "trees": trees, "features": 40},
    }


def _manifest(**changes) -> dict:
    config = {
        "members": [
            {
                "artifact": "artifacts/lgbm.txt",
                "format": "lightgbm",
                "features": FEATURES,
                "weight": 1.0,
            }
        ],
        "ensemble": False,
        "preprocessing": [],
        "postprocessing": [
            {"name": "neutralize", "params": {"features": "small", "proportion": 0.5}},
            {"name": "rank_per_era", "params": {}},
        ],
        "raw_output": False,
        "legacy_signature": False,
    }
    made = manifest.make(
        slot="my_model",
        config=config,
        features=FEATURES,
        runtime="numerai_predict_py_3_12:a78dedd",
        image="numerai_predict_py_3_12",
        data_version="v5.2",
        artifacts=[_artifact()],
        kernels_sha256="k" * 64,
        nmr_version="0.1.0",
        pickle_sha256="a4394b8b" + "0" * 56,
    )
    for edit in changes.values():
        edit(made)
    return made


def _lines(before, after) -> list[str]:
    return [describe(entry) for entry in diff(before, after)]


def test_identical_manifests_have_no_diff():
    assert diff(_manifest(), copy.deepcopy(_manifest())) == []


def test_a_changed_step_parameter_names_its_path_with_before_and_after():
    def edit(m):
        m["config"]["postprocessing"][0]["params"]["proportion"] = 0.7

    entries = diff(_manifest(), _manifest(edit=edit))
    assert entries == [
        {
            "op": "~",
            "path": "postprocessing[0].neutralize.proportion",
            "before": 0.5,
            "after": 0.7,
        }
    ]
    assert describe(entries[0]) == "~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7"


def test_a_step_inserted_first_is_one_addition_not_a_shift_of_every_step():
    def edit(m):
        m["config"]["postprocessing"].insert(0, {"name": "fill_missing", "params": {"value": 2}})

    assert _lines(_manifest(), _manifest(edit=edit)) == [
        "+ postprocessing[0]: fill_missing {value: 2}"
    ]


def test_a_removed_step_is_shown_with_its_parameters():
    def edit(m):
        del m["config"]["postprocessing"][0]

    assert _lines(_manifest(), _manifest(edit=edit)) == [
        "- postprocessing[0]: neutralize {features: small, proportion: 0.5}"
    ]


def test_a_retrained_model_file_shows_tree_count_and_sha_change():
    def edit(m):
        m["artifacts"][0] = _artifact(sha="4d5e6f" + "1" * 58, trees=3000)

    assert _lines(_manifest(), _manifest(edit=edit)) == [
        "~ artifact artifacts/lgbm.txt: 2,000 -> 3,000 trees (sha 1a2b3c -> 4d5e6f)"
    ]


def test_a_new_model_file_is_a_removal_and_an_addition_with_summaries():
    def edit(m):
        m["artifacts"][0] = _artifact("artifacts/big.txt", "9" * 64, 3000, "huber")

    assert _lines(_manifest(), _manifest(edit=edit)) == [
        "- artifact artifacts/lgbm.txt: lightgbm, regression, 2,000 trees, 40 features"
        " (sha 1a2b3c)",
        "+ artifact artifacts/big.txt: lightgbm, huber, 3,000 trees, 40 features (sha 999999)",
    ]


def test_added_features_are_counted_and_named():
    def edit(m):
        m["config"]["features"] = {
            "count": 42,
            "names": [*FEATURES, "feature_9000", "feature_9001"],
        }

    entries = diff(_manifest(), _manifest(edit=edit))
    assert entries[0]["added"] == ["feature_9000", "feature_9001"]
    assert describe(entries[0]) == "~ features: 40 -> 42 (+2: feature_9000, feature_9001)"


def test_runtime_and_kernel_changes_are_listed():
    def edit(m):
        m["runtime"]["tag"] = "numerai_predict_py_3_11:a78dedd"
        m["kernels_sha256"] = "j" * 64

    assert _lines(_manifest(), _manifest(edit=edit)) == [
        "~ runtime: numerai_predict_py_3_12:a78dedd -> numerai_predict_py_3_11:a78dedd",
        "~ nmr kernels: kkkkkkkkkkkk -> jjjjjjjjjjjj",
    ]


def test_onnx_summary_names_ops_and_shapes():
    before = {
        "path": "m.onnx",
        "sha256": "a" * 64,
        "summary": {
            "format": "onnx",
            "ops": {"Gemm": 2, "Relu": 1},
            "inputs": {"x": ["N", 40]},
            "outputs": {"y": ["N", 1]},
            "features": 40,
        },
    }
    after = copy.deepcopy(before)
    after["sha256"] = "b" * 64
    after["summary"]["ops"] = {"Gemm": 3, "Relu": 2}
    entry = {"op": "~", "path": "artifact m.onnx", "before": before, "after": after}
    assert describe(entry) == (
        "~ artifact m.onnx: ops {Gemm: 2, Relu: 1} -> {Gemm: 3, Relu: 2} (sha aaaaaa -> bbbbbb)"
    )


def test_a_changed_ensemble_weight_names_the_member():
    def edit(m):
        m["config"]["members"][0]["weight"] = 0.5

    assert _lines(_manifest(), _manifest(edit=edit)) == ["~ ensemble[0].weight: 1.0 -> 0.5"]
