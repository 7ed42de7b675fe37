"""`nmr data download`: numerapi's own download code against the sandbox's datasets."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import numerapi
import numerapi.base_api
import pandas as pd
import pytest

from builder.datasets import SynthSizes, synthesize
from builder.download import download
from builder.errors import NmrError
from builder.sandbox.server import SandboxServer

SIZES = SynthSizes(
    n_all=20, n_medium=10, n_small=5, train_eras=3, validation_eras=3, rows_per_era=60, live_rows=40
)
FILES = [
    "features.json",
    "train.parquet",
    "validation.parquet",
    "live.parquet",
    "live_benchmark_models.parquet",
    "validation_benchmark_models.parquet",
]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A datasets directory laid out like Numerai's: DIR/v5.2/<file>, as `nmr data synth` writes."""
    root = tmp_path_factory.mktemp("datasets")
    synthesize(root / "v5.2", seed=4, sizes=SIZES)
    synthesize(root / "v5.1", seed=5, sizes=SIZES)
    return root


@pytest.fixture()
def served(datasets, tmp_path):
    # each test may change the served files: give it its own copy
    directory = tmp_path / "served"
    shutil.copytree(datasets, directory)
    server = SandboxServer(tmp_path / "state", datasets_dir=directory).start()
    yield server, directory
    server.stop()


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_numerapi_lists_the_sandbox_datasets_by_numerai_file_name(served, monkeypatch):
    server, _ = served
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
    listing = numerapi.NumerAPI().list_datasets()
    assert [n for n in listing if n.startswith("v5.2/")] == sorted(f"v5.2/{f}" for f in FILES)
    assert "v5.1/train.parquet" in listing


def test_numerapi_download_dataset_fetches_the_served_bytes(served, monkeypatch, tmp_path):
    server, directory = served
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
    dest = tmp_path / "got" / "train.parquet"
    numerapi.NumerAPI(show_progress_bars=False).download_dataset("v5.2/train.parquet", str(dest))
    assert sha(dest) == sha(directory / "v5.2" / "train.parquet")


def test_an_unknown_dataset_is_a_graphql_error_numerapi_raises(served, monkeypatch):
    server, _ = served
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", server.url)
    with pytest.raises(ValueError, match="'v5.2/nope.parquet' not found"):
        numerapi.NumerAPI().download_dataset("v5.2/nope.parquet", "/dev/null")


def test_download_fetches_every_file_of_the_version_byte_for_byte(served, tmp_path):
    server, directory = served
    result = download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    assert result.ok
    assert [f.status for f in result.files] == ["downloaded"] * 6
    for name in FILES:
        assert sha(tmp_path / "data" / name) == sha(directory / "v5.2" / name)
    rows = {f.path.name: f.rows for f in result.files}
    assert rows["validation.parquet"] == 3 * 60


def test_download_restores_numerapis_endpoint_afterwards(served, tmp_path):
    server, _ = served
    before = numerapi.base_api.API_TOURNAMENT_URL
    download(tmp_path / "data", "v5.2", api_url=server.url, files=["features"], show_progress=False)
    assert numerapi.base_api.API_TOURNAMENT_URL == before


def test_files_already_present_and_unchanged_are_skipped(served, tmp_path):
    server, _ = served
    download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    mtimes = {n: (tmp_path / "data" / n).stat().st_mtime_ns for n in FILES}
    again = download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    assert [f.status for f in again.files] == ["unchanged"] * 6
    assert {n: (tmp_path / "data" / n).stat().st_mtime_ns for n in FILES} == mtimes


def test_a_file_changed_on_the_server_is_downloaded_again(served, tmp_path):
    server, directory = served
    download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    frame = pd.read_parquet(directory / "v5.2" / "live.parquet")
    frame.iloc[:10].to_parquet(directory / "v5.2" / "live.parquet")
    again = download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    status = {f.path.name: f.status for f in again.files}
    assert status["live.parquet"] == "downloaded"
    assert status["train.parquet"] == "unchanged"
    assert len(pd.read_parquet(tmp_path / "data" / "live.parquet")) == 10


