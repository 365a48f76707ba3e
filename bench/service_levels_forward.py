"""Do the tuned service levels hold on the days *after* they were chosen? A walk-forward test on a warehouse.

    python -m bench.service_levels_forward [--warehouse PATH] --out service_levels_forward.json

``supply/service_levels`` chooses, for day D, the levels per demand class that would have reached the fill-rate
target over the days up to D (it only looks back). This replays, for every tuned day D with ``--window-days``
trading days of demand and stored forecasts after it, the plan's (s, S) policy over those following days
(:class:`ml.inventory.tuning.ForwardReplay`: the stored daily forecasts, each product's lead time, lost sales)
under three settings:

- ``tuned_by_class``: the levels per class stored for D (what the plan uses with ``use_tuned_service_levels``);
- ``tuned_uniform``: the one level for all SKUs stored for D;
- ``fixed``: ``--fixed-level`` for every SKU (the plan's default run config, 0.95);
- ``naive``: the yardstick, a 28-day moving average plus the cover in days that the same tuning chose for D
  (``naive_cover_days``; days without one, and warehouses written before that column existed, have no naive
  row).

With ``--hindsight``, two oracles per window as well, tuned on the very window they are scored on (what no
policy can know; they show how lean each policy family could be at the target, separating the policy from the
tuning rule): ``hindsight_uniform``, the smallest uniform level whose replay reaches the target there, and
``hindsight_naive``, the smallest naive cover that does.

It reports, per setting, how many forward windows reach the target and the mean fill rate and stock, and how
much the tuned levels move from one tuned day to the next (in steps of the tuning grid). The forward windows of
consecutive days overlap: they are not independent trials. Reads the warehouse only (``supply.service_levels``,
``supply.demand_forecast``, ``marts.fct_daily_sku_demand``, ``marts.dim_products``); materialise a range of
days first, e.g. ``AIGC_DATA_DIR=/tmp/or make demo SOURCE=online_retail DAYS=180``. The demand replayed is the
one the platform plans on: the mart's units net of the sales undone the same day
(:func:`ml.forecast.marts.planning_demand`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench.forecast import machine, versions
from ml.forecast.marts import demand_classes_as_of, planning_demand
from ml.inventory.tuning import ALPHA_GRID, COVER_GRID, ForwardReplay, smallest_feasible


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.service_levels_forward", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--warehouse", help="DuckDB file (default: the platform's, ml.settings)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--window-days", type=int, default=28, help="trading days replayed after each day")
    parser.add_argument("--fixed-level", type=float, default=0.95, help="the fixed level compared against")
    parser.add_argument(
        "--order-cycle", type=int, default=7, help="days an order covers beyond s (the plan's)"
    )
    parser.add_argument(
        "--choose-until",
        type=dt.date.fromisoformat,
        help=(
            "YYYY-MM-DD: also summarise two parts, 'choice' (tuned days up to it) and 'judge' (tuned days from the "
            "last demand day of the last choice window on, so no demand day is in both)"
        ),
    )
    parser.add_argument(
        "--hindsight",
        action="store_true",
        help="also the oracles tuned on each forward window itself (about 12 more replays per window)",
    )
    return parser.parse_args(argv)


def grid_step(level: float) -> int:
    """Index of ``level`` on the tuning grid (the nearest grid value: stored levels are grid values)."""
    return int(np.argmin(np.abs(np.asarray(ALPHA_GRID) - level)))


def stability(levels: pd.DataFrame) -> dict:
    """How much the tuned levels move between consecutive tuned days: per class, the share of day-to-day changes
    and the mean absolute change in grid steps; and the share of days on which any class changed."""
    wide = levels.pivot(index="as_of_date", columns="demand_class", values="service_level").sort_index()
    steps = wide.apply(lambda col: col.map(lambda v: grid_step(v) if pd.notna(v) else np.nan))
    diff = steps.diff().iloc[1:]
    out = {"tuned_days": len(wide), "share_of_days_any_class_changed": None, "by_class": {}}
    if len(diff):
        out["share_of_days_any_class_changed"] = round(float((diff.fillna(0) != 0).any(axis=1).mean()), 4)
    for c in wide.columns:
        d = diff[c].dropna()
        out["by_class"][c] = {
            "days": int(wide[c].notna().sum()),
            "level_min": float(wide[c].min()),
            "level_median": float(wide[c].median()),
            "level_max": float(wide[c].max()),
            "share_changed": round(float((d != 0).mean()), 4) if len(d) else None,
            "mean_abs_step_change": round(float(d.abs().mean()), 4) if len(d) else None,
        }
    return out


def summarise(rows: list[dict], setting: str) -> dict | None:
    """One setting over its forward windows; ``inventory_change_vs_X`` is its total stock over the windows
    that setting X also has, relative to X's (-0.2: 20% less than X), for X in fixed, naive and hindsight_naive."""
    rows = [r for r in rows if setting in r]
    if not rows:
        return None
    fills = np.array([r[setting]["fill_rate"] for r in rows])
    stock = np.array([r[setting]["avg_inventory_units"] for r in rows])
    targets = np.array([r["target_fill_rate"] for r in rows])
    out = {
        "windows": len(rows),
        "windows_reaching_target": int((fills >= targets).sum()),
        "mean_fill_rate": round(float(fills.mean()), 4),
        "min_fill_rate": round(float(fills.min()), 4),
        "mean_avg_inventory_units": round(float(stock.mean()), 1),
    }
    for reference in ("fixed", "naive", "hindsight_naive"):
        both = [r for r in rows if reference in r]
        ours = sum(r[setting]["avg_inventory_units"] for r in both)
        ref = sum(r[reference]["avg_inventory_units"] for r in both)
        if reference != setting and ref:
            out[f"inventory_change_vs_{reference}"] = round(ours / ref - 1, 4)
    return out


