"""Order lines dispatched from warehouses under a rule, day by day: what an allocation costs and how late it is.

Three rules, all on the same lines, stock and capacity:

- ``home``: the store's own: every line from the customer's home warehouse, lost when it is out of stock;
- ``nearest``: the nearest-warehouse rule: the fastest, then cheapest, warehouse holding the line's units;
- ``optimised``: the linear programme of :mod:`ml.supply.allocation` (the day's open orders plus a reservation
  for the horizon's forecast, with transfers between warehouses); a line joins its order's parcel from a
  warehouse already shipping the order when that warehouse has the units, room and an on-time lane.

A warehouse dispatches at most its daily capacity; a line that finds its warehouse full waits for the next day
(and is later by that day). A line no warehouse can fill is lost, as is one still waiting after
:data:`MAX_WAIT_DAYS`. An order's lines leaving one warehouse on one day are one parcel: the lane's cost per
parcel plus its cost per unit. A parcel is on time when the days it waited plus the lane's delivery days are
within the region's promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.supply.allocation import Allocation, AllocationSettings, Network, solve

RULES = ("home", "nearest", "optimised")
MAX_WAIT_DAYS = 3


@dataclass
class Ledger:
    """One rule's running state: stock per SKU × warehouse, lines waiting, transfers on the way, and the log."""

    stock: np.ndarray
    waiting: pd.DataFrame = field(default_factory=pd.DataFrame)
    in_transit: list[tuple[int, int, int, int]] = field(default_factory=list)
    """(arrival day, sku, warehouse, units)."""
    dispatched: list[pd.DataFrame] = field(default_factory=list)
    lost: list[pd.DataFrame] = field(default_factory=list)
    transfers: list[pd.DataFrame] = field(default_factory=list)
    stock_units: list[float] = field(default_factory=list)
    allocation: Allocation | None = None
    """The optimised rule's latest programme solution."""


def _choose(rule: str, line, stock: np.ndarray, nearest: np.ndarray, allot: dict | None) -> int | None:
    """The warehouse a line ships from, or None when no warehouse the rule may use holds its units."""
    s, r, q = line.sku_i, line.region_i, line.qty
    if rule == "home":
        return line.home_i if stock[s, line.home_i] >= q else None
    if rule == "nearest":
        for w in nearest[r]:
            if stock[s, w] >= q:
                return int(w)
        return None
    shares = allot.get((s, r)) if allot else None
    if shares is not None:
        for w in np.argsort(-shares, kind="stable"):
            if shares[w] > 1e-6 and stock[s, w] >= q:
                shares[w] -= q
                return int(w)
    return None


def dispatch_day(
    rule: str,
    day: int,
    lines: pd.DataFrame,
    ledger: Ledger,
    network: Network,
    forecast: np.ndarray | None = None,
    price: np.ndarray | None = None,
    settings: AllocationSettings | None = None,
    units_per_parcel: float = 1.0,
    skus: list[str] | None = None,
) -> None:
    """Dispatch day ``day``'s new ``lines`` and the ledger's waiting ones under ``rule``, in order time.

    ``lines``: order_id, order_day, ts (any sortable), sku_i, region_i, home_i, qty. The ``optimised`` rule also
    needs the horizon's ``forecast`` (SKUs × regions), ``price`` and ``settings``; its transfers leave today and
    join the stock on their arrival day; ``skus`` names the SKU indices in its solution (``ledger.allocation``)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; one of {RULES}")
    for _, s, w, units in [t for t in ledger.in_transit if t[0] <= day]:
        ledger.stock[s, w] += units
    ledger.in_transit = [t for t in ledger.in_transit if t[0] > day]
    todo = pd.concat([ledger.waiting, lines], ignore_index=True) if len(ledger.waiting) else lines.copy()
    todo = todo.sort_values(["order_day", "ts", "order_id"], kind="stable").reset_index(drop=True)
    allot = None
    if rule == "optimised":
        allot = _optimise(day, todo, ledger, network, forecast, price, settings, units_per_parcel, skus)
    nearest = network.nearest()
    room = network.capacity.copy()
    sent, wait, lost = [], [], []
    late = network.late_days
    parcel_of: dict[str, int] = {}  # the warehouse an order already ships from today
    for line in todo.itertuples(index=False):
        w = parcel_of.get(line.order_id) if rule == "optimised" else None
        if (
            w is None
            or ledger.stock[line.sku_i, w] < line.qty
            or room[w] < line.qty
            or late[w, line.region_i]
        ):
            w = _choose(rule, line, ledger.stock, nearest, allot)
        elif allot and (line.sku_i, line.region_i) in allot:
            # joining the order's parcel saves a parcel charge the programme's per-unit costs do not see
            allot[(line.sku_i, line.region_i)][w] -= line.qty
        if w is None:
            # The programme may hold a line back for want of capacity while some warehouse has its units.
            held = rule == "optimised" and ledger.stock[line.sku_i].max() >= line.qty
            (wait if held and day - line.order_day < MAX_WAIT_DAYS else lost).append(line)
        elif room[w] < line.qty:
            (lost if day - line.order_day >= MAX_WAIT_DAYS else wait).append(line)
        else:
            room[w] -= line.qty
            ledger.stock[line.sku_i, w] -= line.qty
            parcel_of.setdefault(line.order_id, w)
            sent.append((*line, w))
    columns = list(todo.columns)
    ledger.waiting = pd.DataFrame(wait, columns=columns)
    if lost:
        ledger.lost.append(pd.DataFrame(lost, columns=columns).assign(lost_day=day))
    if sent:
        frame = pd.DataFrame(sent, columns=[*columns, "warehouse_i"]).assign(dispatch_day=day)
        ledger.dispatched.append(frame)
    ledger.stock_units.append(float(ledger.stock.sum() + sum(t[3] for t in ledger.in_transit)))


def _optimise(day, todo, ledger, network, forecast, price, settings, units_per_parcel, skus) -> dict:
    """Solve the day's programme; book its transfers; return the open-order allotment per (sku, region)."""
    open_orders = np.zeros((ledger.stock.shape[0], len(network.regions)))
    np.add.at(open_orders, (todo["sku_i"].to_numpy(), todo["region_i"].to_numpy()), todo["qty"].to_numpy())
    result = solve(
        network,
        ledger.stock,
        open_orders,
        forecast if forecast is not None else np.zeros_like(open_orders),
        price,
        settings or AllocationSettings(),
        units_per_parcel,
        skus=skus,
    )
    ledger.allocation = result
    sku_index = {sku: i for i, sku in enumerate(skus)} if skus else None
    wh_index = {w: i for i, w in enumerate(network.warehouses)}
    reg_index = {r: i for i, r in enumerate(network.regions)}
    allot: dict[tuple[int, int], np.ndarray] = {}
    mine = result.shipments[result.shipments["demand"] == "open_orders"]
    for row in mine.itertuples(index=False):
        key = (sku_index[row.sku] if sku_index else int(row.sku), reg_index[row.region])
        allot.setdefault(key, np.zeros(len(network.warehouses)))[wh_index[row.warehouse_id]] += row.units
    moves = result.transfers
    if len(moves):
        for row in moves.itertuples(index=False):
            s = sku_index[row.sku] if sku_index else int(row.sku)
            w, v = wh_index[row.from_warehouse_id], wh_index[row.to_warehouse_id]
            units = min(int(row.units), int(ledger.stock[s, w]))
            if units <= 0:
                continue
            ledger.stock[s, w] -= units
            ledger.in_transit.append((day + int(row.arrives_in_days), s, v, units))
        ledger.transfers.append(moves.assign(day=day))
    return allot


