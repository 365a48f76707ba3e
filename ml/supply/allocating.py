"""``supply.allocation_plan`` and ``supply.transfer_orders``: where day D's orders and the coming week's demand
ship from, and what stock moves between warehouses.

Read from the marts: the lanes (``marts.dim_shipping_lanes``), the stock D's orders were taken from (end-of-day
on hand plus the day's units sold, per warehouse), D's order lines with their customer's region (the open
orders, dispatched from D+1), the forecast of the next ``horizon_days`` split over regions by each SKU's recent
regional mix, and list prices. The same lines are dispatched under the nearest-warehouse rule from the same
stock, so the day's metadata compares the two (:mod:`ml.supply.fulfilment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.summary import summary
from ml.supply.allocation import AllocationSettings, Network
from ml.supply.forecasting import FORECASTS
from ml.supply.fulfilment import Ledger, dispatch_day, ledger_metrics
from ml.warehouse import markdown_table, table_exists

ALLOCATIONS = "supply.allocation_plan"
TRANSFERS = "supply.transfer_orders"
LANES = "marts.dim_shipping_lanes"
MIX_DAYS = 28
"""Days of order lines a SKU's regional mix and the average parcel size are read from."""
MIX_PRIOR_LINES = 5.0
"""A SKU's mix is shrunk towards the store's by this many lines' worth: a new SKU ships like the store."""
NO_PLAN = "no plan: the source delivers no shipping lanes or no inventory snapshot, or D has no orders"


@dataclass
class DayInputs:
    network: Network
    skus: list[str]
    stock: np.ndarray
    lines: pd.DataFrame
    forecast: np.ndarray
    price: np.ndarray
    units_per_parcel: float


def network_of(con: duckdb.DuckDBPyConnection) -> Network | None:
    """The lanes as a :class:`Network`; None when the source delivers none."""
    if not table_exists(con, LANES):
        return None
    lanes = con.execute(f"SELECT * FROM {LANES}").df()
    return Network.from_lanes(lanes) if len(lanes) else None


def regional_mix(lines: pd.DataFrame, skus: list[str], regions: tuple[str, ...]) -> np.ndarray:
    """Each SKU's share of units per region (SKUs × regions, rows sum to 1), shrunk towards the store's mix by
    :data:`MIX_PRIOR_LINES`; from ``lines`` (sku, region, qty)."""
    sku_i = pd.Index(skus).get_indexer(lines["sku"])
    reg_i = pd.Index(regions).get_indexer(lines["region"])
    ok = (sku_i >= 0) & (reg_i >= 0)
    units = np.zeros((len(skus), len(regions)))
    np.add.at(units, (sku_i[ok], reg_i[ok]), lines["qty"].to_numpy(dtype=float)[ok])
    store = units.sum(axis=0)
    store = store / store.sum() if store.sum() > 0 else np.full(len(regions), 1.0 / len(regions))
    counts = np.zeros(len(skus))
    np.add.at(counts, sku_i[ok], 1.0)
    per_unit = np.divide(
        units,
        units.sum(axis=1, keepdims=True),
        out=np.zeros_like(units),
        where=units.sum(axis=1, keepdims=True) > 0,
    )
    weight = (counts / (counts + MIX_PRIOR_LINES))[:, None]
    return weight * per_unit + (1 - weight) * store[None, :]


def order_lines(con: duckdb.DuckDBPyConnection, after: date, day: date) -> pd.DataFrame:
    """Sale lines ordered in ``(after, day]`` with the customer's region and home warehouse, in order time."""
    lines = con.execute(
        "SELECT order_id, order_date, order_ts AS ts, sku, region, warehouse_id, qty FROM marts.fct_order_items "
        "WHERE is_sale AND qty > 0 AND order_date > ? AND order_date <= ? ORDER BY order_ts, order_id, line_no",
        [after, day],
    ).df()
    lines["order_date"] = pd.to_datetime(lines["order_date"]).dt.date
    return lines


def list_prices(con: duckdb.DuckDBPyConnection, skus: list[str]) -> np.ndarray:
    """Each SKU's list price (the median price where the catalogue lacks it): what an unserved unit costs."""
    prices = con.execute("SELECT sku, price FROM marts.dim_products").df().set_index("sku")["price"]
    return prices.reindex(skus).fillna(prices.median()).to_numpy()


