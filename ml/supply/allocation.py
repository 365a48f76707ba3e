"""Delivery allocation: which warehouse ships each region's demand, and which stock moves between warehouses.

A transport problem solved as a linear programme (``scipy.optimize.linprog`` with HiGHS). For one day it decides

- where the day's open orders ship from (units per SKU × warehouse × customer region), within each warehouse's
  stock and daily dispatch capacity;
- where the forecast demand of the next ``horizon_days`` would ship from, within the stock left and the
  capacity of those days: a reservation, so today's choices do not strip a warehouse of what its own regions
  will need;
- transfer orders: stock moved in bulk between warehouses today (arriving within the horizon) when a region's
  forecast outruns what its fast, cheap warehouses hold and another warehouse has more than its regions need.

The objective is money: parcel costs (per parcel, spread over the units of an average parcel, plus per unit),
a penalty per unit and day delivered after the promise shown at checkout, bulk transfer costs, and the price of
each unit left unserved (an open order's counts :data:`OPEN_ORDER_WEIGHT` times). Demand with no lane to its
region cannot be allocated and is reported, not dropped.

The nearest-warehouse rule it is compared with (:func:`nearest_warehouse`) ships each order line from the
fastest, then cheapest, warehouse that holds the stock, and never moves stock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import sparse
from scipy.optimize import linprog

from ml.blocks import consecutive_blocks

OPEN_ORDER_WEIGHT = 2.0
"""An open order left unserved costs this many times its price (plus the dearest lane) against a forecast unit's
one: a customer who has paid comes before one who may, so stock is reserved for the forecast only from what the
open orders leave."""


class AllocationSettings(BaseModel):
    horizon_days: int = Field(
        default=7,
        ge=1,
        le=28,
        description=(
            "Days of forecast demand the allocation reserves stock for, and within which a transfer must arrive "
            "to count."
        ),
    )
    late_penalty_per_unit_day: float = Field(
        default=2.0,
        ge=0,
        description="GBP charged per unit per day delivered after the region's delivery promise (goodwill, refunds).",
    )
    min_transfer_units: int = Field(
        default=1,
        ge=1,
        description="Smaller transfers are not worth a pallet slot: the solution's transfers below this are dropped.",
    )


@dataclass(frozen=True)
class Network:
    """Warehouses, customer regions and the lanes between them (rows of ``marts.dim_shipping_lanes``)."""

    warehouses: tuple[str, ...]
    regions: tuple[str, ...]
    sites: tuple[str, ...]
    """The region each warehouse sits in: a transfer to it travels the lane to that region."""
    capacity: np.ndarray
    """Units each warehouse can dispatch a day, (W,)."""
    days: np.ndarray
    """Days a parcel takes, (W, R)."""
    promise: np.ndarray
    """Days promised at checkout per region, (R,)."""
    cost_per_order: np.ndarray
    cost_per_unit: np.ndarray
    bulk_cost_per_unit: np.ndarray

    @classmethod
    def from_lanes(cls, lanes: pd.DataFrame) -> Network:
        """From one row per warehouse × region (warehouse_id, region, site_region, daily_capacity_units,
        delivery_days, promise_days, cost_per_order, cost_per_unit, bulk_cost_per_unit). Every warehouse must
        have a lane to every region, and every site must be one of the regions."""
        if lanes.empty:
            raise ValueError(
                "no shipping lanes: the source delivers none, so there is nothing to allocate on"
            )
        warehouses = tuple(sorted(lanes["warehouse_id"].unique()))
        regions = tuple(sorted(lanes["region"].unique()))
        grid = lanes.set_index(["warehouse_id", "region"]).sort_index()
        full = pd.MultiIndex.from_product([warehouses, regions])
        missing = full.difference(grid.index)
        if len(missing):
            raise ValueError(
                f"lanes missing for {len(missing)} warehouse-region pairs, e.g. {list(missing[:3])}"
            )
        grid = grid.reindex(full)
        per_wh = lanes.drop_duplicates("warehouse_id").set_index("warehouse_id").loc[list(warehouses)]
        unknown = set(per_wh["site_region"]) - set(regions)
        if unknown:
            raise ValueError(f"warehouse sites {sorted(unknown)} are not regions with lanes")

        def matrix(column: str) -> np.ndarray:
            return grid[column].to_numpy(dtype=float).reshape(len(warehouses), len(regions))

        promise = grid["promise_days"].to_numpy(dtype=float).reshape(len(warehouses), len(regions))
        return cls(
            warehouses=warehouses,
            regions=regions,
            sites=tuple(per_wh["site_region"]),
            capacity=per_wh["daily_capacity_units"].to_numpy(dtype=float),
            days=matrix("delivery_days"),
            promise=promise.max(axis=0),
            cost_per_order=matrix("cost_per_order"),
            cost_per_unit=matrix("cost_per_unit"),
            bulk_cost_per_unit=matrix("bulk_cost_per_unit"),
        )

    @property
    def late_days(self) -> np.ndarray:
        """Days past the promise a parcel on each lane arrives when dispatched on the order's day, (W, R)."""
        return np.maximum(self.days - self.promise[None, :], 0)

    def nearest(self) -> np.ndarray:
        """Per region, the warehouses in the order the nearest-warehouse rule tries them: fastest, then
        cheapest parcel, then by id, (R, W)."""
        w = np.arange(len(self.warehouses))
        return np.array(
            [np.lexsort((w, self.cost_per_order[:, r], self.days[:, r])) for r in range(len(self.regions))]
        )

    def transfer_lanes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per unit cost and days of moving stock from warehouse ``w`` to ``v`` (the lane to ``v``'s site),
        (W, W) each; the diagonal is not a lane (cost inf)."""
        site = np.array([self.regions.index(s) for s in self.sites])
        cost = self.bulk_cost_per_unit[:, site].copy()
        np.fill_diagonal(cost, np.inf)
        return cost, self.days[:, site]

    def parcel_unit_cost(self, units_per_parcel: float) -> np.ndarray:
        """The cost of one unit on a lane when parcels carry ``units_per_parcel`` units on average, (W, R)."""
        return self.cost_per_order / max(units_per_parcel, 1.0) + self.cost_per_unit


@dataclass
class Allocation:
    shipments: pd.DataFrame
    """One row per SKU × warehouse × region with units > 0: ``demand`` open_orders or forecast."""
    transfers: pd.DataFrame
    """One row per SKU × from × to warehouse: units (whole), cost, the day they arrive (days after today)."""
    unserved: pd.DataFrame
    """Open-order units per SKU × region the solution could not dispatch today (no stock or no capacity)."""
    objective: float
    size: tuple[int, int]
    """Variables and constraints of the programme (summed over its blocks)."""
    blocks: int = 1
    """Programmes solved: above :data:`MAX_LP_VARIABLES` the SKUs are split into blocks (:func:`solve`)."""


MAX_LP_VARIABLES = 4_000_000
"""Variables one linear programme holds at most (HiGHS's memory grows with them); above it the SKUs are solved in
blocks."""


def lp_variables(
    stock: np.ndarray, open_orders: np.ndarray, forecast: np.ndarray, network: Network, horizon: int
):
    """Variables per SKU of :func:`solve`'s programme: shipments per (pair, warehouse), transfers per lane,
    and one unserved amount per pair."""
    move_cost, move_days = network.transfer_lanes()
    lanes = int((np.isfinite(move_cost) & (move_days < horizon)).sum())
    n_wh = stock.shape[1]
    pairs = (open_orders > 0).sum(axis=1) + (forecast > 0).sum(axis=1)
    movable = ((forecast > 0).any(axis=1)) & (stock.sum(axis=1) > 0)
    return pairs * (n_wh + 1) + movable * lanes


def solve(
    network: Network,
    stock: np.ndarray,
    open_orders: np.ndarray,
    forecast: np.ndarray,
    price: np.ndarray,
    settings: AllocationSettings,
    units_per_parcel: float,
    skus: list[str] | None = None,
    horizon_capacity: np.ndarray | None = None,
) -> Allocation:
    """Allocate the day's ``open_orders`` and the ``forecast`` of the next ``horizon_days`` (both SKUs ×
    regions, units) to warehouses holding ``stock`` (SKUs × warehouses), with today's transfers.

    ``price`` (per SKU) is what an unserved unit costs; ``horizon_capacity`` (W,) what the warehouses can
    dispatch over the horizon (default: a day's capacity times ``horizon_days``). Returns the shipments, the
    transfers (floored to whole units, dropped below ``min_transfer_units``) and the open-order units left
    unserved; above :data:`MAX_LP_VARIABLES` variables, over SKU blocks (:func:`_solve_in_blocks`)."""
    n_sku, n_wh = stock.shape
    n_reg = len(network.regions)
    if open_orders.shape != (n_sku, n_reg) or forecast.shape != (n_sku, n_reg):
        raise ValueError("open_orders and forecast must be SKUs × the network's regions")
    skus = skus if skus is not None else [str(i) for i in range(n_sku)]
    horizon = settings.horizon_days
    per_sku = lp_variables(stock, open_orders, forecast, network, horizon)
    if per_sku.sum() > MAX_LP_VARIABLES and n_sku > 1:
        if horizon_capacity is None:
            horizon_capacity = network.capacity * horizon
        return _solve_in_blocks(
            network,
            stock,
            open_orders,
            forecast,
            price,
            settings,
            units_per_parcel,
            skus,
            per_sku,
            horizon_capacity,
        )
    lane_cost = (
        network.parcel_unit_cost(units_per_parcel) + settings.late_penalty_per_unit_day * network.late_days
    )
    move_cost, move_days = network.transfer_lanes()

    now_s, now_r = np.nonzero(open_orders > 0)
    later_s, later_r = np.nonzero(forecast > 0)
    # Transfers only for SKUs some region will want within the horizon, on lanes that arrive within it.
    wanted = np.zeros(n_sku, dtype=bool)
    wanted[later_s] = True
    movable = wanted & (stock.sum(axis=1) > 0)
    from_w, to_w = np.nonzero(np.isfinite(move_cost) & (move_days < horizon))
    t_s = np.repeat(np.flatnonzero(movable), len(from_w))
    t_from = np.tile(from_w, movable.sum())
    t_to = np.tile(to_w, movable.sum())

    n_now, n_later, n_t = len(now_s), len(later_s), len(t_s)
    wh = np.arange(n_wh)
    # Variable blocks: x (now pairs × W), y (later pairs × W), t, u_now, u_later.
    x0, y0 = 0, n_now * n_wh
    t0 = y0 + n_later * n_wh
    un0 = t0 + n_t
    ul0 = un0 + n_now
    n_var = ul0 + n_later
    x_s, x_w, x_r = np.repeat(now_s, n_wh), np.tile(wh, n_now), np.repeat(now_r, n_wh)
    y_s, y_w, y_r = np.repeat(later_s, n_wh), np.tile(wh, n_later), np.repeat(later_r, n_wh)
    cost = np.concatenate(
        [
            lane_cost[x_w, x_r],
            lane_cost[y_w, y_r],
            move_cost[t_from, t_to],
            OPEN_ORDER_WEIGHT * price[now_s] + lane_cost.max(),
            price[later_s],
        ]
    )

    # Equalities: every open-order and forecast pair is shipped or left unserved.
    eq_rows = np.concatenate(
        [
            np.repeat(np.arange(n_now), n_wh),
            np.arange(n_now),
            n_now + np.repeat(np.arange(n_later), n_wh),
            n_now + np.arange(n_later),
        ]
    )
    eq_cols = np.concatenate(
        [
            x0 + np.arange(n_now * n_wh),
            un0 + np.arange(n_now),
            y0 + np.arange(n_later * n_wh),
            ul0 + np.arange(n_later),
        ]
    )
    a_eq = sparse.csr_matrix((np.ones(len(eq_rows)), (eq_rows, eq_cols)), shape=(n_now + n_later, n_var))
    b_eq = np.concatenate([open_orders[now_s, now_r], forecast[later_s, later_r]])

    # Inequalities, rows: stock today (S×W), stock over the horizon (S×W), capacity today (W), capacity later (W).
    cell = n_sku * n_wh
    rows, cols, vals = [], [], []

    def add(r: np.ndarray, c: np.ndarray, v: float | np.ndarray = 1.0) -> None:
        rows.append(r)
        cols.append(c)
        vals.append(np.broadcast_to(v, r.shape).astype(float))

    x_idx, y_idx, t_idx = x0 + np.arange(n_now * n_wh), y0 + np.arange(n_later * n_wh), t0 + np.arange(n_t)
    add(x_s * n_wh + x_w, x_idx)  # today's shipments use today's stock
    add(t_s * n_wh + t_from, t_idx)  # so do transfers out
    add(cell + x_s * n_wh + x_w, x_idx)
    add(cell + y_s * n_wh + y_w, y_idx)
    add(cell + t_s * n_wh + t_from, t_idx)
    add(cell + t_s * n_wh + t_to, t_idx, -1.0)  # transfers in arrive within the horizon
    add(2 * cell + x_w, x_idx)
    add(2 * cell + n_wh + y_w, y_idx)
    a_ub = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(2 * cell + 2 * n_wh, n_var),
    )
    flat_stock = stock.reshape(-1).astype(float)
    if horizon_capacity is None:
        horizon_capacity = network.capacity * horizon
    b_ub = np.concatenate([flat_stock, flat_stock, network.capacity, horizon_capacity])

    result = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"allocation LP failed: {result.message}")
    sol = result.x

    def shipments(block: slice, s, w, r, demand: str) -> pd.DataFrame:
        units = sol[block]
        keep = units > 1e-6
        return pd.DataFrame(
            {
                "sku": np.asarray(skus, dtype=object)[s[keep]],
                "warehouse_id": np.asarray(network.warehouses, dtype=object)[w[keep]],
                "region": np.asarray(network.regions, dtype=object)[r[keep]],
                "demand": demand,
                "units": units[keep],
                "delivery_days": network.days[w[keep], r[keep]].astype(int),
                "late_days": network.late_days[w[keep], r[keep]].astype(int),
                "unit_cost": network.parcel_unit_cost(units_per_parcel)[w[keep], r[keep]],
            }
        )

    ship = pd.concat(
        [
            shipments(slice(x0, y0), x_s, x_w, x_r, "open_orders"),
            shipments(slice(y0, t0), y_s, y_w, y_r, "forecast"),
        ],
        ignore_index=True,
    )
    moved = np.floor(sol[t0:un0] + 1e-6)
    keep = moved >= settings.min_transfer_units
    transfers = pd.DataFrame(
        {
            "sku": np.asarray(skus, dtype=object)[t_s[keep]],
            "from_warehouse_id": np.asarray(network.warehouses, dtype=object)[t_from[keep]],
            "to_warehouse_id": np.asarray(network.warehouses, dtype=object)[t_to[keep]],
            "units": moved[keep].astype(np.int64),
            "cost": moved[keep] * move_cost[t_from[keep], t_to[keep]],
            "arrives_in_days": move_days[t_from[keep], t_to[keep]].astype(int),
        }
    )
    left = sol[un0:ul0]
    keep = left > 1e-6
    unserved = pd.DataFrame(
        {
            "sku": np.asarray(skus, dtype=object)[now_s[keep]],
            "region": np.asarray(network.regions, dtype=object)[now_r[keep]],
            "units": left[keep],
        }
    )
    return Allocation(ship, transfers, unserved, float(result.fun), (n_var, a_ub.shape[0] + a_eq.shape[0]))


def _solve_in_blocks(
    network: Network,
    stock: np.ndarray,
    open_orders: np.ndarray,
    forecast: np.ndarray,
    price: np.ndarray,
    settings: AllocationSettings,
    units_per_parcel: float,
    skus: list[str],
    per_sku: np.ndarray,
    horizon_capacity: np.ndarray,
) -> Allocation:
    """:func:`solve` over consecutive SKU blocks of at most :data:`MAX_LP_VARIABLES` variables.

    SKUs share nothing but the warehouses' dispatch capacity, so each block gets the share of it that its open
    orders (today's capacity) and its open orders plus forecast (the horizon's) make of the whole. Where no
    capacity binds, the blocks' solutions together are the whole programme's; where it binds, a block cannot
    borrow another's unused share, so the plan can serve a little less than one programme would."""
    today_total = max(float(open_orders.sum()), 1e-9)
    horizon_total = max(float(open_orders.sum() + forecast.sum()), 1e-9)
    parts, objective, n_var, n_con = [], 0.0, 0, 0
    for first, last in consecutive_blocks(per_sku, MAX_LP_VARIABLES):
        block = slice(first, last)
        today_share = float(open_orders[block].sum()) / today_total
        horizon_share = float(open_orders[block].sum() + forecast[block].sum()) / horizon_total
        part = solve(
            replace(network, capacity=network.capacity * today_share),
            stock[block],
            open_orders[block],
            forecast[block],
            price[block],
            settings,
            units_per_parcel,
            skus=skus[block],
            horizon_capacity=horizon_capacity * horizon_share,
        )
        parts.append(part)
        objective += part.objective
        n_var, n_con = n_var + part.size[0], n_con + part.size[1]
    return Allocation(
        pd.concat([p.shipments for p in parts], ignore_index=True),
        pd.concat([p.transfers for p in parts], ignore_index=True),
        pd.concat([p.unserved for p in parts], ignore_index=True),
        objective,
        (n_var, n_con),
        blocks=len(parts),
    )
