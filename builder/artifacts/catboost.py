"""CatBoost models (``save_model`` ``.cbm`` or JSON, or a pickled ``CatBoostRegressor``) ->
``TreeEnsemble``.

The reader works on CatBoost's JSON model document. A JSON file is parsed directly; a ``.cbm``
file or a pickled model object is loaded with the catboost package at build time and re-saved
as JSON, so the catboost package is needed to build from those two forms (the ``catboost``
extra) and never by the compiled pickle.

Rules translated, from CatBoost's CPU evaluator (catboost/libs/model/cpu/quantization.h,
evaluator_impl.cpp and model/scale_and_bias.cpp):

* Oblivious (symmetric) trees: tree t of depth d has d splits, one per level; split k is
  ``float32(x[feature]) > border`` and sets bit k of the leaf index, so the leaf is
  ``leaf_values[sum(bit_k << k)]``. The IR tree is the complete binary tree whose level l
  tests split d-1-l (most significant bit first), so heap leaf p is ``leaf_values[p]``;
  ``go_left = float32(x) <= border`` is the same test.
* Missing values: a feature with ``nan_value_treatment`` AsFalse (nan_mode Min) replaces NaN by
  -inf (every test false, left); AsTrue (nan_mode Max) by +inf (every test true, right);
  AsIs (nan_mode Forbidden, or no NaN in training) compares NaN as is, and ``NaN > border``
  is false, so left. The IR's per-node ``default_left`` says exactly this.
* Accumulation: a double per row, starting at 0, ``+= leaf`` tree by tree in model order (the
  SSE path adds four trees per step but each one in turn, and the scalar tail writes
  ``r + l0 + l1 + l2 + l3`` left to right). Then ``scale * sum + bias`` (ApplyScaleAndBias,
  which skips the multiply when scale is 1 and the add when bias is 0), the
  ``catboost_scale_and_bias`` transform. The result is ``predict(prediction_type=
  "RawFormulaVal")``, bit for bit (tests/test_trees_catboost_*.py).

Refused with a clear sentence: categorical, text and embedding features, non-symmetric trees
(grow_policy Depthwise / Lossguide), multi-dimensional outputs (MultiRMSE,
RMSEWithUncertainty, multiclass), classifiers, and losses whose ``predict`` is not the raw
value (Poisson, Tweedie: CatBoost's own fast exp does not round like the C library's).
"""

from __future__ import annotations

import json
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np

from builder.artifacts import Support, bind_feature_names, damaged_model
from builder.artifacts.forest import concat_trees, node_fields
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from builder.ir import TreeEnsemble

FORMAT = "catboost"
SUFFIXES = (".cbm",)

SUPPORT = (
    Support(
        "CatBoost",
        "`.cbm`, JSON, pickled `CatBoostRegressor` (numeric features, symmetric trees)",
        "exact numpy trees",
        0.0,
        against="`RawFormulaVal`",
    ),
)

# CatBoost's binary model files start with this magic (model/model_export/... "CBM1").
CBM_MAGIC = b"CBM1"
PICKLE_MAGIC = b"\x80"
# Losses whose CatBoostRegressor.predict returns the exponent of the raw value
# (catboost/core.py CatBoostRegressor._get_default_prediction_type).
EXPONENT_LOSSES = ("Poisson", "Tweedie")
CLASSIFIER_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll", "MultiLogloss")
OTHER_OPTIONS = "use a `source:` slot (nmr packs your predict code with the image's own catboost)"


def read(path: Path, feature_names=None) -> TreeEnsemble:
    """Read a CatBoost model file (``.cbm``, CatBoost JSON, or a pickled model) into IR."""
    path = Path(path)
    doc = load_document(path)
    with damaged_model(
        path, "CatBoost", "model.save_model", (KeyError, IndexError, TypeError, ValueError)
    ):
        return ensemble_from_document(doc, feature_names, source=path.name)


