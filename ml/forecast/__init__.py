"""Demand forecasting for SKU-day data (no Dagster import).

One interface (:class:`~ml.forecast.base.Forecaster`): fit on a long frame ``unique_id, ds, y`` (+ covariates) up
to an origin, predict ``h`` periods with a mean and quantiles (0.5 and 0.9 by default), non-negative and ordered.

- baselines: :mod:`ml.forecast.baselines` (zero, naive, seasonal naive, moving average, Croston-SBA, TSB);
- demand classes (ADI / CV²): :mod:`ml.forecast.classify`;
- the global gradient-boosting model: :mod:`ml.forecast.gbm`;
- selection/combination on rolling validation origins: :mod:`ml.forecast.ensemble`;
- metrics (RMSSE, WRMSSE, MASE, WAPE, bias, pinball, coverage): :mod:`ml.forecast.metrics`;
- the Online Retail / generic-CSV protocol: :mod:`ml.forecast.protocol`;
- entry points for the daily assets (forecast for an origin, backtest): :mod:`ml.forecast.service`.
"""

from ml.forecast.base import DEFAULT_QUANTILES, Forecast, Forecaster, quantile_column
from ml.forecast.baselines import TSB, CrostonSBA, MovingAverage, Naive, SeasonalNaive, Zero
from ml.forecast.classify import adi_cv2, classify, classify_panel
from ml.forecast.ensemble import SelectedEnsemble
from ml.forecast.gbm import GlobalGBM
from ml.forecast.panel import Panel, to_panel
from ml.forecast.service import (
    backtest,
    backtest_for_day,
    candidates,
    daily_forecast,
    default_model,
    demand_from_mart,
    fast_model,
    forecast_for_origin,
    split_by_warehouse,
)

__all__ = [
    "DEFAULT_QUANTILES",
    "TSB",
    "CrostonSBA",
    "Forecast",
    "Forecaster",
    "GlobalGBM",
    "MovingAverage",
    "Naive",
    "Panel",
    "SeasonalNaive",
    "SelectedEnsemble",
    "Zero",
    "adi_cv2",
    "backtest",
    "backtest_for_day",
    "candidates",
    "classify",
    "classify_panel",
    "daily_forecast",
    "default_model",
    "demand_from_mart",
    "fast_model",
    "forecast_for_origin",
    "quantile_column",
    "split_by_warehouse",
    "to_panel",
]