def parcels(dispatched: pd.DataFrame, network: Network) -> pd.DataFrame:
    """One row per order × warehouse × dispatch day: units, cost, and whether it arrived within the promise."""
    if dispatched.empty:
        return pd.DataFrame(columns=["order_id", "warehouse_i", "dispatch_day", "units", "cost", "on_time"])
    grouped = (
        dispatched.groupby(["order_id", "warehouse_i", "dispatch_day"], sort=False)
        .agg(units=("qty", "sum"), region_i=("region_i", "first"), order_day=("order_day", "first"))
        .reset_index()
    )
    w, r = grouped["warehouse_i"].to_numpy(), grouped["region_i"].to_numpy()
    grouped["cost"] = network.cost_per_order[w, r] + grouped["units"] * network.cost_per_unit[w, r]
    waited = grouped["dispatch_day"] - grouped["order_day"]
    grouped["on_time"] = waited.to_numpy() + network.days[w, r] <= network.promise[r]
    return grouped


def ledger_metrics(ledger: Ledger, network: Network, demand_units: float) -> dict[str, float]:
    """Cost per order (parcels and transfers), on-time shares, lost units, fill rate, transfers, stock."""
    sent = pd.concat(ledger.dispatched, ignore_index=True) if ledger.dispatched else pd.DataFrame()
    lost = pd.concat(ledger.lost, ignore_index=True) if ledger.lost else pd.DataFrame()
    moves = pd.concat(ledger.transfers, ignore_index=True) if ledger.transfers else pd.DataFrame()
    box = parcels(sent, network)
    orders = box.groupby("order_id")["on_time"].all() if len(box) else pd.Series(dtype=bool)
    shipping = float(box["cost"].sum()) if len(box) else 0.0
    transfer_cost = float(moves["cost"].sum()) if len(moves) else 0.0
    units_sent = float(sent["qty"].sum()) if len(sent) else 0.0
    on_time_units = float(box.loc[box["on_time"], "units"].sum()) if len(box) else 0.0
    return {
        "orders": int(len(orders)),
        "parcels": int(len(box)),
        "parcels_per_order": len(box) / max(len(orders), 1),
        "shipping_cost": shipping,
        "transfer_cost": transfer_cost,
        "cost_per_order": (shipping + transfer_cost) / max(len(orders), 1),
        "on_time_orders": float(orders.mean()) if len(orders) else float("nan"),
        "on_time_units": on_time_units / units_sent if units_sent else float("nan"),
        "units_dispatched": units_sent,
        "units_lost": float(lost["qty"].sum()) if len(lost) else 0.0,
        "units_waiting_at_end": float(ledger.waiting["qty"].sum()) if len(ledger.waiting) else 0.0,
        "fill_rate": units_sent / demand_units if demand_units else float("nan"),
        "transfers": int(len(moves)),
        "units_transferred": float(moves["units"].sum()) if len(moves) else 0.0,
        "mean_stock_units": float(np.mean(ledger.stock_units)) if ledger.stock_units else float("nan"),
        "stock_units_at_end": float(ledger.stock.sum()),
        "units_in_transit_at_end": float(sum(t[3] for t in ledger.in_transit)),
    }
