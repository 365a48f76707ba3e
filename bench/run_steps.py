"""Where a long materialisation's time went: the runs of a Dagster home with their ranges, wall time and slowest steps.

For runs that no benchmark wrapped, such as a two-year demo in parts (``make demo SOURCE=online_retail DAYS=739``)
or a backfill launched from the UI: it reads the run records and step events of ``DAGSTER_HOME`` (read-only; it may
run while the demo goes on) and writes, per run of the job, its partition range, status, seconds from its first to
its last event, and every step's seconds (:func:`bench.pipeline.step_profile`).

    python -m bench.run_steps --dagster-home .data/dagster_home --out bench/results/online_retail_replay_runs.json
"""

from __future__ import annotations

import json
import platform
from datetime import date
from pathlib import Path

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from bench import docstring_parser, source_commit


def parse_args(argv=None):
    p = docstring_parser("python -m bench.run_steps", __doc__)
    p.add_argument(
        "--dagster-home", type=Path, required=True, help="the DAGSTER_HOME folder the runs were made in"
    )
    p.add_argument(
        "--job", default="daily_pipeline", help="the job whose runs are read (default daily_pipeline)"
    )
    p.add_argument("--top", type=int, default=8, help="slowest steps printed per run (the file keeps all)")
    p.add_argument("--out", type=Path, help="JSON file to write")
    return p.parse_args(argv)


def run_timings(instance, job: str) -> list[dict]:
    """Every run of ``job`` in launch order: range, status, seconds and step seconds (slowest first)."""
    from bench.pipeline import step_profile

    out = []
    for run in reversed(instance.get_runs()):
        if run.job_name != job:
            continue
        stats = instance.get_run_stats(run.run_id)
        first, last = stats.launch_time or stats.start_time, stats.end_time
        steps = step_profile(instance, run.run_id, samples=[])
        out.append(
            {
                "run_id": run.run_id,
                "first_partition": run.tags.get(
                    ASSET_PARTITION_RANGE_START_TAG, run.tags.get(PARTITION_NAME_TAG)
                ),
                "last_partition": run.tags.get(
                    ASSET_PARTITION_RANGE_END_TAG, run.tags.get(PARTITION_NAME_TAG)
                ),
                "status": run.status.value,
                "seconds": round(last - first, 1) if first and last else None,
                "steps": {
                    name: s["seconds"] for name, s in sorted(steps.items(), key=lambda kv: -kv[1]["seconds"])
                },
            }
        )
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(args.dagster_home))
    runs = run_timings(instance, args.job)
    for run in runs:
        top = ", ".join(f"{name} {s:.0f}" for name, s in list(run["steps"].items())[: args.top])
        print(
            f"{run['first_partition']} .. {run['last_partition']} {run['status']} {run['seconds']} s: {top}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "machine": f"{platform.node()} {platform.machine()}",
            "date": date.today().isoformat(),
            "read_by_commit": source_commit(),  # this reader's code; the runs say nothing of the code they ran
            "dagster_home": str(args.dagster_home),
            "job": args.job,
            "runs": runs,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
