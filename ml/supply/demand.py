"""The demand every supply step reads: ``marts.fct_daily_sku_demand`` up to day D, as the supply chain plans on it."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

from ml.forecast.marts import RECENT_DAYS, planning_demand

HISTORY_DAYS = 400
"""Demand history a day's forecast and replay read: enough for yearly patterns, bounded so a day's cost is flat."""
DEMAND_MART = "marts.fct_daily_sku_demand"


def demand_between(con: duckdb.DuckDBPyConnection, after: date, day: date) -> pd.DataFrame:
    """The mart's rows dated in ``(after, day]``, net of the sales undone the same day
    (:func:`ml.forecast.marts.planning_demand`). Every supply step reads demand through here."""
    return planning_demand(
        con.execute(
            f"SELECT * FROM {DEMAND_MART} WHERE demand_date <= ? AND demand_date > ?", [day, after]
        ).df()
    )


def demand_history(
    con: duckdb.DuckDBPyConnection, day: date, history_from: date | None = None
) -> pd.DataFrame:
    """Demand up to ``day``, starting :data:`HISTORY_DAYS` before ``history_from`` (default: ``day``)."""
    return demand_between(con, (history_from or day) - timedelta(days=HISTORY_DAYS), day)


def recent_demand(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """The :data:`~ml.forecast.marts.RECENT_DAYS` days of demand up to ``day`` (nothing later): what a SKU's
    demand class and its own dispersion are measured on."""
    return demand_between(con, day - timedelta(days=RECENT_DAYS), day)