def horizon_forecast(
    con: duckdb.DuckDBPyConnection,
    day: date,
    horizon_days: int,
    skus: list[str],
    recent_lines: pd.DataFrame,
    regions: tuple[str, ...],
) -> np.ndarray:
    """Units forecast as of ``day`` for its next ``horizon_days`` (SKUs × regions), split over regions by each
    SKU's :func:`regional_mix` in ``recent_lines``; zeros without a stored forecast."""
    units = np.zeros(len(skus))
    if table_exists(con, FORECASTS):
        ahead = con.execute(
            f"SELECT sku, sum(mean) AS units FROM {FORECASTS} WHERE as_of_date = ? AND horizon_day <= ? "
            "GROUP BY sku",
            [day, horizon_days],
        ).df()
        i = pd.Index(skus).get_indexer(ahead["sku"])
        units[i[i >= 0]] = ahead["units"].to_numpy(dtype=float)[i >= 0]
    return units[:, None] * regional_mix(recent_lines, skus, regions)


def units_per_parcel(lines: pd.DataFrame) -> float:
    """Mean units an order takes from one warehouse: what the programme spreads a parcel's charge over."""
    return float(lines.groupby(["order_id", "warehouse_id"])["qty"].sum().mean())


def day_inputs(con: duckdb.DuckDBPyConnection, day: date, settings: AllocationSettings) -> DayInputs | None:
    """Everything the day's programme and its comparison read; None when the source has no lanes or stock."""
    network = network_of(con)
    if network is None or not table_exists(con, "marts.fct_inventory_daily"):
        return None
    stock_rows = con.execute(
        "SELECT sku, warehouse_id, on_hand + units_sold AS units FROM marts.fct_inventory_daily "
        "WHERE snapshot_date = ?",
        [day],
    ).df()
    recent = order_lines(con, day - timedelta(days=MIX_DAYS), day)
    lines = recent[recent["order_date"] == day]
    if stock_rows.empty or lines.empty:
        return None
    skus = sorted(set(stock_rows["sku"]) | set(lines["sku"]))
    stock = np.zeros((len(skus), len(network.warehouses)))
    w = pd.Index(network.warehouses).get_indexer(stock_rows["warehouse_id"])
    np.add.at(
        stock,
        (pd.Index(skus).get_indexer(stock_rows["sku"])[w >= 0], w[w >= 0]),
        stock_rows["units"].to_numpy(dtype=float)[w >= 0],
    )
    return DayInputs(
        network=network,
        skus=skus,
        stock=stock,
        lines=indexed_lines(lines, skus, network, day),
        forecast=horizon_forecast(con, day, settings.horizon_days, skus, recent, network.regions),
        price=list_prices(con, skus),
        units_per_parcel=units_per_parcel(recent),
    )


def indexed_lines(lines: pd.DataFrame, skus: list[str], network: Network, day: date) -> pd.DataFrame:
    """Order lines as :func:`ml.supply.fulfilment.dispatch_day` takes them (SKU, region and home warehouse by
    position, ``order_day`` in days since ``day``); lines of an unknown region or warehouse are dropped."""
    out = pd.DataFrame(
        {
            "order_id": lines["order_id"].to_numpy(),
            "order_day": (pd.to_datetime(lines["order_date"]) - pd.Timestamp(day)).dt.days.to_numpy(),
            "ts": lines["ts"].to_numpy(),
            "sku_i": pd.Index(skus).get_indexer(lines["sku"]),
            "region_i": pd.Index(network.regions).get_indexer(lines["region"]),
            "home_i": pd.Index(network.warehouses).get_indexer(lines["warehouse_id"]),
            "qty": lines["qty"].to_numpy(dtype=np.int64),
        }
    )
    return out[(out["sku_i"] >= 0) & (out["region_i"] >= 0) & (out["home_i"] >= 0)].reset_index(drop=True)


@dataclass
class DayAllocation:
    plan: pd.DataFrame
    transfers: pd.DataFrame
    summary: dict
    transfer_summary: dict


