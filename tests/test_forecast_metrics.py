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


def test_evaluate_reports_the_coverage_of_every_served_level():
    actual = np.array([[0.0, 5.0, 2.0, 9.0]])
    hist = np.array([[1.0, 2.0, 1.0, 2.0]])
    levels = {0.5: np.full((1, 4), 1.0), 0.95: np.full((1, 4), 5.0), 0.99: np.full((1, 4), 9.0)}
    out = M.evaluate(actual, np.full((1, 4), 2.0), hist, np.ones(1), levels)
    assert (out["coverage50"], out["coverage95"], out["coverage99"]) == (0.25, 0.75, 1.0)
    assert np.isnan(out["coverage90"]) and "coverage80" not in out  # no 0.9 quantile served, no 0.8 either


def test_scaled_pinball_is_weighted_like_wrmsse():
    hist = np.array([[0.0, 2.0, 0.0, 2.0], [0.0, 1.0, 0.0, 1.0]])  # scale1 = 2 and 1
    actual = np.array([[4.0, 0.0], [1.0, 1.0]])
    q = np.array([[2.0, 2.0], [0.0, 0.0]])
    # series 0: pinball90 = (0.9*2 + 0.1*2)/2 = 1.0 -> /2 = 0.5; series 1: 0.9 -> /1 = 0.9
    s1, _ = M.naive_scales(hist)
    assert M.scaled_pinball(actual, q, 0.9, s1, np.array([1.0, 1.0])) == pytest.approx(0.7)
    assert M.scaled_pinball(actual, q, 0.9, s1, np.array([3.0, 1.0])) == pytest.approx((1.5 + 0.9) / 4)


def test_bootstrap_intervals_by_hand():
    # Three series with one-step naive MSE 1 (history alternates 0, 1) and equal weights. Model "a" is off by
    # 1 everywhere on series 0 only; "b" is "a" on every series; "c" is perfect.
    hist = np.tile([0.0, 1.0] * 4, (3, 1))
    actual = np.array([[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    a = actual + np.array([[1.0], [0.0], [0.0]])
    out = M.bootstrap_intervals(
        actual, {"a": a, "b": a.copy(), "c": actual}, hist, np.ones(3), "b", n_boot=500
    )
    lo, hi = out["models"]["a"]["WRMSSE"]
    # a resample's WRMSSE is (draws of series 0) / 3: from 0 to 1; the central 95% spans 0 and 2/3 at least
    assert lo == 0.0 and 2 / 3 <= hi <= 1.0
    assert out["models"]["c"]["WRMSSE"] == [0.0, 0.0] and out["models"]["c"]["bias"] == [0.0, 0.0]
    # bias = draws0 * 2 / (draws0 * 4 + draws1 * 2 + draws2 * 6): 0 when series 0 is not drawn
    assert out["models"]["a"]["bias"][0] == 0.0 and 0 < out["models"]["a"]["bias"][1] <= 0.5
    assert out["reference"] == "b"
    assert out["vs_reference"]["a"]["share_better"] == 0.0  # equal on every resample, never lower
    noisy = M.bootstrap_intervals(actual, {"a": a, "b": a * (1 + 1e-13)}, hist, np.ones(3), "a", n_boot=200)
    assert noisy["vs_reference"]["b"]["share_better"] == 0.0  # a rounding difference is not a win
    # lower whenever series 0 is drawn: 1 - (2/3)^3 = 19/27 of resamples
    assert out["vs_reference"]["c"]["share_better"] == pytest.approx(19 / 27, abs=0.07)
    assert "b" not in out["vs_reference"]
    again = M.bootstrap_intervals(actual, {"a": a}, hist, np.ones(3), n_boot=500)
    assert again["models"]["a"] == out["models"]["a"]  # the same seed draws the same resamples
    assert "vs_reference" not in again


def test_bootstrap_interval_narrows_with_more_series():
    rng = np.random.default_rng(1)

    def width(n):
        hist = rng.poisson(3.0, (n, 60)).astype(float)
        actual = rng.poisson(3.0, (n, 28)).astype(float)
        out = M.bootstrap_intervals(actual, {"m": np.full_like(actual, 3.0)}, hist, np.ones(n), n_boot=400)
        lo, hi = out["models"]["m"]["WRMSSE"]
        return hi - lo

    assert width(1600) < 0.5 * width(100)  # about 1/sqrt(16) = 0.25 in theory
