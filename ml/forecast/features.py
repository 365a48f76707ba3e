"""Features of the global model, computed for many forecast anchors at once from a :class:`Panel`.

A training row is (series, anchor ``a``, horizon ``k``): features use periods ``<= a`` only (plus the calendar
and known covariates of the target period ``a + k``), the target is ``y[a + k]``. Everything is expressed relative
to the series' recent level (the mean of the last 112 periods), so one model serves SKUs that sell 1 unit a week
and SKUs that sell 500 a day, and predicts a multiplier of that level.

Anchor features come from cumulative sums, so a window statistic at any anchor costs O(1) per series; the
exponential smoothers (TSB, Croston/SBA, EWMA) run once over time and record their state at the anchors.

Why these and not others: lags/rolling means/zero fraction/days since last sale/age are what M5 winners used;
Croston/TSB states summarise intermittent demand in one number; the SKU's own day-of-week profile gives the weekly
shape (season position); order counts and price changes (where the source has them) separate "many small
customers" from "one big order". Store-wide features that are equal for every SKU on a day are deliberately left
out: a first attempt found that they hurt (the model used them to chase the store's day-to-day noise).

The year-before features (``year_before=True``, dated calendars with more than a year of history) are the
exception, and smoothed for that reason: 28-period store totals, never one day. They carry what one year of
history cannot: how the store and the SKU moved after this date last year (:data:`YEAR_DAYS` earlier, the same
weekday), the store's level against a year ago, and the store's seasonal factor of the target's week last year.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ml.forecast.panel import Panel

LEVEL_WINDOW = 112
WINDOWS = (6, 12, 28, 56, 112, 224)
PEAK_GAP_DAYS = 182
YEAR_DAYS = 364  # 52 weeks: the same weekday a year before
YEAR_WINDOW = 28  # periods summed on each side of the date a year before (the store's totals, the SKU's)
TARGET_WEEK = 6  # periods around the target's date a year before (Online Retail's trading week)


def season_position(calendar: np.ndarray, season_length: int) -> np.ndarray:
    """Position in the season: the weekday for dates (Online Retail: the trading week), ``ds mod m`` for ints."""
    cal = np.asarray(calendar)
    if np.issubdtype(cal.dtype, np.datetime64):
        return pd.DatetimeIndex(cal).dayofweek.to_numpy()
    return np.asarray(cal, dtype=np.int64) % season_length


class AnchorStats:
    """Per-series statistics of a panel at arbitrary anchors (period indices), without reading past the anchor."""

    def __init__(
        self,
        panel: Panel,
        season_length: int,
        flows: tuple[str, ...] = (),
        peak_months: tuple[int, ...] = (),
        year_before: bool = False,
    ):
        self.panel = panel
        self.m = season_length
        y = panel.y
        self.live = ~np.isnan(y)
        self.F = np.nan_to_num(y, nan=0.0)
        pos = self.F > 0
        n, t = y.shape
        z = np.zeros((n, 1))
        self.cs = np.hstack([z, np.cumsum(self.F, axis=1)])
        self.cs2 = np.hstack([z, np.cumsum(self.F**2, axis=1)])
        self.cnz = np.hstack([z, np.cumsum(pos, axis=1)])
        self.clive = np.hstack([z, np.cumsum(self.live, axis=1)])
        idx = np.where(pos, np.arange(t)[None, :], -1)
        self.last_sale = np.maximum.accumulate(idx, axis=1)
        self.seasonpos = season_position(panel.calendar, season_length)
        self.flows = {}
        for f in flows:
            if f in panel.covariates:
                v = np.where(pos, np.nan_to_num(panel.covariates[f]), 0.0)
                self.flows[f] = np.hstack([z, np.cumsum(v, axis=1)])
        # Per season position: cumulative demand and live counts, for the SKU's own weekly profile.
        self.cs_pos, self.cl_pos = {}, {}
        for p in np.unique(self.seasonpos):
            mask = (self.seasonpos == p)[None, :]
            self.cs_pos[p] = np.hstack([z, np.cumsum(self.F * mask, axis=1)])
            self.cl_pos[p] = np.hstack([z, np.cumsum(self.live & mask, axis=1)])
        # Demand in the peak-season months (dated calendars only), for the "last peak" features.
        self.peak = None
        cal = np.asarray(panel.calendar)
        if peak_months and np.issubdtype(cal.dtype, np.datetime64):
            mask = np.isin(pd.DatetimeIndex(cal).month, list(peak_months))[None, :]
            self.peak = (
                np.hstack([z, np.cumsum(self.F * mask, axis=1)]),
                np.hstack([z, np.cumsum(self.live & mask, axis=1)]),
            )

        # The period a year before each period (the last one dated on or before it); -1 where the history does
        # not reach back that far. Store totals per period for the store-level ratios.
        self.year_ago = None
        if year_before and np.issubdtype(cal.dtype, np.datetime64):
            back = cal - np.timedelta64(YEAR_DAYS, "D")
            self.year_ago = np.searchsorted(cal, back, side="right") - 1
            self.year_ago[back < cal[0]] = -1
            self.store_cs = np.concatenate([[0.0], np.cumsum(self.F.sum(axis=0))])

    def window_sum(self, c: np.ndarray, a: int, w: int) -> np.ndarray:
        lo = max(a + 1 - w, 0)
        return c[:, a + 1] - c[:, lo]

    def live_count(self, a: int, w: int) -> np.ndarray:
        return self.window_sum(self.clive, a, w)

    def mean(self, a: int, w: int) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.window_sum(self.cs, a, w) / self.live_count(a, w)

    def level(self, a: int) -> np.ndarray:
        return np.nan_to_num(self.mean(a, LEVEL_WINDOW), nan=0.0)

    def last_peak_mean(self, a: int) -> np.ndarray:
        """Mean daily demand over the peak-season periods dated at least ``PEAK_GAP_DAYS`` before anchor ``a``.

        NaN where the series has no such period (not alive last season). The gap keeps the current season's own
        ramp out, so the feature means "how this SKU sold in last year's peak" at every anchor alike.
        """
        cs, cl = self.peak
        cal = np.asarray(self.panel.calendar)
        cut = int(np.searchsorted(cal, cal[a] - np.timedelta64(PEAK_GAP_DAYS, "D"), side="right"))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(cl[:, cut] > 0, cs[:, cut] / cl[:, cut], np.nan)

    def store_sum(self, lo: int, hi: int) -> float:
        """The store's demand over periods ``lo < j <= hi`` (clipped to the history)."""
        lo, hi = max(lo, -1), min(hi, len(self.store_cs) - 2)
        return float(self.store_cs[hi + 1] - self.store_cs[lo + 1]) if hi > lo else 0.0

    def year_before_features(self, a: int, safe: np.ndarray) -> dict[str, np.ndarray]:
        """Anchor ``a`` against the same date a year before (period ``b``): the SKU's demand in the
        :data:`YEAR_WINDOW` periods after ``b`` (relative to its level now) and its log growth over the ones
        before ``b``; the store's level now against then, and the store's growth after ``b``. NaN without a
        year of history (the trees route it on its own branch)."""
        n = self.F.shape[0]
        b = int(self.year_ago[a])
        w = YEAR_WINDOW
        if b - w < 0:
            nan = np.full(n, np.nan)
            return {"ly_after_rel": nan, "ly_growth_log": nan, "store_yoy": nan, "store_ly_growth": nan}
        after = self.cs[:, b + w + 1] - self.cs[:, b + 1]
        before = self.cs[:, b + 1] - self.cs[:, b - w + 1]
        live_after = self.clive[:, b + w + 1] - self.clive[:, b + 1]
        store_then = self.store_sum(b - w, b)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "ly_after_rel": np.where(live_after > 0, after / live_after, np.nan) / safe,
                "ly_growth_log": np.where(live_after > 0, np.log1p(after) - np.log1p(before), np.nan),
                "store_yoy": np.full(n, self.store_sum(a - w, a) / store_then if store_then > 0 else np.nan),
                "store_ly_growth": np.full(
                    n, self.store_sum(b, b + w) / store_then if store_then > 0 else np.nan
                ),
            }

    def year_before_target(self, a: int, target: int, safe: np.ndarray) -> dict[str, np.ndarray]:
        """The target period's week a year before: the SKU's mean there relative to its level now, and the
        store's mean there over its mean in the :data:`YEAR_WINDOW` periods before the anchor's date a year
        before (last year's seasonal factor from the anchor to the target)."""
        n = self.F.shape[0]
        # The same number of periods after the anchor's year-ago period: a future target has no calendar index
        # here, and training rows must read the feature the way forecasts will.
        b = int(self.year_ago[a])
        bt = b + (target - a)
        half = TARGET_WEEK // 2
        if b - YEAR_WINDOW < 0 or bt - half < 0:
            nan = np.full(n, np.nan)
            return {"ly_target_rel": nan, "store_season_target": nan}
        lo, hi = bt - half, bt + half
        sku = self.cs[:, hi + 1] - self.cs[:, lo + 1]
        live = self.clive[:, hi + 1] - self.clive[:, lo + 1]
        store_then = self.store_sum(b - YEAR_WINDOW, b) / YEAR_WINDOW
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "ly_target_rel": np.where(live > 0, sku / live, np.nan) / safe,
                "store_season_target": np.full(
                    n, self.store_sum(lo, hi) / (hi - lo) / store_then if store_then > 0 else np.nan
                ),
            }


