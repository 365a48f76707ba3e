"""Time every GX suite on one partition of a warehouse: ``python -m expectations.bench --warehouse PATH``.

Opens the warehouse read-only (copy it first if another process writes it), validates the given day with every
suite (recent counts read from the warehouse), first cold (GX import, context creation, suite building) and
then ``--repeat`` times warm, with and without Data Docs, and writes a JSON summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import duckdb

log = logging.getLogger("expectations.bench")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warehouse", type=Path, required=True, help="DuckDB file (opened read-only)")
    parser.add_argument(
        "--day", type=dt.date.fromisoformat, default=None, help="partition day (default: latest)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="warm repetitions (default 3)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/expectations_partition.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from expectations import SUITES, validate_partition

    con = duckdb.connect(str(args.warehouse), read_only=True)
    day = args.day or con.execute("SELECT max(_landing_date) FROM raw.events").fetchall()[0][0]
    log.info("warehouse %s, partition %s, %d suites", args.warehouse, day, len(SUITES))

    def run_all(docs_dir: Path | None) -> tuple[float, dict]:
        t0 = time.perf_counter()
        outcomes = {}
        for name in SUITES:
            outcomes[name] = validate_partition(con, name, day, day, docs_dir=docs_dir)
        return time.perf_counter() - t0, outcomes

    t0 = time.perf_counter()
    import great_expectations  # noqa: F401  (timed apart from validation)

    gx_import_s = time.perf_counter() - t0
    cold_s, outcomes = run_all(None)
    log.info("cold run: %.2f s (GX import %.2f s before it)", cold_s, gx_import_s)
    warm = [run_all(None)[0] for _ in range(args.repeat)]
    log.info("warm runs without docs: %s", ", ".join(f"{w:.2f}" for w in warm))
    with tempfile.TemporaryDirectory() as tmp:
        with_docs = [run_all(Path(tmp))[0] for _ in range(args.repeat)]
    log.info("warm runs with Data Docs: %s", ", ".join(f"{w:.2f}" for w in with_docs))

    summary = {
        "date": dt.date.today().isoformat(),
        "machine": f"2-core CPU shared with other jobs ({platform.processor() or platform.machine()})",
        "warehouse": str(args.warehouse),
        "partition": str(day),
        "suites": len(SUITES),
        "import_great_expectations_s": round(gx_import_s, 3),
        "cold_all_suites_s": round(cold_s, 3),
        "warm_all_suites_s": [round(w, 3) for w in warm],
        "warm_all_suites_with_docs_s": [round(w, 3) for w in with_docs],
        "per_suite": {
            name: {
                "rows": o.row_count,
                "expectations": o.evaluated,
                "success": o.success,
                "failed": [f"{f.expectation}({f.column})" for f in o.failed],
                "cold_s": round(o.duration_s, 3),
            }
            for name, o in outcomes.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
