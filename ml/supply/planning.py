"""``supply.replenishment_plan`` and ``supply.stockout_alerts``: what to order on day D, and what is at risk."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import duckdb
import pandas as pd
from pydantic import BaseModel, Field

from ml.summary import summary
from ml.supply.demand import recent_demand
from ml.supply.forecasting import FORECASTS
from ml.warehouse import markdown_table, table_exists

PLANS = "supply.replenishment_plan"
ALERTS = "supply.stockout_alerts"
TUNED_LEVELS = "supply.service_levels"
INVENTORY_DAYS_READ = 28
"""Inventory snapshots read per day: the latest is the stock now, the window's sales split a SKU's forecast over
its warehouses."""
ORDER_CYCLE_DAYS = 7
NO_PLAN = "no plan: no forecast of the day or no inventory snapshot (the source delivers none)"


class PlanSettings(BaseModel):
    policy: Literal["forecast", "naive_cover"] = Field(
        default="forecast",
        description=(
            "forecast: reorder points from the demand forecast's quantiles at the service level (the plan); "
            "naive_cover: the baseline the plan is measured against, average daily sales of the last 28 days "
            "times the lead time plus a day, plus naive_cover_days of them (no forecast, no service level)."
        ),
    )
    naive_cover_days: float = Field(
        default=7.0,
        ge=0,
        description="Days of average sales the naive cover policy holds as safety stock (policy naive_cover only).",
    )
    service_level: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Target cycle service level of the plan (the probability of no stock-out in a cycle), below 1.",
    )
    order_cycle_days: int = Field(
        default=ORDER_CYCLE_DAYS,
        ge=1,
        description="Days of demand an order covers beyond the reorder point (order-up-to = s + this).",
    )
    use_tuned_service_levels: bool = Field(
        default=False,
        description=(
            "Give each demand class the service level that supply/service_levels found on the latest replay "
            "(on or before D); service_level_by_class still overrides the classes it names."
        ),
    )
    service_level_by_class: dict[str, float] = Field(
        default={},
        description=(
            "Per demand class (smooth, erratic, intermittent, lumpy; ADI/CV² on the SKU's last 224 days of "
            "demand), a service level replacing service_level for that class, e.g. {lumpy: 0.999}. "
            "`python -m bench.inventory` finds such levels on replayed validation windows."
        ),
    )


def tuned_levels(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, float]:
    """The levels per class of the latest :data:`TUNED_LEVELS` day on or before ``day`` (none yet: {})."""
    if not table_exists(con, TUNED_LEVELS):
        return {}
    rows = con.execute(
        f"SELECT demand_class, service_level FROM {TUNED_LEVELS} WHERE as_of_date = "
        f"(SELECT max(as_of_date) FROM {TUNED_LEVELS} WHERE as_of_date <= ?)",
        [day],
    ).fetchall()
    return {c: float(level) for c, level in rows}


def plan_day(
    con: duckdb.DuckDBPyConnection, day: date, settings: PlanSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The day's plan rows (one per SKU × warehouse, :func:`ml.inventory.plan_from_marts`) and its stock-out
    alerts; both empty when there is no forecast of the day or no inventory snapshot (a source without stock)."""
    from ml.forecast.marts import demand_classes, sku_dispersion
    from ml.inventory import plan_from_marts, stockout_alerts

    empty = pd.DataFrame(), pd.DataFrame()
    if not table_exists(con, FORECASTS) or not table_exists(con, "marts.fct_inventory_daily"):
        return empty
    forecast = con.execute(
        f"SELECT sku, horizon_day AS step, mean, q50, q90 FROM {FORECASTS} WHERE as_of_date = ?", [day]
    ).df()
    inventory = con.execute(
        "SELECT sku, warehouse_id, snapshot_date, on_hand, on_order, units_sold FROM marts.fct_inventory_daily "
        "WHERE snapshot_date <= ? AND snapshot_date > ?",
        [day, day - timedelta(days=INVENTORY_DAYS_READ)],
    ).df()
    if forecast.empty or inventory.empty:
        return empty
    products = con.execute("SELECT * FROM marts.dim_products").df()
    recent = recent_demand(con, day)
    levels = dict(settings.service_level_by_class)
    if settings.use_tuned_service_levels:
        levels = {**tuned_levels(con, day), **levels}
    plan = plan_from_marts(
        forecast,
        inventory,
        products,
        as_of=day,
        service_level=settings.service_level,
        order_cycle=settings.order_cycle_days,
        service_level_by_class=levels,
        demand_class=demand_classes(recent) if levels else None,
        dispersion=sku_dispersion(recent),
        naive_cover_days=settings.naive_cover_days if settings.policy == "naive_cover" else None,
    )
    plan.insert(0, "as_of_date", pd.Timestamp(day).date())
    return plan, stockout_alerts(plan, service_level=settings.service_level)


def _present(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame.columns]]


def plan_summary(plan: pd.DataFrame, policy: str = "forecast") -> dict:
    """Rows and units to order, mean stock-out risk, the alternate supplier's use, per demand class, a preview,
    and which ``policy`` ordered (a naive-cover day is visible as such)."""
    from ml.inventory import plan_by_class

    if plan.empty:
        return summary(0, {"note": NO_PLAN})
    by_class = plan_by_class(plan)
    preview = _present(
        plan.sort_values("stockout_risk", ascending=False),
        (
            "sku",
            "warehouse_id",
            "on_hand",
            "reorder_point",
            "order_qty",
            "stockout_risk",
            "supplier_id",
            "use_alternate",
            "supplier_choice",
        ),
    )
    return summary(
        len(plan),
        metrics={
            "ordering_policy": policy,
            "rows_to_order": int((plan["order_qty"] > 0).sum()),
            "units_to_order": float(plan["order_qty"].sum()),
            "mean_stockout_risk": float(plan["stockout_risk"].mean()),
            "rows_using_alternate_supplier": int(plan.get("use_alternate", pd.Series(dtype=bool)).sum()),
            "rows_moved_for_minimum_order": int(
                (plan.get("supplier_choice", pd.Series(dtype=str)) == "minimum order").sum()
            ),
            "units_over_need_for_minimums": float(plan.get("units_over_need", pd.Series(dtype=float)).sum()),
        },
        markdown={
            **({"by_demand_class": markdown_table(by_class)} if not by_class.empty else {}),
            "preview": markdown_table(preview),
        },
    )


def alerts_summary(alerts: pd.DataFrame, plan: pd.DataFrame) -> dict:
    """Revenue at risk and the alerts a buyer acts on first."""
    if alerts.empty:
        return summary(0, {} if len(plan) else {"note": NO_PLAN})
    top = _present(
        alerts,
        (
            "sku",
            "warehouse_id",
            "on_hand",
            "stockout_risk",
            "revenue_at_risk",
            "use_alternate",
            "alt_supplier_id",
        ),
    )
    return summary(
        len(alerts),
        metrics={"revenue_at_risk": float(alerts["revenue_at_risk"].sum())},
        markdown={"top_alerts": markdown_table(top)},
    )
