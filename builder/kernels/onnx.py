"""Pure-numpy evaluator for ONNX graphs (ships inside the pickle: numpy + stdlib only).

``builder.compile.onnx`` turns a folded ``builder.ir.Graph`` into an ``OnnxGraphEvaluator``: a
straight list of steps ``(op, inputs, outputs, attrs, dead)`` over named tensors, the weights
as numpy constants. Attributes arrive normalised (opset differences resolved at build time), so
each op function here implements one semantics. Ops mimic onnxruntime's CPU kernels where their
float32 arithmetic order is observable (noted per op); everything else computes the exact
function and rounds once.
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np

# float32 erf(x) rounds to +-1 for |x| >= 3.92 (erfc(3.92) < half an ulp below 1.0f).
_ERF_SATURATION = 4.0
_ERF_CHUNK = 32768  # elements per erf block: the Horner passes stay in L2 cache


class OnnxGraphEvaluator:
    """An ONNX graph as numpy steps; ``predict(X)`` equals onnxruntime's output to float32."""

    def __init__(
        self,
        *,
        feature_names: tuple[str, ...],
        n_outputs: int,
        task: str,
        input_name: str,
        input_dtype: str,
        input_width: int | None,
        output_name: str,
        steps: tuple,
        constants: dict,
    ):
        self.feature_names = tuple(feature_names)
        self.n_outputs = n_outputs
        self.task = task
        self.input_name = input_name
        self.input_dtype = input_dtype
        self.input_width = input_width
        self.output_name = output_name
        self.steps = steps
        self.constants = constants

    def predict(self, X) -> np.ndarray:
        if hasattr(X, "columns") and self.feature_names:  # a DataFrame: take the model's columns
            X = X[list(self.feature_names)].to_numpy()
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D feature matrix, got {X.ndim} dimensions")
        if self.input_width is not None and X.shape[1] != self.input_width:
            raise ValueError(f"expected {self.input_width} feature columns, got {X.shape[1]}")
        outputs = self.run(np.ascontiguousarray(X, dtype=self.input_dtype))
        y = np.asarray(outputs, dtype=np.float64)
        return y.reshape(X.shape[0], -1)

    def run(self, X: np.ndarray) -> np.ndarray:
        """The graph's output tensor in its own dtype and shape."""
        env = dict(self.constants)
        env[self.input_name] = X
        # IEEE results without warnings, as onnxruntime gives them (exp overflow -> inf, ...)
        with np.errstate(all="ignore"):
            for op, inputs, outputs, attrs, dead in self.steps:
                args = [env[name] if name else None for name in inputs]
                results = _OPS[op](args, attrs)
                for name, value in zip(outputs, results, strict=False):
                    if name:
                        env[name] = value
                for name in dead:
                    del env[name]
        return env[self.output_name]


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorized erf in x's float dtype, computed in float64 (float32 results within 1 ulp).

    erf(x) = tanh(g(x)) with g = atanh(erf), an odd function that is smooth and slowly varying:
    g(x) = x * q(x^2), q a degree-18 polynomial fitted at import time to ``math.erf`` on
    |x| <= 4 (float32 erf is 1.0 beyond). One polynomial and numpy's SIMD tanh, no branches:
    NaN, +-0, +-inf and subnormals come out right by themselves. For |x| > 4 in float64 a
    continued fraction for erfc takes over.
    """
    x = np.asarray(x)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=out_dtype)
    for start in range(0, flat.size, _ERF_CHUNK):
        stop = start + _ERF_CHUNK
        out[start:stop] = _erf_block(flat[start:stop])
    return out.reshape(x.shape)


def op_names() -> tuple[str, ...]:
    """The op keys this kernel implements (the compiler's registry must stay within them)."""
    return tuple(_OPS)


# ---------------------------------------------------------------------------------------------
# erf helpers


def _atanh_erf_coefficients(degree: int = 18) -> tuple[float, ...]:
    """Power-basis coefficients in s = u/8 - 1 (u = x^2 in [0, 16]) of atanh(erf(x)) / x.

    Chebyshev coefficients by the discrete cosine sum at the Chebyshev nodes (math.fsum, no
    LAPACK), so every machine computes the same bits and pickles stay byte-identical.
    """
    n = degree + 1
    thetas = [math.pi * (k + 0.5) / n for k in range(n)]
    values = []
    for theta in thetas:
        root = math.sqrt(8.0 * math.cos(theta) + 8.0)
        # atanh(e) = (log1p(e) - log(erfc)) / 2, with erfc(x) = 1 - e computed accurately
        values.append(0.5 * (math.log1p(math.erf(root)) - math.log(math.erfc(root))) / root)
    cheb = [
        (2.0 / n) * math.fsum(v * math.cos(j * th) for v, th in zip(values, thetas, strict=True))
        for j in range(n)
    ]
    cheb[0] /= 2.0
    return tuple(float(c) for c in np.polynomial.chebyshev.cheb2poly(cheb))


_ATANH_ERF_POWER = _atanh_erf_coefficients()


def _erf_block(x: np.ndarray) -> np.ndarray:
    xd = np.asarray(x, dtype=np.float64)
    s = np.square(xd)
    np.minimum(s, _ERF_SATURATION * _ERF_SATURATION, out=s)
    s *= 0.125
    s -= 1.0
    r = np.full_like(s, _ATANH_ERF_POWER[-1])
    for c in _ATANH_ERF_POWER[-2::-1]:
        r *= s
        r += c
    r *= xd
    np.tanh(r, out=r)
    tail = np.abs(xd) > _ERF_SATURATION
    if tail.any():  # only float64 inputs can tell these from +-1
        r[tail] = np.copysign(1.0 - _erfc_tail(np.abs(xd[tail])), xd[tail])
    return r


def _erfc_tail(a: np.ndarray) -> np.ndarray:
    """erfc(a) for a > 4 by the Laplace continued fraction, 20 levels (1e-16 relative)."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = a.copy()
        for k in range(20, 0, -1):
            t = a + (k / 2.0) / t
        return np.exp(-np.square(a)) / (t * math.sqrt(math.pi))


# ---------------------------------------------------------------------------------------------
# op implementations: f(args, attrs) -> tuple of outputs


def _unary(func):
    def op(args, attrs):
        x = args[0]
        if attrs.get("inplace"):
            return (func(x, out=x),)
        return (func(x),)

    return op


def _binary(func):
    def op(args, attrs):
        a, b = args
        if (
            attrs.get("inplace")
            and a.dtype == b.dtype
            and np.broadcast_shapes(a.shape, b.shape) == a.shape
        ):
            return (func(a, b, out=a),)
        return (func(a, b),)

    return op


def _div(args, attrs):
    a, b = args
    if a.dtype.kind in "iu":  # ONNX integer Div truncates toward zero (C semantics)
        return ((np.trunc(a / b)).astype(a.dtype),)
    return _binary(np.divide)(args, attrs)


def _gemm(args, attrs):
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    if attrs["transA"]:
        a = a.T
    if attrs["transB"]:
        b = b.T
    y = a @ b
    if attrs["alpha"] != 1.0:
        y *= y.dtype.type(attrs["alpha"])
    if c is not None and attrs["beta"] != 0.0:
        if attrs["beta"] != 1.0:
            c = c * c.dtype.type(attrs["beta"])
        y += c
    return (y,)


def _matmul(args, attrs):
    return (np.matmul(args[0], args[1]),)


def _relu(args, attrs):
    x = args[0]
    zero = x.dtype.type(0)
    if attrs.get("inplace"):
        return (np.maximum(x, zero, out=x),)
    return (np.maximum(x, zero),)


def _leaky_relu(args, attrs):
    x = args[0]
    return (np.where(x < 0, x * x.dtype.type(attrs["alpha"]), x),)


def _elu(args, attrs):
    # onnxruntime's Elu computes alpha * (exp(x) - 1) in the tensor's dtype, not expm1.
    x = args[0]
    alpha = x.dtype.type(attrs["alpha"])
    return (np.where(x < 0, alpha * (np.exp(np.minimum(x, 0)) - x.dtype.type(1)), x),)


def _selu(args, attrs):
    x = args[0]
    alpha = x.dtype.type(attrs["alpha"])
    gamma = x.dtype.type(attrs["gamma"])
    neg = alpha * np.exp(np.minimum(x, 0)) - alpha
    return ((gamma * np.where(x > 0, x, neg)).astype(x.dtype, copy=False),)


def _sigmoid(args, attrs):
    # the stable two-branch form, evaluated in float64 and rounded once
    x = args[0]
    x64 = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x64))
    y = np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return (y.astype(x.dtype, copy=False),)


def _tanh(args, attrs):
    return _unary(np.tanh)(args, attrs)


def _softmax(args, attrs):
    return (_softmax_like(args[0], attrs, log=False),)


def _log_softmax(args, attrs):
    return (_softmax_like(args[0], attrs, log=True),)


def _softmax_like(x: np.ndarray, attrs: dict, log: bool) -> np.ndarray:
    axis = attrs["axis"] % x.ndim
    if attrs["coerce_2d"]:  # opset < 13: the input is flattened to 2-D at `axis` first
        rows = int(np.prod(x.shape[:axis], dtype=np.int64))
        work = x.reshape(rows, -1)
        reduce_axis = 1
    else:
        work = x
        reduce_axis = axis
    shifted = work - np.max(work, axis=reduce_axis, keepdims=True)
    if log:
        y = shifted - np.log(np.sum(np.exp(shifted), axis=reduce_axis, keepdims=True))
    else:
        e = np.exp(shifted)
        y = e / np.sum(e, axis=reduce_axis, keepdims=True)
    return y.reshape(x.shape).astype(x.dtype, copy=False)


def _erf(args, attrs):
    return (erf(args[0]),)


def _gelu(args, attrs):
    x = args[0]
    x64 = np.asarray(x, dtype=np.float64)
    if attrs["approximate"] == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)
        y = 0.5 * x64 * (1.0 + np.tanh(inner))
    else:
        y = 0.5 * x64 * (1.0 + erf(x64 * (1.0 / math.sqrt(2.0))))
    return (y.astype(x.dtype, copy=False),)


def _softplus(args, attrs):
    x = args[0]
    return (np.logaddexp(x, x.dtype.type(0)),)


def _clip(args, attrs):
    x = args[0]
    lo = args[1] if len(args) > 1 else None
    hi = args[2] if len(args) > 2 else None
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo, dtype=x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi, dtype=x.dtype))
    return (y,)


def _pow(args, attrs):
    a, b = args
    if b.ndim == 0 and b == 2:  # onnxruntime special-cases square; so does this
        return (np.square(a),)
    return (np.power(a, b.astype(a.dtype, copy=False)).astype(a.dtype, copy=False),)


def _reduce(func):
    def op(args, attrs):
        x = args[0]
        axes = attrs["axes"]
        if axes is None:
            axes = args[1] if len(args) > 1 and args[1] is not None else None
            axes = None if axes is None or axes.size == 0 else tuple(int(a) for a in axes)
        if axes is None and attrs["noop_with_empty_axes"]:
            return (x,)
        y = func(x, axis=axes, keepdims=bool(attrs["keepdims"]))
        return (np.asarray(y, dtype=x.dtype),)

    return op


def _layer_normalization(args, attrs):
    x, scale = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    axis = attrs["axis"] % x.ndim
    axes = tuple(range(axis, x.ndim))
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    centered = x64 - mean
    var = np.square(centered).mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + attrs["epsilon"])
    y = centered * inv_std * scale
    if bias is not None:
        y += bias
    stat_dtype = np.float32 if attrs["stash_type"] == 1 else x.dtype
    return (
        y.astype(x.dtype, copy=False),
        mean.astype(stat_dtype),
        inv_std.astype(stat_dtype),
    )


def _batch_normalization(args, attrs):
    # inference form y = x * a + b with per-channel a = scale / sqrt(var + eps) and
    # b = bias - mean * a folded at build time (onnxruntime folds the same way)
    x, a, b = args[0], args[1], args[2]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x * a.reshape(shape) + b.reshape(shape),)


def _flatten(args, attrs):
    x = args[0]
    axis = attrs["axis"] % (x.ndim + 1) if x.ndim else 0
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    return (x.reshape(rows, -1),)


def _reshape(args, attrs):
    x, shape = args[0], args[1]
    target = [int(d) for d in shape]
    if not attrs["allowzero"]:
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return (x.reshape(target),)


def _transpose(args, attrs):
    perm = attrs["perm"]
    return (np.transpose(args[0], perm),)


def _concat(args, attrs):
    parts = [a for a in args if a is not None]
    return (np.concatenate(parts, axis=attrs["axis"]),)


def _squeeze(args, attrs):
    x = args[0]
    axes = attrs["axes"]
    if axes is None and len(args) > 1 and args[1] is not None:
        axes = [int(a) for a in args[1]]
    if axes is None:
        return (np.squeeze(x),)
    return (np.squeeze(x, axis=tuple(a % x.ndim for a in axes)),)


def _unsqueeze(args, attrs):
    x = args[0]
    axes = attrs["axes"]
    if axes is None:
        axes = [int(a) for a in args[1]]
    rank = x.ndim + len(axes)
    y = x
    for a in sorted(a % rank for a in axes):
        y = np.expand_dims(y, a)
    return (y,)


def _identity(args, attrs):
    return (args[0],)


def _dropout(args, attrs):
    # inference: output = input; the optional mask output is all True
    x = args[0]
    return (x, np.ones(x.shape, dtype=bool))


def _cast(args, attrs):
    return (np.asarray(args[0]).astype(attrs["to"]),)


def _constant(args, attrs):
    return (attrs["value"],)


def _slice(args, attrs):
    x, starts, ends = args[0], args[1], args[2]
    axes = args[3] if len(args) > 3 and args[3] is not None else np.arange(len(starts))
    steps = args[4] if len(args) > 4 and args[4] is not None else np.ones(len(starts), np.int64)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=False):
        index[int(axis) % x.ndim] = slice(int(start), int(end), int(step))
    return (x[tuple(index)],)


def _split(args, attrs):
    x = args[0]
    axis = attrs["axis"] % x.ndim
    sizes = attrs["split"]
    if sizes is None and len(args) > 1 and args[1] is not None:
        sizes = [int(s) for s in args[1]]
    if sizes is None:
        n = attrs["num_outputs"]
        chunk = -(-x.shape[axis] // n)  # ceil, the last part may be smaller (opset 18)
        sizes = [min(chunk, x.shape[axis] - i * chunk) for i in range(n)]
    bounds = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, bounds, axis=axis))


def _where(args, attrs):
    return (np.where(args[0], args[1], args[2]),)


def _min(args, attrs):
    return (reduce(np.minimum, args),)


def _max(args, attrs):
    return (reduce(np.maximum, args),)


def _shape(args, attrs):
    shape = np.array(args[0].shape, dtype=np.int64)
    return (shape[attrs["start"] : attrs["end"]],)


def _gather(args, attrs):
    return (np.take(args[0], args[1], axis=attrs["axis"]),)


def _scaler(args, attrs):
    # onnxruntime Scaler: (x - offset) * scale in the input's arithmetic, then float32
    x = args[0]
    y = (x - attrs["offset"]) * attrs["scale"]
    return (y.astype(np.float32, copy=False),)


def _imputer(args, attrs):
    x = args[0]
    replaced = attrs["replaced_value"]
    missing = np.isnan(x) if isinstance(replaced, float) and math.isnan(replaced) else x == replaced
    values = np.broadcast_to(attrs["imputed_values"].astype(x.dtype), x.shape)
    return (np.where(missing, values, x),)


def _normalizer(args, attrs):
    # onnxruntime Normalizer: per row, divide by max / L1 / L2 norm unless it is zero
    x = np.asarray(args[0], dtype=np.float32)
    norm = attrs["norm"]
    if norm == "MAX":
        d = np.max(x, axis=1, keepdims=True)
    elif norm == "L1":
        d = np.sum(np.abs(x), axis=1, keepdims=True)
    else:
        d = np.sqrt(np.sum(np.square(x), axis=1, keepdims=True))
    d = np.where(d == 0, np.float32(1), d)
    return ((x / d).astype(np.float32, copy=False),)


def _linear_regressor(args, attrs):
    x = np.asarray(args[0], dtype=np.float32)
    return (x @ attrs["coefficients"] + attrs["intercepts"],)


def _linear_classifier(args, attrs):
    x = np.asarray(args[0], dtype=np.float32)
    scores = x @ attrs["coefficients"] + attrs["intercepts"]
    scores = _post_transform(scores, attrs["post_transform"])
    labels = np.asarray(attrs["labels"])[np.argmax(scores, axis=1)]
    return (labels, scores)


def _tree_ensemble(args, attrs):
    # attrs["evaluator"] is a builder.kernels.trees evaluator (float32 accumulation, identity
    # transform); onnxruntime applies post_transform to the float32 scores
    return (_post_transform(_tree_scores(args[0], attrs), attrs["post_transform"]),)


def _tree_ensemble_classifier(args, attrs):
    scores = _tree_scores(args[0], attrs)
    if attrs["binary_column"]:
        # one score column for two classes; onnxruntime (tree_ensemble_aggregator.h,
        # _set_score_binary / write_scores) writes [1 - p, p] when all leaf weights are
        # non-negative (probability votes) and [-s, s] (or its logistic) otherwise
        if attrs["binary_complement"]:
            p = _post_transform(scores, attrs["post_transform"])
            scores = np.concatenate([np.float32(1) - p, p], axis=1)
        else:
            scores = np.concatenate([-scores, scores], axis=1)
            scores = _post_transform(scores, attrs["post_transform"], per_column=True)
    else:
        scores = _post_transform(scores, attrs["post_transform"])
    labels = np.asarray(attrs["labels"])[np.argmax(scores, axis=1)]
    return (labels, scores)


def _tree_scores(x: np.ndarray, attrs: dict) -> np.ndarray:
    x = x[:, : attrs["n_features"]]
    scores = attrs["evaluator"].predict_raw(x).astype(attrs["dtype"], copy=False)
    if attrs["base_values"] is not None:
        scores = scores + attrs["base_values"]
    return scores


def _post_transform(scores: np.ndarray, kind: str, per_column: bool = False) -> np.ndarray:
    if kind == "LOGISTIC":
        return _sigmoid([scores], {})[0]
    if kind == "SOFTMAX" and not per_column:
        return _softmax_like(scores, {"axis": 1, "coerce_2d": False}, log=False)
    return scores


_OPS = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _div,
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Sqrt": _unary(np.sqrt),
    "Exp": _unary(np.exp),
    "Log": _unary(np.log),
    "Relu": _relu,
    "LeakyRelu": _leaky_relu,
    "Elu": _elu,
    "Selu": _selu,
    "Sigmoid": _sigmoid,
    "Tanh": _tanh,
    "Softmax": _softmax,
    "LogSoftmax": _log_softmax,
    "Erf": _erf,
    "Gelu": _gelu,
    "Softplus": _softplus,
    "Clip": _clip,
    "Pow": _pow,
    "ReduceMean": _reduce(np.mean),
    "ReduceSum": _reduce(np.sum),
    "LayerNormalization": _layer_normalization,
    "BatchNormalization": _batch_normalization,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Identity": _identity,
    "Dropout": _dropout,
    "Cast": _cast,
    "Constant": _constant,
    "Slice": _slice,
    "Split": _split,
    "Where": _where,
    "Min": _min,
    "Max": _max,
    "Shape": _shape,
    "Gather": _gather,
    "Scaler": _scaler,
    "Imputer": _imputer,
    "Normalizer": _normalizer,
    "LinearRegressor": _linear_regressor,
    "LinearClassifier": _linear_classifier,
    "TreeEnsemble": _tree_ensemble,
    "TreeEnsembleRegressor": _tree_ensemble,
    "TreeEnsembleClassifier": _tree_ensemble_classifier,
}
