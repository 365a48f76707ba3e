"""``supply.forecast_backtest``: how the forecasts made 1, 7, 14 and 28 trading days before D did since."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd

from ml.summary import summary
from ml.supply.demand import demand_history
from ml.supply.forecasting import FORECASTS
from ml.warehouse import markdown_table, table_exists

BACKTESTS = "supply.forecast_backtest"
FORECAST_DAYS_READ = 60
"""Stored forecasts read back per day: the longest lag (28 trading days) with room for closing days."""


def backtest_day(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """The day's rows of :data:`BACKTESTS` (one per lag: WAPE, bias, pinball, coverage, RMSSE, WRMSSE; see
    :func:`ml.forecast.backtest.backtest_for_day`) from the forecasts stored on earlier days; empty before any."""
    from ml.forecast.backtest import backtest_for_day, lag_origins
    from ml.forecast.base import QUANTILE_COLUMN

    if not table_exists(con, FORECASTS):
        return pd.DataFrame()
    window = [day, day - timedelta(days=FORECAST_DAYS_READ), day]
    stored = con.execute(
        f"SELECT DISTINCT as_of_date FROM {FORECASTS} WHERE as_of_date < ? AND as_of_date >= ? "
        "AND forecast_date <= ?",
        window,
    ).fetchall()
    demand = demand_history(con, day)
    # only the origins the lags score are read: a day's forecasts are every SKU times 28 days ahead, and the
    # window the lags choose from holds many more origins than lags
    origins = [o.date() for o in lag_origins(demand["demand_date"], [d for (d,) in stored], day).values()]
    if not origins:
        return pd.DataFrame()
    forecasts = con.execute(
        # every served quantile column (older days hold fewer levels)
        f"SELECT as_of_date AS origin_date, sku, forecast_date, horizon_day AS step, mean, "
        f"COLUMNS('^{QUANTILE_COLUMN.pattern}$') "
        f"FROM {FORECASTS} WHERE as_of_date IN ({', '.join('?' * len(origins))})",
        origins,
    ).df()
    result = backtest_for_day(forecasts, demand, day)
    if result.empty:
        return result
    return result.assign(day=pd.Timestamp(day).date(), origin_date=result["origin_date"].dt.date)


def backtest_summary(rows: pd.DataFrame) -> dict:
    """Per lag, the WAPE, bias, 0.9 coverage and WRMSSE as numbers that plot over partitions, and the table."""
    metrics = {
        f"lag{row.lag}_{name}": float(getattr(row, name))
        for row in rows.itertuples(index=False)
        for name in ("WAPE", "bias", "coverage90", "coverage95", "WRMSSE")
        if getattr(row, name, None) is not None and pd.notna(getattr(row, name))
    }
    markdown = {"by_lag": markdown_table(rows.drop(columns=["day"]))} if not rows.empty else {}
    return summary(len(rows), metrics, markdown)
