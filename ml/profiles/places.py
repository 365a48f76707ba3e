"""Place: performance of channel x placement x region x hour over the last 28 days (dbt var ``place_window_days``)
(``features.place_profiles``, one row per cell with any activity and as-of date D).

Counts come from dbt's ``features.place_windows`` (views and add-to-carts where they happened; a purchased line
is credited to the cell where its item was put in the cart, ``intermediate.int_sale_attribution``; orders without
a clickstream count under placement ``unknown``), over dbt's ``place_window_days``. Rates:

- ``ctr = carts / views`` (click-through from a viewed item to the cart: the shop logs no impressions, so the
  item view is the "impression" and the add-to-cart the "click"), ``cvr = purchases / views`` (purchased lines
  per view), ``aov = gmv / orders``.

Small cells make raw rates noisy (1 cart out of 2 views is not a 50% CTR), so each rate is shrunk towards the
channel's pooled rate with empirical Bayes: a Beta(a, b) prior whose mean is the channel's pooled rate
``sum(k) / sum(n)`` and whose strength ``a + b`` comes from the method of moments over the channel's cells
with at least :data:`MIN_CELL_VIEWS` views (``a + b = m (1 - m) / var - 1`` where ``var`` is the variance of
their rates minus the binomial noise, clipped to [1, 10000]; 100 when fewer than 3 such cells exist). The smoothed rate is the posterior mean ``(k + a) / (n + a + b)``: a big cell
keeps its own rate, a tiny one stays close to its channel. AOV is shrunk the same way with a pseudo-count of
:data:`AOV_PSEUDO_ORDERS` orders at the channel's pooled AOV. Raw values are kept next to smoothed ones.
"""

from __future__ import annotations

import time
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from ml.profiles.feature_tables import FEATURES, PLACE_WINDOWS, require_built
from ml.summary import summary
from ml.warehouse import markdown_table, replace_partition

MIN_CELL_VIEWS = 20
AOV_PSEUDO_ORDERS = 5.0
PRIOR_STRENGTH_DEFAULT = 100.0
PLACE_PROFILES = f"{FEATURES}.place_profiles"


def beta_prior(
    successes: np.ndarray, trials: np.ndarray, min_trials: int = MIN_CELL_VIEWS
) -> tuple[float, float]:
    """Method-of-moments Beta(a, b) prior for the rates ``successes / trials`` of a group of cells."""
    total = trials.sum()
    if total <= 0:
        return 1.0, 1.0
    mean = float(np.clip(successes.sum() / total, 1e-6, 1 - 1e-6))
    big = trials >= min_trials
    strength = PRIOR_STRENGTH_DEFAULT
    if big.sum() >= 3:
        rates = successes[big] / trials[big]
        # Subtract the binomial sampling noise each cell would show even if all shared one true rate; no
        # variance left means the cells do not differ beyond noise, hence the strongest prior.
        var = float(np.var(rates) - np.mean(mean * (1 - mean) / trials[big]))
        strength = float(np.clip(mean * (1 - mean) / var - 1, 1.0, 10_000.0)) if var > 0 else 10_000.0
    return mean * strength, (1 - mean) * strength


def smooth_rates(frame: pd.DataFrame, successes: str, trials: str, group: str) -> pd.Series:
    """Posterior-mean rates per row, with one Beta prior per value of ``group``."""
    out = pd.Series(np.nan, index=frame.index)
    for _, cells in frame.groupby(group, sort=False):
        k, n = cells[successes].to_numpy(float), cells[trials].to_numpy(float)
        a, b = beta_prior(k, n)
        rate = (k + a) / (n + a + b)
        out.loc[cells.index] = np.where(n > 0, rate, np.nan)
    return out


def place_profiles(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Build ``features.place_profiles`` for ``as_of`` (replacing that date) and return its summary."""
    t0 = time.perf_counter()
    require_built(con, as_of)
    cells = con.execute(
        f"""select channel, placement, region, hour, views, carts, purchases, orders, gmv, window_days from {PLACE_WINDOWS}
            where as_of_date = ? order by channel, placement, region, hour""",
        [as_of],
    ).df()
    cells.insert(0, "as_of_date", pd.Timestamp(as_of).date())
    window_days = cells.pop("window_days")
    views = cells["views"].replace(0, np.nan)
    cells["ctr_raw"] = cells["carts"] / views
    cells["cvr_raw"] = cells["purchases"] / views
    cells["aov_raw"] = cells["gmv"] / cells["orders"].replace(0, np.nan)
    # Smoothing needs cells with views; ctr/cvr stay null where nothing was viewed (no clickstream).
    cells["ctr"] = smooth_rates(cells, "carts", "views", "channel")
    cells["cvr"] = smooth_rates(cells, "purchases", "views", "channel")
    pooled = cells.groupby("channel")[["gmv", "orders"]].transform("sum")
    channel_aov = pooled["gmv"] / pooled["orders"].replace(0, np.nan)
    cells["aov"] = (cells["gmv"] + AOV_PSEUDO_ORDERS * channel_aov) / (cells["orders"] + AOV_PSEUDO_ORDERS)
    cells["window_days"] = window_days.astype("int64")
    rows = replace_partition(con, PLACE_PROFILES, "as_of_date", as_of, cells)

    by_channel = (
        cells.groupby("channel")[["views", "carts", "purchases", "orders", "gmv"]].sum().reset_index()
        if len(cells)
        else pd.DataFrame()
    )
    if len(by_channel):
        by_channel["ctr"] = by_channel["carts"] / by_channel["views"].replace(0, np.nan)
        by_channel["cvr"] = by_channel["purchases"] / by_channel["views"].replace(0, np.nan)
        by_channel["aov"] = by_channel["gmv"] / by_channel["orders"].replace(0, np.nan)
    by_placement = (
        cells.groupby("placement")[["views", "carts", "purchases", "gmv"]].sum().reset_index()
        if len(cells)
        else pd.DataFrame()
    )
    small = cells["views"].between(1, MIN_CELL_VIEWS - 1)
    metrics = {
        "cells": rows,
        "views_28d": int(cells["views"].sum()),
        "gmv_28d": float(cells["gmv"].sum()),
        "ctr_pooled": float(cells["carts"].sum() / cells["views"].sum()) if cells["views"].sum() else None,
        "cvr_pooled": float(cells["purchases"].sum() / cells["views"].sum())
        if cells["views"].sum()
        else None,
        "aov_pooled": float(cells["gmv"].sum() / cells["orders"].sum()) if cells["orders"].sum() else None,
        "share_small_cells": float(small.mean()) if len(cells) else None,
        # How much smoothing moved small cells: mean |raw - smoothed| CTR where views < MIN_CELL_VIEWS.
        "mean_ctr_shrinkage_small_cells": float((cells["ctr_raw"] - cells["ctr"]).abs()[small].mean())
        if small.any()
        else None,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return summary(
        rows,
        metrics,
        {"by_channel": markdown_table(by_channel), "by_placement": markdown_table(by_placement)},
    )
