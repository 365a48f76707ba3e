"""Materialise the whole graph for the first days of a source and print where to look.

    python -m orchestration.demo [--source simulated|online_retail] [--scale small] [--days 14]

The days run as single-run backfills (one dbt build for each run's range) of at most ``--run-days`` days each,
in order, in the project's own ``DAGSTER_HOME``, so the runs and materialisations show up in the UI afterwards
(``make ui``). After each run the recommender bundle retention job runs, as its schedule does after the daily run:
every day of a range keeps its recommender bundle until its run ends (on Online Retail a bundle is over 100 MB by
mid-2010), so one run over both Online Retail years would hold tens of gigabytes of them; in parts it holds at
most the part and the retention's days.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

RUN_DAYS = 28
"""Open loop: the most days one run of the demo covers (``--run-days``)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--source", default=os.environ.get("AIGC_SOURCE", "simulated"), choices=["simulated", "online_retail"]
    )
    parser.add_argument(
        "--scale", default=os.environ.get("AIGC_SCALE", "small"), choices=["small", "medium", "large"]
    )
    parser.add_argument("--days", type=int, default=14, help="how many days from the source's first day")
    parser.add_argument(
        "--run-days",
        type=int,
        default=RUN_DAYS,
        help="open loop: the most days one run (a single-run backfill) covers; longer ranges run in parts, "
        "in order, each followed by the recommender bundle retention",
    )
    parser.add_argument(
        "--loop",
        default=os.environ.get("AIGC_SHOP_LOOP", "open"),
        choices=["open", "closed"],
        help="closed: the simulated shop answers what the platform published the day before (one run per day)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a demo that was stopped: skip the first days that successful runs of the whole job "
        "already cover in this DAGSTER_HOME, and run the rest (a part cut off by the stop runs again, whole)",
    )
    args = parser.parse_args(argv)
    if args.days < 1 or args.run_days < 1:
        parser.error("--days and --run-days must be at least 1")
    return args


