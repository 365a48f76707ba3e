"""A small simulated store with known demand, for tests and smoke runs of the forecasting stack.

Each SKU has a base rate, a weekly profile (season length ``m``), a demand probability (intermittent SKUs sell
on a fraction of days) and a promotion effect; price and promo are covariates known in advance. Because the true
expected demand is known, tests can check that models learn it (beat the zero forecast and seasonal naive) without
depending on a real data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_store(
    n_series: int = 40,
    n_periods: int = 260,
    season_length: int = 7,
    seed: int = 0,
    start: str | None = "2024-01-01",
) -> tuple[pd.DataFrame, np.ndarray]:
    """``(long frame unique_id, ds, y, price, promo; expected demand (n_series, n_periods))``.

    ``ds`` are consecutive days from ``start`` (integers from 0 when ``start`` is None). Half the SKUs are
    intermittent (sell on 20–50% of days); demand on a selling day is Poisson around the SKU's level.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_periods)
    base = rng.lognormal(mean=1.0, sigma=0.8, size=n_series)
    prob = np.where(np.arange(n_series) % 2 == 0, 1.0, rng.uniform(0.2, 0.5, n_series))
    profile = 1.0 + 0.6 * np.sin(
        2 * np.pi * (t[None, :] + rng.integers(0, season_length, (n_series, 1))) / season_length
    )
    trend = 1.0 + 0.002 * t[None, :] * rng.uniform(-1, 1, (n_series, 1))
    promo = (rng.random((n_series, n_periods)) < 0.06).astype(float)
    price = np.round(rng.uniform(1, 10, (n_series, 1)) * (1 - 0.2 * promo), 2)
    size = base[:, None] * profile * trend * (1 + 1.5 * promo)
    expected = prob[:, None] * size
    sells = rng.random((n_series, n_periods)) < prob[:, None]
    y = np.where(sells, rng.poisson(size), 0).astype(float)
    # Guarantee a sale on day 0 so every series starts at the same period.
    y[:, 0] = np.maximum(y[:, 0], 1.0)
    ds = pd.date_range(start, periods=n_periods, freq="D") if start else t
    ids = [f"sku{i:03d}" for i in range(n_series)]
    df = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, n_periods),
            "ds": np.tile(ds, n_series),
            "y": y.ravel(),
            "price": price.ravel(),
            "promo": promo.ravel(),
        }
    )
    return df, expected
