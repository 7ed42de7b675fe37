"""The plan as a value: the diff rules, the text renderer and the versioned JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.deploy.plan import DesiredSlot, from_json, make_plan, render_text, to_json
from builder.deploy.state import RemotePickle, RemoteSlot, sha_prefix, upload_filename
from builder.errors import NmrError
from tests.deploy_support import sample_manifest

NEW = "ab" * 32
OLD = "cd" * 32
TAG = "numerai_predict_py_3_12:a78dedd"


def _want(slot="alice", sha256=NEW, create=True, data_version="v5.2"):
    return DesiredSlot(slot, sha256, Path("model.pkl"), TAG, data_version, create=create)


def _remote(slot="alice", filename=None, data_version="v5.2", image=TAG):
    assigned = None
    if filename is not None:
        assigned = RemotePickle(
            "p1", filename, sha_prefix(filename), "validated", None, data_version, image
        )
    return {slot: RemoteSlot(slot, "m1", assigned)}


def _server_name(sha256, slot="alice"):
    # Numerai appends "-<12 alnum>" to the stem of the uploaded filename.
    return upload_filename(slot, sha256).replace(".pkl", "-Kc5pT9r85SRD.pkl")


def test_missing_slot_is_planned_as_create():
    plan = make_plan([_want()], {}, "http://api")
    assert [(c.symbol, c.action) for c in plan.changes] == [("+", "create")]


def test_slot_holding_an_older_nmr_pickle_is_planned_as_update_with_both_hashes():
    plan = make_plan([_want()], _remote(filename=_server_name(OLD)), "http://api")
    change = plan.changes[0]
    assert (change.symbol, change.old_sha, change.new_sha256) == ("~", OLD[:16], NEW)
    assert f"~ alice  upload and assign {OLD[:16]} -> {NEW[:16]}" in render_text(plan)


def test_slot_holding_a_pickle_nmr_did_not_build_is_drift():
    plan = make_plan([_want()], _remote(filename="model-Kc5pT9r85SRD.pkl"), "http://api")
    assert plan.changes[0].symbol == "!"
    assert "holds model-Kc5pT9r85SRD.pkl (not built by nmr)" in render_text(plan)


def test_slot_holding_this_build_is_no_change():
    plan = make_plan([_want()], _remote(filename=_server_name(NEW)), "http://api")
    assert not plan.has_changes
    assert render_text(plan).startswith("No changes.")


def test_same_pickle_with_another_data_version_is_an_update_saying_why():
    plan = make_plan(
        [_want(data_version="v5.2")],
        _remote(filename=_server_name(NEW), data_version="v5.1"),
        "http://api",
    )
    assert plan.changes[0].action == "update"
    assert plan.changes[0].reasons == ("data version v5.1 -> v5.2",)


def test_empty_slot_is_an_update_from_none():
    plan = make_plan([_want()], _remote(), "http://api")
    assert plan.changes[0].action == "update"
    assert "(none) -> " in render_text(plan)


def test_summary_line_counts_each_kind():
    desired = [_want("a"), _want("b"), _want("c")]
    remote = {**_remote("b", _server_name(OLD, "b")), **_remote("c", _server_name(NEW, "c"))}
    text = render_text(make_plan(desired, remote, "http://api"))
    assert text.splitlines()[-1] == "Plan: 1 to create, 1 to update (0 drifted), 1 unchanged."


def test_missing_slot_without_create_names_the_setting():
    with pytest.raises(NmrError) as failure:
        make_plan([_want(create=False)], {}, "http://api")
    assert "models.alice.deploy.create: true" in str(failure.value)


def test_json_is_versioned_and_round_trips():
    plan = make_plan([_want()], _remote(filename=_server_name(OLD)), "http://api")
    payload = json.loads(to_json(plan))
    assert payload["format_version"] == 1
    assert payload["summary"] == {"create": 0, "update": 1, "drift": 0, "noop": 0, "blocked": 0}
    assert from_json(to_json(plan)) == plan


def test_a_plan_of_another_format_version_is_refused():
    payload = json.loads(to_json(make_plan([_want()], {}, "http://api")))
    payload["format_version"] = 99
    with pytest.raises(NmrError, match="unsupported plan format_version 99"):
        from_json(json.dumps(payload))


def test_hash_is_read_from_the_server_filename_but_not_from_foreign_names():
    assert sha_prefix(_server_name(NEW)) == NEW[:16]
    assert sha_prefix("my-nmr-model.pkl") is None


def test_same_pickle_on_another_docker_image_is_an_update_saying_why():
    other = "numerai_predict_py_3_11:a78dedd"
    plan = make_plan(
        [_want()],
        _remote(filename=_server_name(NEW), image=other),
        "http://api",
        docker_images={TAG: TAG},
    )
    assert plan.changes[0].action == "update"
    assert plan.changes[0].reasons == (f"docker image {other} -> {TAG}",)


# --- attribute details (manifests) -----------------------------------------------------------


def _manifest_for(sha256: str, proportion: float) -> dict:
    return sample_manifest(sha256, proportion, slot="alice")


def _want_built(proportion=0.7):
    from dataclasses import replace

    return replace(_want(), manifest=_manifest_for(NEW, proportion))


def test_update_lists_the_changed_attributes_from_the_previous_manifest():
    previous = {OLD[:16]: _manifest_for(OLD, 0.5)}
    plan = make_plan(
        [_want_built()], _remote(filename=_server_name(OLD)), "http://api", previous=previous
    )
    assert [(d["path"], d["before"], d["after"]) for d in plan.changes[0].details] == [
        ("postprocessing[0].neutralize.proportion", 0.5, 0.7)
    ]
    assert "      ~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7" in render_text(plan)


def test_update_without_a_previous_manifest_says_built_elsewhere():
    plan = make_plan(
        [_want_built()], _remote(filename=_server_name(OLD)), "http://api", previous={}
    )
    assert plan.changes[0].details == ()
    assert "(previous inputs unknown (built elsewhere))" in render_text(plan)


def test_a_pickle_not_built_by_nmr_has_no_previous_inputs():
    plan = make_plan([_want_built()], _remote(filename="model-Kc5pT9r85SRD.pkl"), "http://api")
    assert plan.changes[0].details_note == "previous inputs unknown (not built by nmr)"


def test_a_data_version_change_of_the_same_pickle_is_a_reason_not_a_detail():
    previous = {NEW[:16]: _manifest_for(NEW, 0.7)}
    remote = _remote(filename=_server_name(NEW), data_version="v5.1")
    plan = make_plan([_want_built()], remote, "http://api", previous=previous)
    change = plan.changes[0]
    assert change.reasons == ("data version v5.1 -> v5.2",) and change.details == ()


def test_details_survive_the_saved_plan_round_trip():
    previous = {OLD[:16]: _manifest_for(OLD, 0.5)}
    plan = make_plan(
        [_want_built()], _remote(filename=_server_name(OLD)), "http://api", previous=previous
    )
    assert from_json(to_json(plan)) == plan


def test_markdown_has_a_summary_line_and_a_collapsed_section_per_changed_slot():
    from builder.deploy.plan import render_markdown

    previous = {OLD[:16]: _manifest_for(OLD, 0.5)}
    plan = make_plan(
        [_want_built()], _remote(filename=_server_name(OLD)), "http://api", previous=previous
    )
    lines = render_markdown(plan).splitlines()
    assert lines[0] == "**nmr plan**: 0 to create, 1 to update (0 drifted), 0 unchanged."
    assert lines.count("<details>") == 1
    assert "~ postprocessing[0].neutralize.proportion: 0.5 -> 0.7" in lines
