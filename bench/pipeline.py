"""Pipeline benchmark: wall time per day through landing → raw → dbt marts (or the whole graph), and the same days
as one backfill.

    python -m bench.pipeline --source simulated --scale medium --days 30 --out bench/results/pipeline_medium.json
    python -m bench.pipeline --scale large --days 3 --layers all --skip-backfill --out bench/results/large.json
    python -m bench.pipeline --scale small --days 365 --layers all --measure-windows 24-30,359-365 --skip-backfill \
        --out bench/results/pipeline_small_365days.json
    python -m bench.pipeline --scale large --days 3 --layers all --skip-backfill --resume KEPT/daily --from-day 3 \
        --out bench/results/large_day3.json

Each day runs as its own Dagster run (what the daily schedule does), each run in a new process (as Dagster's run
launcher starts one per run, so a run's memory is not what earlier runs left behind), in a fresh temporary data
directory, one after the other, so day N pays for N days of history; then the same N days run as one single-run
backfill in another fresh directory. Everything is real: simulator, Parquet landing files, DuckDB, dbt. Each day
also records the seconds and the peak memory (resident set of the run's process and its children, dbt included,
sampled every half second) of every step (and the memory it started with), summed by layer (the step's groups).

``--resume`` continues from a copy of a directory an earlier run kept (``--keep``): only the days from
``--from-day`` on run, on top of the days it holds. ``--only`` runs just the named assets of each day, to measure
one step again on a kept directory (for example ``--from-day 3 --only recommend/recommendations`` on a directory
that holds day 3 re-runs that day's lists; the partition is replaced, as a re-run in Dagster replaces it).

With ``--measure-windows``, only the days inside the windows run one per run (and are reported); the days between
them are built by one single-run backfill of every layer except the recommenders and what reads them, whose
per-day training would make a year of history cost hours. The days of a window run the whole graph, so the first
window days train from scratch (no bundle of the day before) and the later ones warm-start as a daily run does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from bench import source_commit

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
    p.add_argument(
        "--measure-windows",
        type=parse_windows,
        default=None,
        metavar="A-B,C-D",
        help="run only these day numbers (1-based, inclusive) one per run; fill the days between by a backfill",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="start from a copy of a data directory kept by --keep (its 'daily' folder) instead of an empty one",
    )
    p.add_argument(
        "--from-day",
        type=int,
        default=1,
        metavar="N",
        help="with --resume: the first day number to run (the kept directory holds days 1..N-1)",
    )
    p.add_argument(
        "--only",
        default=None,
        metavar="KEY[,KEY]",
        help=(
            "with --layers all: run only these assets (with their checks) each day, e.g. recommend/recommendations "
            "on a --resume directory, to measure one step again"
        ),
    )
    args = p.parse_args(argv)
    if args.only:
        if args.layers != "all":
            p.error("--only needs --layers all")
        args.only = args.only.split(",")
        unknown = sorted(set(args.only) - daily_asset_keys())
        if unknown:
            p.error(f"--only: not assets of the daily job: {', '.join(unknown)}")
    if (args.resume is None) != (args.from_day == 1):
        p.error("--resume and --from-day go together (a kept directory holds the days before --from-day)")
    if args.resume is not None and not args.skip_backfill:
        p.error("--resume needs --skip-backfill (the backfill starts from an empty directory)")
    if args.measure_windows and args.measure_windows[-1][1] > args.days:
        p.error(f"--measure-windows reaches day {args.measure_windows[-1][1]}, past --days {args.days}")
    if args.measure_windows and not args.skip_backfill:
        p.error(
            "--measure-windows needs --skip-backfill (a backfill of every day of every layer is what it avoids)"
        )
    return args


def daily_asset_keys() -> set[str]:
    """The keys (``group/name``) of the assets the daily job materialises."""
    from orchestration.definitions import defs
    from orchestration.defs.schedules import daily_pipeline

    graph = defs.resolve_asset_graph()
    return {key.to_user_string() for key in daily_pipeline.selection.resolve(graph)}


def parse_windows(text: str) -> list[tuple[int, int]]:
    """``"24-30,359-365"`` → ``[(24, 30), (359, 365)]``: sorted, non-overlapping, 1-based day numbers."""
    windows = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        try:
            window = (int(first), int(last or first))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a window of day numbers: {part!r} (expected A-B)"
            ) from None
        if not 1 <= window[0] <= window[1]:
            raise argparse.ArgumentTypeError(f"window {part!r} must satisfy 1 <= A <= B")
        windows.append(window)
    windows.sort()
    for (_, end), (start, _) in itertools.pairwise(windows):
        if start <= end:
            raise argparse.ArgumentTypeError(f"windows overlap: {text!r}")
    return windows


def run_plan(n_days: int, windows: list[tuple[int, int]] | None) -> list[tuple[str, int, int]]:
    """The runs of a benchmark, in order: ``("day", n, n)`` one day in its own run, ``("fill", a, b)`` days a..b
    in one backfill run. Without windows every day is its own run."""
    if not windows:
        return [("day", n, n) for n in range(1, n_days + 1)]
    plan, next_day = [], 1
    for first, last in windows:
        if next_day < first:
            plan.append(("fill", next_day, first - 1))
        plan.extend(("day", n, n) for n in range(first, last + 1))
        next_day = last + 1
    return plan


def resume_plan(plan: list[tuple[str, int, int]], from_day: int) -> list[tuple[str, int, int]]:
    """The runs of ``plan`` from day ``from_day`` on; a fill that straddles it keeps its days from there."""
    return [(kind, max(first, from_day), last) for kind, first, last in plan if last >= from_day]


SAMPLE_SECONDS = 0.5
"""How often the memory of a run's process tree is sampled."""


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

    def __init__(self, interval: float = SAMPLE_SECONDS):
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


