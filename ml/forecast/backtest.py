"""How good were the forecasts: accuracy of stored forecasts against the actuals that arrived since."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.forecast.base import QUANTILE_COLUMN
from ml.forecast.marts import demand_from_mart
from ml.forecast.metrics import (
    bias,
    coverage,
    mase_per_series,
    naive_scales,
    pinball_loss,
    rmsse_per_series,
    wape,
)
from ml.forecast.metrics import weighted_mean as _wmean
from ml.forecast.panel import DS, ID, Y, to_panel


def backtest(
    forecast: pd.DataFrame,
    actuals: pd.DataFrame,
    history: pd.DataFrame | None = None,
    weights: pd.Series | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Accuracy of a forecast frame (from :func:`forecast_for_origin`) against the actuals that have arrived.

    Only forecast dates on or before the last actual date are scored; a SKU with no row on a scored date sold
    nothing that day. ``history`` (demand up to the origin) enables the scaled metrics (RMSSE, WRMSSE, MASE);
    ``weights`` (by ``unique_id``, e.g. revenue) weights WRMSSE, else all SKUs count equally. Returns the overall
    metrics and a frame of metrics by ``step`` (days ahead).
    """
    last = actuals[DS].max()
    fc = forecast[forecast[DS] <= last]
    if fc.empty:
        return {"n_points": 0}, pd.DataFrame()
    act = actuals.groupby([ID, DS], as_index=False)[Y].sum()
    df = fc.merge(act, on=[ID, DS], how="left").fillna({Y: 0.0})
    overall = _point_metrics(df)
    if history is not None:
        ids = np.sort(df[ID].unique())
        hp = to_panel(history[history[ID].isin(ids)])
        pos = pd.Index(hp.ids).get_indexer(ids)
        steps = np.sort(df["step"].unique())
        wide = df.pivot_table(index=ID, columns="step", values=[Y, "mean"]).reindex(ids)
        y, m = wide[Y].reindex(columns=steps).to_numpy(), wide["mean"].reindex(columns=steps).to_numpy()
        hist = np.full((len(ids), hp.n_periods), np.nan)
        hist[pos >= 0] = hp.y[pos[pos >= 0]]
        s1, s2 = naive_scales(hist)
        w = np.ones(len(ids)) if weights is None else weights.reindex(ids).fillna(0).to_numpy(dtype=float)
        r = rmsse_per_series(y, m, s2)
        overall.update(
            WRMSSE=_wmean(r, w),
            RMSSE=_wmean(r, np.ones(len(ids))),
            MASE=_wmean(mase_per_series(y, m, s1), np.ones(len(ids))),
        )
    by_step = pd.DataFrame([{"step": k, **_point_metrics(g)} for k, g in df.groupby("step")])
    return overall, by_step


def _point_metrics(df: pd.DataFrame) -> dict:
    y, m = df[Y].to_numpy(dtype=float), df["mean"].to_numpy(dtype=float)
    out = {"n_points": len(df), "WAPE": wape(y, m), "bias": bias(y, m)}
    for col in sorted((c for c in df.columns if QUANTILE_COLUMN.fullmatch(c)), key=lambda c: float(c[1:])):
        q = df[col].to_numpy(dtype=float)
        if np.isnan(q).all():  # a level the forecasts of that day did not serve yet
            continue
        level = col[1:]
        out[f"pinball{level}"] = float(pinball_loss(y, q, float(level) / 100).mean())
        out[f"coverage{level}"] = coverage(y, q)
    return out


def lag_origins(demand_dates, origins, day, lags=(1, 7, 14, 28)) -> dict[int, pd.Timestamp]:
    """For each lag ``k``, the origin :func:`backtest_for_day` scores: the latest of ``origins`` (forecast dates)
    on or before the ``k``-th trading day before ``day``. ``demand_dates``: the dates of the demand rows (the
    mart holds a row for every SKU on every trading day). A lag without such an origin is left out."""
    day = pd.Timestamp(day)
    dates = pd.to_datetime(pd.Series(demand_dates))
    cal = np.sort(dates[dates <= day].unique())
    origins = np.sort(pd.to_datetime(pd.Series(origins)).unique())
    chosen = {}
    for k in lags:
        if len(cal) <= k:
            continue
        avail = origins[origins <= cal[-1 - k]]
        if len(avail):
            chosen[int(k)] = pd.Timestamp(avail[-1])
    return chosen


def backtest_for_day(forecasts: pd.DataFrame, mart: pd.DataFrame, day, lags=(1, 7, 14, 28)) -> pd.DataFrame:
    """The ``forecast_backtest`` asset for day D: accuracy of the forecasts made ``k`` periods before D.

    ``forecasts``: stacked :func:`daily_forecast` outputs (``origin_date, sku, forecast_date, step, mean, q50,
    q90``; SKU-level rows); ``mart``: ``fct_daily_sku_demand`` up to at least D. For each ``k`` the origin is the
    ``k``-th trading day before D (the latest available origin on or before it), and its forecasts are scored
    on every date in ``(origin, D]``: all the actuals that have arrived. WRMSSE is weighted by each SKU's revenue
    in the 28 trading days up to the origin, and the scales come from the history up to the origin, as in the
    benchmark. Returns one row per ``k``: ``day, lag, origin_date, n_points, WAPE, bias``, ``pinballNN`` and
    ``coverageNN`` for every quantile column ``qNN`` the forecasts hold, ``RMSSE, WRMSSE, MASE`` (a lag with no
    forecast yields no row).
    """
    day = pd.Timestamp(day)
    demand = demand_from_mart(mart)
    fc_all = forecasts.rename(columns={"sku": ID, "forecast_date": DS})
    fc_all = fc_all[fc_all[DS] <= day]
    origin_dates = pd.to_datetime(fc_all["origin_date"])
    rows = []
    for k, origin in lag_origins(demand[DS], origin_dates.unique(), day, lags).items():
        fc = fc_all[origin_dates == origin]
        acts = demand[(demand[DS] > origin) & (demand[DS] <= day)]
        hist = demand[demand[DS] <= origin]
        recent = np.sort(hist[DS].unique())[-28:]
        weights = hist[hist[DS].isin(recent)].groupby(ID)["revenue"].sum()
        overall, _ = backtest(fc, acts[[ID, DS, Y]], history=hist[[ID, DS, Y]], weights=weights)
        rows.append({"day": day, "lag": int(k), "origin_date": pd.Timestamp(origin), **overall})
    return pd.DataFrame(rows)
