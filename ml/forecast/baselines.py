"""Local baselines: naive, seasonal naive, moving average, Croston (SBA), TSB and zero.

They are the yardstick every other model must beat, and the intermittent-demand ones (Croston/SBA, TSB) are what
the literature recommends for SKU-day retail data, where most days are zero. All are vectorised over series (one
pass over the periods, not one Python loop per SKU), so thousands of SKUs fit in well under a second.

Each series' history starts at its first period (the NaN before it in the panel are ignored).
"""

from __future__ import annotations

import numpy as np

from ml.forecast.base import Forecaster
from ml.forecast.panel import Panel


class Zero(Forecaster):
    """Predicts no demand: the floor any model must clear (on intermittent data it is surprisingly strong)."""

    name = "zero"

    def _fit(self, panel: Panel) -> None:
        pass

    def _predict_mean(self, h, calendar, future_covariates):
        return np.zeros((self.panel_.n_series, h))


class Naive(Forecaster):
    """Repeats the last observed value."""

    name = "naive"

    def _fit(self, panel: Panel) -> None:
        self.level_ = panel.filled()[:, -1]

    def _predict_mean(self, h, calendar, future_covariates):
        return np.repeat(self.level_[:, None], h, axis=1)


class SeasonalNaive(Forecaster):
    """Repeats the last full season (``season_length`` periods; Online Retail: 6 trading days)."""

    def __init__(self, season_length: int = 6, **kw):
        super().__init__(**kw)
        self.season_length = season_length
        self.name = "seasonal_naive"

    def _fit(self, panel: Panel) -> None:
        self.last_ = panel.filled()[:, -self.season_length :]

    def _predict_mean(self, h, calendar, future_covariates):
        m = self.last_.shape[1]
        # Position k of the forecast takes the value one (or more) whole seasons before it.
        idx = (np.arange(h) % m) if m else np.zeros(h, dtype=int)
        return self.last_[:, idx]


class MovingAverage(Forecaster):
    """Mean of the last ``window`` periods since the series started (a flat forecast)."""

    def __init__(self, window: int = 28, **kw):
        super().__init__(**kw)
        self.window = window
        self.name = f"moving_average_{window}"

    def _fit(self, panel: Panel) -> None:
        self.level_ = np.nan_to_num(np.nanmean(panel.y[:, -self.window :], axis=1), nan=0.0)

    def _predict_mean(self, h, calendar, future_covariates):
        return np.repeat(self.level_[:, None], h, axis=1)


def croston_states(y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Croston's smoothed demand size ``z`` and inter-demand interval ``p`` at the end of ``y`` (NaN = not started).

    Initialised at each series' first non-zero value (size = that value, interval = its position + 1), then
    updated only on demand periods with the periods elapsed since the previous demand.
    """
    n, t = y.shape
    z = np.full(n, np.nan)
    p = np.full(n, np.nan)
    since = np.zeros(n)
    for j in range(t):
        col = y[:, j]
        live = ~np.isnan(col)
        since[live] += 1
        dem = live & (col > 0)
        init = dem & np.isnan(z)
        upd = dem & ~init
        z[init] = col[init]
        p[init] = since[init]
        z[upd] += alpha * (col[upd] - z[upd])
        p[upd] += alpha * (since[upd] - p[upd])
        since[dem] = 0
    return z, p


class CrostonSBA(Forecaster):
    """Croston's method with the Syntetos–Boylan bias correction: ``(1 - alpha/2) * z / p``."""

    def __init__(self, alpha: float = 0.1, **kw):
        super().__init__(**kw)
        self.alpha = alpha
        self.name = "croston_sba"

    def _fit(self, panel: Panel) -> None:
        z, p = croston_states(panel.y, self.alpha)
        self.level_ = np.nan_to_num((1 - self.alpha / 2) * z / p, nan=0.0)

    def _predict_mean(self, h, calendar, future_covariates):
        return np.repeat(self.level_[:, None], h, axis=1)


def tsb_states(y: np.ndarray, alpha_d: float, alpha_p: float) -> tuple[np.ndarray, np.ndarray]:
    """TSB's smoothed demand probability ``d`` and size ``z`` at the end of ``y``.

    Unlike Croston, the probability decays on every zero period, so an SKU that stopped selling fades out.
    """
    n, t = y.shape
    d = np.full(n, np.nan)
    z = np.full(n, np.nan)
    for j in range(t):
        col = y[:, j]
        live = ~np.isnan(col)
        dem = live & (col > 0)
        init = dem & np.isnan(z)
        old = live & ~np.isnan(z) & ~init
        d[init] = 1.0
        z[init] = col[init]
        d[old] += alpha_p * (dem[old].astype(float) - d[old])
        upd = old & dem
        z[upd] += alpha_d * (col[upd] - z[upd])
    return d, z


class TSB(Forecaster):
    """Teunter–Syntetos–Babai: probability of demand times demand size, both exponentially smoothed."""

    def __init__(self, alpha_d: float = 0.1, alpha_p: float = 0.1, **kw):
        super().__init__(**kw)
        self.alpha_d, self.alpha_p = alpha_d, alpha_p
        self.name = "tsb"

    def _fit(self, panel: Panel) -> None:
        d, z = tsb_states(panel.y, self.alpha_d, self.alpha_p)
        self.level_ = np.nan_to_num(d * z, nan=0.0)

    def _predict_mean(self, h, calendar, future_covariates):
        return np.repeat(self.level_[:, None], h, axis=1)
