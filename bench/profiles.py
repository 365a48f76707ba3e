"""Profile-step benchmark: seconds per day of the whole profile step as history grows.

    python -m bench.profiles --scale medium --days 60 --out bench/results/profiles_medium.json
    python -m bench.profiles --source online_retail --days 374 --profile-from-day 360 --out ...

The source's days are written to the landing zone, loaded by the raw loader and modelled up to the marts by one
dbt build into a fresh on-disk DuckDB (not timed). Then, day after day, the profile step runs as the pipeline
runs it: the dbt build of the feature layer for that day (its window: the day and the lookback; daily slices,
customer/item/place windows, basket associations), then user profiles (with the churn model from day 37 on),
item profiles, place profiles and customer segments. The claim under test (issue 4): because the windows are
running sums and the preference vectors a decayed state, day 60 costs about what day 10 costs (target: within
1.2x). Wall and CPU seconds are recorded per step (dbt's CPU is its process's); the ratio uses the median of days
8-12 against the median of the last five days, which damps the noise of a shared machine. dbt's fixed cost per
invocation (about 4-5 s of start-up and parsing) is part of every day.

Quality figures come with it: on the simulator, the mean per-customer Spearman correlation between recovered
and true category affinity on the last day (customers with >= 20 views in 30 days) against the popularity
baseline; the churn model's out-of-time AUC; and the item embeddings' nearest-neighbour category agreement.
With ``--source online_retail`` the real replay runs instead (``--scale`` is ignored); ``--profile-from-day``
builds the feature layer of the days before it in one dbt run, without profiles, which keeps a year quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger("bench.profiles")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="simulated", choices=["simulated", "online_retail"])
    p.add_argument("--scale", default="small", choices=["small", "medium", "large"])
    p.add_argument("--days", type=int, default=60, help="number of simulated days (>= 15)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    p.add_argument(
        "--profile-from-day",
        type=int,
        default=0,
        help="no profiles before this day index (features in one run)",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON file to write (default: print only)")
    p.add_argument("--workdir", type=Path, default=None, help="where the temporary DuckDB file goes")
    return p.parse_args(argv)


def affinity_recovery(con, store, day: date) -> dict:
    """Mean per-customer Spearman(recovered, true category affinity) and the popularity baseline."""
    import numpy as np
    from scipy.stats import rankdata

    truth = store.world.true_category_affinity
    categories = {c: i for i, c in enumerate(truth.columns)}
    prof = con.execute(
        "select customer_id, category_affinity from features.user_profiles "
        "where as_of_date = ? and views_30d >= 20 and category_affinity is not null",
        [day],
    ).df()
    recovered = np.zeros((len(prof), len(categories)))
    for row, affinity in enumerate(prof["category_affinity"]):
        for entry in affinity:
            recovered[row, categories[entry["category"]]] = entry["share"]
    true = truth.loc[prof["customer_id"]].to_numpy()

    def spearman(a, b):
        ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
        ra -= ra.mean(axis=1, keepdims=True)
        rb -= rb.mean(axis=1, keepdims=True)
        return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))

    popularity = np.broadcast_to(truth.mean().to_numpy(), true.shape)
    top = np.array([categories[a[0]["category"]] for a in prof["category_affinity"]])
    return {
        "customers": len(prof),
        "mean_spearman": float(np.nanmean(spearman(recovered, true))),
        "mean_spearman_popularity_baseline": float(np.nanmean(spearman(popularity, true))),
        "top_category_in_true_top2": float(
            (np.argsort(-true, axis=1)[:, :2] == top[:, None]).any(axis=1).mean()
        ),
    }


def _dbt_features(warehouse: Path, first: date, last: date) -> tuple[float, float]:
    """One dbt build of the feature layer over ``first..last``: (wall, CPU) seconds of the dbt process."""
    import resource

    from ml.dbt import run_dbt

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    run_dbt(warehouse, first, last, "tag:features")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - w0, cpu


def run(
    source_name: str, scale: str, days: int, seed: int, threads: int, workdir: Path | None, profile_from: int
) -> dict:
    import duckdb

    from ml.dbt import build_warehouse
    from ml.profiles import customer_segments, item_profiles, place_profiles, user_profiles
    from ml.sources import get_source

    steps = [
        ("user_profiles", user_profiles),
        ("item_profiles", item_profiles),
        ("place_profiles", place_profiles),
        ("customer_segments", customer_segments),
    ]
    store = get_source(source_name, scale=scale, seed=seed)
    per_day: list[dict] = []
    quality: dict = {}
    first_day, last_day = store.start_date, store.start_date + timedelta(days=days - 1)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t0 = time.perf_counter()
        warehouse = build_warehouse(
            Path(tmp), store, first_day, last_day, "tag:staging tag:intermediate tag:marts"
        )
        log.info(
            "%d days landed, loaded and modelled up to the marts in %.0fs", days, time.perf_counter() - t0
        )
        if profile_from > 0:
            _dbt_features(warehouse, first_day, first_day + timedelta(days=profile_from - 1))
            log.info("feature layer of days 0..%d built in one run", profile_from - 1)
        for i in range(profile_from, days):
            day: date = first_day + timedelta(days=i)
            record: dict = {"day": i, "date": day.isoformat()}
            wall, cpu = _dbt_features(warehouse, day, day)
            record["dbt_features_s"], record["dbt_features_cpu_s"] = round(wall, 3), round(cpu, 3)
            wall_total, cpu_total = wall, cpu
            con = duckdb.connect(str(warehouse))
            con.execute(f"set threads = {int(threads)}")
            record["events"] = con.execute(
                "select count(*) from marts.fct_events where event_date = ?", [day]
            ).fetchall()[0][0]
            for name, step in steps:
                w0, c0 = time.perf_counter(), time.process_time()
                out = step(con, day)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                record[f"{name}_s"], record[f"{name}_cpu_s"] = round(wall, 3), round(cpu, 3)
                wall_total += wall
                cpu_total += cpu
                if name == "user_profiles":
                    record["churn_auc"] = out["metrics"].get("churn_auc")
                    record["churn_auc_later_window"] = out["metrics"].get("churn_auc_later_window")
                    record["customers"] = out["row_count"]
                    record["pref_state_rows"] = out["metrics"].get("pref_state_rows")
                if name == "item_profiles":
                    record["embedding_nn_same_category"] = out["metrics"].get("embedding_nn_same_category")
                if name == "customer_segments":
                    record["segments_k"] = out["metrics"]["k"]
                    record["segments_moved_share"] = out["metrics"]["moved_share_vs_previous_day"]
                    quality["last_segments_markdown"] = out["markdown"]["segments"]
            record["profile_step_s"], record["profile_step_cpu_s"] = round(wall_total, 3), round(cpu_total, 3)
            per_day.append(record)
            log.info(
                "day %d (%s): %d events; profile step %.2fs wall, %.2fs cpu (dbt features %.2fs, users %.2fs)",
                i,
                day,
                record["events"],
                wall_total,
                cpu_total,
                record["dbt_features_s"],
                record["user_profiles_s"],
            )
            if i == days - 1 and source_name == "simulated":
                quality["affinity_recovery_last_day"] = affinity_recovery(con, store, day)
            con.close()
    return {"per_day": per_day, "quality": quality}


def summarise(per_day: list[dict]) -> dict:
    def med(key: str, rows: list[dict]) -> float:
        return statistics.median(r[key] for r in rows)

    if len(per_day) < 10:
        return {}
    early = [r for r in per_day if 8 <= r["day"] <= 12] or per_day[:5]
    late = per_day[-5:]
    out = {}
    for key in (
        "profile_step_s",
        "profile_step_cpu_s",
        "user_profiles_s",
        "dbt_features_s",
        "dbt_features_cpu_s",
    ):
        out[f"day10_{key}"] = med(key, early)
        out[f"last_{key}"] = med(key, late)
        out[f"ratio_{key}"] = med(key, late) / max(med(key, early), 1e-9)
    out["target_ratio"] = 1.2
    out["meets_target_wall"] = out["ratio_profile_step_s"] <= 1.2
    out["meets_target_cpu"] = out["ratio_profile_step_cpu_s"] <= 1.2
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.days < 15:
        raise SystemExit("--days must be at least 15 (the comparison uses days 8-12 and the last five days)")
    started = time.time()
    result = run(
        args.source, args.scale, args.days, args.seed, args.threads, args.workdir, args.profile_from_day
    )
    result["summary"] = summarise(result["per_day"])
    result["config"] = {
        "source": args.source,
        "scale": args.scale if args.source == "simulated" else None,
        "profile_from_day": args.profile_from_day,
        "days": args.days,
        "seed": args.seed,
        "duckdb_threads": args.threads,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs (shared with other jobs)",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "total_seconds": round(time.time() - started, 1),
    }
    print(json.dumps({"summary": result["summary"], "quality": result["quality"]}, indent=2, default=str))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
