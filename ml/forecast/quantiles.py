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
import pandas as pd
from scipy import special

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
    """``tau`` quantile of a negative binomial with mean ``mean`` and variance ``phi * mean`` (Poisson at phi=1):
    the smallest whole ``k >= 0`` with ``P(D <= k) >= tau`` (0 where the mean is 0).

    ``phi`` and ``tau`` broadcast against ``mean``; ``tau`` must be below 1 (the 1 quantile is infinite). The same
    answers as scipy's ``nbinom.ppf`` at about a third of its cost (:func:`_nb1_ppf`): the replays behind the
    service-level tuning call it hundreds of times a day.
    """
    mean = np.clip(np.asarray(mean, dtype=float), 0.0, None)
    phi = np.broadcast_to(np.asarray(phi, dtype=float), mean.shape)
    tau = np.broadcast_to(np.asarray(tau, dtype=float), mean.shape)
    if (tau >= 1).any() or not np.isfinite(tau).all():
        raise ValueError("quantile levels must be finite and below 1 (the 1 quantile of demand is infinite)")
    out = np.zeros_like(mean)
    # A broken input (NaN or infinite mean or dispersion) plans nothing, as scipy's NaN did before.
    pos = (mean > 0) & np.isfinite(mean) & np.isfinite(phi)
    if not pos.any():
        return out
    m, p, t = mean[pos], np.maximum(phi[pos], 1.0), tau[pos]
    if m.size < DEDUPLICATE_FROM:
        out[pos] = _nb1_ppf(m, p, t)
        return out
    # Forecast tables repeat the same (mean, phi, tau) along flat horizons: evaluate each triple once.
    codes = (
        pd.DataFrame({"m": m, "p": p, "t": t})
        .groupby(["m", "p", "t"], sort=False, dropna=False)
        .ngroup()
        .to_numpy()
    )
    first = np.unique(codes, return_index=True)[1]
    out[pos] = _nb1_ppf(m[first], p[first], t[first])[codes]
    return out


DEDUPLICATE_FROM = 10_000
"""Cells from which :func:`nb1_quantile` looks for repeated triples first: a forecast table (SKUs x horizon) has
many; a replay's one day (one cell per SKU) has none worth the hashing."""


