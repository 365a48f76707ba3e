"""A/A calibration of the uplift intervals: how often the 95% bootstrap interval excludes zero when both arms
were treated alike.

    python -m bench.uplift_calibration --scale small --days 28 --salts 20 --out bench/results/uplift_calibration.json

The simulated store's own days (open loop: no list is shown, so nothing differs between arms) are split into two
arms many times with the platform's hashed split (:func:`ml.recommend.experiment.arms`, a different salt each
time) and compared with the online metrics' bootstrap (:func:`ml.feedback.online.compare_arms`) on revenue per
visiting customer, one day at a time and pooled over a week. A calibrated 95% interval excludes zero in about 5%
of these A/A comparisons; clearly more means the intervals are too narrow for this data (heavy-tailed spend,
few control customers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.uplift_calibration", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--scale", default="small", choices=["small", "medium", "large"])
    p.add_argument("--days", type=int, default=28, help="days of the store from its first day")
    p.add_argument("--salts", type=int, default=20, help="A/A splits per day")
    p.add_argument("--control-share", type=float, default=0.10)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--out", type=Path, required=True)
    return p.parse_args(argv)


def visitors_revenue(store, day: date) -> pd.DataFrame:
    """Every customer with a session on ``day`` and the net revenue of their sale lines that day."""
    tables = store.day_tables(day, ["events", "orders", "order_items"])
    events = tables["events"].to_pandas()
    orders = tables["orders"].to_pandas()
    lines = tables["order_items"].to_pandas()
    lines = lines[lines["qty"] > 0].merge(orders[["order_id", "customer_id"]], on="order_id")
    spend = (lines["qty"] * lines["unit_price"] * (1 - lines["discount"])).groupby(lines["customer_id"]).sum()
    visitors = pd.Index(events["customer_id"].dropna().unique(), name="customer_id")
    revenue = spend.reindex(visitors, fill_value=0.0)
    return pd.DataFrame({"exposure_date": day, "customer_id": visitors, "revenue": revenue.to_numpy()})


def main(argv=None) -> int:
    args = parse_args(argv)
    from ml.feedback.online import METRIC_BY_NAME, compare_arms
    from ml.recommend.experiment import CONTROL, TREATMENT, arms
    from ml.sources.simulated import SimulatedStore

    store = SimulatedStore(args.scale, 42)
    days = [store.start_date + timedelta(days=i) for i in range(args.days)]
    rows = pd.concat([visitors_revenue(store, d) for d in days], ignore_index=True)
    metric = METRIC_BY_NAME["revenue"]
    results = {"daily": [], "weekly": []}
    for salt in range(args.salts):
        arm = pd.Series(
            arms(rows["customer_id"].unique(), args.control_share, salt=f"aa-{salt}"),
            index=rows["customer_id"].unique(),
        )
        rows["arm"] = rows["customer_id"].map(arm)
        windows = {
            "daily": [[d] for d in days],
            "weekly": [days[i : i + 7] for i in range(0, len(days) - 6, 7)],
        }
        for kind, groups in windows.items():
            for group in groups:
                part = rows[rows["exposure_date"].isin(group)]
                r = compare_arms(
                    part[part["arm"] == TREATMENT],
                    part[part["arm"] == CONTROL],
                    metric,
                    seed=salt * 1000 + group[0].toordinal(),
                    resamples=args.resamples,
                )
                results[kind].append(r["ci_low"] > 0 or r["ci_high"] < 0)
        print(f"salt {salt + 1}/{args.salts}", file=sys.stderr)
    out = {
        "command": "python -m bench.uplift_calibration " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "scale": args.scale,
        "visiting_customers_per_day": float(rows.groupby("exposure_date").size().mean()),
        "control_share": args.control_share,
        **{
            f"{kind}_false_positive_rate": sum(flags) / len(flags) for kind, flags in results.items() if flags
        },
        **{f"{kind}_comparisons": len(flags) for kind, flags in results.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
