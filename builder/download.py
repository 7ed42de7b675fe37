"""`nmr data download`: Numerai's data files for ``data.version``, fetched with numerapi.

The official client does the transfer (``NumerAPI.list_datasets`` and ``download_dataset``:
its GraphQL ``dataset`` query, its streamed GET with a progress bar per file, its resumable
``<dest>.temp``), so nmr downloads exactly as Numerai's own notebooks do. Around it nmr adds:

* a skip for files already present and unchanged: the server's ``ETag`` and size (a HEAD on
  the dataset URL) are recorded in ``data.dir/.nmr-downloads.json`` next to the file's size;
* a check before a new file replaces the old one: the download lands in
  ``data.dir/.nmr-download/`` and must open (parquet footer and schema readable, row count
  matching the row groups, the last row group decodable; ``features.json`` parses with its
  ``feature_sets``) before ``os.replace`` moves it under its real name, so an interrupted or
  corrupt download never leaves a half file where nmr reads data;
* errors that name the file and the cause; every file is tried, every failure reported.

The endpoint is ``NUMERAI_API_URL`` when set (e.g. a sandbox started with ``--datasets``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from builder.errors import NmrError

# Numerai's file names for one data version, keyed by the numerai.yaml data keys
# (features.json has no key: it always sits in data.dir).
NUMERAI_FILES = {
    "features": "features.json",
    "train": "train.parquet",
    "validation": "validation.parquet",
    "live": "live.parquet",
    "live_benchmarks": "live_benchmark_models.parquet",
    "validation_benchmarks": "validation_benchmark_models.parquet",
}
ROUND_FILES = ("live", "live_benchmarks")  # the files that exist per round
MANIFEST = ".nmr-downloads.json"
STAGING = ".nmr-download"


@dataclass
class FileResult:
    key: str
    remote: str  # e.g. v5.2/train.parquet
    path: Path
    status: str  # downloaded | unchanged | failed
    detail: str = ""
    rows: int | None = None


@dataclass
class DownloadResult:
    version: str
    files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "failed" for f in self.files)


def download(
    data_dir: Path,
    version: str,
    *,
    local_names: dict[str, str] | None = None,
    files: list[str] | None = None,
    round_num: int | None = None,
    api_url: str | None = None,
    show_progress: bool = True,
    on_file: Callable[[FileResult], None] | None = None,
) -> DownloadResult:
    """Download ``files`` (data keys or Numerai file names; default: every NUMERAI_FILES key)
    of ``version`` into ``data_dir``, named by ``local_names`` (data key -> file name)."""
    with _endpoint(api_url):
        return _download(data_dir, version, local_names, files, round_num, show_progress, on_file)


def _download(data_dir, version, local_names, files, round_num, show_progress, on_file):
    napi = _client(show_progress)
    listing = _listing(napi)
    versions = sorted({name.split("/", 1)[0] for name in listing if "/" in name})
    if version not in versions:
        raise NmrError(
            f"unknown data version {version!r} (the API lists: {', '.join(versions) or 'none'})"
        )
    wanted = _wanted(files, version, listing)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(data_dir)
    result = DownloadResult(version)
    for key, numerai_name in wanted:
        remote = f"{version}/{numerai_name}"
        local = (local_names or {}).get(key) or numerai_name
        round_for_file = round_num if key in ROUND_FILES else None
        item = _one_file(napi, remote, key, data_dir / local, round_for_file, manifest, listing)
        result.files.append(item)
        if on_file is not None:
            on_file(item)
    _write_manifest(data_dir, manifest)
    return result


def check_file(path: Path) -> int | None:
    """Raise ValueError unless ``path`` opens as what its name says; returns parquet rows."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            source = pq.ParquetFile(path)  # reads the footer: a truncated file fails here
            schema = source.schema_arrow
            rows = source.metadata.num_rows
            groups = sum(
                source.metadata.row_group(i).num_rows for i in range(source.num_row_groups)
            )
            if source.num_row_groups:
                # decode real data pages, not only the footer: the last group's first column
                source.read_row_group(source.num_row_groups - 1, columns=[schema.names[0]])
        except Exception as error:
            raise ValueError(f"not a readable parquet file ({error})") from None
        if groups != rows:
            raise ValueError(f"row groups hold {groups} rows but the footer says {rows}")
        if not schema.names:
            raise ValueError("the parquet schema has no columns")
        return int(rows)
    if path.suffix == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"not valid JSON ({error})") from None
        if path.name == "features.json" and "feature_sets" not in document:
            raise ValueError("features.json has no 'feature_sets'")
        return None
    return None


# --- one file --------------------------------------------------------------------------------


