"""scikit-learn linear models, MLPRegressor, Pipelines and VotingRegressor -> IR.

``model_from_estimator`` is the entry point for every unpickled scikit-learn object (the
``sklearn`` format): tree models go to ``builder.artifacts.sklearn`` (``TreeEnsemble``), pickled
LGBMRegressor / XGBRegressor to their libraries' readers, and the estimators below to the dense
IR of builder/ir.py (``LinearModel``, ``MLP``, ``Pipeline`` of ``Transform`` steps, ``Voting``).

What is read is the fitted state that ``predict`` / ``transform`` use, as stored (no
refitting, no re-derivation), so the kernel can repeat scikit-learn's arithmetic.

Anything else is refused naming the estimator or step and what to do instead, in this order:
the supported equivalent when there is one, an ONNX export with skl2onnx, a ``source:`` slot.
"""

from __future__ import annotations

import numpy as np

from builder.artifacts import bind_feature_names
from builder.errors import ArtifactError, NotSupportedYet
from builder.ir import MLP, LinearModel, Pipeline, Transform, Voting

# The stated bound of every model read here: |compiled - scikit-learn| <= 1e-12 * the
# prediction scale. Element-wise steps are exact; matrix products are summed by BLAS, whose order
# depends on the numpy build and the input's memory layout (tests/test_sklearn_*.py measure it).
DENSE_TOLERANCE = 1e-12

# Regressors whose predict is ``X @ coef_ + intercept_`` (LinearModel._decision_function,
# BaseSGDRegressor._decision_function), each covered by tests/test_sklearn_linear.py.
LINEAR = (
    "LinearRegression",
    "Ridge",
    "RidgeCV",
    "Lasso",
    "LassoCV",
    "ElasticNet",
    "ElasticNetCV",
    "Lars",
    "LarsCV",
    "LassoLars",
    "LassoLarsCV",
    "LassoLarsIC",
    "OrthogonalMatchingPursuit",
    "OrthogonalMatchingPursuitCV",
    "BayesianRidge",
    "ARDRegression",
    "HuberRegressor",
    "QuantileRegressor",
    "TheilSenRegressor",
    "SGDRegressor",
    "PassiveAggressiveRegressor",
    "LinearSVR",
)
# Generalized linear models: predict = link.inverse(X @ coef_ + intercept_)
# (linear_model/_glm/glm.py); the link is read from the fitted loss.
GLM = ("PoissonRegressor", "GammaRegressor", "TweedieRegressor")
MLPS = ("MLPRegressor",)
STEPS = (
    "StandardScaler",
    "MinMaxScaler",
    "MaxAbsScaler",
    "RobustScaler",
    "SimpleImputer",
    "PCA",
    "IncrementalPCA",  # the same _BasePCA.transform once fitted
)
MLP_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")

# What to use instead of an estimator or step nmr does not compile (the first alternative).
EQUIVALENTS = {
    "ColumnTransformer": (
        "apply the same scaler or imputer to every column as a Pipeline step, or use the "
        "slot's preprocessing in numerai.yaml (fill_missing, clip, standardize)"
    ),
    "FunctionTransformer": (
        "the slot's preprocessing in numerai.yaml (fill_missing, clip, standardize) if the "
        "function does one of those"
    ),
    "StackingRegressor": (
        "a VotingRegressor (weighted mean) or an `ensemble:` slot in numerai.yaml"
    ),
    "KernelPCA": "PCA, which is the same as KernelPCA(kernel='linear') up to signs",
    "MultiTaskLasso": "one Lasso per target",
    "MultiTaskElasticNet": "one ElasticNet per target",
    "LogisticRegression": (
        "a regressor (nmr compiles regressors for Numerai's continuous target): Ridge, "
        "or a tree model"
    ),
    "MLPClassifier": "MLPRegressor",
    "SVR": "LinearSVR if a linear kernel is enough (refit it)",
}