SETTINGS = ("tuned_by_class", "tuned_uniform", "fixed", "naive", "hindsight_uniform", "hindsight_naive")


def summarise_all(rows: list[dict]) -> dict:
    """Every setting that has windows in ``rows``, by :func:`summarise`."""
    return {s: summary for s in SETTINGS if (summary := summarise(rows, s)) is not None}


def split(rows: list[dict], choose_until: dt.date) -> dict:
    """Two parts of a walk-forward for a choice made on one and judged on the other: ``choice``, the rows whose
    tuned day is up to ``choose_until``; ``judge``, the rows whose tuned day is on or after the last demand day of
    the last choice window (a window's demand days are after its tuned day, so the two parts share none). Rows in
    between are dropped and counted."""
    choice = [r for r in rows if dt.date.fromisoformat(r["day"]) <= choose_until]
    if not choice:
        raise ValueError(f"no tuned day with a forward window up to {choose_until}")
    boundary = max(dt.date.fromisoformat(r["window_end"]) for r in choice)
    judge = [r for r in rows if dt.date.fromisoformat(r["day"]) >= boundary]
    return {
        "choose_until": choose_until.isoformat(),
        "judge_from": boundary.isoformat(),
        "dropped_windows": len(rows) - len(choice) - len(judge),
        "choice": summarise_all(choice),
        "judge": summarise_all(judge),
    }