def run_in_parts(job, retention, ranges: list[tuple[str, str]], instance, run_config: dict) -> list:
    """Run ``job`` over each (first, last) range in order, as one single-run backfill each, stopping at the first
    that fails; with more than one range, ``retention`` runs after each that succeeded (as its schedule runs after
    the daily run), so what a run leaves behind for later days stays within the retention. Returns the results of
    the runs of ``job``."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    results = []
    for part, (first, last) in enumerate(ranges, start=1):
        if len(ranges) > 1:
            print(f"Run {part} of {len(ranges)}: {first} .. {last}", flush=True)
        results.append(
            job.execute_in_process(
                instance=instance,
                tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
                run_config=run_config,
                raise_on_error=False,
            )
        )
        if not results[-1].success:
            break
        if len(ranges) > 1:
            retention.execute_in_process(instance=instance, run_config=run_config)
    return results


def days_done(instance, job_name: str, keys: list[str]) -> int:
    """How many of the first ``keys`` (in order) successful runs of the whole ``job_name`` already cover (runs of
    a selection of its assets do not count): where ``--resume`` starts again."""
    from dagster import DagsterRunStatus, RunsFilter
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    covered = []
    for record in instance.get_run_records(
        filters=RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS])
    ):
        run = record.dagster_run
        first, last = (
            run.tags.get(ASSET_PARTITION_RANGE_START_TAG),
            run.tags.get(ASSET_PARTITION_RANGE_END_TAG),
        )
        if first and last and not run.asset_selection:
            covered.append((first, last))
    done = 0
    for key in keys:  # daily keys are ISO dates: their text order is their time order
        if not any(first <= key <= last for first, last in covered):
            break
        done += 1
    return done


def run_ranges(keys: list[str], loop: str, run_days: int = RUN_DAYS) -> list[tuple[str, str]]:
    """The (first, last) partition keys of each run: a run per day in closed loop (the shop's day D answers what
    the platform published for D-1), else consecutive parts of at most ``run_days`` days."""
    if loop == "closed":
        return [(k, k) for k in keys]
    return [(part[0], part[-1]) for part in (keys[i : i + run_days] for i in range(0, len(keys), run_days))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The source decides the partitions' start date, so it must be set before the definitions are imported.
    os.environ["AIGC_SOURCE"] = args.source
    os.environ["AIGC_SCALE"] = args.scale
    os.environ["AIGC_SHOP_LOOP"] = args.loop
    from ml import settings
    from orchestration.instance import prepare_instance

    os.environ["DAGSTER_HOME"] = str(prepare_instance())

    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.partitions import daily_partitions

    keys = daily_partitions.get_partition_keys()[: args.days]
    if not keys:
        print("no partitions to run", file=sys.stderr)
        return 1
    print(
        f"Materialising {len(keys)} days ({keys[0]} .. {keys[-1]}) of source {args.source!r} ({args.scale}) ..."
    )
    started = time.perf_counter()
    job = defs.resolve_job_def("daily_pipeline")
    retention = defs.resolve_job_def("recommender_bundle_retention")
    # INFO keeps the assets' progress lines and drops Dagster's per-event DEBUG lines (the UI has them).
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    instance = dg.DagsterInstance.get()
    done = days_done(instance, job.name, keys) if args.resume else 0
    if done:
        print(f"Resuming: {done} of {len(keys)} days are done already (through {keys[done - 1]}).")
    if done == len(keys):
        print(f"Nothing left to run: the warehouse is {settings.warehouse_path()}; `make ui` shows the runs.")
        return 0
    results = run_in_parts(job, retention, run_ranges(keys[done:], args.loop, args.run_days), instance, quiet)
    result = results[-1]
    elapsed = time.perf_counter() - started
    checks = [c for r in results for c in r.get_asset_check_evaluations()]
    failed = sorted(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in checks if not c.passed)
    print(summary(settings.warehouse_path(), keys, elapsed, result.success, result.run_id, len(results)))
    print(
        f"\nChecks: {len(checks) - len(failed)} of {len(checks)} evaluations passed"
        + (":" if failed else ".")
    )
    for name in failed[:20]:
        print(f"  not passed: {name}")
    print(f"Exports for other systems (read API: make api): {settings.exports_dir()}")
    return 0 if result.success else 1


SCHEMAS = (
    "raw",
    "staging",
    "intermediate",
    "marts",
    "quality",
    "features",
    "search",
    "supply",
    "recommend",
    "feedback",
    "marketing",
    "outputs",
)


def summary(warehouse, keys: list[str], elapsed: float, success: bool, run_id: str, runs: int = 1) -> str:
    import duckdb

    lines = [
        "",
        f"{'Done' if success else 'FAILED'}: {len(keys)} days ({keys[0]} .. {keys[-1]}) in {elapsed:.0f} s, "
        + (f"{runs} runs, the last {run_id}" if runs > 1 else f"run {run_id}"),
        f"Warehouse (DuckDB): {warehouse}",
        "",
        f"{'table':45s} {'rows':>12s}",
    ]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN ({', '.join(repr(s) for s in SCHEMAS)}) "
            f"ORDER BY array_position({list(SCHEMAS)!r}, table_schema), table_name"
        ).fetchall()
        for schema, name in tables:
            n = con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchall()[0][0]
            lines.append(f"{schema + '.' + name:45s} {n:>12,d}")
    lines += [
        "",
        "Look at it:",
        "  make ui     # Dagster UI on http://127.0.0.1:3000 (asset graph, partitions, checks, this run)",
        "  make api    # the read API on http://127.0.0.1:8000/docs (recommendations, forecasts, the plan, messages, "
        "search, category pages)",
        "  query the warehouse (read-only, with the project's own Python):",
        f'    {sys.executable} -c "import duckdb; '
        f"duckdb.connect('{warehouse}', read_only=True).sql('FROM outputs.recommendations LIMIT 10').show()\"",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