def model_from_estimator(est, feature_names=None, source: str = "model"):
    """The IR of a fitted scikit-learn estimator (or pickled LightGBM/XGBoost wrapper)."""
    kind = type(est).__name__
    if kind == "Pipeline":
        return _pipeline(est, feature_names, source)
    if kind == "VotingRegressor":
        return _voting(est, feature_names, source)
    if kind in LINEAR or kind in GLM:
        return _linear(est, feature_names, source)
    if kind in MLPS:
        return _mlp(est, feature_names, source)
    from builder.artifacts import sklearn as trees

    if kind in trees.SUPPORTED or type(est).__module__.split(".")[0] in (
        "xgboost",
        "lightgbm",
        "catboost",  # a pickled CatBoostRegressor goes to the CatBoost reader through it
    ):
        return trees.ensemble_from_estimator(est, feature_names, source)
    raise refusal(est, f"scikit-learn estimator {_qualname(est)}", source)


def refusal(obj, what: str, source: str) -> NotSupportedYet:
    """The 'not supported yet' error for ``obj``: what it is, then what to do instead."""
    kind = type(obj).__name__
    options = []
    if EQUIVALENTS.get(kind):
        options.append(f"use {EQUIVALENTS[kind]}")
    options.append(
        "export the fitted model with skl2onnx (skl2onnx.to_onnx(model, X[:1].astype("
        "'float32'))) and point the artifact at the .onnx file"
    )
    options.append(
        "or ship it as code with a `source: predict.py` slot (nmr packs it with the "
        "runtime's own scikit-learn)"
    )
    return NotSupportedYet(f"{what} ({source}); instead: " + "; ".join(options))


def supported_estimators() -> dict[str, tuple[str, ...]]:
    """What this reader compiles, by family (for docs and `nmr` listings)."""
    return {
        "linear": LINEAR + GLM,
        "mlp": MLPS,
        "pipeline steps": STEPS,
        "composites": ("Pipeline", "VotingRegressor"),
    }


# ---------------------------------------------------------------------------------------------
# estimators


def _linear(est, feature_names, source: str) -> LinearModel:
    kind = type(est).__name__
    _check_fitted(est, "coef_", source)
    coef = np.asarray(est.coef_)
    if coef.ndim == 2 and coef.shape[0] == 1:
        coef = coef[0]
    if coef.ndim != 1:
        raise NotSupportedYet(
            f"multi-output scikit-learn {kind} with {coef.shape[0]} targets ({source}); "
            "instead: fit one model per target"
        )
    link = "identity"
    if kind in GLM:
        link_kind = type(est._base_loss.link).__name__
        if link_kind == "LogLink":
            link = "exp"
        elif link_kind != "IdentityLink":
            raise refusal(est, f"{kind} with link {link_kind}", source)
    # as stored: a model fitted on float32 keeps float32 coefficients, and float32 input then
    # gives a float32 product in scikit-learn too
    intercept = np.asarray(getattr(est, "intercept_", 0.0))
    if intercept.dtype.kind != "f":
        intercept = intercept.astype(np.float64)
    if intercept.size != 1:
        raise ArtifactError(f"{source}: {kind}.intercept_ has {intercept.size} values, expected 1")
    return LinearModel(
        estimator=kind,
        feature_names=tuple(_names(est, feature_names, len(coef), source)),
        coef=coef if coef.dtype.kind == "f" else coef.astype(np.float64),
        intercept=intercept,
        link=link,
        meta=_meta(est),
    )


def _mlp(est, feature_names, source: str) -> MLP:
    _check_fitted(est, "coefs_", source)
    if est.activation not in MLP_ACTIVATIONS:
        raise refusal(est, f"MLPRegressor activation {est.activation!r}", source)
    if est.out_activation_ not in ("identity", "exp"):
        raise refusal(est, f"MLPRegressor output activation {est.out_activation_!r}", source)
    n_out = int(est.n_outputs_)
    if n_out != 1:
        raise NotSupportedYet(
            f"multi-output MLPRegressor with {n_out} targets ({source}); instead: fit one "
            "model per target"
        )
    coefs = tuple(np.asarray(w) for w in est.coefs_)
    return MLP(
        estimator="MLPRegressor",
        feature_names=tuple(_names(est, feature_names, coefs[0].shape[0], source)),
        coefs=coefs,
        intercepts=tuple(np.asarray(b) for b in est.intercepts_),
        activation=str(est.activation),
        out_activation=str(est.out_activation_),
        meta={**_meta(est), "layers": [int(w.shape[1]) for w in coefs]},
    )


