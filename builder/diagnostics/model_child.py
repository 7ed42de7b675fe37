"""Runs inside the runtime venv (numpy, pandas, pyarrow, cloudpickle only; no ``builder``).

Two jobs, both needing the pickle loaded by the Python that will load it in production:

``fidelity PICKLE LIVE OUT.npz MAX_ROWS``
    For an nmr bundle (an object with ``members``, ``feature_names`` and ``preprocessing``):
    the pickle predicts the first MAX_ROWS rows of the live frame through its own call, as
    numerai-predict calls it (``model(live_features[, benchmarks])``, the frame read whole with
    ``pd.read_parquet``), while each member's evaluator records the array it is handed (int8
    when the bundle keeps Numerai's integer features, ``kernels/bundle.py``) and its raw
    output. Written per member: that raw output, the live values as float64 after the
    preprocessing steps (what the native library is given), the dtype the evaluator received
    and whether its values equal the float64 ones. Postprocessing is emptied for this call: it
    runs after the members, so their inputs are unchanged, and it may need benchmarks.
    Writes ``{"kind": "other"}`` to OUT.json for any other pickle.

``validate PICKLE VALIDATION BENCHMARKS|- OUT_DIR``
    Predictions on a validation parquet, era by era: the file is streamed row group by row
    group reading only the columns the pickle needs (an nmr bundle declares them; for other
    pickles every column is read), each era is handed to the pickle as live data would be,
    and ``OUT_DIR/predictions.parquet`` (index id; era, prediction) is written; for an nmr
    ensemble also ``member_<i>`` columns, each member's own prediction (per-era ranked, as the
    blend sees it). Scoring happens in the builder (numerai-tools). Prints
    ``progress ROWS_DONE ROWS_TOTAL`` lines on stdout.

``serve PICKLE VALIDATION BENCHMARKS|- OUT_DIR``
    The same predictions for many tasks (row ranges of whole eras) read from stdin, one loaded
    pickle for all of them: the worker of ``nmr test --jobs`` (builder/diagnostics/tasks.py).

The file is decoded ``BATCH_ROWS`` rows at a time and only whole eras are kept, so memory is
bounded by a batch plus an era, whatever the file's size.
"""

import json
import sys
from inspect import signature

import numpy as np
import pandas as pd


def main(argv):
    job = argv[0]
    if job == "fidelity":
        fidelity(argv[1], argv[2], argv[3], int(argv[4]))
    elif job in ("validate", "serve"):
        run = validate if job == "validate" else serve
        run(argv[1], argv[2], None if argv[3] == "-" else argv[3], argv[4])
    else:
        raise SystemExit(f"unknown job {job!r}")


