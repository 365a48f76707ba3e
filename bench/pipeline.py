"""Pipeline benchmark: wall time per day through landing → raw → dbt marts (or the whole graph), and the same days
as one backfill.

    python -m bench.pipeline --source simulated --scale medium --days 30 --out bench/results/pipeline_medium.json
    python -m bench.pipeline --scale large --days 3 --layers all --skip-backfill --out bench/results/large.json

Each day runs as its own Dagster run (what the daily schedule does) in a fresh temporary data directory, one
after the other, so day N pays for N days of history; then the same N days run as one single-run backfill in
another fresh directory. Everything is real: simulator, Parquet landing files, DuckDB, dbt. Each day also records
the seconds and the peak memory (resident set of the run's process and its children, dbt included, sampled every
half second) of every step, summed by layer (the step's asset groups).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger("bench.pipeline")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="simulated", choices=["simulated", "online_retail"])
    p.add_argument("--scale", default="small", choices=["small", "medium", "large"])
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--skip-backfill", action="store_true", help="only time the day-by-day runs")
    p.add_argument("--workdir", type=Path, default=None, help="where the temporary data directories go")
    p.add_argument(
        "--layers",
        default="marts",
        choices=["marts", "all"],
        help="marts: landing → raw → dbt marts (the protocol of the day-N figures); all: the daily job's whole graph",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the data directories (printed) instead of deleting them"
    )
    return p.parse_args(argv)


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Linux /proc; 0 for a process that just ended)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return total


class MemorySampler:
    """Samples :func:`tree_rss_bytes` of this process every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss_bytes(os.getpid())))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def step_layers(assets) -> dict[str, str]:
    """Step (op) name → layer: the asset groups its assets belong to; separately defined checks are "checks"."""
    layers = {}
    for item in assets:
        groups = sorted(set(getattr(item, "group_names_by_key", {}).values()))
        layers[item.node_def.name] = "+".join(groups) if groups else "checks"
    return layers


def layer_profile(instance, run_id: str, layers: dict[str, str], samples) -> dict[str, dict]:
    """Seconds and peak memory (MiB) per layer of one run, from its step events and the memory samples."""
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_START}).records
    ends = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    ).records
    end_of = {r.event_log_entry.step_key: r.event_log_entry.timestamp for r in ends}
    out: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "peak_rss_mib": 0.0, "steps": 0})
    for record in records:
        step, start = record.event_log_entry.step_key, record.event_log_entry.timestamp
        end = end_of.get(step, start)
        layer = out[layers.get(step, step)]
        layer["seconds"] = round(layer["seconds"] + end - start, 2)
        layer["steps"] += 1
        # a step shorter than the sampling interval still gets the samples either side of it
        peak = max((rss for t, rss in samples if start - 0.5 <= t <= end + 0.5), default=0)
        layer["peak_rss_mib"] = max(layer["peak_rss_mib"], round(peak / 2**20, 1))
    return dict(out)


