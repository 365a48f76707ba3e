"""The dbt layer on DuckDB and on Spark: seconds per daily build of every model over the same windows.

    python -m bench.spark_dbt --scale medium --days 3 --out bench/results/spark_dbt_medium.json

The simulator's days land as Parquet and are loaded into DuckDB's raw layer day by day (the raw loader); after each
day, ``dbt build`` of every model (staging, intermediate, marts, features, with their tests) runs on DuckDB and, over
the same window, on a local PySpark session (ml/spark.py; the raw tables published as Parquet first, timed apart).
At the end the two engines' tables are compared row for row. Needs the ``spark`` extra (``make test-spark``
installs it).
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
import time
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger("bench.spark_dbt")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.spark_dbt", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="small", choices=["small", "medium", "large"])
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--workdir", type=Path, default=None, help="where the temporary data directories go")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    import duckdb

    from ml import spark
    from ml.dbt import rebuild_vars, run_dbt
    from ml.ingest.raw_loader import load_delivered
    from ml.sources import get_source

    source = get_source("simulated", scale=args.scale)
    days = [source.start_date + timedelta(days=i) for i in range(args.days)]
    workdir = Path(tempfile.mkdtemp(prefix="bench_spark_dbt_", dir=args.workdir))
    warehouse, spark_dir, landing = (
        workdir / "duckdb" / "warehouse.duckdb",
        workdir / "spark",
        workdir / "landing",
    )
    warehouse.parent.mkdir(parents=True)
    out = {
        "scale": args.scale,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "command": "python -m bench.spark_dbt " + " ".join(sys.argv[1:] if argv is None else argv),
        "days": [],
    }
    try:
        for i, day in enumerate(days, 1):
            source.write_days(day, day, landing)
            with duckdb.connect(str(warehouse)) as con:
                load_delivered(con, landing, source.name, source.tables, [day])
                dbt_vars = rebuild_vars(con, day, day)
                events = con.execute(
                    "SELECT count(*) FROM raw.events WHERE _landing_date = ?", [day]
                ).fetchone()[0]
            t0 = time.perf_counter()
            run_dbt(warehouse, day, day)
            duck_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            spark.publish_raw(warehouse, spark_dir)
            publish_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            spark.build(spark_dir, dbt_vars)
            spark_seconds = time.perf_counter() - t0
            out["days"].append(
                {
                    "date": day.isoformat(),
                    "window": dbt_vars,
                    "events": events,
                    "duckdb_dbt_seconds": round(duck_seconds, 1),
                    "publish_raw_seconds": round(publish_seconds, 1),
                    "spark_dbt_seconds": round(spark_seconds, 1),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }
            )
            log.info(
                "day %d/%d %s: dbt on DuckDB %.1f s, raw published %.1f s, dbt on Spark %.1f s",
                i,
                len(days),
                day,
                duck_seconds,
                publish_seconds,
                spark_seconds,
            )
        compared = spark.compare_engines(warehouse, spark_dir)
        out["tables_compared"] = len(compared)
        out["tables_differing"] = sorted(n for n, c in compared.items() if not c["equal"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "days"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
