"""The shipped erf: vectorized, within one float32 ulp of math.erf, exact at the edges."""

from __future__ import annotations

import math

import numpy as np

from builder.kernels.onnx import erf


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # float32 bit patterns are monotonic in value within one sign; erf keeps the sign
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def _float32_points() -> np.ndarray:
    rng = np.random.default_rng(0)
    grid = np.linspace(-6.0, 6.0, 120_001)
    logs = np.geomspace(1e-38, 6.0, 20_000)
    return np.concatenate([grid, logs, -logs, rng.normal(scale=1.5, size=50_000)]).astype(
        np.float32
    )


def test_erf_float32_within_one_ulp_of_math_erf():
    x = _float32_points()
    expected = np.array([math.erf(v) for v in x.astype(np.float64)]).astype(np.float32)
    assert _ulps(erf(x), expected).max() <= 1


def test_erf_float32_is_correctly_rounded_for_nearly_all_inputs():
    x = _float32_points()
    expected = np.array([math.erf(v) for v in x.astype(np.float64)]).astype(np.float32)
    assert np.mean(_ulps(erf(x), expected) == 0) > 0.9999


def test_erf_float64_relative_error_below_1e_10():
    x = np.concatenate([np.linspace(-7, 7, 20_001), np.geomspace(1e-300, 7, 2_000)])
    expected = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - expected) / np.abs(expected).clip(1e-300)) < 1e-10


def test_erf_keeps_dtype_and_shape():
    x = np.zeros((3, 4), dtype=np.float32)
    y = erf(x)
    assert y.dtype == np.float32 and y.shape == (3, 4)


def test_erf_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 30.0, -30.0], dtype=np.float32)
    y = erf(x)
    assert y[0] == 0.0 and not np.signbit(y[0])
    assert y[1] == 0.0 and np.signbit(y[1])
    assert y[2] == 1.0 and y[3] == -1.0
    assert np.isnan(y[4])
    assert y[5] == np.float32(math.erf(float(x[5]))) and y[6] == -y[5]
    assert y[7] == 1.0 and y[8] == -1.0


def test_erf_value_does_not_depend_on_position_in_the_block():
    x = np.linspace(-3, 3, 100_003, dtype=np.float64)  # > 3 internal blocks, odd tail
    whole = erf(x)
    picks = np.r_[0:5, 32_760:32_780, 65_530:65_540, 100_000:100_003]
    np.testing.assert_array_equal(whole[picks], [erf(x[i : i + 1])[0] for i in picks])
