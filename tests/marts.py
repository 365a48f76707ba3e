"""Frames shaped like the dbt marts, built from the synthetic store, for tests of the supply layer."""

from __future__ import annotations

import pandas as pd


def demand_mart(df: pd.DataFrame) -> pd.DataFrame:
    """A synthetic long frame (``unique_id, ds, y, price``) as ``marts.fct_daily_sku_demand`` rows, with no
    sale undone the same day."""
    return pd.DataFrame(
        {
            "sku": df["unique_id"],
            "demand_date": pd.to_datetime(df["ds"]).dt.date,
            "units": df["y"],
            "units_reversed_same_day": 0.0,
            "revenue": df["y"] * df["price"],
            "revenue_reversed_same_day": 0.0,
            "n_orders": (df["y"] > 0).astype(int),
            "is_zero_filled": df["y"] == 0,
        }
    )
