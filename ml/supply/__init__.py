"""The supply chain's daily steps over the warehouse (no Dagster import).

Each step takes a DuckDB connection, the as-of day D and its settings, reads the marts (and the ``supply``
tables of earlier days) dated on or before D, and returns the day's rows and a summary; the Dagster assets of
group ``supply`` write the rows (:func:`ml.warehouse.replace_partition`), export them and attach the summary:

- :mod:`ml.supply.demand`: the demand every step plans on (``fct_daily_sku_demand`` net of sales undone the
  same day) and its history windows;
- :mod:`ml.supply.forecasting`: ``supply.demand_forecast`` (:func:`~ml.supply.forecasting.forecast_day`);
- :mod:`ml.supply.backtesting`: ``supply.forecast_backtest`` (:func:`~ml.supply.backtesting.backtest_day`);
- :mod:`ml.supply.planning`: ``supply.replenishment_plan`` and ``supply.stockout_alerts``
  (:func:`~ml.supply.planning.plan_day`);
- :mod:`ml.supply.service_levels`: ``supply.service_levels`` (:func:`~ml.supply.service_levels.tune_day`);
- :mod:`ml.supply.allocating`: ``supply.allocation_plan`` and ``supply.transfer_orders``
  (:func:`~ml.supply.allocating.allocate_day`): the transport programme of :mod:`ml.supply.allocation` and the
  dispatch rules of :mod:`ml.supply.fulfilment`.

Settings are pydantic models with their defaults and descriptions defined once here; the assets' run config
classes inherit them.
"""