def allocate_day(
    con: duckdb.DuckDBPyConnection, day: date, settings: AllocationSettings
) -> DayAllocation | None:
    """The day's allocation plan and transfer orders, with the nearest-warehouse rule on the same lines."""
    inputs = day_inputs(con, day, settings)
    if inputs is None:
        return None
    results = {}
    for rule in ("optimised", "nearest"):
        ledger = Ledger(stock=inputs.stock.copy())
        dispatch_day(
            rule,
            0,
            inputs.lines,
            ledger,
            inputs.network,
            inputs.forecast,
            inputs.price,
            settings,
            inputs.units_per_parcel,
            inputs.skus,
        )
        results[rule] = (ledger, ledger_metrics(ledger, inputs.network, float(inputs.lines["qty"].sum())))
    solution = results["optimised"][0].allocation
    stamp = pd.Timestamp(day).date()
    unserved = solution.unserved.assign(demand="open_orders", warehouse_id=None)
    plan = pd.concat([solution.shipments, unserved], ignore_index=True).assign(as_of_date=stamp)
    for column in ("delivery_days", "late_days"):
        plan[column] = plan[column].astype("Int64")
    transfers = solution.transfers.assign(as_of_date=stamp)
    plan = plan[["as_of_date", *[c for c in plan.columns if c != "as_of_date"]]]
    transfers = transfers[["as_of_date", *[c for c in transfers.columns if c != "as_of_date"]]]
    return DayAllocation(
        plan=plan,
        transfers=transfers,
        summary=allocation_summary(plan, results["optimised"][1], results["nearest"][1], solution.objective),
        transfer_summary=transfer_summary(transfers),
    )


COMPARED = (
    "orders",
    "shipping_cost",
    "transfer_cost",
    "on_time_orders",
    "parcels_per_order",
    "units_lost",
    "units_waiting_at_end",
)


def allocation_summary(plan: pd.DataFrame, optimised: dict, nearest: dict, objective: float) -> dict:
    """The day's open orders under the plan and under the nearest-warehouse rule, side by side. Transfers are
    paid on the day they leave and pay back on later days (nearer parcels, fewer lost and late lines), which one
    day cannot show: ``bench.allocation`` replays whole ranges."""
    open_orders = plan[(plan["demand"] == "open_orders") & plan["warehouse_id"].notna()]
    by_lane = (
        open_orders.groupby(["warehouse_id", "region"], as_index=False)
        .agg(
            units=("units", "sum"), delivery_days=("delivery_days", "first"), late_days=("late_days", "first")
        )
        .sort_values("units", ascending=False)
    )
    table = pd.DataFrame(
        {
            "metric": COMPARED,
            "plan": [optimised[k] for k in COMPARED],
            "nearest": [nearest[k] for k in COMPARED],
        }
    )
    return summary(
        len(plan),
        metrics={
            "open_order_units": float(plan.loc[plan["demand"] == "open_orders", "units"].sum()),
            "open_order_units_unserved": float(
                plan.loc[(plan["demand"] == "open_orders") & plan["warehouse_id"].isna(), "units"].sum()
            ),
            "plan_shipping_cost_per_order": optimised["shipping_cost"] / max(optimised["orders"], 1),
            "nearest_shipping_cost_per_order": nearest["shipping_cost"] / max(nearest["orders"], 1),
            "transfer_cost": optimised["transfer_cost"],
            "plan_on_time_orders": optimised["on_time_orders"],
            "nearest_on_time_orders": nearest["on_time_orders"],
            "plan_units_held_back": optimised["units_waiting_at_end"] + optimised["units_lost"],
            "nearest_units_held_back": nearest["units_waiting_at_end"] + nearest["units_lost"],
            "objective_gbp": objective,
        },
        markdown={"plan_vs_nearest_rule": markdown_table(table), "lanes_used": markdown_table(by_lane)},
    )


def transfer_summary(transfers: pd.DataFrame) -> dict:
    if transfers.empty:
        return summary(0, {"units": 0.0, "cost": 0.0})
    lanes = (
        transfers.groupby(["from_warehouse_id", "to_warehouse_id"], as_index=False)
        .agg(skus=("sku", "nunique"), units=("units", "sum"), cost=("cost", "sum"))
        .sort_values("units", ascending=False)
    )
    return summary(
        len(transfers),
        metrics={"units": float(transfers["units"].sum()), "cost": float(transfers["cost"].sum())},
        markdown={"by_lane": markdown_table(lanes)},
    )


def no_plan_summary() -> dict:
    return summary(0, {"note": NO_PLAN})
