"""The daily forecast of the platform: day D's forecast of the next trading days from the demand mart up to D."""

from __future__ import annotations

import pandas as pd

from ml.artifacts import ArtifactStore
from ml.forecast.base import Forecaster, ShortHistoryError
from ml.forecast.baselines import TSB
from ml.forecast.marts import demand_from_mart
from ml.forecast.models import model_by_name
from ml.forecast.panel import DS, ID, next_periods
from ml.forecast.selection import stored_selection

SERVED_QUANTILES: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99)
"""The levels the daily forecast serves, each calibrated per demand class on validation origins: enough for the
plan's service levels to read a stored quantile near their own instead of extrapolating from one."""


def daily_forecast(
    mart: pd.DataFrame,
    as_of,
    horizon: int = 28,
    model: Forecaster | str = "fast",
    season_length: int = 6,
    n_origins: int = 4,
    selection_store: ArtifactStore | None = None,
    reselect_every_days: int = 7,
) -> pd.DataFrame:
    """The ``demand_forecast`` asset for day ``as_of`` (D) from ``fct_daily_sku_demand``.

    Reads only rows with ``demand_date <= D``; forecasts the next ``horizon`` trading days (:func:`next_periods`).
    ``model``: ``"fast"`` (:func:`fast_model`, the daily default: 10k SKUs in seconds), ``"full"``
    (:func:`default_model`, with the global gradient-boosting model: minutes) or any :class:`Forecaster`.
    ``selection_store``: select and train once per ``reselect_every_days`` (:func:`stored_selection`; the models
    are kept there) and only update with the newest demand on the other days: a selection of the full ensemble
    costs tens of times an update (docs/benchmarks/forecast.md). Without it the model is selected afresh every day. The frame's ``attrs["selection"]`` says which
    day's selection served, whether it was reused and the history it was fitted on (:func:`stored_selection`).

    Returns ``origin_date, sku, forecast_date, step, mean, q50, q80, q90, q95, q99, model`` (one row per SKU and
    day; :data:`SERVED_QUANTILES`; the plan splits it over warehouses, :func:`ml.inventory.policy.split_by_warehouse`).
    ``attrs["calibration"]``: the selection's quantile coverage per demand class on validation (empty for the
    short-history fallback).
    """
    as_of = pd.Timestamp(as_of)
    demand = demand_from_mart(mart)
    demand = demand[demand[DS] <= as_of]
    if isinstance(model, str):
        model = model_by_name(model, season_length, horizon, n_origins, SERVED_QUANTILES)
    selection = {"selected_on": str(as_of.date()), "reused": False}
    try:
        if selection_store is None:
            model.fit(demand)
        else:
            model, anchor, info = stored_selection(model, demand, as_of, selection_store, reselect_every_days)
            selection = {"selected_on": str(anchor.date()), **info}
    except ShortHistoryError:
        # The store's first weeks cannot hold a validation window: serve TSB (the strongest single model on
        # intermittent demand in the benchmark) until they can, under a name that says so.
        model = TSB(quantiles=SERVED_QUANTILES)
        model.fit(demand)
        model.name = "tsb_short_history"
    cal = next_periods(model.panel_.calendar, horizon)
    fc = model.predict_panel(horizon, future_calendar=cal)
    out = fc.to_frame().rename(columns={ID: "sku", DS: "forecast_date"})
    out.insert(0, "origin_date", as_of)
    out["model"] = model.name
    out.attrs["selection"] = selection
    out.attrs["calibration"] = getattr(model, "calibration_", [])
    return out
