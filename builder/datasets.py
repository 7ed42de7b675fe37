"""Synthetic Numerai-shaped data: features.json and the parquet files, in Numerai's layout.

nmr cannot download Numerai's data in tests or CI, so it generates data with the same layout
(docs/design/numerai.md §3): string ``id`` index, zero-padded string ``era``, ``data_type``, int8 feature bins
0..4, ``target`` plus auxiliary ``target_*`` columns in {0, .25, .5, .75, 1}, and benchmark files
with ``v52_lgbm_*`` columns. Targets carry real signal (linear, interaction and threshold terms
on a few features of each tier) so trained models learn something. Same seed, same bytes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SynthSizes:
    """How much data to generate. Defaults match Numerai v5.2's feature set sizes."""

    n_all: int = 2748
    n_medium: int = 780
    n_small: int = 42
    train_eras: int = 40
    validation_eras: int = 12
    rows_per_era: int = 500
    # rows in Numerai's live.parquet of 2025-12-14 (docs/design/numerai.md §3)
    live_rows: int = 6720

    def scaled(self, factor: float) -> SynthSizes:
        """Every count times ``factor``, keeping enough to stay Numerai-shaped (small within
        medium within all, at least a few eras)."""
        if factor <= 0:
            raise ValueError("scale must be > 0")

        def s(n: int, low: int) -> int:
            return max(low, round(n * factor))

        n_small = s(self.n_small, 4)
        n_medium = max(s(self.n_medium, 8), n_small + 1)
        return SynthSizes(
            n_all=max(s(self.n_all, 16), n_medium + 1),
            n_medium=n_medium,
            n_small=n_small,
            train_eras=s(self.train_eras, 8),
            validation_eras=s(self.validation_eras, 4),
            rows_per_era=s(self.rows_per_era, 50),
            live_rows=s(self.live_rows, 100),
        )


# The preset behind `--small` and `nmr init --example`: seconds to generate and to train on.
SMALL = SynthSizes(
    n_all=60,
    n_medium=24,
    n_small=8,
    train_eras=24,
    validation_eras=8,
    rows_per_era=200,
    live_rows=500,
)

# Main target and auxiliary targets; in v5.x the main `target` is target_ender_20 (docs/design/numerai.md §3).
TARGET_NAMES = [
    "target",
    "target_ender_20",
    "target_ender_60",
    "target_cyrusd_20",
    "target_cyrusd_60",
    "target_jasper_20",
    "target_jasper_60",
    "target_teager2b_20",
    "target_teager2b_60",
]
# v5.2 benchmark model columns (validation_benchmark_models.parquet, docs/design/numerai.md §3).
BENCHMARK_COLUMNS = [
    "v52_lgbm_cyrusd20",
    "v52_lgbm_cyrusd60",
    "v52_lgbm_ender20",
    "v52_lgbm_ender60",
    "v52_lgbm_jasper20",
    "v52_lgbm_jasper60",
    "v52_lgbm_teager2b20",
    "v52_lgbm_teager2b60",
]
# Feature groups with their v5.2 sizes within (small, medium, all) (docs/design/numerai.md §3).
GROUP_SIZES = {
    "constitution": (2, 134, 335),
    "charisma": (3, 116, 290),
    "agility": (2, 58, 145),
    "wisdom": (3, 56, 140),
    "strength": (1, 54, 135),
    "serenity": (3, 34, 95),
    "dexterity": (4, 21, 51),
    "intelligence": (2, 14, 35),
}
# Numerai's targets put about 5/20/50/20/5 % of each era into the five bins.
TARGET_BIN_SHARES = (0.05, 0.20, 0.50, 0.20, 0.05)
# Share of a grouped feature's cells that copy the group's shared value.
GROUP_COPY = 0.5
# 60-day targets resolve later than 20-day ones: the newest eras have them missing.
UNRESOLVED_60D_ERAS = 4