def fidelity(pickle_path, live_path, out_path, max_rows):
    model = pd.read_pickle(pickle_path)
    if not all(hasattr(model, a) for a in ("members", "feature_names", "preprocessing")):
        with open(out_path + ".json", "w") as handle:
            json.dump({"kind": "other"}, handle)
        return
    live = pd.read_parquet(live_path).iloc[:max_rows]
    # the reference: the live values as float64, through the preprocessing steps (what the
    # native library is given)
    raw_X = live[list(model.feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)
    X = raw_X
    for step in model.preprocessing:
        X = step.apply(X)
    # what the bundle hands its members: the raw features when the slot's steps were folded into
    # the tree kernel (it applies them itself, exactly), else the preprocessed ones
    handed = raw_X if getattr(model, "preprocessing_folded", False) else X
    recorders = [_Recorder(member.evaluator) for member in model.members]
    for member, recorder in zip(model.members, recorders, strict=True):
        member.evaluator = recorder
    model.postprocessing = []
    if len(signature(model).parameters) == 2:
        model(live, None)
    else:
        model(live)
    arrays = {}
    dtypes, same = [], []
    for i, (member, recorder) in enumerate(zip(model.members, recorders, strict=True)):
        if recorder.given is None:
            raise SystemExit(f"member {i} was not evaluated by the pickle's predict")
        reference = _member_input(member, X)
        arrays[f"X{i}"] = reference
        arrays[f"raw{i}"] = recorder.raw
        dtypes.append(str(recorder.given.dtype))
        given = np.asarray(recorder.given, dtype=np.float64)
        expected = _member_input(member, handed)
        same.append(bool(np.array_equal(given, expected, equal_nan=True)))
    np.savez(out_path, **arrays)
    meta = {"kind": "nmr", "members": len(model.members), "dtypes": dtypes, "same_input": same}
    with open(out_path + ".json", "w") as handle:
        json.dump(meta, handle)


def _member_input(member, X):
    """A member's columns of X through the member's own preprocessing, as Member.predict does."""
    x = np.ascontiguousarray(X[:, member.columns], dtype=np.float64)
    for step in getattr(member, "preprocessing", ()):
        x = step.apply(x)
    return x


class _Recorder:
    """Stands in for a member's evaluator: records what the bundle hands it and what it says."""

    def __init__(self, evaluator):
        self.evaluator = evaluator
        self.given = None
        self.raw = None

    def predict(self, X):
        raw = self.evaluator.predict(X)
        self.given = X
        self.raw = np.asarray(raw, dtype=np.float64)
        return raw


def validate(pickle_path, validation_path, benchmarks_path, out_dir):
    """The whole file as one task (``predictions.parquet``)."""
    task = _Task(pickle_path, validation_path, benchmarks_path)
    total = task.source.metadata.num_rows
    done = 0

    def progress(rows):
        nonlocal done
        done += rows
        print(f"progress {done} {total}", flush=True)

    task.predict(0, total, f"{out_dir}/predictions.parquet", progress)


def serve(pickle_path, validation_path, benchmarks_path, out_dir):
    """Many tasks, one loaded pickle: reads ``ID START END`` lines on stdin, writes the rows
    ``[START, END)`` (whole eras) to ``OUT_DIR/pred-ID.parquet``, prints ``rows ID N`` after each
    era and ``done ID`` after each task. A 20,000-tree pickle takes seconds to load, so a worker
    loads it once for all its tasks."""
    task = _Task(pickle_path, validation_path, benchmarks_path)
    print("ready", flush=True)
    for line in sys.stdin:
        ident, start, end = line.split()
        out = f"{out_dir}/pred-{ident}.parquet"
        task.predict(int(start), int(end), out, _rows_printer(ident))
        print(f"done {ident}", flush=True)


def _rows_printer(ident):
    return lambda rows: print(f"rows {ident} {rows}", flush=True)


_LOADED = {}  # (pickle digest, validation, benchmarks) -> _Task, in a Dask worker


def predict_task(pickle_bytes, digest, validation, benchmarks, start, end):
    """A Dask worker's task (builder/diagnostics/dask_driver.py): rows ``[start, end)`` of
    ``validation`` (a path or fsspec URL the worker reaches) predicted by the pickle, returned as
    parquet bytes (id index; era, prediction, member_<i>). The pickle is loaded once per worker."""
    import io

    key = (digest, validation, benchmarks)
    if key not in _LOADED:
        _LOADED.clear()  # one slot at a time per worker: bounded memory
        _LOADED[key] = _Task(io.BytesIO(pickle_bytes), validation, benchmarks)
    out = io.BytesIO()
    _LOADED[key].predict(start, end, out, lambda rows: None)
    return out.getvalue()


class _Task:
    """The pickle loaded as the container loads it, and the validation file opened."""

    def __init__(self, pickle_path, validation_path, benchmarks_path):
        import pyarrow.parquet as pq

        self.model = pd.read_pickle(pickle_path)
        self.num_args = len(signature(self.model).parameters)
        self.source = pq.ParquetFile(_open(validation_path))
        names = self.source.schema_arrow.names
        index_columns = _index_columns(self.source)
        if hasattr(self.model, "required_columns"):
            wanted = {"era", *self.model.required_columns}
            self.columns = [c for c in names if c in wanted or c in index_columns]
        else:
            self.columns = names
        members = getattr(self.model, "members", ())
        self.ensemble = getattr(self.model, "ensemble", False) and len(members) > 1
        self.benchmarks = None
        if self.num_args == 2 and benchmarks_path is not None:
            self.benchmarks = pd.read_parquet(_open(benchmarks_path))

    def predict(self, start, end, out_path, on_rows):
        pieces = []
        for era, era_frame in range_eras(self.source, self.columns, start, end):
            prediction = _predict(self.model, self.num_args, era_frame, self.benchmarks)
            piece = {"era": era, "prediction": prediction}
            if self.ensemble:
                piece.update(_member_predictions(self.model, era_frame))
            pieces.append(pd.DataFrame(piece, index=era_frame.index))
            on_rows(len(era_frame))
        result = pd.concat(pieces) if pieces else pd.DataFrame(columns=["era", "prediction"])
        result.index = result.index.astype(str)
        result.index.name = "id"
        result.to_parquet(out_path)


# Rows decoded at a time: bounds memory whatever the file's row-group size. 2,748 int8
# features x 5,000 rows = 14 MB per batch; measured on 1M x 2,748 rows in row groups of 50k, a
# worker of the 2,000-tree model peaks at 0.6 GB with 5,000 rows, 1.1 GB with 20,000, same speed.
BATCH_ROWS = 5_000


def range_eras(source, columns, start=0, end=None, batch_rows=BATCH_ROWS):
    """(era, frame) for the whole eras in rows ``[start, end)`` of a ``pyarrow.parquet.ParquetFile``,
    decoded ``batch_rows`` at a time; ``start`` and ``end`` must be era boundaries. Eras are
    contiguous in Numerai's files; one may straddle row groups and batches. The frame's index is
    the file's pandas index (include its column in ``columns``)."""
    end = source.metadata.num_rows if end is None else end
    pending = None
    offset = 0
    for group in range(source.num_row_groups):
        low = offset
        offset += source.metadata.row_group(group).num_rows
        if offset <= start or low >= end:
            continue
        position = low
        for batch in source.iter_batches(batch_rows, row_groups=[group], columns=columns):
            first, position = position, position + batch.num_rows
            if position <= start or first >= end:
                continue
            lo = max(start, first)
            batch = batch.slice(lo - first, min(end, position) - lo)
            frame = batch.to_pandas()
            if pending is not None:
                frame = pd.concat([pending, frame])
            tail = frame["era"].to_numpy() == frame["era"].iloc[-1]
            yield from frame[~tail].groupby("era", sort=False)
            pending = frame[tail]
    if pending is not None and len(pending):
        yield from pending.groupby("era", sort=False)


def _predict(model, num_args, era_frame, benchmarks):
    if num_args == 2:
        era_benchmarks = benchmarks.reindex(era_frame.index) if benchmarks is not None else None
        out = model(era_frame, era_benchmarks)
    else:
        out = model(era_frame)
    if isinstance(out, pd.DataFrame):
        out = out.iloc[:, 0]
    return np.asarray(pd.Series(out).reindex(era_frame.index), dtype=np.float64)


def _member_predictions(model, era_frame):
    """Each member's prediction for one era, per-era ranked as the bundle ranks it before the
    weighted blend (kernels/bundle.py: ``rank(pct=True)``, ties averaged)."""
    X = era_frame[list(model.feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)
    for step in model.preprocessing:
        X = step.apply(X)
    out = {}
    for i, member in enumerate(model.members):
        raw = pd.Series(np.asarray(member.predict(X), dtype=np.float64))
        out[f"member_{i}"] = raw.rank(pct=True).to_numpy()
    return out


def _open(path):
    """A local path as it is; an fsspec URL (``s3://``, ``gs://``...) opened as a file (Dask
    workers reach the validation file where they run, never through the scheduler)."""
    if "://" not in str(path):
        return path
    import fsspec

    return fsspec.open(path, "rb").open()


def _index_columns(source):
    metadata = source.schema_arrow.pandas_metadata or {}
    return [c for c in metadata.get("index_columns", []) if isinstance(c, str)]


if __name__ == "__main__":
    main(sys.argv[1:])