def native_predict(path: Path, X: np.ndarray, feature_names) -> np.ndarray:
    """CatBoost's own ``RawFormulaVal`` for X (model column order), ``(n_rows, 1)`` float64,
    single thread.

    For a JSON file, CatBoost's evaluator runs on the file's exact numbers: catboost's JSON
    loader parses some leaf values 1 ulp away from the digits written (measured with catboost
    1.2.8: the file's digits equal the saved model's doubles, the loaded ones do not), so its
    leaf values and scale/bias are set again from a correctly rounded parse.
    """
    path = Path(path)
    model = load_model(path)
    if _file_kind(path) == "json":
        doc = load_document(path)
        leaves = [v for tree in doc["oblivious_trees"] for v in tree["leaf_values"]]
        model.set_leaf_values(np.asarray(leaves, dtype=np.float64))
        model.set_scale_and_bias(*_scale_and_bias(doc, path.name))
    out = model.predict(
        np.asarray(X, dtype=np.float64), prediction_type="RawFormulaVal", thread_count=1
    )
    out = np.asarray(out, dtype=np.float64)
    return out.reshape(out.shape[0], -1)


def load_model(path: Path):
    """The catboost model object in the file (CatBoost JSON, ``.cbm`` or a pickle)."""
    kind = _file_kind(path)
    if kind == "pickle":
        return _unpickle(path)
    catboost = _catboost(path)
    model = catboost.CatBoost()
    try:
        model.load_model(str(path), format="json" if kind == "json" else "cbm")
    except catboost.CatBoostError as exc:
        raise ArtifactError(f"{path}: catboost cannot load it ({exc})") from exc
    return model


def load_document(path: Path) -> dict:
    """CatBoost's JSON model document for any of the accepted file forms."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    if _file_kind(path) == "json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ArtifactError(f"{path}: not a readable CatBoost JSON model ({exc})") from exc
        if not isinstance(doc, dict):
            raise ArtifactError(f"{path}: not a CatBoost JSON model (the top level is no object)")
        return doc
    return model_document(load_model(path), path.name)


def model_document(model, source: str = "model") -> dict:
    """The JSON document of a loaded catboost model object (re-saved by catboost itself)."""
    kind = type(model).__name__
    if type(model).__module__.split(".")[0] != "catboost" or not hasattr(model, "save_model"):
        raise ArtifactError(f"{source}: holds a {kind}, not a CatBoost model")
    if kind == "CatBoostClassifier":
        raise NotSupportedYet(
            f"CatBoostClassifier ({source}): nmr compiles CatBoostRegressor; "
            f"for a classifier, {OTHER_OPTIONS}"
        )
    if not model.is_fitted():
        raise ArtifactError(f"{source}: the {kind} is not fitted")
    # CatBoost cannot write a model with text or embedding features as JSON: refuse them here
    for what, getter in (
        ("text features", "get_text_feature_indices"),
        ("embedding features", "get_embedding_feature_indices"),
    ):
        indices = list(getattr(model, getter, lambda: [])() or [])
        if indices:
            names = [str(model.feature_names_[i]) for i in indices]
            _refuse_features(what, names, source)
    import catboost

    with tempfile.TemporaryDirectory(prefix="nmr-catboost-") as tmp:
        out = Path(tmp) / "model.json"
        try:
            model.save_model(str(out), format="json")
        except catboost.CatBoostError as exc:
            raise ArtifactError(f"{source}: catboost cannot export it as JSON ({exc})") from exc
        return json.loads(out.read_text(encoding="utf-8"))


def ensemble_from_document(doc: dict, feature_names=None, source: str = "model") -> TreeEnsemble:
    """Translate CatBoost's JSON model document (see the module docstring) into the IR."""
    _refuse_unsupported(doc, source)
    float_features = doc["features_info"].get("float_features") or []
    n_features = 1 + max((int(f["flat_feature_index"]) for f in float_features), default=-1)
    column_of = {int(f["feature_index"]): int(f["flat_feature_index"]) for f in float_features}
    nan_left = {int(f["feature_index"]): _nan_goes_left(f, source) for f in float_features}
    recorded = [str(f.get("feature_id") or "") for f in float_features]
    if not all(recorded) or len(recorded) != n_features:
        recorded = []
    names = bind_feature_names(recorded, feature_names, n_features, source)

    trees = doc["oblivious_trees"]
    parts = [_tree_arrays(tree, column_of, nan_left, source, t) for t, tree in enumerate(trees)]
    scale, bias = _scale_and_bias(doc, source)
    transform, params = "identity", {}
    if scale != 1.0 or bias != 0.0:
        transform, params = "catboost_scale_and_bias", {"scale": scale, "bias": bias}
    info = doc.get("model_info") or {}
    return TreeEnsemble(
        library="catboost",
        feature_names=tuple(names),
        tree_class=np.zeros(len(parts), dtype=np.int32),
        **node_fields(concat_trees(parts)),
        n_outputs=1,
        init=np.zeros(1, dtype=np.float64),
        compare="<=",
        input_dtype="float32",
        accumulate_dtype="float64",
        transform=transform,
        transform_params=params,
        task="regression",
        meta={
            "objective": _loss_name(doc) or "RMSE",
            "catboost_version": _version(info),
            "trees": len(parts),
            "scale": scale,
            "bias": bias,
        },
    )


