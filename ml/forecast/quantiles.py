"""Quantiles around a mean forecast: a per-series negative binomial, with levels calibrated on validation origins.

Why this and not quantile regression per model: SKU-day demand is a count with many zeros and rare large orders,
so its spread grows with its level and differs a lot between SKUs. A negative binomial with variance ``phi * mean``
(``phi`` = the series' recent index of dispersion, at least 1) gives every mean-only model a quantile that follows
its own mean forecast, puts the right mass at zero for intermittent SKUs, and costs nothing to fit.

A parametric family is never exactly right for lumpy demand, so the level actually used is calibrated
(conformal-style): on rolling validation origins before the test origin, :func:`calibrate_levels` finds for each
nominal level ``tau`` the level ``tau'`` at which the pooled empirical coverage ``P(y <= q)`` over the validation
points equals ``tau`` (the ensemble does it per demand class). The test window is never used.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ml.forecast.panel import Panel


class NegBinQuantiles:
    """Per-series negative binomial (NB1: ``var = phi * mean``) quantiles.

    ``window``: how many recent periods estimate ``phi`` (the full history when the window has no demand).
    ``level_map``: nominal level -> level used, set by :func:`calibrate_levels`; identity by default.
    """

    def __init__(self, window: int = 112, max_phi: float = 1e4):
        self.window = window
        self.max_phi = max_phi
        self.level_map: dict[float, float] = {}
        self.phi_: np.ndarray | None = None

    def fit(self, panel: Panel) -> NegBinQuantiles:
        self.phi_ = history_dispersion(panel.y, self.window, self.max_phi)
        return self

    def quantile_at(self, mean: np.ndarray, tau) -> np.ndarray:
        """The ``tau`` quantile of NB1(mean, phi) per cell of ``mean`` (``(n, h)``); ``tau`` may be per series."""
        tau = np.asarray(tau, dtype=float)
        if tau.ndim == 1:
            tau = tau[:, None]
        return nb1_quantile(mean, self.phi_[:, None], np.broadcast_to(tau, np.shape(mean)))

    def predict(self, mean: np.ndarray, levels) -> dict[float, np.ndarray]:
        return {q: self.quantile_at(mean, self.level_map.get(q, q)) for q in levels}


def nb1_quantile(mean: np.ndarray, phi: np.ndarray, tau) -> np.ndarray:
    """``tau`` quantile of a negative binomial with mean ``mean`` and variance ``phi * mean`` (Poisson at phi=1).

    ``phi`` and ``tau`` broadcast against ``mean``. scipy's discrete ``ppf`` is slow (a search per cell), and
    forecasts repeat the same ``(mean, phi, tau)`` over many cells (flat forecasts over the horizon), so each
    distinct triple is evaluated once.
    """
    mean = np.clip(np.asarray(mean, dtype=float), 0.0, None)
    phi = np.broadcast_to(np.asarray(phi, dtype=float), mean.shape)
    tau = np.broadcast_to(np.asarray(tau, dtype=float), mean.shape)
    out = np.zeros_like(mean)
    pos = mean > 0
    if not pos.any():
        return out
    triples = np.stack([mean[pos], phi[pos], tau[pos]], axis=1)
    uniq, inverse = np.unique(triples, axis=0, return_inverse=True)
    out[pos] = _nb1_ppf(uniq[:, 0], uniq[:, 1], uniq[:, 2])[inverse.ravel()]
    return out


def _nb1_ppf(mean: np.ndarray, phi: np.ndarray, tau: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mean)
    pois = phi <= 1.0 + 1e-9
    nb = ~pois
    if pois.any():
        out[pois] = stats.poisson.ppf(tau[pois], mean[pois])
    if nb.any():
        out[nb] = stats.nbinom.ppf(tau[nb], mean[nb] / (phi[nb] - 1.0), 1.0 / phi[nb])
    return np.nan_to_num(out, nan=0.0, posinf=0.0)


def history_dispersion(y: np.ndarray, window: int = 112, max_phi: float = 1e4) -> np.ndarray:
    """Per series (rows of ``y``, NaN before a series starts): the index of dispersion of its last ``window``
    periods (of its whole history when those have no demand), between 1 and ``max_phi``."""
    phi = _dispersion(y[:, -window:])
    empty = ~np.isfinite(phi)
    if empty.any():
        phi[empty] = _dispersion(y[empty])
    return np.clip(np.nan_to_num(phi, nan=1.0), 1.0, max_phi)


def _dispersion(y: np.ndarray) -> np.ndarray:
    """Index of dispersion (variance / mean) per row, ignoring NaN; NaN where a row has no demand."""
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.nanmean(y, axis=1)
        v = np.nanvar(y, axis=1)
        return np.where(m > 0, v / m, np.nan)


def calibrate_levels(records, levels, lo: float = 0.01, hi: float = 0.999) -> dict[float, float]:
    """Levels ``tau'`` whose pooled coverage on validation equals each nominal ``tau``.

    ``records``: iterable of ``(phi, mean, actual)`` from validation origins: ``phi`` ``(n,)`` is the dispersion
    fitted at that origin, ``mean`` and ``actual`` are ``(n, h)``.

    For a discrete distribution, ``y <= q_tau'`` exactly when ``F(y - 1) < tau'`` (``q_tau'`` is the smallest
    ``k`` with ``F(k) >= tau'``). So one CDF evaluation per validation point, ``v = F(y - 1)``, gives the coverage
    of every level at once, ``coverage(tau') = mean(v < tau')``, and the smallest level that covers
    ``ceil(tau * n)`` points sits just above the ``ceil(tau * n)``-th smallest ``v`` (clipped to ``[lo, hi]``).
    """
    v = np.concatenate([_cdf_below(np.asarray(p, dtype=float)[:, None], m, a) for p, m, a in records])
    v = np.sort(v[~np.isnan(v)])
    out: dict[float, float] = {}
    for tau in levels:
        if not len(v):
            out[tau] = tau
            continue
        k = min(int(np.ceil(tau * len(v))), len(v)) - 1
        out[tau] = float(np.clip(v[k] + 1e-9, lo, hi))
    return out


def _cdf_below(phi: np.ndarray, mean: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """``F(y - 1)`` of NB1(mean, phi) at each actual ``y`` (NaN where missing); 0 for ``y = 0``. A zero mean is
    a point mass at 0, so any positive ``y`` gets 1 (never covered)."""
    mean = np.clip(np.asarray(mean, dtype=float), 0.0, None)
    y = np.asarray(actual, dtype=float)
    phi = np.broadcast_to(phi, mean.shape)
    out = np.where(y <= 0, 0.0, 1.0)
    pos = (mean > 0) & (y > 0)
    pois = pos & (phi <= 1.0 + 1e-9)
    nb = pos & ~pois
    below = np.ceil(y) - 1.0
    out[pois] = stats.poisson.cdf(below[pois], mean[pois])
    out[nb] = stats.nbinom.cdf(below[nb], mean[nb] / (phi[nb] - 1.0), 1.0 / phi[nb])
    out[np.isnan(y)] = np.nan
    return out.ravel()


def pooled_coverage(records, tau: float) -> float:
    """Share of validation points with ``actual <= q_tau`` over all ``(phi, mean, actual)`` records."""
    hit = tot = 0
    for phi, mean, actual in records:
        q = nb1_quantile(mean, phi, tau)
        ok = ~np.isnan(actual)
        hit += int((actual[ok] <= q[ok]).sum())
        tot += int(ok.sum())
    return hit / max(tot, 1)