def hindsight(forward: ForwardReplay, window, target: float) -> dict:
    """The oracles on ``window``: the smallest uniform level and naive cover reaching ``target`` on it (the grid's
    top when nothing does), with their replays."""
    level, (ours,) = smallest_feasible(ALPHA_GRID, lambda a, w: forward.run(w, a), [window], target)
    out = {"hindsight_level": level, "hindsight_uniform": ours.as_dict()}
    if forward.naive_possible(window):
        cover, (naive,) = smallest_feasible(
            COVER_GRID, lambda c, w: forward.run_naive(w, c), [window], target
        )
        out |= {"hindsight_cover_days": cover, "hindsight_naive": naive.as_dict()}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.warehouse is None:
        from ml.settings import warehouse_path

        args.warehouse = str(warehouse_path())
    started = time.perf_counter()
    with duckdb.connect(args.warehouse, read_only=True) as con:
        levels = con.execute("SELECT * FROM supply.service_levels ORDER BY as_of_date, demand_class").df()
        products = con.execute("SELECT sku, lead_time_days, price FROM marts.dim_products").df()
        # every horizon day, as the tuning reads them: the forecast's implied dispersion averages over all
        forecasts = con.execute(
            "SELECT as_of_date, sku, horizon_day, mean, q90 FROM supply.demand_forecast"
        ).df()
        # the demand the platform planned on (net of sales undone the same day), as the asset replays it
        demand = planning_demand(con.execute("SELECT * FROM marts.fct_daily_sku_demand").df())
    if "naive_cover_days" not in levels:
        print("supply.service_levels has no naive_cover_days (written by an older version): no naive rows")
    if levels.empty:
        print("supply.service_levels is empty: materialise more days first", file=sys.stderr)
        return 1
    print(
        f"{levels['as_of_date'].nunique()} tuned days, {forecasts['as_of_date'].nunique()} forecast days, "
        f"{demand['sku'].nunique()} SKUs; replaying {args.window_days} trading days after each tuned day ...",
        flush=True,
    )
    forward = ForwardReplay(forecasts, demand, products, order_cycle=args.order_cycle)
    rows = []
    tuned_days = sorted(levels["as_of_date"].unique())
    for i, day in enumerate(tuned_days):
        window = forward.window(pd.Timestamp(day), args.window_days, demand_classes_as_of(demand, day))
        if window is None:
            continue
        today = levels[levels["as_of_date"] == day]
        by_class = dict(zip(today["demand_class"], today["service_level"].astype(float), strict=True))
        uniform = float(today["uniform_level"].iloc[0])
        row = {
            "day": str(pd.Timestamp(day).date()),
            "target_fill_rate": float(today["target_fill_rate"].iloc[0]),
            "levels": by_class,
            "uniform_level": uniform,
            "window_end": str(window.days[-1].date()),  # the last demand day replayed
            "skus": len(window.classes),
        }
        for name, level in (
            ("tuned_by_class", by_class),
            ("tuned_uniform", uniform),
            ("fixed", args.fixed_level),
        ):
            row[name] = forward.run(window, level).as_dict()
        cover = today.get("naive_cover_days", pd.Series([None])).iloc[0]
        naive = forward.run_naive(window, cover)
        if naive is not None:
            row["naive_cover_days"] = float(cover)
            row["naive"] = naive.as_dict()
        if args.hindsight:
            row |= hindsight(forward, window, row["target_fill_rate"])
        rows.append(row)
        print(
            f"[{i + 1}/{len(tuned_days)}] {row['day']}: fill by class {row['tuned_by_class']['fill_rate']:.3f}, "
            f"uniform {row['tuned_uniform']['fill_rate']:.3f}, fixed {row['fixed']['fill_rate']:.3f}"
            + (f", naive {row['naive']['fill_rate']:.3f}" if naive is not None else ""),
            flush=True,
        )
    if not rows:
        print(f"no tuned day has {args.window_days} trading days of forecasts after it", file=sys.stderr)
        return 1
    result = {
        "protocol": (
            f"walk-forward: levels stored for day D replayed over the next {args.window_days} trading days "
            "on the stored daily forecasts (lost sales, each product's lead time)"
        ),
        "warehouse": str(args.warehouse),
        "fixed_level": args.fixed_level,
        "summary": summarise_all(rows),
        **({"split": split(rows, args.choose_until)} if args.choose_until else {}),
        "stability": stability(levels),
        "days": rows,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "date": dt.date.today().isoformat(),
        "versions": versions(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    if args.choose_until:
        print(json.dumps(result["split"], indent=2))
    print(json.dumps(result["stability"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
