"""Numerai's server-side checks of a predictions CSV.

Re-implements numerai-tools ``validate_submission_numerai`` (numerai_tools/submissions.py,
v0.6.0), which Numerai uses to clean submissions: headers, then ids,
then values, first failure wins. Messages carry v0.6.0's ``invalid_submission_*:`` prefixes;
v0.4.x (installed in the images) runs the same checks without the prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ID_COLUMNS = ("id",)
PREDICTION_COLUMNS = ("prediction", "probability")


@dataclass
class SubmissionCheck:
    ok: bool
    message: str = ""  # the first failed check's message ("" when ok)
    rows: int = 0  # rows in the CSV
    extra_ids: list[str] = field(default_factory=list)  # ids not in the live universe (ignored)


def validate_submission_csv(csv_path: Path, live_ids) -> SubmissionCheck:
    """Check a predictions CSV (as written by predict.py) against the live ids."""
    try:
        submission = pd.read_csv(csv_path)
    except (OSError, ValueError) as error:
        return SubmissionCheck(False, f"invalid_submission_headers: unreadable CSV ({error})")
    return validate_submission(pd.Series(live_ids), submission)


def validate_submission(universe: pd.Series, submission: pd.DataFrame) -> SubmissionCheck:
    """``validate_submission_numerai(universe, submission)`` as one result value."""
    rows = len(submission)
    columns = list(submission.columns)
    valid_headers = [[i, p] for i in ID_COLUMNS for p in PREDICTION_COLUMNS]
    if columns not in valid_headers:
        return SubmissionCheck(
            False,
            "invalid_submission_headers: headers must be one of "
            f"{list(ID_COLUMNS)} and one of {list(PREDICTION_COLUMNS)} (got {columns})",
            rows,
        )
    id_col, prediction_col = columns

    if submission[id_col].isna().any():
        return SubmissionCheck(
            False,
            f"invalid_submission_ids: Submission must not contain NaNs in the {id_col} column.",
            rows,
        )
    ids = submission[id_col].astype(str)
    live_ids = universe.astype(str)
    in_live = ids.isin(live_ids)
    live_sub = submission[in_live.to_numpy()]
    if ids[in_live].duplicated().any():
        return SubmissionCheck(
            False,
            f"invalid_submission_ids: Duplicates detected in {id_col} for live period.",
            rows,
        )
    if len(live_sub) < len(live_ids):
        missing = len(live_ids) - len(live_sub)
        return SubmissionCheck(
            False,
            "invalid_submission_ids: Not enough stocks submitted. Are you using the latest "
            f"live ids or live universe? ({missing} of {len(live_ids)} live ids missing)",
            rows,
        )
    extra = sorted(set(ids[~in_live]))

    predictions = pd.to_numeric(live_sub[prediction_col], errors="coerce")
    if predictions.isna().any():
        return SubmissionCheck(
            False, "invalid_submission_values: submission must not contain NaNs", rows, extra
        )
    # v0.5+ tolerates float noise at the ends of [0, 1] (np.isclose on min / max)
    low_ok = predictions.ge(0).all() or bool(np.isclose(predictions.min(), 0))
    high_ok = predictions.le(1).all() or bool(np.isclose(predictions.max(), 1))
    if not (low_ok and high_ok):
        return SubmissionCheck(
            False,
            "invalid_submission_values: values must be between 0 and 1 exclusive",
            rows,
            extra,
        )
    if np.isclose(0, predictions.std()):
        return SubmissionCheck(
            False,
            "invalid_submission_values: submission must have non-zero standard deviation",
            rows,
            extra,
        )
    return SubmissionCheck(True, "", rows, extra)