def _rows_written(result) -> tuple[int, int]:
    """(events landed, rows written) from the run's materialisation metadata.

    rows written = rows loaded into raw + quarantined + rows of every dbt model inside the rebuilt window
    (the partition days plus the lookback), i.e. what the run rewrote.
    """
    events = written = 0
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        md = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
        if key == "landing/events":
            events += int(md.get("dagster/row_count", 0))
        if key.startswith("raw/"):
            written += int(md.get("rows_loaded", 0)) + int(md.get("rows_quarantined", 0))
        elif "rows_in_window" in md:
            written += int(md["rows_in_window"])
    return events, written


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    os.environ["AIGC_SOURCE"] = args.source
    os.environ["AIGC_SCALE"] = args.scale
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from ml.sources import get_source
    from orchestration.defs.ingest.assets import landing_files, raw_tables
    from orchestration.defs.transform.assets import dbt_daily_models
    from orchestration.resources import StoreSourceResource, WarehouseResource, build_resources

    source = get_source(args.source, scale=args.scale)
    days = [source.start_date + timedelta(days=i) for i in range(args.days)]
    if args.layers == "marts":
        # only landing → raw → dbt marts: the protocol of the day-N figures ends at the marts (issue 2)
        assets, selection, run_config = [landing_files, raw_tables, dbt_daily_models], None, None
    else:
        from orchestration.definitions import defs
        from orchestration.defs.schedules import daily_pipeline

        assets, selection = [*defs.assets, *defs.asset_checks], daily_pipeline.selection
        run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    layers = step_layers(assets)

    def resources(data_dir: Path) -> dict:
        # artifacts, exports and the shop's state go under the run's data directory too
        os.environ["AIGC_DATA_DIR"] = str(data_dir)
        res = build_resources()
        res["warehouse"] = WarehouseResource(path=str(data_dir / "warehouse.duckdb"))
        res["store"] = StoreSourceResource(
            name=args.source, scale=args.scale, seed=42, landing_root=str(data_dir / "landing")
        )
        return res

    def run(data_dir: Path, first: date, last: date):
        tags = {}
        key = first.isoformat()
        if last != first:
            tags = {
                ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            }
            key = None
        t0 = time.perf_counter()
        instance = dg.DagsterInstance.ephemeral()
        with MemorySampler() as memory:
            result = dg.materialize(
                assets,
                selection=selection,
                resources=resources(data_dir),
                partition_key=key,
                tags=tags,
                instance=instance,
                run_config=run_config,
            )
        if not result.success:
            raise RuntimeError(f"run for {first}..{last} failed")
        profile = {
            "peak_rss_mib": round(max((rss for _, rss in memory.samples), default=0) / 2**20, 1),
            "layers": layer_profile(instance, result.run_id, layers, memory.samples),
        }
        return time.perf_counter() - t0, result, profile

    # Keep the log readable: the per-event Dagster/dbt lines are noise here.
    logging.getLogger("dagster").setLevel(logging.WARNING)
    out = {
        "source": args.source,
        "scale": args.scale,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "command": "python -m bench.pipeline " + " ".join(sys.argv[1:] if argv is None else argv),
        "layers": args.layers,
        "days": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench_pipeline_", dir=args.workdir))
    try:
        daily_dir = workdir / "daily"
        for i, day in enumerate(days, 1):
            seconds, result, profile = run(daily_dir, day, day)
            events, written = _rows_written(result)
            out["days"].append(
                {
                    "date": day.isoformat(),
                    "wall_seconds": round(seconds, 2),
                    "events": events,
                    "rows_written": written,
                    # The 1-minute load average after the run: on a shared machine it says how contended it was.
                    "load_average_1m": round(os.getloadavg()[0], 2),
                    **profile,
                }
            )
            log.info(
                "day %d/%d %s: %.1f s, %d events, %d rows written",
                i,
                len(days),
                day,
                seconds,
                events,
                written,
            )
        if not args.skip_backfill:
            seconds, _, _ = run(workdir / "backfill", days[0], days[-1])
            out["backfill_single_run_seconds"] = round(seconds, 2)
            log.info("single-run backfill of %d days: %.1f s", len(days), seconds)
    finally:
        if args.keep:
            print(f"data directories kept under {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    walls = [d["wall_seconds"] for d in out["days"]]
    if len(walls) >= 2:
        out["summary"] = {
            "day_1_seconds": walls[0],
            "day_2_seconds": walls[1],
            "day_n_seconds": walls[-1],
            "day_n_over_day_2": round(walls[-1] / walls[1], 3),
            "median_seconds": sorted(walls)[len(walls) // 2],
        }
        # the same ratio per layer: which layer grows with history
        first, last = out["days"][1]["layers"], out["days"][-1]["layers"]
        out["summary"]["layer_day_n_over_day_2"] = {
            name: round(last[name]["seconds"] / first[name]["seconds"], 3)
            for name in last
            if first.get(name, {}).get("seconds")
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out.get("summary", {}), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