def synthesize(
    out_dir: Path,
    *,
    seed: int = 0,
    scale: float = 1.0,
    sizes: SynthSizes | None = None,
    nan_fraction: float = 0.0,
) -> dict:
    """Write features.json, train/validation/live parquet and both benchmark files to ``out_dir``.

    ``sizes`` (default: ``SynthSizes()``) is multiplied by ``scale``. ``nan_fraction`` of the
    feature cells become missing (the parquet columns stay int8 with nulls, so pandas reads them
    back as float64 with NaN). Returns the paths written and the sizes used.
    """
    if not 0.0 <= nan_fraction < 1.0:
        raise ValueError("nan_fraction must be in [0, 1)")
    started = time.perf_counter()
    sizes = (sizes or SynthSizes()).scaled(scale) if scale != 1.0 else (sizes or SynthSizes())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    names = feature_names(sizes.n_all)
    feature_sets = _feature_sets(names, sizes, rng)
    truth = _Truth.draw(names, feature_sets, rng)

    eras_train = [f"{e:04d}" for e in range(1, sizes.train_eras + 1)]
    first_val = sizes.train_eras + 1
    eras_val = [f"{e:04d}" for e in range(first_val, first_val + sizes.validation_eras)]
    live_era = f"{first_val + sizes.validation_eras:04d}"

    ids = _Ids(seed)
    train = _era_frame(eras_train, sizes.rows_per_era, "train", names, truth, ids, rng)
    validation = _era_frame(eras_val, sizes.rows_per_era, "validation", names, truth, ids, rng)
    live = _era_frame([live_era], sizes.live_rows, "live", names, truth, ids, rng)

    paths = {
        "features_json": out_dir / "features.json",
        "train": out_dir / "train.parquet",
        "validation": out_dir / "validation.parquet",
        "live": out_dir / "live.parquet",
        "live_benchmarks": out_dir / "live_benchmark_models.parquet",
        "validation_benchmarks": out_dir / "validation_benchmark_models.parquet",
    }
    paths["features_json"].write_text(
        json.dumps({"feature_sets": feature_sets, "targets": TARGET_NAMES}, indent=1) + "\n",
        encoding="utf-8",
    )
    for part, data in (("train", train), ("validation", validation)):
        labelled = data.with_targets(truth, rng, unresolved_60d=part == "validation")
        _write(labelled, paths[part], nan_fraction, rng)
    _write(live, paths["live"], nan_fraction, rng)
    _write_frame(validation.benchmarks(truth, rng, with_era=True), paths["validation_benchmarks"])
    # Whether Numerai's live benchmark file carries `era` is unconfirmed (docs/design/numerai.md §3); nmr
    # writes only the model columns, indexed by id, and consumers reindex by id.
    _write_frame(live.benchmarks(truth, rng, with_era=False), paths["live_benchmarks"])
    return {
        "paths": paths,
        "sizes": sizes,
        "feature_sets": {name: len(cols) for name, cols in feature_sets.items()},
        "rows": {"train": train.n_rows, "validation": validation.n_rows, "live": live.n_rows},
        "seconds": time.perf_counter() - started,
    }


def synth_live(
    features: list[str],
    n_rows: int = 6720,
    seed: int = 0,
    *,
    era: str = "0001",
    nan_fraction: float = 0.0,
) -> pd.DataFrame:
    """One live era for ``features``: index ``id``, ``era``, ``data_type`` "live", int8 bins 0..4.

    Used when a project has no live file of its own; values carry no signal. ``nan_fraction``
    of the feature cells are missing (pass the project's share, ``nan_share``, so a test sees
    the NaN production will): the columns are then float64 with NaN, which is what pandas
    reads from Numerai's int8 parquet columns with nulls.
    """
    if not 0.0 <= nan_fraction < 1.0:
        raise ValueError("nan_fraction must be in [0, 1)")
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, size=(n_rows, len(features)), dtype=np.int8)
    if nan_fraction > 0:
        X = np.where(rng.random(X.shape) < nan_fraction, np.nan, X.astype(np.float64))
    index = pd.Index(_Ids(seed).take(n_rows), name="id")
    frame = pd.DataFrame(X, columns=list(features), index=index)
    frame.insert(0, "data_type", "live")
    frame.insert(0, "era", era)
    return frame


