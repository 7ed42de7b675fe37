"""Synthetic Numerai-shaped data: layout, dtypes, determinism and learnable signal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builder.datasets import (
    BENCHMARK_COLUMNS,
    SMALL,
    TARGET_NAMES,
    SynthSizes,
    synth_live,
    synthesize,
)

BINS = {0.0, 0.25, 0.5, 0.75, 1.0}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, seed=3, sizes=SMALL)
    return out


def read(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(directory / f"{name}.parquet")


def feature_sets(directory: Path) -> dict[str, list[str]]:
    return json.loads((directory / "features.json").read_text())["feature_sets"]


def test_writes_numerais_file_set(small_data):
    assert sorted(p.name for p in small_data.iterdir()) == [
        "features.json",
        "live.parquet",
        "live_benchmark_models.parquet",
        "train.parquet",
        "validation.parquet",
        "validation_benchmark_models.parquet",
    ]


def test_features_json_nests_small_in_medium_in_all_and_lists_targets(small_data):
    doc = json.loads((small_data / "features.json").read_text())
    sets = doc["feature_sets"]
    assert (len(sets["small"]), len(sets["medium"]), len(sets["all"])) == (8, 24, 60)
    assert set(sets["small"]) < set(sets["medium"]) < set(sets["all"])
    for group in ("intelligence", "wisdom", "charisma", "dexterity", "strength", "constitution"):
        assert sets[group] and set(sets[group]) <= set(sets["all"])
    assert doc["targets"] == TARGET_NAMES


def test_frames_are_indexed_by_unique_string_ids_across_files(small_data):
    ids = [read(small_data, name).index for name in ("train", "validation", "live")]
    for index in ids:
        assert index.name == "id"
        assert all(isinstance(i, str) and len(i) == 16 and i.startswith("n") for i in index[:50])
    combined = ids[0].append(ids[1]).append(ids[2])
    assert combined.is_unique


def test_eras_are_zero_padded_strings_and_live_is_one_later_era(small_data):
    train, validation, live = (read(small_data, n) for n in ("train", "validation", "live"))
    assert list(train["era"].unique()[:3]) == ["0001", "0002", "0003"]
    assert train["era"].nunique() == SMALL.train_eras
    assert validation["era"].min() > train["era"].max()
    assert live["era"].nunique() == 1 and live["era"].iloc[0] > validation["era"].max()
    assert set(train["data_type"]) == {"train"}
    assert set(validation["data_type"]) == {"validation"}
    assert set(live["data_type"]) == {"live"}


def test_features_are_int8_bins_zero_to_four(small_data):
    train = read(small_data, "train")
    features = train[feature_sets(small_data)["all"]]
    assert set(features.dtypes) == {np.dtype("int8")}
    assert features.min().min() == 0 and features.max().max() == 4


def test_features_of_one_group_are_correlated_and_across_groups_are_not(small_data):
    sets = feature_sets(small_data)
    a1, a2 = sets["constitution"][:2]
    b1 = sets["charisma"][0]
    train = read(small_data, "train")
    assert train[a1].corr(train[a2]) > 0.15
    assert abs(train[a1].corr(train[b1])) < 0.1


def test_targets_take_numerais_five_values_and_main_target_is_never_missing(small_data):
    validation = read(small_data, "validation")
    for name in TARGET_NAMES:
        values = set(validation[name].dropna().unique())
        assert values <= BINS, name
    assert validation["target"].notna().all()
    assert (validation["target"] == validation["target_ender_20"]).all()


def test_sixty_day_targets_are_missing_in_the_newest_eras_only(small_data):
    validation = read(small_data, "validation")
    newest = sorted(validation["era"].unique())[-1]
    oldest = sorted(validation["era"].unique())[0]
    assert validation.loc[validation["era"] == newest, "target_ender_60"].isna().all()
    assert validation.loc[validation["era"] == oldest, "target_ender_60"].notna().all()


def test_benchmark_files_carry_v52_columns_for_the_matching_ids(small_data):
    validation_bench = read(small_data, "validation_benchmark_models")
    live_bench = read(small_data, "live_benchmark_models")
    assert list(validation_bench.columns) == ["era", *BENCHMARK_COLUMNS]
    assert list(live_bench.columns) == BENCHMARK_COLUMNS
    assert validation_bench.index.equals(read(small_data, "validation").index)
    assert live_bench.index.equals(read(small_data, "live").index)
    values = live_bench.to_numpy()
    assert ((values > 0) & (values < 1)).all()


def test_targets_are_learnable_from_the_small_feature_set(small_data):
    from sklearn.linear_model import Ridge

    small = feature_sets(small_data)["small"]
    train, validation = read(small_data, "train"), read(small_data, "validation")
    model = Ridge().fit(train[small], train["target"])
    validation["prediction"] = model.predict(validation[small])
    per_era = validation.groupby("era")[["prediction", "target"]].apply(
        lambda era: era["prediction"].corr(era["target"], method="spearman")
    )
    assert per_era.mean() > 0.1


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    tiny = SynthSizes(
        n_all=20,
        n_medium=10,
        n_small=4,
        train_eras=4,
        validation_eras=4,
        rows_per_era=30,
        live_rows=40,
    )
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        synthesize(tmp_path / name, seed=seed, sizes=tiny)
    files = [p.name for p in (tmp_path / "a").iterdir()]
    for file in files:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert (tmp_path / "a" / "train.parquet").read_bytes() != (
        tmp_path / "c" / "train.parquet"
    ).read_bytes()


def test_nan_fraction_leaves_that_share_of_feature_values_missing(tmp_path):
    synthesize(tmp_path, sizes=SMALL, nan_fraction=0.2)
    train = read(tmp_path, "train")
    features = train[feature_sets(tmp_path)["all"]]
    assert abs(features.isna().to_numpy().mean() - 0.2) < 0.01
    values = features.to_numpy()
    assert set(np.unique(values[~np.isnan(values)])) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert train["target"].notna().all()


def test_scale_shrinks_the_default_feature_sets_proportionally():
    sizes = SynthSizes().scaled(0.1)
    assert (sizes.n_small, sizes.n_medium, sizes.n_all) == (4, 78, 275)


def test_default_sizes_match_numerai_v52_feature_sets():
    sizes = SynthSizes()
    assert (sizes.n_small, sizes.n_medium, sizes.n_all) == (42, 780, 2748)


@pytest.mark.slow
def test_default_sizes_generate_in_under_twenty_seconds(tmp_path):
    started = time.perf_counter()
    result = synthesize(tmp_path)
    assert time.perf_counter() - started < 20
    assert result["feature_sets"]["all"] == 2748


def test_synth_live_is_one_live_era_of_int8_bins_for_the_given_features():
    features = ["feature_b", "feature_a", "feature_c"]
    live = synth_live(features, n_rows=100, seed=5)
    assert live.shape == (100, 5)
    assert list(live.columns) == ["era", "data_type", *features]
    assert live.index.name == "id" and live.index.is_unique
    assert live["era"].nunique() == 1 and set(live["data_type"]) == {"live"}
    assert set(live[features].dtypes) == {np.dtype("int8")}
    assert live[features].isin([0, 1, 2, 3, 4]).all().all()


def test_synth_live_is_deterministic_for_a_seed():
    features = ["feature_a", "feature_b"]
    pd.testing.assert_frame_equal(
        synth_live(features, 50, seed=1), synth_live(features, 50, seed=1)
    )
    assert not synth_live(features, 50, seed=1).equals(synth_live(features, 50, seed=2))


def test_synth_live_defaults_to_numerais_live_row_count():
    assert len(synth_live(["feature_a"])) == 6720


def test_synth_live_carries_the_asked_share_of_nan_as_float_bins():
    live = synth_live([f"feature_{i}" for i in range(40)], n_rows=2000, nan_fraction=0.1)
    values = live.filter(like="feature_").to_numpy()
    assert values.dtype == np.float64
    assert abs(np.isnan(values).mean() - 0.1) < 0.01
    assert set(np.unique(values[~np.isnan(values)])) == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_synth_live_without_nan_keeps_int8_and_the_same_values():
    names = [f"feature_{i}" for i in range(5)]
    plain = synth_live(names, n_rows=50)
    assert (plain[names].dtypes == np.int8).all()
    with_nan = synth_live(names, n_rows=50, nan_fraction=0.3)[names].to_numpy()
    kept = ~np.isnan(with_nan)
    np.testing.assert_array_equal(with_nan[kept], plain[names].to_numpy()[kept])


def test_nan_share_reads_the_projects_missing_share_from_the_parquet_footers(tmp_path):
    from builder.config.model import DataConfig
    from builder.datasets import nan_share

    synthesize(tmp_path, sizes=SMALL, nan_fraction=0.2)
    columns = feature_sets(tmp_path)["small"]
    data = DataConfig(
        dir=tmp_path,
        version="v5.2",
        features_json=tmp_path / "features.json",
        train=tmp_path / "train.parquet",
        validation=tmp_path / "validation.parquet",
        live=None,
    )
    frames = [read(tmp_path, "train"), read(tmp_path, "validation")]
    expected = pd.concat(frames)[columns].isna().to_numpy().mean()
    assert nan_share(data, columns) == pytest.approx(expected, abs=1e-12)
    complete = tmp_path / "complete"
    synthesize(complete, sizes=SMALL, nan_fraction=0.0)
    data = DataConfig(
        complete, "v5.2", complete / "features.json", train=complete / "train.parquet"
    )
    assert nan_share(data, columns) == 0.0


def test_scaled_validation_is_written_in_row_groups_of_whole_numerai_shape(tmp_path):
    import pyarrow.parquet as pq

    from builder.datasets import write_scaled_validation

    path = write_scaled_validation(
        tmp_path / "v.parquet", 1200, n_features=16, rows_per_era=500, row_group_rows=300
    )
    source = pq.ParquetFile(path)
    assert source.num_row_groups == 4 and source.metadata.num_rows == 1200
    frame = pd.read_parquet(path)
    assert frame.index.name == "id" and frame.index.is_unique
    assert frame["era"].tolist() == ["0001"] * 500 + ["0002"] * 500 + ["0003"] * 200
    assert frame["feature_0015"].dtype == np.int8
    assert set(frame["target"].unique()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