def test_a_locally_modified_file_is_downloaded_again(served, tmp_path):
    server, directory = served
    download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    (tmp_path / "data" / "features.json").write_text("{}")
    again = download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    assert {f.path.name: f.status for f in again.files}["features.json"] == "downloaded"
    assert sha(tmp_path / "data" / "features.json") == sha(directory / "v5.2" / "features.json")


def test_a_corrupt_parquet_never_replaces_the_existing_file(served, tmp_path):
    server, directory = served
    download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    good = sha(tmp_path / "data" / "validation.parquet")
    served_file = directory / "v5.2" / "validation.parquet"
    served_file.write_bytes(served_file.read_bytes()[:-100])  # footer cut off
    again = download(tmp_path / "data", "v5.2", api_url=server.url, show_progress=False)
    (failed,) = [f for f in again.files if f.status == "failed"]
    assert failed.remote == "v5.2/validation.parquet"
    assert "not a readable parquet file" in failed.detail
    assert "kept the existing validation.parquet" in failed.detail
    assert sha(tmp_path / "data" / "validation.parquet") == good
    assert not again.ok


def test_an_interrupted_download_leaves_no_file_under_the_real_name(served, tmp_path):
    server, _ = served
    server.inject_fault("dataset_download", "drop", times=1)
    result = download(
        tmp_path / "data", "v5.2", api_url=server.url, files=["train"], show_progress=False
    )
    (item,) = result.files
    assert item.status == "failed" and item.detail.startswith("download failed:")
    assert not (tmp_path / "data" / "train.parquet").exists()
    retry = download(
        tmp_path / "data", "v5.2", api_url=server.url, files=["train"], show_progress=False
    )
    assert [f.status for f in retry.files] == ["downloaded"]


def test_an_unknown_version_is_an_error_listing_the_known_ones(served, tmp_path):
    server, _ = served
    with pytest.raises(
        NmrError, match=r"unknown data version 'v9\.9' \(the API lists: v5\.1, v5\.2\)"
    ):
        download(tmp_path / "data", "v9.9", api_url=server.url, show_progress=False)


def test_files_chooses_by_data_key_or_numerai_file_name(served, tmp_path):
    server, _ = served
    result = download(
        tmp_path / "data",
        "v5.2",
        api_url=server.url,
        files=["validation", "live_benchmark_models.parquet"],
        local_names={"validation": "val.parquet"},
        show_progress=False,
    )
    assert [f.path.name for f in result.files] == ["val.parquet", "live_benchmark_models.parquet"]
    assert sorted(p.name for p in (tmp_path / "data").glob("*.parquet")) == [
        "live_benchmark_models.parquet",
        "val.parquet",
    ]


def test_round_fetches_that_rounds_live_file(served, tmp_path):
    server, directory = served
    live = pd.read_parquet(directory / "v5.2" / "live.parquet")
    live.iloc[:7].to_parquet(directory / "v5.2" / "live_1234.parquet")
    result = download(
        tmp_path / "data",
        "v5.2",
        api_url=server.url,
        files=["live"],
        round_num=1234,
        show_progress=False,
    )
    assert [f.status for f in result.files] == ["downloaded"]
    assert len(pd.read_parquet(tmp_path / "data" / "live.parquet")) == 7
    missing = download(
        tmp_path / "data2",
        "v5.2",
        api_url=server.url,
        files=["live"],
        round_num=99,
        show_progress=False,
    )
    assert "not found for round 99" in missing.files[0].detail


def test_the_cli_reports_each_failed_file_and_exits_1(served, tmp_path):
    server, directory = served
    (directory / "v5.2" / "train.parquet").write_bytes(b"PAR1 not really")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "numerai.yaml").write_text(
        "version: 1\ndata:\n  dir: data\n  version: v5.2\nmodels:\n  m:\n    artifact: m.txt\n"
    )
    env = {**os.environ, "NUMERAI_API_URL": server.url}
    done = subprocess.run(
        [sys.executable, "-c", "from builder.cli import main; main()", "data", "download"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "FAIL v5.2/train.parquet: not a readable parquet file" in done.stderr
    assert "1 of 6 files failed" in done.stderr
    assert "Traceback" not in done.stderr
    assert (project / "data" / "validation.parquet").exists()
    assert not (project / "data" / "train.parquet").exists()