def smoother_states(y: np.ndarray, anchors) -> dict[str, np.ndarray]:
    """TSB(0.1, 0.1), Croston-SBA(0.1) and EWMA(0.05) levels of every series at each anchor: ``(n_anchors, n)``."""
    anchors = sorted(set(int(a) for a in anchors))
    n, t = y.shape
    d = np.full(n, np.nan)
    z = np.full(n, np.nan)
    cz = np.full(n, np.nan)
    cp = np.full(n, np.nan)
    since = np.zeros(n)
    ew = np.full(n, np.nan)
    out = {k: np.zeros((len(anchors), n)) for k in ("tsb", "sba", "ewm")}
    ai = 0
    for j in range(t):
        col = y[:, j]
        live = ~np.isnan(col)
        dem = live & (col > 0)
        init = dem & np.isnan(z)
        old = live & ~np.isnan(z) & ~init
        d[init], z[init] = 1.0, col[init]
        d[old] += 0.1 * (dem[old] - d[old])
        up = old & dem
        z[up] += 0.1 * (col[up] - z[up])
        since[live] += 1
        cinit = dem & np.isnan(cz)
        cup = dem & ~cinit
        cz[cinit], cp[cinit] = col[cinit], since[cinit]
        cz[cup] += 0.1 * (col[cup] - cz[cup])
        cp[cup] += 0.1 * (since[cup] - cp[cup])
        since[dem] = 0
        ew_init = live & np.isnan(ew)
        ew[ew_init] = col[ew_init]
        ew_up = live & ~ew_init
        ew[ew_up] += 0.05 * (col[ew_up] - ew[ew_up])
        while ai < len(anchors) and anchors[ai] == j:
            out["tsb"][ai] = np.nan_to_num(d * z)
            out["sba"][ai] = np.nan_to_num(0.95 * cz / cp)
            out["ewm"][ai] = np.nan_to_num(ew)
            ai += 1
    return {k: dict(zip(anchors, v, strict=True)) for k, v in out.items()}