# --- helpers ---------------------------------------------------------------------------------


def _file_kind(path: Path) -> str:
    """The file form from its first bytes (the suffix may say anything): json, pickle or cbm."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc})") from exc
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        return "json"
    if head.startswith(PICKLE_MAGIC) or path.suffix.lower() in (".pkl", ".pickle", ".joblib"):
        return "pickle"
    return "cbm"


def _catboost(path: Path):
    try:
        import catboost
    except ImportError as exc:
        raise NmrError(
            f"{path}: reading a CatBoost .cbm file or pickle needs the catboost package at build "
            "time: pip install 'nmr[catboost]' (or save the model with "
            "save_model(..., format='json'), which nmr reads without it)"
        ) from exc
    return catboost


def _unpickle(path: Path):
    """Unpickle a CatBoost model (the user's own file: unpickling runs its code)."""
    _catboost(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import joblib

                return joblib.load(path)
            except ImportError:
                with path.open("rb") as handle:
                    return pickle.load(handle)
    except ModuleNotFoundError as exc:
        raise ArtifactError(
            f"{path}: the pickle needs module {exc.name!r}, which is not installed"
        ) from exc
    except Exception as exc:  # a corrupt or foreign pickle can raise anything
        raise ArtifactError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc})") from exc


def _refuse_unsupported(doc: dict, source: str) -> None:
    info = doc.get("features_info")
    if not isinstance(info, dict):
        raise ArtifactError(f"{source}: not a CatBoost model (no features_info)")
    kinds = {
        "categorical_features": "categorical features",
        "text_features": "text features",
        "embedding_features": "embedding features",
    }
    for key, what in kinds.items():
        if info.get(key):
            names = [str(f.get("feature_id") or f.get("flat_feature_index")) for f in info[key]]
            _refuse_features(what, names, source)
    if "oblivious_trees" not in doc:
        if "trees" in doc or "non_symmetric_trees" in doc:
            raise NotSupportedYet(
                f"CatBoost non-symmetric trees ({source}: grow_policy Depthwise or Lossguide); "
                f"nmr compiles the default SymmetricTree policy; retrain with it, or "
                f"{OTHER_OPTIONS}"
            )
        raise ArtifactError(f"{source}: not a CatBoost model (no oblivious_trees)")
    loss = _loss_name(doc)
    if loss in CLASSIFIER_LOSSES:
        raise NotSupportedYet(
            f"CatBoost classifiers (loss {loss}, {source}): nmr compiles CatBoostRegressor; "
            f"for a classifier, {OTHER_OPTIONS}"
        )
    if loss is not None and loss.startswith(EXPONENT_LOSSES):
        raise NotSupportedYet(
            f"CatBoost loss {loss} ({source}): its predict returns exp of the raw value, which "
            f"CatBoost computes with its own fast exp; train with RMSE, or {OTHER_OPTIONS}"
        )
    scale_bias = doc.get("scale_and_bias") or [1.0, [0.0]]
    biases = scale_bias[1] if isinstance(scale_bias[1], list) else [scale_bias[1]]
    if len(biases) > 1:
        raise NotSupportedYet(
            f"CatBoost models with {len(biases)} outputs ({source}, loss {loss}); nmr compiles "
            "single-output regressors"
        )
    for t, tree in enumerate(doc["oblivious_trees"]):
        for split in tree.get("splits") or []:
            if split.get("split_type") != "FloatFeature":
                raise NotSupportedYet(
                    f"CatBoost split type {split.get('split_type')} (tree {t}, {source}); nmr "
                    f"compiles float-feature splits only; {OTHER_OPTIONS}"
                )