def nb1_cdf(k: np.ndarray, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``P(D <= k)`` for D ~ NB1(mean, phi) at whole ``k`` (Poisson where ``phi`` is 1; 0 for ``k < 0``): the
    regularised incomplete beta (gamma) function scipy's ``nbinom.cdf`` (``poisson.cdf``) evaluates, without its
    per-call overhead. ``mean > 0``; arrays of one shape."""
    return _nb1_tail(k, mean, phi, upper=False)


def nb1_sf(k: np.ndarray, mean: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``P(D > k)`` (1 for ``k < 0``), by the complementary functions, so a far tail keeps its precision instead
    of being ``1 - cdf``. Same arguments as :func:`nb1_cdf`."""
    return _nb1_tail(k, mean, phi, upper=True)


def _nb1_tail(k: np.ndarray, mean: np.ndarray, phi: np.ndarray, upper: bool) -> np.ndarray:
    out = np.full_like(mean, 1.0 if upper else 0.0)
    ok = k >= 0
    pois = ok & (phi <= 1.0 + 1e-9)
    nb = ok & ~pois
    gamma = special.gammainc if upper else special.gammaincc
    beta = special.betaincc if upper else special.betainc
    out[pois] = gamma(k[pois] + 1.0, mean[pois])
    out[nb] = beta(mean[nb] / (phi[nb] - 1.0), k[nb] + 1.0, 1.0 / phi[nb])
    return out


def _nb1_ppf(mean: np.ndarray, phi: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Smallest ``k >= 0`` with ``nb1_cdf(k) >= tau`` per cell (``mean > 0``, ``phi >= 1``, ``tau < 1``).

    scipy's discrete ``ppf`` root-finds every cell. Here a gamma with the same mean and variance guesses ``k``
    (shape ``mean / phi``, scale ``phi``: Wilson-Hilferty's closed form where the shape is at least 1, the exact
    gamma quantile below it, where demand is too skewed for the closed form), and a vectorised search on the exact
    CDF finishes: from the guess, steps of 1, 2, 4, ... until the answer is bracketed, then bisection. The guess
    is within one unit for most cells, so two or three CDF evaluations settle them.
    """
    shape = mean / phi
    guess = np.empty_like(mean)
    wide = shape >= 1.0
    z = special.ndtri(tau[wide])
    k = shape[wide]
    guess[wide] = k * np.clip(1.0 - 1.0 / (9.0 * k) + z / (3.0 * np.sqrt(k)), 0.0, None) ** 3
    guess[~wide] = special.gammaincinv(shape[~wide], tau[~wide])
    guess = np.clip(np.floor(guess * phi - 0.5), 0.0, 1e15)
    reached = nb1_cdf(guess, mean, phi) >= tau
    hi = np.where(reached, guess, np.inf)  # smallest k known to reach tau
    lo = np.where(reached, -1.0, guess)  # largest k known not to (-1: none known yet)

    def probe(idx: np.ndarray, k: np.ndarray) -> np.ndarray:
        ok = nb1_cdf(k, mean[idx], phi[idx]) >= tau[idx]
        hi[idx[ok]] = k[ok]
        lo[idx[~ok]] = k[~ok]
        return ok

    # Up from a guess that falls short; down from one that reaches.
    up = np.flatnonzero(~reached)
    down = np.flatnonzero(reached & (guess > 0))
    step_up, step_down = np.ones(len(up)), np.ones(len(down))
    for _ in range(64):
        if len(up):
            ok = probe(up, lo[up] + step_up)
            up, step_up = up[~ok], step_up[~ok] * 2.0
        if len(down):
            k = np.maximum(hi[down] - step_down, 0.0)
            ok = probe(down, k)
            keep = ok & (k > 0)
            down, step_down = down[keep], step_down[keep] * 2.0
        if not len(up) and not len(down):
            break
    else:  # 2**64 units away from a finite guess: unreachable for finite parameters (nb1_quantile filters)
        raise RuntimeError("NB1 quantile search did not bracket the answer")
    # Now lo < answer <= hi: bisect what is still open.
    todo = np.flatnonzero(hi - lo > 1)
    while len(todo):
        probe(todo, np.floor((lo[todo] + hi[todo]) / 2.0))
        todo = todo[hi[todo] - lo[todo] > 1]
    return hi


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
    v = _sorted_cdf_below(records)
    return {tau: _level_covering(v, tau, lo, hi) for tau in levels}


def calibration_table(groups: dict, levels, lo: float = 0.01, hi: float = 0.999) -> list[dict]:
    """How the quantiles of each group (a demand class) cover on validation, one row per group and level.

    ``groups``: name -> list of ``(origin, phi, mean, actual)`` validation records. Per level ``tau``:
    ``points``; ``coverage_uncalibrated`` (the negative binomial at ``tau`` itself); ``calibrated_level`` (from
    all origins, what the forecast serves); and ``coverage_held_out``: the level calibrated on every origin but
    the latest, scored on the latest, which no calibration saw (NaN with one origin). In-sample, the calibrated
    coverage is ``tau`` by construction; the held-out figure is the honest one.
    """
    rows = []
    for name, recs in groups.items():
        if not recs:
            continue
        latest = max(origin for origin, *_ in recs)
        everything = _sorted_cdf_below([r[1:] for r in recs])
        earlier = _sorted_cdf_below([r[1:] for r in recs if r[0] != latest])
        held_out = _sorted_cdf_below([r[1:] for r in recs if r[0] == latest])
        for tau in levels:
            rows.append(
                {
                    "group": name,
                    "level": tau,
                    "points": int(len(everything)),
                    "coverage_uncalibrated": _coverage(everything, tau),
                    "calibrated_level": _level_covering(everything, tau, lo, hi),
                    "coverage_held_out": _coverage(held_out, _level_covering(earlier, tau, lo, hi))
                    if len(earlier)
                    else float("nan"),
                }
            )
    return rows


def _sorted_cdf_below(records) -> np.ndarray:
    """``F(y - 1)`` of every validation point of ``(phi, mean, actual)`` records, missing ones dropped, sorted."""
    parts = [_cdf_below(np.asarray(p, dtype=float)[:, None], m, a) for p, m, a in records]
    v = np.concatenate(parts) if parts else np.empty(0)
    return np.sort(v[~np.isnan(v)])


def _level_covering(v: np.ndarray, tau: float, lo: float, hi: float) -> float:
    """The smallest level that covers ``ceil(tau * n)`` of the sorted ``v`` (``tau`` itself when empty)."""
    if not len(v):
        return tau
    k = min(int(np.ceil(tau * len(v))), len(v)) - 1
    return float(np.clip(v[k] + 1e-9, lo, hi))


def _coverage(v: np.ndarray, level: float) -> float:
    """Share of points with ``y <= q_level``, i.e. ``F(y - 1) < level``."""
    return float((v < level).mean()) if len(v) else float("nan")


def _cdf_below(phi: np.ndarray, mean: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """``F(y - 1)`` of NB1(mean, phi) at each actual ``y`` (NaN where missing); 0 for ``y = 0``. A zero mean is
    a point mass at 0, so any positive ``y`` gets 1 (never covered)."""
    mean = np.clip(np.asarray(mean, dtype=float), 0.0, None)
    y = np.asarray(actual, dtype=float)
    phi = np.broadcast_to(phi, mean.shape)
    out = np.where(y <= 0, 0.0, 1.0)
    pos = (mean > 0) & (y > 0)
    out[pos] = nb1_cdf(np.ceil(y[pos]) - 1.0, mean[pos], phi[pos])
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
