"""The dbt marts' shapes turned into what the forecasting models and the plan read.

``marts.fct_daily_sku_demand`` (``sku, demand_date, units, units_reversed_same_day, revenue,
revenue_reversed_same_day, n_orders, is_zero_filled``) -> :func:`planning_demand` (net of sales undone the same
day) -> :func:`demand_from_mart` (the long ``unique_id, ds, y`` frame of the models), and the per-SKU demand class
and dispersion the plan uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.forecast.classify import classify_panel
from ml.forecast.panel import DS, ID, Y, to_panel
from ml.forecast.quantiles import history_dispersion

MART_COLUMNS = ("sku", "demand_date", "units", "revenue", "n_orders")

REVERSED_COLUMNS = {"units": "units_reversed_same_day", "revenue": "revenue_reversed_same_day"}
"""The mart's columns for the part of each measure that the same customer undid on the same day."""


def planning_demand(mart: pd.DataFrame) -> pd.DataFrame:
    """``fct_daily_sku_demand`` rows as the supply chain plans on them: ``units`` and ``revenue`` less the sales
    the same customer reversed on the same day (``units_reversed_same_day``, ``revenue_reversed_same_day``).

    Why: such a sale never took stock off the shelf. Online Retail's order 541431 (74,215 units of one SKU,
    cancelled minutes later) otherwise made that SKU's dispersion and safety stock absurd for months. The
    benchmark keeps the forecast protocol's demand (``units`` as is).
    """
    missing = [c for c in REVERSED_COLUMNS.values() if c not in mart.columns]
    if missing:
        raise ValueError(f"fct_daily_sku_demand frame lacks {missing}")
    out = mart.copy()
    for measure, reversed_part in REVERSED_COLUMNS.items():
        out[measure] = out[measure] - out[reversed_part]
    return out


def demand_from_mart(mart: pd.DataFrame) -> pd.DataFrame:
    """``fct_daily_sku_demand`` rows -> ``unique_id, ds, y, revenue, orders, price`` for the models.

    The mart is zero-filled over trading days from each SKU's first sale, which is exactly the panel the models
    expect. ``price`` is the day's revenue per unit on selling days (NaN otherwise; the panel carries it forward).
    """
    missing = set(MART_COLUMNS) - set(mart.columns)
    if missing:
        raise ValueError(f"fct_daily_sku_demand frame lacks columns {sorted(missing)}")
    units = mart["units"].to_numpy(dtype=float)
    revenue = mart["revenue"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = np.where(units > 0, revenue / np.where(units > 0, units, 1.0), np.nan)
    return pd.DataFrame(
        {
            ID: mart["sku"].astype(str).to_numpy(),
            DS: pd.to_datetime(mart["demand_date"]).to_numpy(),
            Y: units,
            "revenue": revenue,
            "orders": mart["n_orders"].to_numpy(dtype=float),
            "price": price,
        }
    )


RECENT_DAYS = 224
"""Demand a SKU's class and its own dispersion are measured on (the plan and the service-level tuning alike)."""


def demand_classes_as_of(mart: pd.DataFrame, day, days: int = RECENT_DAYS) -> pd.Series:
    """:func:`demand_classes` of the ``days`` days of ``mart`` up to ``day`` (nothing later): the classes the
    plan gives the SKUs on ``day``."""
    dates = pd.to_datetime(mart["demand_date"])
    day = pd.Timestamp(day)
    return demand_classes(mart[(dates <= day) & (dates > day - pd.Timedelta(days=days))])


def demand_classes(mart: pd.DataFrame) -> pd.Series:
    """Demand class per SKU (ADI / CV², :mod:`ml.forecast.classify`) of ``fct_daily_sku_demand`` rows: a Series
    sku -> class (empty for an empty frame)."""
    if mart.empty:
        return pd.Series(dtype=object)
    classes = classify_panel(to_panel(demand_from_mart(mart)))
    return classes.set_index("unique_id")["demand_class"]


def sku_dispersion(mart: pd.DataFrame) -> pd.Series:
    """NB1 dispersion per SKU from its own ``fct_daily_sku_demand`` history (recent index of dispersion, at least
    1; :func:`ml.forecast.quantiles.history_dispersion`): a Series sku -> phi (empty for an empty frame)."""
    if mart.empty:
        return pd.Series(dtype=float)
    panel = to_panel(demand_from_mart(mart))
    return pd.Series(history_dispersion(panel.y), index=panel.ids.astype(str))