def column_null_shares(path: Path) -> dict[str, float]:
    """Share of missing values of each column of a parquet file that has any, read from the
    footer's row-group statistics (no data page is read; a column without statistics counts
    as complete)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    nulls: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            stats = column.statistics
            if stats is not None and stats.has_null_count and stats.null_count:
                key = column.path_in_schema
                nulls[key] = nulls.get(key, 0) + stats.null_count
    if not meta.num_rows:
        return {}
    return {name: count / meta.num_rows for name, count in nulls.items()}


def nan_share(data, columns) -> float:
    """Share of missing cells among ``columns`` in a project's train, validation and live
    files (``data``: a ``DataConfig``; files that are not set or do not exist are skipped),
    rows weighted, from footer statistics; 0.0 when there is no file or no column."""
    import pyarrow.parquet as pq

    columns = list(columns)
    missing = cells = 0.0
    for path in (data.train, data.validation, data.live):
        if path is None or not Path(path).is_file() or not columns:
            continue
        rows = pq.ParquetFile(path).metadata.num_rows
        shares = column_null_shares(Path(path))
        missing += sum(shares.get(c, 0.0) for c in columns) * rows
        cells += rows * len(columns)
    return missing / cells if cells else 0.0


def feature_names(n: int) -> list[str]:
    width = max(4, len(str(n - 1)))
    return [f"feature_{i:0{width}d}" for i in range(n)]


# -- helpers ----------------------------------------------------------------------------------


def _feature_sets(names: list[str], sizes: SynthSizes, rng) -> dict[str, list[str]]:
    """small within medium within all, plus disjoint groups sized like v5.2's."""
    n = len(names)
    if not 0 < sizes.n_small < sizes.n_medium <= n:
        raise ValueError("sizes must satisfy 0 < n_small < n_medium <= n_all")
    order = rng.permutation(n)
    tiers = [order[: sizes.n_small], order[sizes.n_small : sizes.n_medium], order[sizes.n_medium :]]
    real_tier = [42, 780 - 42, 2748 - 780]
    groups: dict[str, list[int]] = {g: [] for g in GROUP_SIZES}
    for t, tier in enumerate(tiers):
        pool = list(tier)
        for g, (s, m, a) in GROUP_SIZES.items():
            real = (s, m - s, a - m)[t]
            take = min(len(pool), int(len(tier) * real / real_tier[t]))
            groups[g] += pool[:take]
            pool = pool[take:]
    grouped = {i for members in groups.values() for i in members}
    spare = [i for i in order if i not in grouped]
    for g in groups:  # tiny sizes: make sure every group names at least one feature
        if not groups[g] and spare:
            groups[g].append(spare.pop())
    sets = {
        "small": sorted(tiers[0]),
        "medium": sorted(np.concatenate(tiers[:2])),
        "all": list(range(n)),
        **{g: sorted(members) for g, members in groups.items() if members},
    }
    return {name: [names[i] for i in idx] for name, idx in sets.items()}