def _pipeline(pipe, feature_names, source: str) -> Pipeline:
    steps = _flat_steps(pipe)
    if not steps:
        raise ArtifactError(f"{source}: the Pipeline has no steps")
    final_name, final = steps[-1]
    if not hasattr(final, "predict"):
        raise refusal(
            final,
            f"Pipeline ending in the transformer {final_name!r} ({_qualname(final)}), "
            "which has no predict",
            source,
        )
    if len(steps) == 1:  # a Pipeline of just the estimator predicts as the estimator
        return model_from_estimator(final, feature_names, source)
    transforms, width = [], None
    for name, step in steps[:-1]:
        transform = _transform(name, step, source)
        if width is not None and transform.n_in != width:
            raise ArtifactError(
                f"{source}: Pipeline step {name!r} takes {transform.n_in} columns but the step "
                f"before gives {width}"
            )
        transforms.append(transform)
        width = transform.n_out
    inner = _inner_model(final, width, f"{source} Pipeline step {final_name!r}")
    names = _names(pipe, feature_names, transforms[0].n_in, source)
    return Pipeline(
        feature_names=tuple(names),
        steps=tuple(transforms),
        final=inner,
        final_name=final_name,
        task=getattr(inner, "task", "regression"),
        meta={**_meta(pipe), "steps": [name for name, _ in steps]},
    )


