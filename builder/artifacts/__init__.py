"""Artifact readers: one module per format, each turning a trained model file into IR.

Each reader module exposes:
  FORMAT: str                      the format name used in numerai.yaml
  SUFFIXES: tuple[str, ...]        file suffixes that infer this format
  read(path, feature_names=None) -> builder.ir.TreeEnsemble | builder.ir.Graph, or for
      scikit-learn also builder.ir.LinearModel | MLP | Pipeline | Voting
  input_files(path) -> tuple[Path, ...]   (only formats in NAMES_OTHER_FILES)
      every file ``read`` opens, the artifact first; numerai.lock hashes exactly these.
  native_predict(path, X: np.ndarray, feature_names) -> np.ndarray  (n_rows, n_outputs)
      the native library's own predictions (for fidelity checks); needs the library installed.
The registry below is data so `nmr` can print what is supported.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ArtifactError, NmrError

FORMATS: dict[str, str] = {
    "lightgbm": "builder.artifacts.lightgbm",
    "xgboost": "builder.artifacts.xgboost",
    "sklearn": "builder.artifacts.sklearn",
    "onnx": "builder.artifacts.onnx",
    "catboost": "builder.artifacts.catboost",
}


@dataclass(frozen=True)
class Support:
    """One row of "what nmr supports": a model family a reader compiles and what it promises.

    Each reader module lists its rows in ``SUPPORT``; ``nmr supported`` and the README's support
    table print them, and the fidelity check holds the compiled model to ``tolerance``.
    """

    family: str  # "LightGBM", "scikit-learn trees"
    inputs: str  # files and model kinds read
    evaluator: str  # what runs in the pickle
    # |compiled - native| <= tolerance * max(|native|, 1); 0.0 means bit for bit
    tolerance: float
    against: str = ""  # which native output the tolerance is measured against, when not predict


# Formats whose model file names other files that ``read`` opens too (ONNX external data, see
# builder.artifacts.onnx.input_files). Every other format reads exactly its one file; knowing
# that here keeps a no-op `nmr build` from importing the readers (and numpy).
NAMES_OTHER_FILES = {"onnx"}

# suffix -> format; ".json" is ambiguous (LightGBM dump_model vs XGBoost save_model) and is
# resolved by peeking at the content in infer_format.
SUFFIXES: dict[str, str] = {
    ".txt": "lightgbm",
    ".lgb": "lightgbm",
    ".ubj": "xgboost",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".joblib": "sklearn",
    ".onnx": "onnx",
    ".cbm": "catboost",
}


def support() -> tuple[tuple[str, Support], ...]:
    """(format, row) for every reader's ``SUPPORT`` rows, in ``FORMATS`` order."""
    return tuple((fmt, row) for fmt in FORMATS for row in reader(fmt).SUPPORT)


def reader(fmt: str):
    """The reader module for a format name."""
    if fmt not in FORMATS:
        raise NmrError(f"unknown artifact format {fmt!r} (known: {', '.join(FORMATS)})")
    return importlib.import_module(FORMATS[fmt])


def infer_format(path: Path) -> str | None:
    """The format implied by a file's suffix (and, for .json, its first bytes); None if unknown."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            head = path.open("rb").read(4096)
        except OSError:
            return None
        if b'"learner"' in head:
            return "xgboost"
        if b'"oblivious_trees"' in head or b'"features_info"' in head:
            return "catboost"
        if b'"tree_info"' in head or b'"feature_names"' in head:
            return "lightgbm"
        return None
    return SUFFIXES.get(suffix)


def input_files(path: Path, fmt: str) -> tuple[Path, ...]:
    """Every file ``read(path, fmt)`` opens, the artifact itself first (the lock's inputs)."""
    path = Path(path)
    if fmt not in NAMES_OTHER_FILES:
        return (path,)
    return tuple(reader(fmt).input_files(path))


def read(path: Path, fmt: str, feature_names=None):
    """Read an artifact into IR."""
    return reader(fmt).read(Path(path), feature_names)


@contextmanager
def damaged_model(path: Path, library: str, resave: str, errors: tuple):
    """Turn ``errors`` raised while translating a model document into one ArtifactError.

    A hand-edited or partly written document fails deep in the translation (a missing key, a
    short list); the user needs the file, the first thing missing and how to re-save it, not
    the lookup that failed. NmrError (a located refusal) passes through as it is.
    """
    try:
        yield
    except NmrError:
        raise
    except errors as exc:
        raise ArtifactError(
            f"{path}: incomplete or damaged {library} model ({type(exc).__name__}: {exc}); "
            f"re-save it with {resave}"
        ) from exc


def bind_feature_names(recorded, given, width: int | None, source: str) -> list[str]:
    """The model's input columns in training order, checked against the config's list.

    ``recorded``: names stored in the artifact (empty/None when it has none); ``given``: the
    config's list (None when absent); ``width``: the model's input count when known. The
    evaluator selects columns by name in the model's order, so the config may list the same
    columns in any order, but it must name exactly the model's columns.
    """
    recorded = [str(name) for name in recorded] if recorded else []
    given = [str(name) for name in given] if given is not None else None
    if recorded:
        if given is not None and given != recorded:
            given_set, recorded_set = set(given), set(recorded)
            missing = [name for name in recorded if name not in given_set]
            extra = [name for name in given if name not in recorded_set]
            if missing or extra:
                what = (
                    f"including {missing[0]!r}, which the config does not list"
                    if missing
                    else f"but the config lists {extra[0]!r}, which the model does not use"
                )
                raise NmrError(
                    f"{source}: the model was trained on {len(recorded)} features {what} "
                    f"({len(missing)} missing, {len(extra)} extra)"
                )
        return recorded
    if given is None:
        raise NmrError(
            f"{source}: the model records no feature names; list them (in training order) "
            "under the model's features in numerai.yaml"
        )
    if width and len(given) != width:
        raise NmrError(
            f"{source}: the model was trained on {width} features but the config lists {len(given)}"
        )
    return given
