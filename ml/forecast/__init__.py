"""Demand forecasting for SKU-day data (no Dagster import).

One interface (:class:`~ml.forecast.base.Forecaster`): fit on a long frame ``unique_id, ds, y`` (+ covariates) up
to an origin, predict ``h`` periods with a mean and quantiles (0.5 and 0.9 by default), non-negative and ordered.

- baselines: :mod:`ml.forecast.baselines` (zero, naive, seasonal naive, moving average, Croston-SBA, TSB);
- demand classes (ADI / CV²): :mod:`ml.forecast.classify`;
- the global gradient-boosting model: :mod:`ml.forecast.gbm`;
- selection/combination on rolling validation origins: :mod:`ml.forecast.ensemble`;
- metrics (RMSSE, WRMSSE, MASE, WAPE, bias, pinball, coverage): :mod:`ml.forecast.metrics`;
- the Online Retail / generic-CSV protocol: :mod:`ml.forecast.protocol`;
- the models the platform runs (candidate factories, the full and the fast ensemble): :mod:`ml.forecast.models`;
- the mart's demand as the models and the plan read it (net demand, classes, dispersion): :mod:`ml.forecast.marts`;
- the daily forecast of day D: :mod:`ml.forecast.daily`, with the weekly stored selection of
  :mod:`ml.forecast.selection`; accuracy of stored forecasts once actuals arrive: :mod:`ml.forecast.backtest`.
"""

from ml.forecast.backtest import backtest, backtest_for_day
from ml.forecast.base import DEFAULT_QUANTILES, Forecast, Forecaster, quantile_column
from ml.forecast.baselines import TSB, CrostonSBA, MovingAverage, Naive, SeasonalNaive, Zero
from ml.forecast.classify import adi_cv2, classify, classify_panel
from ml.forecast.daily import daily_forecast
from ml.forecast.ensemble import SelectedEnsemble
from ml.forecast.gbm import GlobalGBM
from ml.forecast.marts import demand_from_mart, planning_demand
from ml.forecast.models import candidates, default_model, fast_model
from ml.forecast.panel import Panel, to_panel

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
    "planning_demand",
    "quantile_column",
    "to_panel",
]