def anchor_features(st: AnchorStats, a: int, smooth: dict, price: str | None) -> tuple[dict, np.ndarray]:
    """Features of every series at anchor ``a`` and its level (the normaliser)."""
    lvl = st.level(a)
    safe = np.where(lvl > 0, lvl, 1.0)
    f: dict[str, np.ndarray] = {"log_level": np.log1p(lvl)}
    for w in WINDOWS:
        f[f"ma{w}"] = np.nan_to_num(st.mean(a, w)) / safe
    with np.errstate(invalid="ignore", divide="ignore"):
        for w in (28, 112):
            cnt = st.live_count(a, w)
            nz = st.window_sum(st.cnz, a, w)
            f[f"nonzero{w}"] = np.nan_to_num(nz / cnt)
            f[f"size{w}"] = np.nan_to_num(st.window_sum(st.cs, a, w) / nz) / safe
            var = st.window_sum(st.cs2, a, w) / cnt - (st.window_sum(st.cs, a, w) / cnt) ** 2
            f[f"cv{w}"] = np.nan_to_num(np.sqrt(np.clip(var, 0, None)) / safe)
    for k in ("tsb", "sba", "ewm"):
        f[k] = smooth[k][a] / safe
    f["last"] = st.F[:, a] / safe
    f["since_sale"] = np.where(st.last_sale[:, a] >= 0, a - st.last_sale[:, a], 9999).astype(float)
    f["age"] = (a - st.panel.start).astype(float)
    for name, c in st.flows.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            r28 = st.window_sum(c, a, 28) / st.live_count(a, 28)
            r112 = st.window_sum(c, a, 112) / st.live_count(a, 112)
            f[f"{name}_rate28"] = np.nan_to_num(r28)
            f[f"{name}_trend"] = np.nan_to_num(r28 / r112)
            f[f"{name}_per"] = np.nan_to_num(st.window_sum(st.cs, a, 112) / st.window_sum(c, a, 112)) / safe
    if st.peak is not None:
        peak = st.last_peak_mean(a)
        with np.errstate(invalid="ignore", divide="ignore"):
            life = st.window_sum(st.cs, a, a + 1) / st.live_count(a, a + 1)
            # NaN stays NaN (the trees route "no last season" on its own branch).
            f["last_peak_rel"] = peak / safe
            f["last_peak_share"] = np.where(life > 0, peak / life, np.nan)
    if st.year_ago is not None:
        f.update(st.year_before_features(a, safe))
    if price and price in st.panel.covariates:
        p = st.panel.covariates[price]
        lo = max(a + 1 - 112, 0)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a series with no price yet: NaN, filled below
            pm = np.nanmean(p[:, lo : a + 1], axis=1)
            f["price_rel"] = np.nan_to_num(p[:, a] / pm, nan=1.0)
        f["log_price"] = np.log1p(np.nan_to_num(p[:, a]))
    return f, lvl


