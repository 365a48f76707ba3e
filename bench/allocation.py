"""Delivery allocation against the nearest-warehouse rule, replayed day by day on a materialised warehouse.

    python -m bench.allocation --warehouse .data/warehouse.duckdb --out bench/results/allocation_small.json
    python -m bench.allocation --solve-time medium --out bench/results/allocation_solve_medium.json

Reads a warehouse the platform has materialised (``make demo``, or a kept ``bench.loop`` world:
``--warehouse <dir>/warehouse.duckdb``): the lanes and capacities (``marts.dim_shipping_lanes``), the daily
stock (``marts.fct_inventory_daily``), every sale line with the customer's region and home warehouse, the
unserved demand of a closed-loop world (``staging.stg_lost_sales`` with the customer's region), and the stored
daily forecasts (``supply.demand_forecast``).

Each rule of :mod:`ml.supply.fulfilment` replays the same days from the same starting stock, with its own
running stock: each day the store's receipts arrive (a closed-loop world keeps a ledger: receipts are the day's
rise in on hand plus the units it sold from that warehouse; the open-loop store's stock is a sawtooth that does
not follow its sales, so there a receipt is a rise in on hand), then the day's demand lines (and the lines
waiting from earlier days) are dispatched in order time within each warehouse's daily capacity:

- ``home``: the store's rule: the customer's home warehouse or nothing;
- ``nearest``: the nearest warehouse (fastest lane, then cheapest parcel) that holds the units;
- ``optimised``: the platform's allocation (the transport programme of ``supply/allocation_plan``, with the
  day's forecast reservation and transfer orders).

The replay is counterfactual past the first day: a line the store lost may be shipped by another rule, and
receipts are the store's whatever the rule did. Reported per rule: cost per order (parcels plus transfers),
share of orders delivered within the region's promise, parcels per order, units dispatched, lost and still
waiting, fill rate, transfers, average stock.

``--solve-time SCALE`` instead times one day's programme at a simulated scale without a warehouse: the world's
lanes and capacities, stock of 12 ordinary days of its expected demand per SKU and warehouse, one ordinary
day's orders per SKU and region (Poisson around the expected demand split by the customers' regions) and the
7-day expected demand as the forecast (seeded draws, so every run solves the same programme).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench import docstring_parser
from ml.supply.allocating import (
    MIX_DAYS,
    horizon_forecast,
    indexed_lines,
    list_prices,
    network_of,
    order_lines,
    units_per_parcel,
)
from ml.supply.allocation import AllocationSettings, Network, solve
from ml.supply.fulfilment import RULES, Ledger, dispatch_day, ledger_metrics
from ml.warehouse import table_exists

log = logging.getLogger("bench.allocation")


def parse_args(argv=None):
    p = docstring_parser("python -m bench.allocation", __doc__)
    p.add_argument("--warehouse", type=Path, help="a materialised warehouse.duckdb (read only)")
    p.add_argument(
        "--solve-time",
        choices=["small", "medium", "large"],
        default=None,
        help="time one synthetic day's programme at this simulated scale instead of replaying a warehouse",
    )
    p.add_argument("--rules", default=",".join(RULES), help=f"comma-separated, of {', '.join(RULES)}")
    p.add_argument(
        "--first-day",
        type=date.fromisoformat,
        default=None,
        help="first replayed day (default: the second day with stock, so the mix has a day of history)",
    )
    p.add_argument(
        "--last-day", type=date.fromisoformat, default=None, help="last replayed day (default: the last)"
    )
    p.add_argument("--horizon-days", type=int, default=AllocationSettings().horizon_days)
    p.add_argument(
        "--late-penalty",
        type=float,
        default=AllocationSettings().late_penalty_per_unit_day,
        help="GBP per unit and day past the promise, in the programme's objective",
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if (args.warehouse is None) == (args.solve_time is None):
        p.error("give --warehouse (a replay) or --solve-time SCALE (a synthetic day), one of them")
    return args


def solve_time(scale: str, settings: AllocationSettings) -> dict:
    """One synthetic day of the simulated ``scale`` (see the module docstring), solved and timed."""
    from ml.sources.simulated import REGIONS, START_DATE, SimulatedStore

    store = SimulatedStore(scale)
    world = store.world
    tables = store.day_tables(START_DATE, ["warehouses", "shipping_lanes"])
    lanes = tables["shipping_lanes"].to_pandas().merge(tables["warehouses"].to_pandas(), on="warehouse_id")
    network = Network.from_lanes(lanes)
    rng = np.random.default_rng(0)
    regions = [r for r, _ in REGIONS]
    share = np.bincount(world.region, minlength=len(regions)) / len(world.region)
    share = share[[regions.index(r) for r in network.regions]]
    daily = world.expected_demand.sum(axis=1)
    stock = rng.poisson(world.expected_demand * 12).astype(float)
    open_orders = rng.poisson(daily[:, None] * share[None, :]).astype(float)
    forecast = daily[:, None] * settings.horizon_days * share[None, :]
    started = time.perf_counter()
    solution = solve(network, stock, open_orders, forecast, world.price, settings, 2.0)
    return {
        "scale": scale,
        "skus": int(len(daily)),
        "warehouses": len(network.warehouses),
        "regions": len(network.regions),
        "open_order_units": float(open_orders.sum()),
        "variables": solution.size[0],
        "constraints": solution.size[1],
        "seconds": round(time.perf_counter() - started, 1),
        "transfers": int(len(solution.transfers)),
        "open_units_unserved": float(solution.unserved["units"].sum()),
    }


def demand_lines(con: duckdb.DuckDBPyConnection, first: date, last: date) -> pd.DataFrame:
    """Sale lines and, in a closed-loop world, lost-sale lines (the customer's region, the warehouse that could
    not serve) dated in ``[first, last]``, in order time."""
    sales = order_lines(con, first - timedelta(days=1), last).assign(kind="sale")
    if not table_exists(con, "staging.stg_lost_sales"):
        return sales
    lost = con.execute(
        "SELECT l.lost_id AS order_id, l.lost_date AS order_date, l.lost_ts AS ts, l.sku, c.region, "
        "l.warehouse_id, l.qty FROM staging.stg_lost_sales AS l JOIN staging.stg_customers AS c "
        "USING (customer_id) WHERE l.lost_date BETWEEN ? AND ?",
        [first, last],
    ).df()
    lost["order_date"] = pd.to_datetime(lost["order_date"]).dt.date
    both = pd.concat([sales, lost.assign(kind="lost")], ignore_index=True)
    return both.sort_values(["ts", "order_id"], kind="stable").reset_index(drop=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    settings = AllocationSettings(horizon_days=args.horizon_days, late_penalty_per_unit_day=args.late_penalty)
    if args.solve_time:
        out = {
            "command": "python -m bench.allocation " + " ".join(sys.argv[1:] if argv is None else argv),
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
            "date": date.today().isoformat(),
            **solve_time(args.solve_time, settings),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
        return 0
    con = duckdb.connect(str(args.warehouse), read_only=True)
    network = network_of(con)
    if network is None:
        raise SystemExit(
            f"{args.warehouse} has no shipping lanes (marts.dim_shipping_lanes): nothing to allocate"
        )
    inventory = con.execute(
        "SELECT sku, warehouse_id, snapshot_date, on_hand, units_sold FROM marts.fct_inventory_daily"
    ).df()
    inventory["snapshot_date"] = pd.to_datetime(inventory["snapshot_date"]).dt.date
    days = sorted(inventory["snapshot_date"].unique())
    first = args.first_day or days[1]
    last = args.last_day or days[-1]
    days = [d for d in days if first <= d <= last]
    closed_loop = table_exists(con, "staging.stg_lost_sales") and bool(
        con.execute("SELECT count(*) FROM staging.stg_lost_sales").fetchone()[0]
    )
    skus = sorted(set(inventory["sku"]))
    sku_index, wh_index = pd.Index(skus), pd.Index(network.warehouses)
    grid = np.zeros((len(days) + 1, len(skus), len(network.warehouses)))  # on hand, and sold, per day
    sold = np.zeros_like(grid)
    day_pos = {d: i + 1 for i, d in enumerate(days)}
    day_pos[first - timedelta(days=1)] = 0
    rows = inventory[inventory["snapshot_date"].isin(list(day_pos))]
    at = (
        rows["snapshot_date"].map(day_pos).to_numpy(),
        sku_index.get_indexer(rows["sku"]),
        wh_index.get_indexer(rows["warehouse_id"]),
    )
    grid[at] = rows["on_hand"].to_numpy(dtype=float)
    sold[at] = rows["units_sold"].to_numpy(dtype=float)
    rise = grid[1:] - grid[:-1] + (sold[1:] if closed_loop else 0.0)
    receipts = np.maximum(rise, 0.0)
    start_stock = grid[0].copy()  # the close of the day before the first

    lines = demand_lines(con, first, last)
    price = list_prices(con, skus)
    history = order_lines(con, first - timedelta(days=MIX_DAYS + 1), last)
    parcel_units = units_per_parcel(history)
    ledgers = {rule: Ledger(stock=start_stock.copy()) for rule in rules}
    solve_seconds = 0.0
    for t, day in enumerate(days):
        todays = indexed_lines(lines[lines["order_date"] == day], skus, network, first)
        forecast = None
        if "optimised" in rules:
            recent = history[
                (history["order_date"] <= day) & (history["order_date"] > day - timedelta(days=MIX_DAYS))
            ]
            forecast = horizon_forecast(con, day, settings.horizon_days, skus, recent, network.regions)
        for rule, ledger in ledgers.items():
            ledger.stock += receipts[t]
            tick = time.perf_counter()
            dispatch_day(rule, t, todays, ledger, network, forecast, price, settings, parcel_units, skus)
            if rule == "optimised":
                solve_seconds += time.perf_counter() - tick
        log.info(
            "[%d/%d] %s: %d lines; %s",
            t + 1,
            len(days),
            day,
            len(todays),
            ", ".join(f"{r} stock {ledgers[r].stock.sum():.0f}" for r in rules),
        )
    demand_units = float(indexed_lines(lines, skus, network, first)["qty"].sum())
    results = {rule: ledger_metrics(ledger, network, demand_units) for rule, ledger in ledgers.items()}
    out = {
        "command": "python -m bench.allocation " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "warehouse": str(args.warehouse),
        "closed_loop": closed_loop,
        "days": [str(days[0]), str(days[-1]), len(days)],
        "warehouses": {w: int(c) for w, c in zip(network.warehouses, network.capacity, strict=True)},
        "demand_lines": int(len(lines)),
        "lost_lines_in_store": int((lines["kind"] == "lost").sum()),
        "demand_units": demand_units,
        "start_stock_units": float(start_stock.sum()),
        "receipt_units": float(receipts[: len(days)].sum()),
        "units_per_parcel": parcel_units,
        "settings": settings.model_dump(),
        "rules": results,
        "optimised_seconds": round(solve_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    table = pd.DataFrame(results).T
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
