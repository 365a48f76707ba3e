"""Forecast accuracy metrics for intermittent SKU demand (M5 style), with the zero-scale rule made explicit.

All functions take matrices ``(n_series, h)`` for actuals and forecasts and the in-sample history ``(n_series, T)``
(NaN before a series starts) for the scales. MAPE is deliberately absent: on SKU-day data most actuals are zero.

Definitions (``e = y - f`` over the test horizon):

- **RMSSE** per series = ``sqrt(mean(e²) / scale2)``, ``scale2`` = in-sample mean squared one-step naive error
  ``mean((y_t - y_{t-1})²)`` from the series' first period to the origin. ``rmsse`` averages it over series.
- **WRMSSE** = ``sum_i w_i RMSSE_i`` with ``w_i`` = revenue of series ``i`` in the last 28 training periods,
  normalised to sum to 1 (M5).
- **MASE** per series = ``mean|e| / scale1``, ``scale1`` = in-sample mean absolute one-step naive error; averaged.
- **WAPE** = ``sum|e| / sum y`` pooled over all points. **bias** = ``sum(f - y) / sum y`` (negative = under).
- **pinball(tau)**: scaled pinball loss, M5-uncertainty style: per series ``mean(pinball_tau(y, q)) / scale1``,
  then the same revenue-weighted sum as WRMSSE (so it is comparable across SKUs of any volume).
- **coverage(tau)** = share of all test points with ``y <= q_tau``.

**Zero-scale rule**: a series whose in-sample naive error is zero (constant history, or a single period) has no
scale; its scaled errors are NaN and it is left out of RMSSE/MASE/pinball averages and of the WRMSSE weights (which
are renormalised over the remaining series). ``n_zero_scale`` reports how many were left out. The unscaled pooled
metrics (WAPE, bias, coverage) keep every series.
"""

from __future__ import annotations

import numpy as np


