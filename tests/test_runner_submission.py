"""Server-side submission checks agree with numerai-tools' validate_submission_numerai."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from builder.runner.submission import validate_submission, validate_submission_csv

IDS = [f"n{i:015x}" for i in range(50)]


def good() -> pd.DataFrame:
    return pd.DataFrame({"id": IDS, "prediction": np.linspace(0.01, 0.99, len(IDS))})


def cases() -> dict[str, pd.DataFrame]:
    wrong_header = good().rename(columns={"prediction": "pred"})
    nan_id = good().astype({"id": object})
    nan_id.loc[3, "id"] = np.nan
    duplicate = good()
    duplicate.loc[49, "id"] = IDS[0]
    missing = good().iloc[:40]
    extra = pd.concat([good(), pd.DataFrame({"id": ["nextra"], "prediction": [0.5]})])
    nan_value = good()
    nan_value.loc[5, "prediction"] = np.nan
    above = good()
    above.loc[5, "prediction"] = 1.2
    inf = good()
    inf.loc[5, "prediction"] = np.inf
    near_one = good()
    near_one.loc[5, "prediction"] = 1 + 1e-12
    constant = good().assign(prediction=0.5)
    probability = good().rename(columns={"prediction": "probability"})
    return {
        "good": good(),
        "probability": probability,
        "wrong_header": wrong_header,
        "nan_id": nan_id,
        "duplicate": duplicate,
        "missing": missing,
        "extra": extra,
        "nan_value": nan_value,
        "above": above,
        "inf": inf,
        "near_one": near_one,
        "constant": constant,
    }


@pytest.mark.parametrize("name", list(cases()))
def test_verdict_and_message_match_numerai_tools(name):
    submissions = pytest.importorskip("numerai_tools.submissions")
    frame = cases()[name]
    universe = pd.Series(IDS)
    try:
        submissions.validate_submission_numerai(universe, frame.copy())
        reference = None
    except AssertionError as error:
        reference = str(error)
    ours = validate_submission(universe, frame.copy())
    assert ours.ok == (reference is None)
    if reference is not None:
        # ours may append a detail in parentheses; the sentence itself is numerai-tools'
        assert ours.message.startswith(reference.split(" headers must")[0])
        assert reference.split(":")[0] == ours.message.split(":")[0]


def test_extra_ids_are_reported_but_do_not_fail():
    check = validate_submission(pd.Series(IDS), cases()["extra"])
    assert check.ok
    assert check.extra_ids == ["nextra"]


def test_missing_ids_message_counts_them():
    check = validate_submission(pd.Series(IDS), cases()["missing"])
    assert check.message.endswith("(10 of 50 live ids missing)")


def test_csv_is_read_with_its_header(tmp_path):
    path = tmp_path / "live_predictions-0123456789ab.csv"
    good().to_csv(path, index=False)
    check = validate_submission_csv(path, IDS)
    assert check.ok
    assert check.rows == 50


def test_an_unnamed_index_column_fails_the_header_check(tmp_path):
    path = tmp_path / "preds.csv"
    good().drop(columns="id").to_csv(path)  # header ",prediction"
    check = validate_submission_csv(path, IDS)
    assert not check.ok
    assert check.message.startswith("invalid_submission_headers:")