def _flat_steps(pipe, prefix: str = "") -> list:
    """(name, step) pairs with nested Pipelines expanded ('outer.inner') and passthrough
    steps dropped: a nested Pipeline transforms exactly as its steps in sequence."""
    out = []
    for name, step in pipe.steps:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if type(step).__name__ == "Pipeline":
            out += _flat_steps(step, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", step))
    return out


def _voting(est, feature_names, source: str) -> Voting:
    _check_fitted(est, "estimators_", source)
    names_all = [name for name, member in est.estimators if member != "drop"]
    if len(names_all) != len(est.estimators_):
        raise ArtifactError(f"{source}: VotingRegressor estimators_ do not match its estimators")
    width = int(est.n_features_in_)
    columns = _names(est, feature_names, width, source)
    members = [
        _inner_model(member, width, f"{source} VotingRegressor member {name!r}")
        for name, member in zip(names_all, est.estimators_, strict=True)
    ]
    weights = est._weights_not_none
    return Voting(
        feature_names=tuple(columns),
        members=tuple(members),
        names=tuple(names_all),
        weights=None if weights is None else np.asarray(weights, dtype=np.float64),
        meta={**_meta(est), "members": names_all},
    )


# ---------------------------------------------------------------------------------------------
# pipeline steps


def _transform(name: str, step, source: str) -> Transform:
    kind = type(step).__name__
    where = f"{source} Pipeline step {name!r}"
    if kind not in STEPS:
        raise refusal(step, f"Pipeline step {name!r} ({_qualname(step)})", source)
    _check_fitted(step, "n_features_in_", where)
    n = int(step.n_features_in_)
    if kind == "StandardScaler":
        params = {"mean": _opt(step.mean_), "scale": _opt(step.scale_)}
        if not step.with_mean:
            params["mean"] = None
        return Transform("standard_scaler", name, params, n, n)
    if kind == "RobustScaler":
        return Transform(
            "robust_scaler",
            name,
            {"center": _opt(step.center_), "scale": _opt(step.scale_)},
            n,
            n,
        )
    if kind == "MinMaxScaler":
        clip = tuple(float(v) for v in step.feature_range) if step.clip else None
        return Transform(
            "minmax_scaler",
            name,
            {"scale": np.asarray(step.scale_), "min": np.asarray(step.min_), "clip": clip},
            n,
            n,
        )
    if kind == "MaxAbsScaler":
        clip = bool(getattr(step, "clip", False))  # a recent option; absent means no clipping
        return Transform(
            "maxabs_scaler", name, {"scale": np.asarray(step.scale_), "clip": clip}, n, n
        )
    if kind == "SimpleImputer":
        return _imputer(name, step, where)
    return _pca(name, step, where)


def _imputer(name: str, step, where: str) -> Transform:
    missing = step.missing_values
    if not isinstance(missing, (int, float)) or isinstance(missing, bool):
        raise NotSupportedYet(
            f"SimpleImputer missing_values={missing!r} ({where}); instead: use NaN or a number"
        )
    fill_dtype = np.dtype(getattr(step, "_fill_dtype", np.float64))
    if fill_dtype.kind not in "iuf":
        raise NotSupportedYet(f"SimpleImputer fitted on {fill_dtype} data ({where})")
    statistics = np.asarray(step.statistics_, dtype=np.float64)
    n = len(statistics)
    keep = None
    if not getattr(step, "keep_empty_features", False):
        valid = ~np.isnan(statistics)
        if not valid.all():
            keep = np.flatnonzero(valid).astype(np.int64)
            statistics = statistics[valid]
    # transform casts the statistics to the dtype seen in fit before filling (_fill_dtype)
    statistics = statistics.astype(fill_dtype).astype(np.float64)
    indicator = None
    if step.add_indicator:
        found = step.indicator_.features_
        indicator = np.asarray(found, dtype=np.int64)
    n_out = (n if keep is None else len(keep)) + (0 if indicator is None else len(indicator))
    params = {
        "statistics": statistics,
        "missing": float(missing),
        "keep": keep,
        "indicator": indicator,
        "strategy": str(step.strategy),
    }
    return Transform("simple_imputer", name, params, n, n_out)


def _pca(name: str, step, where: str) -> Transform:
    components = np.asarray(step.components_)
    whiten_scale = None
    if step.whiten:
        # decomposition/_base.py _transform: sqrt(explained_variance_), clipped below at eps
        scale = np.sqrt(np.asarray(step.explained_variance_))
        min_scale = np.finfo(scale.dtype).eps
        scale[scale < min_scale] = min_scale
        whiten_scale = scale
    params = {
        "mean": np.asarray(step.mean_),
        "components": components,
        "whiten_scale": whiten_scale,
    }
    return Transform("pca", name, params, components.shape[1], components.shape[0])


# ---------------------------------------------------------------------------------------------
# helpers


def _inner_model(est, width: int, source: str):
    """The IR of a model inside a Pipeline or VotingRegressor.

    The composite hands it ``width`` columns by position (the previous step's output, or the
    VotingRegressor's own input), so its names only label them: the ones it recorded when
    fitted (a DataFrame, LightGBM's Column_i), else x0, x1, ...
    """
    names = _recorded_names(est) or [f"x{i}" for i in range(width)]
    model = model_from_estimator(est, names, source)
    if len(model.feature_names) != width:
        raise ArtifactError(
            f"{source}: the model takes {len(model.feature_names)} columns but receives {width}"
        )
    return model


def _recorded_names(est) -> list[str]:
    """Column names the estimator recorded when fitted (empty when fitted on an array)."""
    module = type(est).__module__.split(".")[0]
    if module == "lightgbm":
        return [str(n) for n in est.booster_.feature_name()]
    if module == "xgboost":
        return [str(n) for n in est.get_booster().feature_names or []]
    names = getattr(est, "feature_names_in_", None)  # a Pipeline's comes from its first step
    return [str(n) for n in names] if names is not None else []


def _names(est, given, width: int, source: str) -> list[str]:
    return bind_feature_names(_recorded_names(est), given, width, source)


def _check_fitted(est, attribute: str, source: str) -> None:
    if not hasattr(est, attribute):
        raise ArtifactError(f"{source}: the {type(est).__name__} is not fitted")


def _opt(value):
    return None if value is None else np.asarray(value)


def _qualname(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__name__}"


def _meta(est) -> dict:
    import sklearn

    return {
        "estimator": type(est).__name__,
        "sklearn_version": sklearn.__version__,
        "pickled_with": getattr(est, "_sklearn_version", None),
    }