def step_profile(instance, run_id: str, samples) -> dict[str, dict]:
    """Per step of one run: its seconds, its peak memory (MiB) and the memory when it started (what the
    in-process executor carried in from earlier steps), from its step events and the memory samples."""
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_START}).records
    ends = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    ).records
    end_of = {r.event_log_entry.step_key: r.event_log_entry.timestamp for r in ends}
    out = {}
    for record in records:
        step, start = record.event_log_entry.step_key, record.event_log_entry.timestamp
        end = end_of.get(step, start)
        # a step shorter than the sampling interval still gets the samples either side of it
        near = SAMPLE_SECONDS
        peak = max((rss for t, rss in samples if start - near <= t <= end + near), default=0)
        before = [rss for t, rss in samples if t <= start]
        out[step] = {
            "seconds": round(end - start, 2),
            "peak_rss_mib": round(peak / 2**20, 1),
            "start_rss_mib": round((before[-1] if before else 0) / 2**20, 1),
        }
    return out


def layer_profile(steps: dict[str, dict], layers: dict[str, str]) -> dict[str, dict]:
    """Seconds and peak memory (MiB) per layer, from :func:`step_profile`."""
    out: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "peak_rss_mib": 0.0, "steps": 0})
    for step, profile in steps.items():
        layer = out[layers.get(step, step)]
        layer["seconds"] = round(layer["seconds"] + profile["seconds"], 2)
        layer["steps"] += 1
        layer["peak_rss_mib"] = max(layer["peak_rss_mib"], profile["peak_rss_mib"])
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


def _layer_ratios(first: dict, last: dict) -> dict[str, float]:
    return {
        name: round(last[name]["seconds"] / first[name]["seconds"], 3)
        for name in last
        if first.get(name, {}).get("seconds")
    }


