"""Inventory policy from demand forecasts: replenishment plan, stock-out risk, supplier choice, policy replay.

Plain domain code (no Dagster import): :mod:`ml.inventory.policy` turns forecast quantiles into safety stock,
reorder points and order quantities; :mod:`ml.inventory.simulate` replays a policy day by day against actuals.

Daily assets call :func:`plan_from_marts` (forecast + ``fct_inventory_daily`` + ``dim_products`` -> the plan)
and :func:`stockout_alerts` (the plan rows at risk, ranked by revenue at risk).
"""

from ml.inventory.policy import (
    Supplier,
    choose_supplier,
    implied_dispersion,
    latest_snapshot,
    plan,
    plan_by_class,
    plan_from_marts,
    reorder_point_normal,
    replenishment_plan,
    safety_stock_normal,
    stockout_alerts,
    warehouse_shares,
)
from ml.inventory.simulate import (
    ReplayResult,
    forecast_policy,
    initial_stock,
    naive_policy,
    replay,
)

__all__ = [
    "ReplayResult",
    "Supplier",
    "choose_supplier",
    "forecast_policy",
    "implied_dispersion",
    "initial_stock",
    "latest_snapshot",
    "naive_policy",
    "plan",
    "plan_by_class",
    "plan_from_marts",
    "reorder_point_normal",
    "replay",
    "replenishment_plan",
    "safety_stock_normal",
    "stockout_alerts",
    "warehouse_shares",
]