@dataclass(frozen=True)
class _Truth:
    """The hidden function targets are drawn from: a few features of each tier matter."""

    linear: np.ndarray  # column indices
    weights: np.ndarray
    pair: tuple[int, int]  # interaction term
    step: int  # threshold term: feature >= 3
    aux_mix: np.ndarray  # per aux target: share of the main signal it follows
    groups: tuple[np.ndarray, ...]  # column indices of each feature group

    @classmethod
    def draw(cls, names, feature_sets, rng) -> _Truth:
        index = {n: i for i, n in enumerate(names)}
        small = [index[n] for n in feature_sets["small"]]
        medium_only = [
            index[n] for n in feature_sets["medium"] if n not in set(feature_sets["small"])
        ]
        rest = sorted(set(range(len(names))) - set(small) - set(medium_only))
        picks = []
        for tier, k in ((small, 4), (medium_only, 4), (rest, 4)):
            if tier:
                picks += list(rng.choice(tier, size=min(k, len(tier)), replace=False))
        picks = np.array(picks)
        return cls(
            linear=picks,
            weights=rng.normal(size=len(picks)) * np.linspace(1.5, 0.5, len(picks)),
            pair=(int(small[0]), int(small[-1])),
            step=int(medium_only[0]) if medium_only else int(small[0]),
            aux_mix=rng.uniform(0.4, 0.9, size=len(TARGET_NAMES)),
            groups=tuple(
                np.array([index[n] for n in feature_sets[g]])
                for g in GROUP_SIZES
                if g in feature_sets
            ),
        )

    def signal(self, X: np.ndarray) -> np.ndarray:
        def centred(column: int) -> np.ndarray:
            return X[:, column].astype(np.float32) - 2.0

        s = np.zeros(len(X), dtype=np.float32)
        for column, weight in zip(self.linear, self.weights, strict=True):
            s += np.float32(weight) * centred(column)
        s += 0.6 * centred(self.pair[0]) * centred(self.pair[1])
        s += 1.5 * (X[:, self.step] >= 3)
        return s / max(float(np.std(s)), 1e-9)


class _Ids:
    """Unique, random-looking ``n`` + 15 hex ids: a bijection of a counter modulo 2**60."""

    _MULT = 0x9E3779B97F4A7C15 % (1 << 60) | 1

    def __init__(self, seed: int):
        self.offset = ((seed + 1) * 0x632BE59BD9B4E019) % (1 << 60)
        self.next = 0

    def take(self, n: int) -> list[str]:
        counter = np.arange(self.next, self.next + n, dtype=object)
        self.next += n
        return [f"n{(int(c) * self._MULT + self.offset) % (1 << 60):015x}" for c in counter]


@dataclass
class _EraFrame:
    ids: list[str]
    eras: np.ndarray
    data_type: str
    names: list[str]
    X: np.ndarray  # int8 (n_rows, n_features)
    signal: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    def with_targets(self, truth: _Truth, rng, *, unresolved_60d: bool) -> pd.DataFrame:
        frame = self.features_frame()
        last_eras = set(np.unique(self.eras)[-UNRESOLVED_60D_ERAS:]) if unresolved_60d else set()
        main = None
        for k, name in enumerate(TARGET_NAMES):
            if name in ("target", "target_ender_20"):
                if main is None:
                    main = _bin_per_era(
                        self.signal + rng.normal(scale=1.2, size=self.n_rows), self.eras
                    )
                values = main
            else:
                mix = truth.aux_mix[k]
                latent = mix * self.signal + (1 - mix) * rng.normal(size=self.n_rows)
                values = _bin_per_era(latent + rng.normal(scale=1.2, size=self.n_rows), self.eras)
                if name.endswith("_60") and last_eras:
                    values = values.copy()
                    values[np.isin(self.eras, list(last_eras))] = np.nan
            frame[name] = values
        return frame

    def features_frame(self) -> pd.DataFrame:
        index = pd.Index(self.ids, name="id")
        features = pd.DataFrame(self.X, columns=self.names, index=index)
        head = pd.DataFrame({"era": self.eras, "data_type": self.data_type}, index=index)
        return pd.concat([head, features], axis=1)

    def benchmarks(self, truth: _Truth, rng, *, with_era: bool) -> pd.DataFrame:
        index = pd.Index(self.ids, name="id")
        columns = {"era": self.eras} if with_era else {}
        for k, name in enumerate(BENCHMARK_COLUMNS):
            latent = self.signal + rng.normal(scale=1.0 + 0.1 * k, size=self.n_rows)
            columns[name] = _rank_per_era(latent, self.eras).astype(np.float32)
        return pd.DataFrame(columns, index=index)