def day_summary(days: list[dict]) -> dict:
    """Day 1, day 2, day N and the ratio day N / day 2, in total and per layer (which layer grows with history)."""
    walls = [d["wall_seconds"] for d in days]
    return {
        "day_1_seconds": walls[0],
        "day_2_seconds": walls[1],
        "day_n_seconds": walls[-1],
        "day_n_over_day_2": round(walls[-1] / walls[1], 3),
        "median_seconds": sorted(walls)[len(walls) // 2],
        "layer_day_n_over_day_2": _layer_ratios(days[1]["layers"], days[-1]["layers"]),
    }


def window_summary(days: list[dict], windows: list[tuple[int, int]]) -> dict:
    """Per measured window: mean seconds in total and per layer; then the last window against the first (mean
    over the window, so a weekly retraining falls in both), and the last day against the first window's last day;
    with more than two windows, the last against each one between as well (a window measured after the steps' own
    windows have filled tells growth with history apart from windows still filling)."""

    def mean_layers(window_days: list[dict]) -> dict[str, dict]:
        names = {name for d in window_days for name in d["layers"]}
        return {
            name: {
                "seconds": round(
                    sum(d["layers"].get(name, {}).get("seconds", 0.0) for d in window_days)
                    / len(window_days),
                    2,
                )
            }
            for name in sorted(names)
        }

    by_window = []
    for first, last in windows:
        inside = [d for d in days if first <= d["day_number"] <= last]
        by_window.append(
            {
                "days": [first, last],
                "mean_seconds": round(sum(d["wall_seconds"] for d in inside) / len(inside), 2),
                "peak_rss_mib": max(d["peak_rss_mib"] for d in inside),
                "layers": mean_layers(inside),
                "last_day": inside[-1],
            }
        )
    head, tail = by_window[0], by_window[-1]
    out = {
        "windows": [{k: v for k, v in w.items() if k != "last_day"} for w in by_window],
        **_last_window_over(head, tail, "first_window"),
    }
    if len(by_window) > 2:
        out["last_window_over_middle_windows"] = [
            {"days": middle["days"], **_last_window_over(middle, tail, "window")}
            for middle in by_window[1:-1]
        ]
    return out


def _last_window_over(earlier: dict, last: dict, name: str) -> dict:
    """The last window against an ``earlier`` one (both of :func:`window_summary`): the ratio of their mean
    seconds in total and per layer, and of their last days'."""
    return {
        f"mean_last_over_{name}": round(last["mean_seconds"] / earlier["mean_seconds"], 3),
        f"layer_mean_last_over_{name}": _layer_ratios(earlier["layers"], last["layers"]),
        f"day_{last['days'][1]}_over_day_{earlier['days'][1]}": round(
            last["last_day"]["wall_seconds"] / earlier["last_day"]["wall_seconds"], 3
        ),
        "layer_last_day_ratio": _layer_ratios(earlier["last_day"]["layers"], last["last_day"]["layers"]),
    }


def execute_run(spec: dict) -> dict:
    """One Dagster run of ``spec``'s days in this process: what a launched run does (the daily schedule's run
    launcher starts a new process per run). Returns its seconds, landed events, rows written and memory profile.

    ``spec``: source, scale, layers (``marts``/``all``), data_dir, first/last (ISO dates), fill (bool: the fill
    selection, every layer but the recommenders and what reads them), only (asset keys as ``a/b`` strings, or
    None: the whole selection).
    """
    os.environ["AIGC_SOURCE"] = spec["source"]
    os.environ["AIGC_SCALE"] = spec["scale"]
    # artifacts, exports and the shop's state go under the run's data directory too
    os.environ["AIGC_DATA_DIR"] = spec["data_dir"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    # Keep the log readable: the per-event Dagster/dbt lines are noise here.
    logging.getLogger("dagster").setLevel(logging.WARNING)
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from orchestration.defs.ingest.assets import landing_files, raw_tables
    from orchestration.defs.transform.assets import dbt_daily_models
    from orchestration.resources import StoreSourceResource, WarehouseResource, build_resources

    data_dir = Path(spec["data_dir"])
    if spec["layers"] == "marts":
        # only landing → raw → dbt marts: the protocol of the day-N figures ends at the marts (issue 2)
        assets, selection, run_config = [landing_files, raw_tables, dbt_daily_models], None, None
    else:
        from orchestration.definitions import defs
        from orchestration.defs.schedules import daily_pipeline

        assets, selection = [*defs.assets, *defs.asset_checks], daily_pipeline.selection
        run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if spec["fill"] and selection is not None:
        selection = selection - dg.AssetSelection.groups("recommend").downstream()
    if spec.get("only"):
        selection = dg.AssetSelection.assets(*(dg.AssetKey.from_user_string(key) for key in spec["only"]))
    resources = build_resources()
    resources["warehouse"] = WarehouseResource(path=str(data_dir / "warehouse.duckdb"))
    resources["store"] = StoreSourceResource(
        name=spec["source"], scale=spec["scale"], seed=42, landing_root=str(data_dir / "landing")
    )
    first, last = spec["first"], spec["last"]
    tags, key = {}, first
    if last != first:
        tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
        key = None
    instance = dg.DagsterInstance.ephemeral()
    t0 = time.perf_counter()
    with MemorySampler() as memory:
        result = dg.materialize(
            assets,
            selection=selection,
            resources=resources,
            partition_key=key,
            tags=tags,
            instance=instance,
            run_config=run_config,
        )
    seconds = time.perf_counter() - t0
    if not result.success:
        raise RuntimeError(f"run for {first}..{last} failed")
    events, written = _rows_written(result)
    steps = step_profile(instance, result.run_id, memory.samples)
    return {
        "wall_seconds": round(seconds, 2),
        "events": events,
        "rows_written": written,
        "peak_rss_mib": round(max((rss for _, rss in memory.samples), default=0) / 2**20, 1),
        "layers": layer_profile(steps, step_layers(assets)),
        "steps": steps,
    }


def run_in_fresh_process(spec: dict) -> dict:
    """:func:`execute_run` in a new process, so a run's memory is its own and not what earlier runs left
    behind in the benchmark's process."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(execute_run, spec).result()


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from ml.sources import get_source

    source = get_source(args.source, scale=args.scale)
    days = [source.start_date + timedelta(days=i) for i in range(args.days)]

    def run(data_dir: Path, first: date, last: date, fill: bool = False) -> dict:
        spec = {
            "source": args.source,
            "scale": args.scale,
            "layers": args.layers,
            "data_dir": str(data_dir),
            "first": first.isoformat(),
            "last": last.isoformat(),
            "fill": fill,
            "only": args.only,
        }
        return run_in_fresh_process(spec)

    out = {
        "source": args.source,
        "scale": args.scale,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "commit": source_commit(),
        "command": "python -m bench.pipeline " + " ".join(sys.argv[1:] if argv is None else argv),
        "layers": args.layers,
        "days": [],
    }
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_pipeline_", dir=args.workdir))
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        # after every run, so a long benchmark stopped part way keeps what it measured
        args.out.write_text(json.dumps(out, indent=2) + "\n")

    try:
        daily_dir = workdir / "daily"
        if args.resume is not None:
            shutil.copytree(args.resume, daily_dir)
            out["resumed_from"] = {"directory": str(args.resume), "first_day": args.from_day}
        plan = resume_plan(run_plan(args.days, args.measure_windows), args.from_day)
        out["fills"] = []
        for kind, first_n, last_n in plan:
            first, last = days[first_n - 1], days[last_n - 1]
            if kind == "fill":
                log.info("filling days %d..%d (%s..%s) in one backfill run", first_n, last_n, first, last)
                profile = run(daily_dir, first, last, fill=True)
                profile.pop("events"), profile.pop("rows_written")
                out["fills"].append({"days": [first_n, last_n], **profile})
                log.info("filled %d days: %.1f s", last_n - first_n + 1, profile["wall_seconds"])
                save()
                continue
            profile = run(daily_dir, first, first)
            out["days"].append(
                {
                    "day_number": first_n,
                    "date": first.isoformat(),
                    **profile,
                    # The 1-minute load average after the run: on a shared machine it says how contended it was.
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }
            )
            log.info(
                "day %d/%d %s: %.1f s, %d events, %d rows written",
                first_n,
                args.days,
                first,
                profile["wall_seconds"],
                profile["events"],
                profile["rows_written"],
            )
            save()
        if not args.skip_backfill:
            backfill = run(workdir / "backfill", days[0], days[-1])
            out["backfill_single_run_seconds"] = backfill["wall_seconds"]
            log.info("single-run backfill of %d days: %.1f s", len(days), backfill["wall_seconds"])
    finally:
        if args.keep:
            print(f"data directories kept under {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.measure_windows:
        out["summary"] = window_summary(out["days"], args.measure_windows)
    elif len(out["days"]) >= 2:
        out["summary"] = day_summary(out["days"])
    save()
    print(json.dumps(out.get("summary", {}), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
