"""Helpers shared by the runner tests: the runtime interpreter, pickles made inside it, live data."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests import synthdata

CORPUS = Path(__file__).parent

# Runs inside the runtime's Python: exec each corpus source in a module namespace that is not
# importable, so cloudpickle pickles its functions by value (as it does for a notebook's
# __main__), then write MODEL's pickle or PICKLE_BYTES.
_MAKER = r"""
import json, sys
import cloudpickle
for item in json.load(open(sys.argv[1])):
    namespace = {"__name__": "nmr_corpus_" + item["name"]}
    exec(compile(item["source"], item["name"] + ".py", "exec"), namespace)
    data = namespace.get("PICKLE_BYTES")
    if data is None:
        data = cloudpickle.dumps(namespace["MODEL"])
    with open(item["out"], "wb") as handle:
        handle.write(data)
"""


@functools.lru_cache(maxsize=1)
def runtime_python() -> str:
    """The default runtime's venv interpreter (Python 3.12, numpy/pandas/cloudpickle/pyarrow)."""
    from builder import runtimes
    from builder.env import ensure_env

    return str(ensure_env(runtimes.default_tag()).python)


def corpus_source(name: str, **replace) -> str:
    source = (CORPUS / f"{name}.py").read_text()
    for key, value in replace.items():
        source = source.replace(f"{key} = 0", f"{key} = {value!r}")
    return source


def make_pickles(python: str, sources: dict[str, str], out_dir: Path) -> dict[str, Path]:
    """Pickle each ``name -> source`` inside ``python``; returns ``name -> pickle path``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [
        {"name": name, "source": source, "out": str(out_dir / f"{name}.pkl")}
        for name, source in sources.items()
    ]
    spec = out_dir / "corpus.json"
    spec.write_text(json.dumps(items))
    subprocess.run([python, "-c", _MAKER, str(spec)], check=True, capture_output=True)
    return {item["name"]: Path(item["out"]) for item in items}


def make_pickle_here(source: str, out: Path, name: str = "here") -> Path:
    """Pickle a corpus source with the test process's own Python and cloudpickle."""
    namespace = {"__name__": f"nmr_corpus_{name}"}
    exec(compile(source, f"{name}.py", "exec"), namespace)
    import cloudpickle

    out.write_bytes(cloudpickle.dumps(namespace["MODEL"]))
    return out


def write_live(path: Path, n_rows: int = 200, n_features: int = 5, seed: int = 0) -> Path:
    X, _ = synthdata.numerai_like(n_rows, n_features, seed=seed)
    synthdata.numerai_frame(X).to_parquet(path)
    return path


def live_ids(path: Path) -> list[str]:
    return [str(i) for i in pd.read_parquet(path, columns=[]).index]


def this_python_minor() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"
