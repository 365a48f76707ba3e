"""Crash consistency by fault injection: kill -9 the daily run in a phase, re-run it, compare every table.

    python -m bench.crash_consistency --days 1 --out bench/results/crash_consistency.json

Each world is the small simulated store's first ``--days`` days in its own data directory, run as
``python -m orchestration.demo`` (the real job, its own Dagster instance, DuckDB file and exports):

1. two uninterrupted reference runs: a table whose checksum differs between them is not reproducible by design
   (it is reported, and left out of the comparison);
2. for each phase (``raw``: after the first raw table is loaded; ``dbt``: inside the dbt build; ``train``: while
   the candidate recommenders train; ``export``: as the lists are written and exported), a run killed with
   SIGKILL (the whole process group) when its log reaches the phase, then the same command again: every
   reproducible table must equal the reference (row count and an order-independent hash of all rows), every
   export must read back whole, and no temporary export folder may be left visible as a day.

A table's checksum leaves out the columns that record when something happened (``*_at``, ``*_seconds``): the
wall clock is not data; it reads a row's landing file path (``*source_file``) from the landing folder on, since
each world has its own data directory.

``--existing STAMP`` compares the worlds a previous run left under ``--workdir`` again (the kills are not
repeated; their record is taken from the ``--out`` file of that run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

PHASES = {
    "raw": ("raw_tables - raw.", 0.0),
    "dbt": ("dbt_daily_models - dbt window", 3.0),
    "train": ("recommend__candidate_models", 2.0),
    "export": ("recommend__recommendations", 0.0),
}
SCHEMAS = (
    "raw",
    "staging",
    "intermediate",
    "marts",
    "features",
    "supply",
    "recommend",
    "marketing",
    "outputs",
)
VOLATILE_SUFFIXES = ("_at", "_seconds")
PATH_SUFFIX = "source_file"  # the landing file a row came from: compared relative to the data directory


def table_checksums(warehouse: Path) -> dict[str, tuple[int, int]]:
    """(rows, order-independent hash of every row's stable columns) of every table in :data:`SCHEMAS`."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            f"AND table_schema IN ({', '.join('?' for _ in SCHEMAS)}) ORDER BY 1, 2",
            list(SCHEMAS),
        ).fetchall()
        for schema, table in tables:
            cols = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                    "ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
                if not c.endswith(VOLATILE_SUFFIXES)
            ]
            select = (
                ", ".join(
                    f"regexp_replace(\"{c}\", '^.*/landing/', '')" if c.endswith(PATH_SUFFIX) else f'"{c}"'
                    for c in cols
                )
                or "1"
            )
            rows, digest = con.execute(
                f'SELECT count(*), coalesce(sum(hash(row({select}))), 0) FROM "{schema}"."{table}"'
            ).fetchall()[0]
            out[f"{schema}.{table}"] = (int(rows), int(digest))
    return out


def export_state(exports: Path) -> dict:
    """Every export folder: whether it is a day (``date=``) or a left-over temporary, and whether it reads."""
    days, temporaries, unreadable = 0, [], []
    for folder in sorted(exports.glob("*/*")):
        if folder.name.startswith("date="):
            days += 1
            for f in folder.glob("*.parquet"):
                try:
                    duckdb.sql(f"SELECT count(*) FROM read_parquet('{f}')").fetchall()
                except duckdb.Error:
                    unreadable.append(str(f))
        else:
            temporaries.append(folder.name)
    return {"days": days, "temporaries_left": temporaries, "unreadable": unreadable}


def _env(data_dir: Path) -> dict:
    return {**os.environ, "AIGC_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home")}


def run_demo(data_dir: Path, days: int, kill_at: tuple[str, float] | None = None) -> dict:
    """The demo in a fresh process group; with ``kill_at`` (marker, delay) SIGKILL it when its log shows the
    marker. Returns how it ended."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.demo", "--days", str(days)],
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    killed = False
    for line in proc.stdout:
        if kill_at and kill_at[0] in line:
            time.sleep(kill_at[1])
            alive = proc.poll() is None
            os.killpg(proc.pid, signal.SIGKILL)
            killed = alive
            break
    proc.wait()
    return {
        "returncode": proc.returncode,
        "killed": killed,
        "seconds": round(time.perf_counter() - started, 1),
    }


def compare(reference: dict, other: dict, reproducible: set[str]) -> dict:
    differing = sorted(t for t in reproducible if reference.get(t) != other.get(t))
    return {"tables_compared": len(reproducible), "differing": differing, "identical": not differing}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(
        prog="python -m bench.crash_consistency", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/crash_consistency"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--existing", default=None, help="compare the worlds of an earlier run (its stamp) again")
    args = ap.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {sorted(unknown)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    stamp = args.existing or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    earlier = json.loads(args.out.read_text()) if args.existing else None

    refs = []
    for i in (1, 2):
        d = args.workdir / f"{stamp}_reference{i}"
        if earlier:
            ended = {"returncode": 0, "seconds": earlier["reference_seconds"][i - 1]}
        else:
            print(f"reference run {i} ...", file=sys.stderr)
            ended = run_demo(d, args.days)
        if ended["returncode"] != 0:
            raise SystemExit(f"reference run {i} failed ({d})")
        refs.append((d, table_checksums(d / "warehouse.duckdb"), ended))
    reference = refs[0][1]
    reproducible = {t for t in reference if refs[1][1].get(t) == reference[t]}
    result = {
        "command": "python -m bench.crash_consistency " + " ".join(argv or sys.argv[1:]),
        "runs_made_by": earlier["command"] if earlier else None,
        "days": args.days,
        "date": stamp,
        "reference_seconds": [r[2]["seconds"] for r in refs],
        "tables": len(reference),
        "not_reproducible_between_clean_runs": sorted(set(reference) - reproducible),
        "phases": {},
    }
    for phase in phases:
        d = args.workdir / f"{stamp}_{phase}"
        if earlier:
            first, second = (earlier["phases"][phase][k] for k in ("killed_run", "rerun"))
        else:
            print(f"{phase}: run, kill -9 at {PHASES[phase][0]!r} ...", file=sys.stderr)
            first = run_demo(d, args.days, PHASES[phase])
            second = run_demo(d, args.days)
        sums = table_checksums(d / "warehouse.duckdb")
        result["phases"][phase] = {
            "killed_run": first,
            "rerun": second,
            **compare(reference, sums, reproducible),
            "exports": export_state(d / "exports"),
        }
        print(f"{phase}: {result['phases'][phase]}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