def target_features(st: AnchorStats, a: int, k: int, target_pos: int, safe: np.ndarray) -> dict:
    """Features tied to the target period ``a + k``: horizon, season position, the SKU's profile and last value
    at that position."""
    f = {"horizon": np.full(st.F.shape[0], float(k)), "season_pos": np.full(st.F.shape[0], float(target_pos))}
    with np.errstate(invalid="ignore", divide="ignore"):
        if target_pos in st.cs_pos:
            s = st.window_sum(st.cs_pos[target_pos], a, LEVEL_WINDOW)
            c = st.window_sum(st.cl_pos[target_pos], a, LEVEL_WINDOW)
            overall = st.mean(a, LEVEL_WINDOW)
            # Shrink the SKU's weekday mean toward its overall mean (5 pseudo-observations).
            prof = (s + 5 * np.nan_to_num(overall)) / (c + 5)
            f["profile"] = np.nan_to_num(prof / np.where(overall > 0, overall, np.nan), nan=1.0)
        else:
            f["profile"] = np.ones(st.F.shape[0])
    # Last value at the same season position on or before the anchor.
    same = np.nonzero(st.seasonpos[: a + 1] == target_pos)[0]
    if len(same):
        f["last_same"] = st.F[:, same[-1]] / safe
        f["mean_same4"] = st.F[:, same[-4:]].mean(axis=1) / safe
    else:
        f["last_same"] = np.zeros(st.F.shape[0])
        f["mean_same4"] = np.zeros(st.F.shape[0])
    if st.year_ago is not None:
        f.update(st.year_before_target(a, a + k, safe))
    return f