def _one_file(napi, remote, key, dest: Path, round_num, manifest, listing) -> FileResult:
    if round_num is None and remote not in listing:
        return FileResult(key, remote, dest, "failed", "not in the API's dataset listing")
    try:
        url = _dataset_url(napi, remote, round_num)
        remote_id = _remote_identity(url)
    except (NmrError, requests.RequestException, ValueError) as error:
        return FileResult(key, remote, dest, "failed", f"no download URL: {_cause(error)}")
    entry_key = remote if round_num is None else f"{remote}@round{round_num}"
    recorded = manifest.get(dest.name)
    if (
        dest.is_file()
        and recorded == {"remote": entry_key, **remote_id, "local_size": dest.stat().st_size}
        and remote_id.get("etag")
    ):
        return FileResult(key, remote, dest, "unchanged", "same ETag and size as the server")
    staging = dest.parent / STAGING / dest.name
    staging.parent.mkdir(parents=True, exist_ok=True)
    if staging.exists():
        staging.unlink()  # a finished but rejected earlier try; numerapi resumes its .temp
    try:
        napi.download_dataset(remote, str(staging), round_num=round_num)
    except Exception as error:  # numerapi raises requests / ValueError / KeyError
        return FileResult(key, remote, dest, "failed", f"download failed: {_cause(error)}")
    try:
        rows = check_file(staging)
    except ValueError as error:
        staging.unlink(missing_ok=True)
        kept = f"; kept the existing {dest.name}" if dest.exists() else ""
        return FileResult(key, remote, dest, "failed", f"{error}{kept}")
    os.replace(staging, dest)
    manifest[dest.name] = {"remote": entry_key, **remote_id, "local_size": dest.stat().st_size}
    return FileResult(key, remote, dest, "downloaded", "", rows)


def _dataset_url(napi, remote: str, round_num) -> str:
    # numerapi's own query text (NumerAPI.download_dataset), asked once more for the URL so a
    # HEAD can tell whether the file changed before downloading it
    query = """
        query ($filename: String!
               $round: Int
               $tournament: Int) {
            dataset(filename: $filename
                    round: $round
                    tournament: $tournament)
        }
        """
    data = napi.raw_query(
        query, {"filename": remote, "round": round_num, "tournament": napi.tournament_id}
    )
    url = (data or {}).get("data", {}).get("dataset")
    if not url:
        raise NmrError("the API gave no download URL")
    return url


def _remote_identity(url: str) -> dict:
    response = requests.head(url, timeout=60, allow_redirects=True)
    if response.status_code >= 400:
        raise NmrError(f"HTTP {response.status_code} from the download URL")
    return {
        "etag": response.headers.get("ETag"),
        "size": int(response.headers.get("Content-Length") or -1),
    }


# --- helpers ---------------------------------------------------------------------------------


@contextmanager
def _endpoint(api_url: str | None):
    """Point numerapi at ``api_url`` / ``NUMERAI_API_URL`` for the block, then restore it:
    numerapi reads the module global ``API_TOURNAMENT_URL`` at call time and has no URL
    argument."""
    import numerapi.base_api

    url = api_url or os.environ.get("NUMERAI_API_URL")
    if url and not url.startswith(("http://", "https://")):
        raise NmrError(f"NUMERAI_API_URL {url!r} is not an http:// or https:// URL")
    before = numerapi.base_api.API_TOURNAMENT_URL
    if url:
        numerapi.base_api.API_TOURNAMENT_URL = url
    try:
        yield
    finally:
        numerapi.base_api.API_TOURNAMENT_URL = before


def _client(show_progress: bool):
    import numerapi

    # datasets need no keys: pass none, so nothing secret is ever sent or logged here
    return numerapi.NumerAPI(verbosity="WARNING", show_progress_bars=show_progress)


def _listing(napi) -> list[str]:
    import numerapi.base_api

    try:
        listing = napi.list_datasets()
    except KeyError:  # numerapi logs a transport error and returns {} (no "data")
        raise NmrError(
            f"cannot list Numerai's datasets: no answer from {numerapi.base_api.API_TOURNAMENT_URL}"
        ) from None
    except Exception as error:
        raise NmrError(f"cannot list Numerai's datasets: {_cause(error)}") from None
    if not isinstance(listing, list):
        raise NmrError("cannot list Numerai's datasets: the API answered no list")
    return listing


def _wanted(files, version: str, listing: list[str]) -> list[tuple[str, str]]:
    if not files:
        return list(NUMERAI_FILES.items())
    out = []
    available = [n.split("/", 1)[1] for n in listing if n.startswith(version + "/")]
    for item in files:
        if item in NUMERAI_FILES:
            out.append((item, NUMERAI_FILES[item]))
        elif item in available:
            key = next((k for k, v in NUMERAI_FILES.items() if v == item), item)
            out.append((key, item))
        else:
            keys = ", ".join(NUMERAI_FILES)
            raise NmrError(
                f"--files {item!r}: neither a data key ({keys}) nor a {version} file "
                f"(the API lists: {', '.join(available) or 'none'})"
            )
    return out


def _read_manifest(data_dir: Path) -> dict:
    path = data_dir / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_manifest(data_dir: Path, manifest: dict) -> None:
    path = data_dir / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _cause(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