def _refuse_features(what: str, names: list[str], source: str) -> None:
    raise NotSupportedYet(
        f"CatBoost models with {what} ({source}: {', '.join(names[:3])}"
        f"{', ...' if len(names) > 3 else ''}); nmr compiles float features only: "
        f"encode them as numbers before training, or {OTHER_OPTIONS}"
    )


def _tree_arrays(tree: dict, column_of: dict, nan_left: dict, source: str, t: int) -> dict:
    """Node arrays (local children) of one oblivious tree as a complete binary tree."""
    splits = tree.get("splits") or []
    depth = len(splits)
    leaves = np.asarray(tree["leaf_values"], dtype=np.float64)
    if len(leaves) != 1 << depth:
        raise NotSupportedYet(
            f"CatBoost tree {t} of {source} has {len(leaves)} leaf values for depth {depth} "
            "(a multi-dimensional model); nmr compiles single-output regressors"
        )
    n_internal = (1 << depth) - 1
    n = n_internal + (1 << depth)
    feature = np.full(n, -1, dtype=np.int32)
    threshold = np.zeros(n, dtype=np.float64)
    default_left = np.ones(n, dtype=bool)
    heap = np.arange(n_internal)
    level = np.zeros(n_internal, dtype=np.int64)
    for lvl in range(1, depth):
        level[(1 << lvl) - 1 : (1 << (lvl + 1)) - 1] = lvl
    for lvl in range(depth):
        split = splits[depth - 1 - lvl]  # most significant bit at the root
        index = int(split["float_feature_index"])
        if index not in column_of:
            raise ArtifactError(f"{source}: tree {t} splits on unknown float feature {index}")
        at = level == lvl
        feature[:n_internal][at] = column_of[index]
        # borders are float32 in the model; the JSON prints them as doubles of that value
        threshold[:n_internal][at] = float(np.float32(split["border"]))
        default_left[:n_internal][at] = nan_left[index]
    left = np.full(n, -1, dtype=np.int32)
    right = np.full(n, -1, dtype=np.int32)
    left[:n_internal] = 2 * heap + 1
    right[:n_internal] = 2 * heap + 2
    leaf_value = np.zeros(n, dtype=np.float64)
    leaf_value[n_internal:] = leaves
    return {  # concat_trees' layout (builder/artifacts/forest.py); CatBoost has no categories here
        "split_feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "default_left": default_left,
        "leaf_value": leaf_value,
        "is_categorical": np.zeros(n, dtype=bool),
        "cat_sets": None,
    }


def _nan_goes_left(feature: dict, source: str) -> bool:
    treatment = feature.get("nan_value_treatment", "AsIs")
    if treatment in ("AsIs", "AsFalse"):
        return True  # NaN > border is false; AsFalse substitutes -inf
    if treatment == "AsTrue":
        return False  # +inf > every finite border
    raise ArtifactError(
        f"{source}: unknown nan_value_treatment {treatment!r} for float feature "
        f"{feature.get('flat_feature_index')}"
    )


def _scale_and_bias(doc: dict, source: str) -> tuple[float, float]:
    raw = doc.get("scale_and_bias")
    if raw is None:
        return 1.0, 0.0
    scale, bias = raw
    if isinstance(bias, list):
        bias = bias[0] if bias else 0.0
    return float(scale), float(bias)


def _loss_name(doc: dict) -> str | None:
    params = (doc.get("model_info") or {}).get("params") or {}
    if isinstance(params, str):  # some versions store the params as a JSON string
        try:
            params = json.loads(params)
        except ValueError:
            return None
    loss = params.get("loss_function") if isinstance(params, dict) else None
    if isinstance(loss, dict):
        return loss.get("type")
    return loss if isinstance(loss, str) else None


def _version(info: dict) -> str | None:
    text = str(info.get("catboost_version_info") or "")
    marker = "tags/v"
    if marker in text:
        return text.split(marker, 1)[1].split()[0]
    return None
