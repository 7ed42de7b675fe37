"""scikit-learn tree models (joblib / pickle files) -> ``TreeEnsemble``.

Loading a pickle runs code chosen by whoever wrote the file, so this reader is only ever
called on paths from the user's own numerai.yaml (the docs say so). It needs scikit-learn
installed at build time; the compiled model does not.

Supported estimators and the rules translated (from scikit-learn's own sources, named below):

* DecisionTree{Regressor,Classifier}, RandomForest*, ExtraTrees*: input cast to float32,
  ``float32(x) <= threshold`` compared in double, NaN follows ``missing_go_to_left``
  (``tree/_tree.pyx`` ``_apply_dense``). Classifier leaves hold class fractions (one IR tree
  per class, all sharing the structure); forests sum tree outputs in estimator order, then
  divide by ``n_estimators`` (``ensemble/_forest.py``).
* GradientBoosting{Regressor,Classifier}: raw = init estimator prediction, then per stage and
  class ``raw += learning_rate * value`` in double (``_gradient_boosting.pyx``
  ``predict_stages``), so leaves are pre-multiplied ``learning_rate * value``. The fast dense
  loop there compares without a NaN branch, so NaN always goes right; scikit-learn itself
  refuses NaN input for these models.
* HistGradientBoosting{Regressor,Classifier}: input float64, ``x <= num_threshold``, NaN follows
  ``missing_go_to_left``, categorical bitsets (``_predictor.pyx``), raw = baseline + leaves
  (learning rate already folded in).

Transforms follow the estimator's own ``predict`` / ``predict_proba`` (see ``_transform``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from builder.artifacts import Support, bind_feature_names
from builder.artifacts.forest import category_bitset, concat_trees, node_fields
from builder.artifacts.sklearn_models import DENSE_TOLERANCE
from builder.errors import ArtifactError, NmrError, NotSupportedYet
from builder.ir import TreeEnsemble

FORMAT = "sklearn"
SUFFIXES = (".pkl", ".pickle", ".joblib")

SUPPORT = (
    Support(
        "scikit-learn trees",
        "DecisionTree, RandomForest, ExtraTrees, GradientBoosting, HistGradientBoosting "
        "regressors and classifiers",
        "exact numpy trees",
        0.0,
    ),
    Support(
        "scikit-learn dense",
        "linear models, MLPRegressor, Pipelines of scalers / SimpleImputer / PCA, VotingRegressor",
        "numpy, sklearn's own operation order",
        DENSE_TOLERANCE,
    ),
)

SUPPORTED = (
    "DecisionTreeRegressor",
    "DecisionTreeClassifier",
    "RandomForestRegressor",
    "RandomForestClassifier",
    "ExtraTreesRegressor",
    "ExtraTreesClassifier",
    "GradientBoostingRegressor",
    "GradientBoostingClassifier",
    "HistGradientBoostingRegressor",
    "HistGradientBoostingClassifier",
)


def read(path: Path, feature_names=None):
    """Read a pickled scikit-learn estimator into IR: a ``TreeEnsemble`` for the tree models
    above, the dense IR for linear models, MLPs, Pipelines and VotingRegressor
    (``builder.artifacts.sklearn_models``).

    Only call this on paths from the user's own config: unpickling executes code.
    """
    from builder.artifacts.sklearn_models import model_from_estimator

    path = Path(path)
    return model_from_estimator(load_estimator(path), feature_names, source=path.name)


def native_predict(path: Path, X: np.ndarray, feature_names) -> np.ndarray:
    """scikit-learn's own output, ``(n_rows, n_outputs)`` float64: ``predict`` for regressors,
    ``predict_proba`` for classifiers, on one thread (forests accumulate under a lock in
    thread order when ``n_jobs > 1``)."""
    est = load_estimator(Path(path))
    if hasattr(est, "n_jobs"):
        est.n_jobs = 1
    X = np.asarray(X, dtype=np.float64)
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        import pandas as pd

        X = pd.DataFrame(X, columns=list(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if _is_classifier(est):
            out = est.predict_proba(X)
        else:
            out = est.predict(X)
    out = np.asarray(out, dtype=np.float64)
    return out.reshape(out.shape[0], -1)


def fidelity_tolerance(path: Path) -> float:
    """What the compiled model promises relative to |native| (at least 1): 0.0 for the tree
    models above (bit for bit), ``DENSE_TOLERANCE`` for linear models, MLPs, Pipelines and
    VotingRegressor, whose matrix products BLAS may sum in another order."""
    est = load_estimator(Path(path))
    if type(est).__name__ in SUPPORTED or type(est).__module__.split(".")[0] in (
        "xgboost",
        "lightgbm",
    ):
        return 0.0
    return DENSE_TOLERANCE


def load_estimator(path: Path):
    """Unpickle the file (joblib or plain pickle); the caller vouches for the path."""
    try:
        import joblib
    except ImportError as exc:  # pragma: no cover - joblib ships with scikit-learn
        raise NmrError(
            "reading scikit-learn models needs joblib: pip install 'nmr[sklearn]'"
        ) from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InconsistentVersionWarning is reported via meta
            return joblib.load(path)
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: file not found") from exc
    except ModuleNotFoundError as exc:
        raise ArtifactError(
            f"{path}: the pickle needs module {exc.name!r}, which is not installed"
        ) from exc
    except AttributeError as exc:
        # pickle stores classes by module and name; a class defined in the notebook or script
        # that saved the model lives in __main__, which the build process does not have
        raise ArtifactError(
            f"{path}: cannot unpickle ({exc}); a class the model uses was defined in the "
            "script or notebook that saved it: move it into an importable module, or ship "
            "the model as code with a `source:` slot"
        ) from exc
    except Exception as exc:  # a corrupt or foreign pickle can raise anything
        raise ArtifactError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc})") from exc


def ensemble_from_estimator(est, feature_names=None, source: str = "model") -> TreeEnsemble:
    """Translate a fitted estimator (see the module docstring) into the IR."""
    kind = type(est).__name__
    module = type(est).__module__
    if module.split(".")[0] in ("xgboost", "lightgbm"):
        return _booster_wrapper(est, feature_names, source)
    if module.split(".")[0] == "catboost":  # a pickled CatBoostRegressor: the CatBoost reader
        from builder.artifacts import catboost

        doc = catboost.model_document(est, source)
        return catboost.ensemble_from_document(doc, feature_names, source)
    if kind not in SUPPORTED:
        raise NotSupportedYet(f"scikit-learn estimator {type(est).__module__}.{kind} ({source})")
    if not hasattr(est, "n_features_in_"):
        raise ArtifactError(f"{source}: the {kind} is not fitted")
    n_outputs = int(getattr(est, "n_outputs_", 1) or 1)
    if n_outputs != 1:
        raise NotSupportedYet(
            f"multi-output scikit-learn {kind} (n_outputs_={n_outputs}) ({source})"
        )
    names = _feature_names(est, feature_names, source)
    if kind.startswith("HistGradientBoosting"):
        parts = _hist_gradient_boosting(est, source)
    elif kind.startswith("GradientBoosting"):
        parts = _gradient_boosting(est, source)
    else:
        parts = _forest(est, source)
    import sklearn

    meta = {
        "estimator": kind,
        "sklearn_version": sklearn.__version__,
        "pickled_with": getattr(est, "_sklearn_version", None),
        "n_trees": parts["n_trees_native"],
    }
    meta.update(parts.get("meta", {}))
    ens = parts["ens"]
    return TreeEnsemble(
        library="sklearn",
        feature_names=tuple(names),
        tree_class=parts["tree_class"],
        **node_fields(ens),
        n_outputs=parts["n_raw"],
        init=np.asarray(parts["init"], dtype=np.float64),
        compare="<=",
        input_dtype=parts["input_dtype"],
        accumulate_dtype="float64",
        average=parts["average"],
        transform=parts["transform"],
        transform_params=parts.get("transform_params", {}),
        task=parts["task"],
        meta=meta,
    )


# ---------------------------------------------------------------------------------------------
# estimator families


def _forest(est, source: str) -> dict:
    """DecisionTree*, RandomForest*, ExtraTrees*."""
    single = not hasattr(est, "estimators_")
    trees = [est] if single else list(est.estimators_)
    classifier = _is_classifier(est)
    n_classes = int(est.n_classes_) if classifier else 1
    normalize = classifier and _tree_proba_normalizes()
    parts, tree_class = [], []
    for k in range(n_classes):
        # One IR tree per (estimator, class). Trees of class k keep estimator order, which is
        # the order sklearn adds them in (element-wise sum per class, one tree at a time).
        for tree_est in trees:
            tree = tree_est.tree_
            value = tree.value[:, 0, :]  # (n_nodes, n_classes) float64
            if classifier:
                leaf = value[:, :n_classes]
                if normalize:
                    # sklearn < 1.4.1: DecisionTreeClassifier.predict_proba divided each row
                    # by its sum (a zero sum stays 1) after Tree.predict; same numpy op here.
                    norm = leaf.sum(axis=1)[:, None]
                    norm[norm == 0.0] = 1.0
                    leaf = leaf / norm
                leaf = leaf[:, k]
            else:
                leaf = value[:, 0]
            parts.append(_sk_tree_arrays(tree, leaf, nan_follows_flag=True))
            tree_class.append(k)
    task = "regression"
    if classifier:
        task = "binary" if n_classes == 2 else "multiclass"
    return {
        "ens": concat_trees(parts),
        "tree_class": np.asarray(tree_class, dtype=np.int32),
        "n_raw": n_classes,
        "init": np.zeros(n_classes),
        "input_dtype": "float32",
        "average": not single,
        "transform": "identity",
        "task": task,
        "n_trees_native": len(trees),
    }


def _gradient_boosting(est, source: str) -> dict:
    init = est.init_
    if not (isinstance(init, str) and init == "zero"):
        init_kind = type(init).__name__
        if init_kind not in ("DummyRegressor", "DummyClassifier"):
            raise NotSupportedYet(
                f"GradientBoosting init estimator {init_kind} (only the default prior / "
                f"'zero') ({source})"
            )
    # The init estimator ignores X (Dummy* priors) so one row gives the exact constant the
    # library adds; computed by scikit-learn itself, so its link (logit, log of priors) and
    # clipping are reproduced whatever the version.
    probe = np.zeros((1, est.n_features_in_), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        init_raw = np.asarray(est._raw_predict_init(probe), dtype=np.float64)[0]
    estimators = est.estimators_  # (n_stages, K)
    n_stages, K = estimators.shape
    lr = float(est.learning_rate)
    parts, tree_class = [], []
    for i in range(n_stages):
        for k in range(K):
            tree = estimators[i, k].tree_
            # predict_stages adds ``scale * value[leaf]`` with scale = learning_rate (double)
            leaf = lr * tree.value[:, 0, 0]
            parts.append(_sk_tree_arrays(tree, leaf, nan_follows_flag=False))
            tree_class.append(k)
    transform, params, task = "identity", {}, "regression"
    if _is_classifier(est):
        loss = type(est._loss).__name__
        n_classes = int(est.n_classes_)
        if n_classes == 2 and loss == "HalfBinomialLoss":
            transform, params, task = "sklearn_binary_expit", {"scale": 1.0}, "binary"
        elif n_classes == 2 and loss == "ExponentialLoss":
            # HalfLogitLink.inverse: expit(2 * raw)
            transform, params, task = "sklearn_binary_expit", {"scale": 2.0}, "binary"
        elif loss == "HalfMultinomialLoss":
            transform, task = "sklearn_softmax", "multiclass"
        else:
            raise NotSupportedYet(f"GradientBoostingClassifier loss {loss} ({source})")
    return {
        "ens": concat_trees(parts),
        "tree_class": np.asarray(tree_class, dtype=np.int32),
        "n_raw": K,
        "init": init_raw,
        "input_dtype": "float32",
        "average": False,
        "transform": transform,
        "transform_params": params,
        "task": task,
        "n_trees_native": n_stages * K,
        "meta": {"nan_input": "scikit-learn refuses NaN for GradientBoosting; NaN routes right"},
    }


def _hist_gradient_boosting(est, source: str) -> dict:
    predictors = est._predictors  # [n_iter][K] TreePredictor
    K = int(est.n_trees_per_iteration_)
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    if len(baseline) == 1 and K > 1:
        baseline = np.repeat(baseline, K)
    column_of, categories = _hgb_columns(est, source)
    parts, tree_class = [], []
    for iteration in predictors:
        for k, predictor in enumerate(iteration):
            parts.append(_hgb_tree_arrays(predictor, column_of, categories, source))
            tree_class.append(k)
    link = type(est._loss.link).__name__ if hasattr(est._loss, "link") else "?"
    loss = type(est._loss).__name__
    transform, params, task = "identity", {}, "regression"
    if _is_classifier(est):
        if loss == "HalfBinomialLoss":
            transform, params, task = "sklearn_binary_expit", {"scale": 1.0}, "binary"
        elif loss == "HalfMultinomialLoss":
            transform, task = "sklearn_softmax", "multiclass"
        else:
            raise NotSupportedYet(f"HistGradientBoostingClassifier loss {loss} ({source})")
    elif link == "LogLink":
        transform = "sklearn_exp"  # LogLink.inverse is np.exp (poisson, gamma)
    elif link != "IdentityLink":
        raise NotSupportedYet(f"HistGradientBoostingRegressor loss {loss} ({source})")
    return {
        "ens": concat_trees(parts),
        "tree_class": np.asarray(tree_class, dtype=np.int32),
        "n_raw": K,
        "init": baseline,
        "input_dtype": "float64",
        "average": False,
        "transform": transform,
        "transform_params": params,
        "task": task,
        "n_trees_native": len(predictors) * K,
    }


def _booster_wrapper(est, feature_names, source: str) -> TreeEnsemble:
    """A pickled XGBRegressor / LGBMRegressor: read its booster with that library's reader.

    Regressors only: their ``predict`` is the booster's prediction (both cut at the early-
    stopping best iteration, as the readers do). The classifiers' ``predict_proba`` adds a
    ``1 - p`` column and label encoding that the readers do not model.
    """
    kind = type(est).__name__
    if _is_classifier(est) or "Classifier" in kind or "Ranker" in kind:
        raise NotSupportedYet(
            f"pickled {type(est).__module__}.{kind} (save its booster with save_model and point "
            f"the artifact at that file) ({source})"
        )
    if type(est).__module__.startswith("xgboost"):
        import json

        from builder.artifacts import xgboost as xgb_reader

        doc = json.loads(bytes(est.get_booster().save_raw("json")))
        return xgb_reader.ensemble_from_document(doc, feature_names, source=source)
    import tempfile

    from builder.artifacts import lightgbm as lgb_reader

    text = est.booster_.model_to_string()
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / Path(source).with_suffix(".txt").name
        model_file.write_text(text)
        return lgb_reader.read(model_file, feature_names)


# ---------------------------------------------------------------------------------------------
# helpers


def _is_classifier(est) -> bool:
    return hasattr(est, "classes_")


def _tree_proba_normalizes() -> bool:
    """Whether this scikit-learn's DecisionTreeClassifier.predict_proba divides by row sums.

    Since 1.4.1 ``tree_.value`` holds fractions and predict_proba returns them as stored
    (scikit-learn PR #27639); before, it divided the counts by their sum.
    """
    import sklearn

    version = []
    for piece in sklearn.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        version.append(int(digits) if digits else 0)
    return tuple(version) < (1, 4, 1)


def _feature_names(est, given, source: str) -> list[str]:
    # an estimator fitted on a DataFrame records feature_names_in_; on an array it does not
    recorded = getattr(est, "feature_names_in_", None)
    return bind_feature_names(
        list(recorded) if recorded is not None else None, given, int(est.n_features_in_), source
    )


def _sk_tree_arrays(tree, leaf: np.ndarray, nan_follows_flag: bool) -> dict:
    """Arrays of one ``sklearn.tree._tree.Tree`` (children -1 mark leaves)."""
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    is_leaf = left == -1
    n = len(left)
    if nan_follows_flag and hasattr(tree, "missing_go_to_left"):
        dleft = np.asarray(tree.missing_go_to_left, dtype=bool).copy()
    else:
        dleft = np.zeros(n, dtype=bool)
    dleft[is_leaf] = False
    return {
        "split_feature": np.where(is_leaf, -1, tree.feature).astype(np.int32),
        "threshold": np.where(is_leaf, 0.0, tree.threshold).astype(np.float64),
        "left": np.where(is_leaf, -1, left).astype(np.int32),
        "right": np.where(is_leaf, -1, right).astype(np.int32),
        "default_left": dleft,
        "leaf_value": np.where(is_leaf, leaf, 0.0).astype(np.float64),
        "is_categorical": np.zeros(n, dtype=bool),
        "cat_sets": None,
    }


def _hgb_columns(est, source: str):
    """(model column of each predictor feature index, raw category values per categorical
    predictor feature index or None).

    With categorical features scikit-learn (>= 1.4) runs an OrdinalEncoder inside a
    ColumnTransformer first: categorical columns come first, and the trees see category codes,
    with unknown values turned into NaN. Without a preprocessor the trees see the raw values.
    """
    n = int(est.n_features_in_)
    is_cat = getattr(est, "is_categorical_", None)
    pre = getattr(est, "_preprocessor", None)
    if is_cat is None or not np.any(is_cat):
        return np.arange(n), {}
    is_cat = np.asarray(is_cat, dtype=bool)
    known = est._bin_mapper.bin_thresholds_
    categories: dict[int, dict] = {}
    if pre is None:
        column_of = np.arange(n)
        for j in np.flatnonzero(is_cat):
            codes = np.asarray(known[j], dtype=np.float64)
            categories[int(j)] = {"known_codes": codes.astype(np.int64), "values": None}
        return column_of, categories
    cat_cols = np.flatnonzero(is_cat)
    num_cols = np.flatnonzero(~is_cat)
    column_of = np.concatenate([cat_cols, num_cols])
    encoder = pre.named_transformers_["encoder"]
    for pos, j in enumerate(cat_cols):
        values = np.asarray(encoder.categories_[pos])
        if values.dtype.kind not in "iuf":
            raise NotSupportedYet(
                f"HistGradientBoosting categorical feature {j} with non-numeric categories ({source})"
            )
        values = values.astype(np.float64)
        values = values[~np.isnan(values)]
        if np.any(values < 0) or np.any(values != np.floor(values)):
            raise NotSupportedYet(
                f"HistGradientBoosting categorical feature {j} with negative or non-integer "
                f"categories ({source})"
            )
        categories[pos] = {
            "known_codes": np.asarray(known[pos], dtype=np.float64).astype(np.int64),
            "values": values.astype(np.int64),
        }
    return column_of, categories


def _hgb_tree_arrays(predictor, column_of, categories, source: str) -> dict:
    nodes = predictor.nodes
    is_leaf = nodes["is_leaf"].astype(bool)
    n = len(nodes)
    feat_idx = nodes["feature_idx"].astype(np.int64)
    left = np.where(is_leaf, -1, nodes["left"].astype(np.int64))
    right = np.where(is_leaf, -1, nodes["right"].astype(np.int64))
    dleft = nodes["missing_go_to_left"].astype(bool) & ~is_leaf
    is_cat = nodes["is_categorical"].astype(bool) & ~is_leaf
    cat_sets = None
    if is_cat.any():
        cat_sets = [None] * n
        bitsets = predictor.raw_left_cat_bitsets
        for i in np.flatnonzero(is_cat):
            f = int(feat_idx[i])
            info = categories.get(f)
            if info is None:
                raise ArtifactError(
                    f"{source}: categorical split on feature {f} without categories"
                )
            words = np.asarray(bitsets[int(nodes["bitset_idx"][i])], dtype=np.uint32)
            left_codes = _bits_to_values(words)
            known = info["known_codes"]
            right_codes = np.setdiff1d(known, left_codes)
            values = info["values"]
            if values is not None:
                left_codes = left_codes[left_codes < len(values)]
                right_codes = right_codes[right_codes < len(values)]
                left_vals, right_vals = values[left_codes], values[right_codes]
            else:
                left_vals, right_vals = left_codes, right_codes
            # Negative, NaN and unknown values take the missing direction (_predictor.pyx), so
            # the IR set is the side missing values do NOT take: then "not in set" and NaN both
            # land on the missing side.
            if dleft[i]:
                cat_sets[i] = category_bitset(right_vals)
                left[i], right[i] = right[i], left[i]
            else:
                cat_sets[i] = category_bitset(left_vals)
            dleft[i] = False
    return {
        "split_feature": np.where(is_leaf, -1, column_of[np.where(is_leaf, 0, feat_idx)]).astype(
            np.int32
        ),
        "threshold": np.where(is_leaf | is_cat, 0.0, nodes["num_threshold"]).astype(np.float64),
        "left": left.astype(np.int32),
        "right": right.astype(np.int32),
        "default_left": dleft,
        "leaf_value": np.where(is_leaf, nodes["value"], 0.0).astype(np.float64),
        "is_categorical": is_cat,
        "cat_sets": cat_sets,
    }


def _bits_to_values(words: np.ndarray) -> np.ndarray:
    bits = (words[:, None].astype(np.uint64) >> np.arange(32, dtype=np.uint64)) & np.uint64(1)
    return np.flatnonzero(bits.ravel()).astype(np.int64)
