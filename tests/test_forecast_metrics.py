"""Forecast metrics against hand-computed values, including zero-demand series and the zero-scale rule."""

import math

import numpy as np
import pytest

from ml.forecast import metrics as M

NAN = np.nan


def test_naive_scales_skip_the_periods_before_the_start():
    hist = np.array([[NAN, 1.0, 3.0, 0.0, 0.0]])
    s1, s2 = M.naive_scales(hist)
    # One-step differences 2, -3, 0 (the NaN before the start is not a difference).
    assert s1[0] == pytest.approx(5 / 3)
    assert s2[0] == pytest.approx(13 / 3)


def test_rmsse_and_mase_by_hand():
    hist = np.array([[NAN, 1.0, 3.0, 0.0, 0.0]])
    s1, s2 = M.naive_scales(hist)
    actual, fc = np.array([[2.0, 0.0]]), np.array([[1.0, 1.0]])
    assert M.rmsse_per_series(actual, fc, s2)[0] == pytest.approx(math.sqrt(1 / (13 / 3)))
    assert M.mase_per_series(actual, fc, s1)[0] == pytest.approx(1 / (5 / 3))


def test_wrmsse_weights_and_zero_scale_rule():
    hist = np.array([[0.0, 2.0, 0.0, 2.0], [0.0, 0.0, 4.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
    actual = np.array([[2.0, 0.0], [0.0, 0.0], [5.0, 9.0]])
    fc = np.array([[1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])
    # scale2: series 0 = 4, series 1 = (0 + 16 + 16) / 3, series 2 = 0 (constant: no scale).
    r0 = math.sqrt(1 / 4)
    r1 = math.sqrt(4 / (32 / 3))
    w = np.array([3.0, 1.0, 100.0])
    # The zero-scale series is left out and the weights renormalise over the other two.
    assert M.wrmsse(actual, fc, hist, w) == pytest.approx((3 * r0 + r1) / 4)
    out = M.evaluate(actual, fc, hist, w, {0.9: fc})
    assert out["n_zero_scale"] == 1
    assert out["RMSSE"] == pytest.approx((r0 + r1) / 2)


def test_zero_demand_series():
    hist = np.array([[3.0, 0.0, 0.0, 1.0]])
    actual = np.zeros((1, 3))
    # A perfect zero forecast scores 0; any positive forecast is penalised.
    s1, s2 = M.naive_scales(hist)
    assert M.rmsse_per_series(actual, np.zeros((1, 3)), s2)[0] == 0.0
    assert M.rmsse_per_series(actual, np.ones((1, 3)), s2)[0] > 0
    # Pooled ratios over an all-zero test are undefined, not zero or infinite.
    assert math.isnan(M.wape(actual, np.ones((1, 3))))
    assert math.isnan(M.bias(actual, np.ones((1, 3))))
    assert M.coverage(actual, np.zeros((1, 3))) == 1.0


def test_wape_bias_pinball_coverage_by_hand():
    actual, fc = np.array([[1.0, 3.0]]), np.array([[2.0, 2.0]])
    assert M.wape(actual, fc) == pytest.approx(0.5)
    assert M.bias(actual, fc) == pytest.approx(0.0)
    assert M.bias(actual, np.array([[1.0, 2.0]])) == pytest.approx(-0.25)
    assert M.pinball_loss(3.0, 1.0, 0.9) == pytest.approx(1.8)
    assert M.pinball_loss(0.0, 2.0, 0.9) == pytest.approx(0.2)
    assert M.pinball_loss(0.0, 2.0, 0.5) == pytest.approx(1.0)
    assert M.coverage(np.array([[0.0, 5.0, 2.0]]), np.array([[1.0, 4.0, 2.0]])) == pytest.approx(2 / 3)


def test_scaled_pinball_is_weighted_like_wrmsse():
    hist = np.array([[0.0, 2.0, 0.0, 2.0], [0.0, 1.0, 0.0, 1.0]])  # scale1 = 2 and 1
    actual = np.array([[4.0, 0.0], [1.0, 1.0]])
    q = np.array([[2.0, 2.0], [0.0, 0.0]])
    # series 0: pinball90 = (0.9*2 + 0.1*2)/2 = 1.0 -> /2 = 0.5; series 1: 0.9 -> /1 = 0.9
    s1, _ = M.naive_scales(hist)
    assert M.scaled_pinball(actual, q, 0.9, s1, np.array([1.0, 1.0])) == pytest.approx(0.7)
    assert M.scaled_pinball(actual, q, 0.9, s1, np.array([3.0, 1.0])) == pytest.approx((1.5 + 0.9) / 4)
