"""Output transforms of tree ensembles: raw scores -> what the native ``predict`` returns.

Shipped inside the pickle (numpy + standard library only). Each transform takes the raw score
matrix ``raw`` (n_rows, n_raw) in the ensemble's accumulation dtype and the IR's
``transform_params`` and returns float64 (n_rows, n_outputs).

Exactness: the formulas and their precision follow the native C++ code (docs/design/compilers.md
§1.5, §2.4). numpy's SIMD ``exp`` is not guaranteed to round like the C library's, so double
``exp`` goes through ``math.exp`` (glibc ``exp``, what LightGBM's ``std::exp`` calls) element by
element, and float32 ``expf`` through the C library's own ``expf`` via ctypes (XGBoost calls
``expf``); a few thousand rows cost about a millisecond.

The registry ``TRANSFORMS`` at the bottom maps the IR's ``transform`` name to a function;
readers of other libraries add their own entries there.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np


def apply_transform(name: str, raw: np.ndarray, params: dict | None = None) -> np.ndarray:
    """Apply the registered transform ``name`` to raw scores; float64 (n_rows, n_outputs)."""
    try:
        fn = TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown tree output transform {name!r}") from None
    out = fn(np.asarray(raw), params or {})
    return np.ascontiguousarray(out, dtype=np.float64)


# ---------------------------------------------------------------- generic / LightGBM (double)


def identity(raw, params):
    return raw.astype(np.float64)


def exp_double(raw, params):
    """LightGBM poisson / gamma / tweedie: ``std::exp(x)`` in double."""
    return _exp64(raw.astype(np.float64))


def lightgbm_sigmoid(raw, params):
    """LightGBM binary / multiclassova / cross_entropy: ``1/(1+exp(-sigmoid*x))`` in double.

    BinaryLogloss::ConvertOutput writes ``1.0f / (1.0f + std::exp(-sigmoid_ * input))``; the
    float literals 1.0f are exact in double, so everything is double arithmetic.
    """
    s = float(params.get("sigmoid", 1.0))
    x = raw.astype(np.float64)
    return 1.0 / (1.0 + _exp64(-s * x))


def lightgbm_softmax(raw, params):
    """LightGBM multiclass: Common::Softmax (max, exp(x-max), sequential double sum, divide)."""
    x = raw.astype(np.float64)
    wmax = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        wmax = np.maximum(x[:, k], wmax)
    e = _exp64(x - wmax[:, None])
    wsum = np.zeros(x.shape[0])
    for k in range(x.shape[1]):  # sequential, as the C++ loop (np.sum would be pairwise)
        wsum = wsum + e[:, k]
    return e / wsum[:, None]


def lightgbm_log1p_exp(raw, params):
    """LightGBM cross_entropy_lambda: ``std::log1p(std::exp(x))`` in double."""
    x = _exp64(raw.astype(np.float64))
    flat = [math.log1p(v) for v in x.ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(x.shape)


def reg_sqrt(raw, params):
    """LightGBM regression with ``reg_sqrt``: ``Sign(x) * x * x`` in double."""
    x = raw.astype(np.float64)
    return np.sign(x) * x * x


# ---------------------------------------------------------------- XGBoost (float32)


def xgboost_sigmoid(raw, params):
    """XGBoost common::Sigmoid: ``x=min(-x, 88.7f); 1.0f/(expf(x)+1.0f+1e-16f)`` in float32."""
    x = np.minimum(-raw.astype(np.float32), np.float32(88.7))
    denom = _expf(x) + np.float32(1.0)
    denom = denom + np.float32(1e-16)
    return (np.float32(1.0) / denom).astype(np.float64)


def xgboost_softmax(raw, params):
    """XGBoost common::Softmax: float max, ``expf(x-max)``, a *double* running sum, then
    ``x /= (float)wsum`` in float32 (src/common/math.h)."""
    x = raw.astype(np.float32)
    wmax = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        wmax = np.fmax(x[:, k], wmax)
    e = _expf(x - wmax[:, None])
    wsum = np.zeros(x.shape[0], dtype=np.float64)
    for k in range(x.shape[1]):
        wsum = wsum + e[:, k].astype(np.float64)
    return (e / wsum.astype(np.float32)[:, None]).astype(np.float64)


def xgboost_exp(raw, params):
    """XGBoost count:poisson / reg:gamma / reg:tweedie: ``expf`` in float32."""
    return _expf(raw.astype(np.float32)).astype(np.float64)


def xgboost_argmax(raw, params):
    """XGBoost multi:softmax: the index of the first largest margin, as a float
    (``MulticlassTransformCpu`` uses ``std::max_element``, which keeps the first maximum)."""
    return np.argmax(raw.astype(np.float32), axis=1).astype(np.float64)[:, None]


# ---------------------------------------------------------------- scikit-learn (double)


def sklearn_binary_expit(raw, params):
    """scikit-learn binary predict_proba: ``p1 = expit(scale * raw)``, ``p0 = 1 - p1``.

    HalfBinomialLoss / ExponentialLoss ``predict_proba`` (sklearn/_loss/loss.py) call
    ``scipy.special.expit``, which is ``1 / (1 + exp(-x))`` with the C library's ``exp``;
    scale is 2 for the exponential loss (HalfLogitLink). Returns (n_rows, 2).
    """
    scale = float(params.get("scale", 1.0))
    x = raw.astype(np.float64)[:, 0]
    if scale != 1.0:
        x = scale * x
    p1 = 1.0 / (1.0 + _exp64(-x))
    return np.stack([1.0 - p1, p1], axis=1)


def sklearn_softmax(raw, params):
    """scikit-learn multiclass predict_proba: ``sklearn.utils.extmath.softmax`` as written
    there, with numpy's own max / exp / sum (so it rounds as scikit-learn does on the same
    numpy)."""
    x = np.array(raw, dtype=np.float64, copy=True)
    x -= np.max(x, axis=1).reshape(-1, 1)
    np.exp(x, out=x)
    x /= np.sum(x, axis=1).reshape(-1, 1)
    return x


def sklearn_exp(raw, params):
    """HistGradientBoostingRegressor with a log link (poisson, gamma): ``LogLink.inverse``
    is ``np.exp``, so numpy's exp, not the C library's."""
    return np.exp(raw.astype(np.float64))


# ---------------------------------------------------------------- CatBoost (double)


def catboost_scale_and_bias(raw, params):
    """CatBoost ApplyScaleAndBias (catboost/libs/model/scale_and_bias.cpp): ``scale * sum +
    bias`` in double, skipping the multiply when scale is 1 and the add when bias is 0, as the
    C++ does (so a zero keeps its sign)."""
    x = raw.astype(np.float64)
    scale = float(params.get("scale", 1.0))
    bias = float(params.get("bias", 0.0))
    if scale != 1.0 and bias != 0.0:
        return scale * x + bias
    if scale != 1.0:
        return x * scale
    if bias != 0.0:
        return x + bias
    return x


# ---------------------------------------------------------------- helpers


def _exp64(x: np.ndarray) -> np.ndarray:
    flat = [_exp_or_inf(v) for v in x.ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(x.shape)


def _exp_or_inf(v: float) -> float:
    # math.exp raises on overflow where C's exp returns +inf
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def _expf(x: np.ndarray) -> np.ndarray:
    """The C library's ``expf`` per element (float32 in, float32 out)."""
    fn = _libm_expf()
    values = x.astype(np.float32).ravel().tolist()
    if fn is None:
        # No C expf reachable: double exp rounded to float32 (differs from glibc's expf only
        # where its 0.502-ulp error bound lets it misround).
        out = [_exp_or_inf(v) for v in values]
    else:
        out = [fn(v) for v in values]
    return np.array(out, dtype=np.float32).reshape(x.shape)


def _libm_expf():
    # Looked up per call (dlopen of a loaded library is cheap): a cached ctypes function in a
    # module global would be dragged into the by-value pickle, and ctypes pointers don't pickle.
    for name in ("libm.so.6", None, "libm.dylib"):
        try:
            fn = ctypes.CDLL(name).expf
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    return None


# ---------------------------------------------------------------- registry (IR `transform` name)

TRANSFORMS = {
    "identity": identity,
    "exp": exp_double,
    "lightgbm_sigmoid": lightgbm_sigmoid,
    "lightgbm_softmax": lightgbm_softmax,
    "lightgbm_log1p_exp": lightgbm_log1p_exp,
    "reg_sqrt": reg_sqrt,
    "xgboost_sigmoid": xgboost_sigmoid,
    "xgboost_softmax": xgboost_softmax,
    "xgboost_exp": xgboost_exp,
    "xgboost_argmax": xgboost_argmax,
    "sklearn_binary_expit": sklearn_binary_expit,
    "sklearn_softmax": sklearn_softmax,
    "sklearn_exp": sklearn_exp,
    "catboost_scale_and_bias": catboost_scale_and_bias,
}
