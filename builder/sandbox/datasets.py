"""Datasets served by the sandbox, laid out like Numerai's file names.

``nmr sandbox serve --datasets DIR`` serves ``DIR/v5.2/train.parquet`` etc.: GraphQL
``listDatasets(round, tournament)`` lists every file under DIR as ``v5.2/train.parquet``, and
``dataset(filename, round, tournament)`` answers a URL the sandbox serves with plain HTTP GET
(Content-Length, ETag, byte ranges), which is what numerapi's ``download_dataset`` fetches
(its ``utils.download_file`` resumes with a ``Range`` header). Like Numerai's, these two fields
need no API key. ``round`` picks a round's live file: ``dataset("v5.2/live.parquet", round=N)``
serves ``DIR/v5.2/live_N.parquet`` (Numerai names round files ``live_<round>.parquet``).

``nmr data synth DIR/v5.2`` writes such a directory.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote, unquote

URL_PREFIX = "/datasets/"


class DatasetError(Exception):
    """A dataset request the sandbox refuses (reported as a GraphQL error)."""


class Datasets:
    """The files under one directory, addressed by their Numerai-style relative name."""

    def __init__(self, directory: Path | None):
        self.directory = Path(directory).resolve() if directory is not None else None

    def names(self) -> list[str]:
        """``v5.2/train.parquet``-style names of every file, sorted."""
        if self.directory is None or not self.directory.is_dir():
            return []
        return sorted(
            p.relative_to(self.directory).as_posix()
            for p in self.directory.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def resolve(self, filename: str, round_num: int | None = None) -> Path:
        """The file behind a dataset name (a round's live file when ``round_num`` is given)."""
        if self.directory is None:
            raise DatasetError("this sandbox serves no datasets (start it with --datasets DIR)")
        name = filename
        if round_num is not None:
            stem, dot, suffix = filename.rpartition(".")
            if not stem.endswith("/live") and not stem == "live":
                raise DatasetError(f"{filename}: only live files exist per round")
            name = f"{stem}_{round_num}{dot}{suffix}"
        path = (self.directory / name).resolve()
        if self.directory not in path.parents or not path.is_file():
            known = ", ".join(self.names()) or "none"
            where = f" for round {round_num}" if round_num is not None else ""
            raise DatasetError(f"dataset {filename!r} not found{where} (available: {known})")
        return path

    def url(self, base_url: str, filename: str, round_num: int | None = None) -> str:
        path = self.resolve(filename, round_num)
        relative = path.relative_to(self.directory).as_posix()
        return f"{base_url}{URL_PREFIX}{quote(relative)}"

    def file_for_url_path(self, url_path: str) -> Path | None:
        """The file an HTTP path (``/datasets/v5.2/train.parquet``) names, or None."""
        relative = unquote(url_path[len(URL_PREFIX) :].split("?", 1)[0])
        if self.directory is None or not relative:
            return None
        path = (self.directory / relative).resolve()
        if self.directory not in path.parents or not path.is_file():
            return None
        return path


def etag(path: Path) -> str:
    """A strong validator for the file's bytes (changes whenever the content does)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f'"{digest.hexdigest()[:32]}"'


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` of a ``Range: bytes=START-[END]`` header, None for the whole
    file; raises ValueError when the range cannot be satisfied."""
    if not header:
        return None
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
    if not match:
        return None
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        raise ValueError(f"range {header!r} outside a {size}-byte file")
    return start, min(end, size - 1)


def dataset_resolvers(datasets: Datasets) -> dict:
    """GraphQL resolvers for ``listDatasets`` and ``dataset`` (no API key needed)."""

    def list_datasets(root, info, round=None, tournament=None):
        return datasets.names()

    def dataset(root, info, filename, round=None, tournament=None):
        try:
            return datasets.url(info.context["base_url"], filename, round)
        except DatasetError as error:
            raise DatasetError(str(error)) from None

    return {"listDatasets": list_datasets, "dataset": dataset}
