"""`nmr status` / `nmr logs` values and their rendering (builder/deploy/status.py); the live
reading from the sandbox is covered end to end in tests/test_deploy_cli.py."""

from __future__ import annotations

import json

from builder.deploy.status import (
    RunLog,
    RunStatus,
    SlotStatus,
    render_run,
    render_statuses,
    statuses_json,
)

ROWS = [
    SlotStatus("alpha", True, "m1", "0123456789abcdef", "alpha-nmr-0123456789abcdef-x.pkl",
               "validated", "succeeded"),
    SlotStatus("beta", False),
    SlotStatus("gamma", True, "m3", None, "handmade.pkl", "failed", None),
    SlotStatus("delta", True, "m4"),
]  # fmt: skip


def test_status_text_has_one_line_per_slot_under_a_header():
    lines = render_statuses(ROWS).splitlines()
    assert lines[0].split() == ["SLOT", "PICKLE", "VALIDATION", "TRIGGER"]
    assert lines[1].split() == ["alpha", "0123456789abcdef", "validated", "succeeded"]


def test_status_text_says_which_slot_is_missing_and_which_pickle_nmr_did_not_upload():
    lines = render_statuses(ROWS).splitlines()
    assert lines[2].split(None, 1) == ["beta", "(slot does not exist)"]
    assert lines[3].split() == ["gamma", "(not", "nmr)", "failed", "-"]
    assert lines[4].split() == ["delta", "(none)", "-", "-"]


def test_status_json_is_versioned_with_one_object_per_slot():
    payload = json.loads(statuses_json(ROWS))
    assert payload["format_version"] == 1
    assert [row["slot"] for row in payload["slots"]] == ["alpha", "beta", "gamma", "delta"]
    assert payload["slots"][1] == {
        "slot": "beta", "exists": False, "model_id": None, "pickle_sha256_prefix": None,
        "pickle_filename": None, "validation_status": None, "trigger_status": None,
        "compute_webhook": False,
    }  # fmt: skip


def test_run_log_shows_the_statuses_in_order_then_the_container_lines():
    log = RunLog(
        "alpha",
        "alpha.pkl",
        "validation",
        (RunStatus("t1", "pending"), RunStatus("t2", "failed", "out of memory")),
        ("line one", ""),
    )
    assert render_run(log) == (
        "alpha: alpha.pkl (validation)\n  t1  pending\n  t2  failed - out of memory\nline one\n\n"
    )
