"""Validation predictions are made era by era from a streamed parquet, by the runtime's Python."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.diagnostics import numerai_corr, run_validation
from tests import synthdata
from tests.bad_pickles import support

# A 1-argument pickle that ranks within what it is given: correct only if it gets whole eras.
RANKS_ITS_INPUT = """
def predict(live_features):
    assert live_features["era"].nunique() == 1, "one era per call"
    score = live_features["feature_0000"] * 10 + live_features["feature_0001"]
    return score.rank(pct=True).to_frame("prediction")


MODEL = predict
"""

USES_BENCHMARKS = """
def predict(live_features, live_benchmark_models):
    assert live_benchmark_models.index.equals(live_features.index)
    return live_benchmark_models[["v52_lgbm_ender20"]].rename(columns={"v52_lgbm_ender20": "prediction"})


MODEL = predict
"""


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    """4 eras x 90 rows written in row groups of 50, so eras straddle row groups."""
    root = tmp_path_factory.mktemp("validation")
    frames = []
    for e in range(4):
        X, y = synthdata.numerai_like(90, 4, seed=10 + e)
        frame = synthdata.numerai_frame(X, era=f"{575 + e:04d}")
        frame.index = [f"e{e}_{i}" for i in range(90)]
        frame.index.name = "id"
        frame["target"] = y
        frames.append(frame)
    data = pd.concat(frames)
    path = root / "validation.parquet"
    pq.write_table(pa.Table.from_pandas(data), path, row_group_size=50)
    rng = np.random.default_rng(0)
    bench = pd.DataFrame(
        {"era": data["era"], "v52_lgbm_ender20": rng.random(len(data))}, index=data.index
    )
    bench_path = root / "validation_benchmark_models.parquet"
    bench.to_parquet(bench_path)
    return {"path": path, "data": data, "benchmarks": bench_path, "bench": bench}


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    sources = {"ranks": RANKS_ITS_INPUT, "bench": USES_BENCHMARKS}
    return support.make_pickles(support.runtime_python(), sources, tmp_path_factory.mktemp("p"))


def test_each_era_is_predicted_whole_even_across_row_groups(validation, pickles, tmp_path):
    progress = []
    report = run_validation(
        pickles["ranks"],
        support.runtime_python(),
        validation["path"],
        on_progress=lambda done, total: progress.append((done, total)),
        out_dir=tmp_path,
    )
    assert progress[-1] == (360, 360)  # rows scored, rows in all
    data = validation["data"]
    assert list(report.per_era.index) == ["0575", "0576", "0577", "0578"]
    for era, frame in data.groupby("era"):
        expected = (frame["feature_0000"] * 10 + frame["feature_0001"]).rank(pct=True)
        assert report.per_era.loc[era, "corr"] == pytest.approx(
            numerai_corr(expected.to_numpy(), frame["target"].to_numpy())
        )
    assert report.summary["eras"] == 4
    assert 0 < report.summary["max_feature_exposure"] <= 1


def test_validation_predictions_are_written_with_id_index_era_and_prediction(
    validation, pickles, tmp_path
):
    report = run_validation(
        pickles["ranks"], support.runtime_python(), validation["path"], out_dir=tmp_path
    )
    assert report.predictions_path == tmp_path / "validation_predictions.parquet"
    written = pd.read_parquet(report.predictions_path)
    assert written.index.name == "id"
    assert list(written.columns) == ["era", "prediction"]
    data = validation["data"]
    assert sorted(written.index) == sorted(data.index)
    expected = (
        (data["feature_0000"] * 10 + data["feature_0001"]).groupby(data["era"]).rank(pct=True)
    )
    assert written["prediction"].to_numpy() == pytest.approx(
        expected.reindex(written.index).to_numpy()
    )


def test_two_argument_pickles_get_the_era_rows_of_the_benchmark_file(validation, pickles):
    report = run_validation(
        pickles["bench"], support.runtime_python(), validation["path"], validation["benchmarks"]
    )
    # the prediction IS the benchmark column: rank correlation 1 in every era, BMC 0
    assert report.per_era["corr_with_v52_lgbm_ender20"].tolist() == pytest.approx([1.0] * 4)
    assert report.summary["benchmark_corr"] == {"v52_lgbm_ender20": pytest.approx(1.0)}
    assert report.per_era["bmc"].tolist() == pytest.approx([0.0] * 4, abs=1e-12)


def test_a_pickle_failing_on_validation_data_is_one_clear_error(validation, tmp_path):
    from builder.errors import NmrError

    pickles = support.make_pickles(
        support.runtime_python(), {"raises": support.corpus_source("raises_inside")}, tmp_path
    )
    with pytest.raises(NmrError, match="validation predictions failed .*feature_9999"):
        run_validation(pickles["raises"], support.runtime_python(), validation["path"])


# --- tasks and --jobs ------------------------------------------------------------------------


def test_tasks_cover_every_row_once_in_whole_eras(validation):
    from builder.diagnostics.tasks import plan_tasks

    tasks = plan_tasks(validation["path"], task_rows=100)
    assert [(t.start, t.end, t.eras) for t in tasks] == [(0, 180, 2), (180, 360, 2)]


def test_an_era_split_into_two_runs_of_rows_is_one_clear_error(validation, tmp_path):
    from builder.diagnostics.tasks import plan_tasks
    from builder.errors import NmrError

    data = validation["data"]
    shuffled = pd.concat([data.iloc[:45], data.iloc[90:180], data.iloc[45:90], data.iloc[180:]])
    path = tmp_path / "unsorted.parquet"
    shuffled.to_parquet(path)
    with pytest.raises(NmrError, match="era '0575' appears in two separate runs of rows"):
        plan_tasks(path)


def test_jobs_2_writes_the_same_predictions_and_per_era_metrics_as_jobs_1(
    validation, pickles, tmp_path
):
    reports = {}
    for jobs in (1, 2):
        reports[jobs] = run_validation(
            pickles["bench"],
            support.runtime_python(),
            validation["path"],
            validation["benchmarks"],
            out_dir=tmp_path / f"jobs{jobs}",
            jobs=jobs,
            task_rows=100,  # two tasks, so both workers have one
        )
    one, two = reports[1], reports[2]
    assert one.predictions_path.read_bytes() == two.predictions_path.read_bytes()
    pd.testing.assert_frame_equal(one.per_era, two.per_era)
    assert list(one.per_era.index) == ["0575", "0576", "0577", "0578"]


def test_the_task_size_changes_no_prediction_and_no_metric(validation, pickles, tmp_path):
    whole = run_validation(
        pickles["ranks"], support.runtime_python(), validation["path"], out_dir=tmp_path / "a"
    )
    split = run_validation(
        pickles["ranks"],
        support.runtime_python(),
        validation["path"],
        out_dir=tmp_path / "b",
        task_rows=90,  # one era per task
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(whole.predictions_path), pd.read_parquet(split.predictions_path)
    )
    pd.testing.assert_frame_equal(whole.per_era, split.per_era)


def test_batches_smaller_than_an_era_still_give_whole_eras(validation):
    import pyarrow.parquet as pq

    from builder.diagnostics.model_child import range_eras

    source = pq.ParquetFile(validation["path"])
    eras = [
        (era, len(frame))
        for era, frame in range_eras(source, ["era", "feature_0000", "id"], 90, 360, batch_rows=7)
    ]
    assert eras == [("0576", 90), ("0577", 90), ("0578", 90)]
