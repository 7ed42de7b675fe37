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
    ``progress DONE TOTAL`` lines on stdout.
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
    elif job == "validate":
        validate(argv[1], argv[2], None if argv[3] == "-" else argv[3], argv[4])
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
    import pyarrow.parquet as pq

    model = pd.read_pickle(pickle_path)
    num_args = len(signature(model).parameters)
    source = pq.ParquetFile(validation_path)
    names = source.schema_arrow.names
    index_columns = _index_columns(source)
    if hasattr(model, "required_columns"):
        wanted = {"era", *model.required_columns}
        columns = [c for c in names if c in wanted or c in index_columns]
    else:
        columns = names
    ensemble = getattr(model, "ensemble", False) and len(getattr(model, "members", ())) > 1
    benchmarks = None
    if num_args == 2 and benchmarks_path is not None:
        benchmarks = pd.read_parquet(benchmarks_path)

    total = source.num_row_groups
    pieces = []
    pending = None
    for group in range(total):
        frame = source.read_row_group(group, columns=columns).to_pandas()
        if pending is not None:
            frame = pd.concat([pending, frame])
        last_era = frame["era"].iloc[-1]
        # eras are contiguous in Numerai files; the last era may continue in the next group
        done = frame[frame["era"] != last_era] if group < total - 1 else frame
        pending = frame[frame["era"] == last_era] if group < total - 1 else None
        for era, era_frame in done.groupby("era", sort=False):
            prediction = _predict(model, num_args, era_frame, benchmarks)
            piece = {"era": era, "prediction": prediction}
            if ensemble:
                piece.update(_member_predictions(model, era_frame))
            pieces.append(pd.DataFrame(piece, index=era_frame.index))
        print(f"progress {group + 1} {total}", flush=True)
    result = pd.concat(pieces) if pieces else pd.DataFrame(columns=["era", "prediction"])
    result.index = result.index.astype(str)
    result.index.name = "id"
    result.to_parquet(f"{out_dir}/predictions.parquet")


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


def _index_columns(source):
    metadata = source.schema_arrow.pandas_metadata or {}
    return [c for c in metadata.get("index_columns", []) if isinstance(c, str)]


if __name__ == "__main__":
    main(sys.argv[1:])