def naive_scales(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scale1, scale2)`` per series: mean absolute and mean squared one-step naive error in sample.

    Differences are taken only between two observed periods (NaN before the start is skipped). A series with
    fewer than two periods or a constant history gets scale 0 (see the zero-scale rule).
    """
    d = np.diff(np.asarray(history, dtype=float), axis=1)
    ok = ~np.isnan(d)
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 = np.where(cnt > 0, np.nansum(np.abs(d), axis=1) / np.maximum(cnt, 1), 0.0)
        s2 = np.where(cnt > 0, np.nansum(d**2, axis=1) / np.maximum(cnt, 1), 0.0)
    return s1, s2


def rmsse_per_series(actual, forecast, scale2) -> np.ndarray:
    """RMSSE per series; NaN where ``scale2 == 0``."""
    mse = np.nanmean((np.asarray(actual) - np.asarray(forecast)) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale2 > 0, np.sqrt(mse / np.where(scale2 > 0, scale2, 1.0)), np.nan)


def mase_per_series(actual, forecast, scale1) -> np.ndarray:
    """MASE per series; NaN where ``scale1 == 0``."""
    mae = np.nanmean(np.abs(np.asarray(actual) - np.asarray(forecast)), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale1 > 0, mae / np.where(scale1 > 0, scale1, 1.0), np.nan)


def pinball_loss(actual, quantile, tau: float) -> np.ndarray:
    """Pinball (quantile) loss per point: ``tau * (y - q)`` if ``y >= q`` else ``(1 - tau) * (q - y)``."""
    e = np.asarray(actual, dtype=float) - np.asarray(quantile, dtype=float)
    return np.maximum(tau * e, (tau - 1.0) * e)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """``sum w v / sum w`` over the series where ``values`` is finite (the zero-scale rule); NaN if none."""
    ok = np.isfinite(values)
    w = np.asarray(weights, dtype=float)[ok]
    if not ok.any() or w.sum() <= 0:
        return float("nan")
    return float((w * values[ok]).sum() / w.sum())


def wrmsse(actual, forecast, history, weights) -> float:
    """Revenue-weighted RMSSE (weights renormalised over series with a non-zero scale)."""
    _, s2 = naive_scales(history)
    return weighted_mean(rmsse_per_series(actual, forecast, s2), weights)


def wape(actual, forecast) -> float:
    a = np.asarray(actual, dtype=float)
    tot = np.nansum(a)
    return float(np.nansum(np.abs(a - forecast)) / tot) if tot > 0 else float("nan")


def bias(actual, forecast) -> float:
    a = np.asarray(actual, dtype=float)
    tot = np.nansum(a)
    return float(np.nansum(np.asarray(forecast) - a) / tot) if tot > 0 else float("nan")


def coverage(actual, quantile) -> float:
    a = np.asarray(actual, dtype=float)
    ok = ~np.isnan(a)
    return float((a[ok] <= np.asarray(quantile)[ok]).mean()) if ok.any() else float("nan")


def scaled_pinball(actual, quantile, tau: float, scale1, weights) -> float:
    """Revenue-weighted scaled pinball loss (per series mean pinball / ``scale1``)."""
    per = np.nanmean(pinball_loss(actual, quantile, tau), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(scale1 > 0, per / np.where(scale1 > 0, scale1, 1.0), np.nan)
    return weighted_mean(scaled, weights)


def evaluate(
    actual: np.ndarray,
    mean: np.ndarray,
    history: np.ndarray,
    weights: np.ndarray,
    quantiles: dict[float, np.ndarray] | None = None,
) -> dict[str, float]:
    """Every metric of the benchmark for one set of forecasts (see the module docstring for definitions)."""
    actual = np.asarray(actual, dtype=float)
    mean = np.asarray(mean, dtype=float)
    s1, s2 = naive_scales(history)
    ones = np.ones(actual.shape[0])
    out = {
        "WRMSSE": weighted_mean(rmsse_per_series(actual, mean, s2), weights),
        "RMSSE": weighted_mean(rmsse_per_series(actual, mean, s2), ones),
        "MASE": weighted_mean(mase_per_series(actual, mean, s1), ones),
        "WAPE": wape(actual, mean),
        "bias": bias(actual, mean),
        "n_series": int(actual.shape[0]),
        "n_zero_scale": int((s2 <= 0).sum()),
    }
    quantiles = quantiles or {}
    for tau, key in ((0.5, "pinball50"), (0.9, "pinball90")):
        q = quantiles.get(tau)
        out[key] = scaled_pinball(actual, q, tau, s1, weights) if q is not None else float("nan")
    q90 = quantiles.get(0.9)
    out["coverage90"] = coverage(actual, q90) if q90 is not None else float("nan")
    for tau, q in sorted(quantiles.items()):  # every served level, e.g. coverage99 for the 0.99 quantile
        out[f"coverage{round(tau * 100):02d}"] = coverage(actual, q)
    return out


def bootstrap_intervals(
    actual: np.ndarray,
    means: dict[str, np.ndarray],
    history: np.ndarray,
    weights: np.ndarray,
    reference: str | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """How far a single test window's WRMSSE and bias could move with another draw of SKUs: a paired bootstrap
    over series (each resample draws ``n`` series with replacement, the same draw for every model; a series'
    days stay together because they are correlated). Weights are renormalised inside each resample, as
    :func:`weighted_mean` does (zero-scale series count as absent).

    Returns ``{"method", "models": {name: {"WRMSSE": [lo, hi], "bias": [lo, hi]}}}`` with the central ``level``
    percentile intervals and, when ``reference`` names one of ``means``, ``"reference"`` and ``"vs_reference":
    {name: {"WRMSSE_ratio": [lo, hi], "share_better": p}}``: the interval of the model's WRMSSE over the
    reference's on the same resamples, and the share of resamples in which the model's is lower.
    """
    actual = np.asarray(actual, dtype=float)
    n = actual.shape[0]
    _, s2 = naive_scales(history)
    w = np.asarray(weights, dtype=float)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)  # (B, n): draws per series
    y_sum = np.nansum(actual, axis=1)
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def interval(values: np.ndarray) -> list[float]:
        return [float(v) for v in np.nanpercentile(values, tails)]

    wrmsse_b, out = {}, {"models": {}}
    for name, mean in means.items():
        r = rmsse_per_series(actual, np.asarray(mean, dtype=float), s2)
        ok = np.isfinite(r)
        wr = np.where(ok, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            wrmsse_b[name] = (counts @ (wr * np.where(ok, r, 0.0))) / (counts @ wr)
            err = np.nansum(np.asarray(mean, dtype=float) - actual, axis=1)
            bias_b = (counts @ err) / (counts @ y_sum)
        out["models"][name] = {"WRMSSE": interval(wrmsse_b[name]), "bias": interval(bias_b)}
    out["method"] = (
        f"paired bootstrap over series: {n_boot} resamples of {n} series with replacement, seed {seed}; "
        f"central {level:.0%} percentile intervals"
    )
    if reference is not None and reference in means:
        out["reference"] = reference
        ref = wrmsse_b[reference]
        out["vs_reference"] = {
            name: {
                "WRMSSE_ratio": interval(b / ref),
                # lower by more than rounding: two implementations of one model must not "win" on noise
                "share_better": float(np.mean(b < ref * (1 - 1e-9))),
            }
            for name, b in wrmsse_b.items()
            if name != reference
        }
    return out