def _era_frame(eras, rows_per_era, data_type, names, truth, ids: _Ids, rng) -> _EraFrame:
    n = len(eras) * rows_per_era
    # Drawn feature-major so every column is contiguous: the group mixing below and the
    # column-by-column parquet conversion then read memory in order.
    by_feature = rng.integers(0, 5, size=(len(names), n), dtype=np.int8)
    # Features of one group move together, as Numerai's do: each cell copies its group's shared
    # value with probability GROUP_COPY (pairwise correlation about GROUP_COPY**2).
    for columns in truth.groups:
        shared = rng.integers(0, 5, size=(1, n), dtype=np.int8)
        copy = rng.random((len(columns), n), dtype=np.float32) < GROUP_COPY
        by_feature[columns] = np.where(copy, shared, by_feature[columns])
    X = by_feature.T
    return _EraFrame(
        ids=ids.take(n),
        eras=np.repeat(np.array(eras, dtype=object), rows_per_era),
        data_type=data_type,
        names=names,
        X=X,
        signal=truth.signal(X),
    )


def _bin_per_era(latent: np.ndarray, eras: np.ndarray) -> np.ndarray:
    """Per era: rank, then cut into Numerai's five target bins by their usual shares."""
    edges = np.cumsum(TARGET_BIN_SHARES)[:-1]
    pct = _rank_per_era(latent, eras)
    return (np.searchsorted(edges, pct, side="right") / 4.0).astype(np.float32)


def _rank_per_era(values: np.ndarray, eras: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for era in np.unique(eras):
        rows = np.flatnonzero(eras == era)
        ranks = values[rows].argsort(kind="stable").argsort(kind="stable")
        out[rows] = (ranks + 0.5) / len(rows)
    return out


def _write(data, path: Path, nan_fraction: float, rng) -> None:
    frame = data if isinstance(data, pd.DataFrame) else data.features_frame()
    if nan_fraction <= 0:
        _write_frame(frame, path)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=True)
    feature_cols = [c for c in frame.columns if c.startswith("feature_")]
    arrays, fields = [], []
    missing = rng.random((len(frame), len(feature_cols))) < nan_fraction
    position = {c: j for j, c in enumerate(feature_cols)}
    for field, column in zip(table.schema, table.columns, strict=True):
        if field.name in position:
            values = frame[field.name].to_numpy()
            column = pa.array(values, type=pa.int8(), mask=missing[:, position[field.name]])
        arrays.append(column)
        fields.append(field)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=table.schema.metadata))
    pq.write_table(table, path)


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=True)


def write_scaled_validation(
    path: Path,
    rows: int,
    *,
    n_features: int = 2748,
    rows_per_era: int = 5500,
    row_group_rows: int = 50_000,
    seed: int = 0,
    on_progress=None,
) -> Path:
    """A validation parquet of Numerai's real shape, ``rows`` x ``n_features`` int8 bins, written
    one row group at a time (memory: one row group, whatever ``rows``): string ``id`` index,
    zero-padded ``era`` (``rows_per_era`` rows each, about Numerai's 3.9M rows / 700 eras),
    ``data_type``, ``target`` in the five bins, carrying signal from the first 20 features.
    For benchmarks of the validation stage at scale (bench/validation.py); same seed, same bytes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = feature_names(n_features)
    k = min(20, n_features)
    weights = rng.normal(size=k)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    writer = None
    try:
        for start in range(0, rows, row_group_rows):
            n = min(row_group_rows, rows - start)
            X = rng.integers(0, 5, size=(n, n_features), dtype=np.int8)
            row_ids = np.arange(start, start + n)
            eras = row_ids // rows_per_era + 1
            latent = (X[:, :k] - 2.0) @ weights + rng.normal(scale=3.0, size=n)
            frame = pd.DataFrame(X, columns=names)
            frame.insert(0, "data_type", "validation")
            frame.insert(0, "era", [f"{e:04d}" for e in eras])
            frame["target"] = _bin_per_era(latent, eras).astype(np.float32)
            frame.index = pd.Index([f"n{i:09x}" for i in row_ids], name="id")
            table = pa.Table.from_pandas(frame, preserve_index=True)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            if on_progress is not None:
                on_progress(start + n, rows)
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)
    return path
