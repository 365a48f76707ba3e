"""dbt for the platform without Dagster: the window's arguments, and a build of a warehouse straight from a source.

:func:`partition_vars` turns a window of days into its dates, :func:`window_env` into the environment dbt reads
them from and :func:`build_args` into dbt's arguments (the Dagster assets use them); :func:`run_dbt` runs the dbt
CLI on a warehouse, and :func:`build_warehouse` fills one from a source's days the way the pipeline does (landing
files, the raw loader, dbt), for tests, benchmarks and notebooks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from ml.sources.schema import LATE_ROW_TOLERANCE_DAYS

LOOKBACK_DAYS = LATE_ROW_TOLERANCE_DAYS
"""Late rows (event time before their landing day) are picked up by rebuilding up to this many earlier days; the
raw layer quarantines rows later than this, so every loaded row falls inside some run's window."""

ALWAYS_REBUILT_DAYS = 1
"""Earlier days every build rebuilds even without late rows: a session that began before midnight goes on in the
next day's events, and its row (dated by its first event) must be rebuilt with them."""


def partition_vars(first_day: date, last_day: date, lookback_days: int = LOOKBACK_DAYS) -> dict[str, str]:
    """The window (``min_date``/``max_date``) of the partition days ``first_day..last_day`` (inclusive), widened
    by the lookback."""
    if last_day < first_day:
        raise ValueError(f"empty window: {first_day} > {last_day}")
    if lookback_days < 0:
        raise ValueError("lookback_days must be >= 0")
    return {
        "min_date": (first_day - timedelta(days=lookback_days)).isoformat(),
        "max_date": last_day.isoformat(),
    }


def rebuild_vars(con, first_day: date, last_day: date) -> dict[str, str]:
    """The window of the partition days ``first_day..last_day``, widened only as far back as the rows that landed
    on those days reach: by :data:`ALWAYS_REBUILT_DAYS`, or to the earliest event date of a late row loaded (or
    replaced) on them (``raw._landed_event_dates``), at most :data:`LOOKBACK_DAYS`. So a clean day rebuilds two
    days whatever the history, and a day with late rows rebuilds the dates they touched. When a landing day of the
    window has no record (loaded before the record existed, or not loaded yet), the whole lookback is rebuilt."""
    from ml.ingest.raw_loader import LANDED_EVENT_DATES
    from ml.warehouse import table_exists

    if not table_exists(con, LANDED_EVENT_DATES):
        return partition_vars(first_day, last_day)
    recorded, earliest = con.execute(
        f"SELECT count(DISTINCT landing_date), min(first_event_date) FROM {LANDED_EVENT_DATES} "
        "WHERE landing_date BETWEEN ? AND ?",
        [first_day, last_day],
    ).fetchall()[0]
    if recorded < (last_day - first_day).days + 1:
        return partition_vars(first_day, last_day)
    reach = (first_day - earliest).days
    return partition_vars(first_day, last_day, min(LOOKBACK_DAYS, max(ALWAYS_REBUILT_DAYS, reach)))


WINDOW_ENV = {"min_date": "AIGC_DBT_MIN_DATE", "max_date": "AIGC_DBT_MAX_DATE"}
"""The environment variables that carry the window to dbt (``macros/window.sql``). Not ``--vars``: dbt re-parses
the whole project whenever its command-line vars change, which would be every daily run."""


def window_env(dbt_vars: dict[str, str]) -> dict[str, str]:
    """The window of ``dbt_vars`` (``min_date``/``max_date``) as the environment dbt reads it from."""
    return {env: dbt_vars[name] for name, env in WINDOW_ENV.items()}


@contextlib.contextmanager
def window_environ(dbt_vars: dict[str, str]):
    """Set the window's environment variables for a dbt call made through ``os.environ`` (dagster-dbt's), and put
    the environment back afterwards so no later dbt call of the process inherits this window."""
    saved = {name: os.environ.get(name) for name in WINDOW_ENV.values()}
    os.environ.update(window_env(dbt_vars))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build_args(dbt_vars: dict[str, str], *, full_refresh: bool = False) -> list[str]:
    """The arguments of one ``dbt build``: vars other than the window (which travels in :func:`window_env`) go in
    ``--vars``. The selection itself comes from the asset subset (dagster-dbt).

    The platform's builds leave out dbt's unit tests: their inputs are fixed rows, so a daily run would repeat the
    same verdict on the same code (dbt Labs advise running them in development and CI only); `make test` runs them
    (``tests/test_dbt_tests.py``), and the data tests, which judge the day's rows, run in every build."""
    args = ["build", "--exclude-resource-type", "unit_test"]
    other_vars = {name: value for name, value in dbt_vars.items() if name not in WINDOW_ENV}
    if other_vars:
        args += ["--vars", json.dumps(other_vars, sort_keys=True)]
    if full_refresh:
        args.append("--full-refresh")
    return args


log = logging.getLogger(__name__)


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def work_dir(warehouse: str | Path) -> Path:
    """Where :func:`run_dbt` builds ``warehouse`` (dbt's target and log folders), beside the warehouse."""
    return Path(warehouse).parent / "dbt"


def parsed_project(warehouse: str | Path) -> Path:
    """dbt's parsed project (its partial-parse state) for builds of ``warehouse``: the one dbt keeps in the target
    folder of :func:`work_dir`. dbt reuses a parsed project only while the profile is the one it was parsed with,
    and the profile names the warehouse's path: the project-wide state that `dbt parse` leaves in
    ``dbt_project/target`` serves no other warehouse than the one it was parsed for, so each keeps its own."""
    return work_dir(warehouse) / "target" / PARTIAL_PARSE_FILE


def reuse_parsed_project(warehouse: str | Path, target: Path) -> None:
    """Start a dbt call whose target folder is ``target`` from ``warehouse``'s parsed project, if one is kept
    (dbt checks it against the project's files, vars and profile and parses again what changed)."""
    kept = parsed_project(warehouse)
    if kept.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(kept, target / PARTIAL_PARSE_FILE)


def keep_parsed_project(warehouse: str | Path, target: Path) -> None:
    """Keep the parsed project a dbt call left in ``target`` for the next build of ``warehouse`` (replaced in one
    step, so a build starting meanwhile reads the old state or the new, never half of one)."""
    made = target / PARTIAL_PARSE_FILE
    if not made.is_file():
        return
    kept = parsed_project(warehouse)
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
    shutil.copy(made, partial)
    os.replace(partial, kept)


def _dbt_beside_interpreter() -> Path:
    return Path(sys.executable).parent / "dbt"


def dbt_executable() -> str:
    """The dbt next to this interpreter, so an un-activated virtual environment works too."""
    candidate = _dbt_beside_interpreter()
    return str(candidate) if candidate.exists() else (shutil.which("dbt") or "dbt")


def installed_dbt_version(executable: str) -> str | None:
    """dbt-core's version when ``executable`` is the dbt beside this interpreter (installed with the dbt-core this
    process imports), read from the package without starting dbt; None for any other executable."""
    if Path(executable) != _dbt_beside_interpreter():
        return None
    from importlib.metadata import version

    return version("dbt-core")


def run_dbt(
    warehouse: Path,
    first_day: date,
    last_day: date,
    select: str | None = None,
    *,
    full_refresh: bool = False,
    lookback_days: int | None = None,
    extra_vars: dict | None = None,
) -> None:
    """``dbt build`` of the models in ``select`` (default: all) over ``first_day..last_day`` widened by
    ``lookback_days`` (None: as far back as the landed rows reach, :func:`rebuild_vars`), on the DuckDB file
    ``warehouse`` (``extra_vars`` overrides other project vars); raises with dbt's output when the build fails."""
    import duckdb

    from ml.settings import dbt_env

    if lookback_days is None:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            window = rebuild_vars(con, first_day, last_day)
    else:
        window = partition_vars(first_day, last_day, lookback_days)
    dbt_vars = {**window, **(extra_vars or {})}
    dbt_cli(dbt_vars, work_dir(warehouse), dbt_env(warehouse), select=select, full_refresh=full_refresh)


def dbt_cli(
    dbt_vars: dict[str, str],
    work: Path,
    env: dict[str, str],
    *,
    select: str | None = None,
    full_refresh: bool = False,
    cwd: Path | None = None,
    log_path: Path | None = None,
) -> subprocess.CompletedProcess:
    """``dbt build`` of the project with ``env`` (target, paths) added to the environment; raises with dbt's output
    when the build fails. Target and log folders go under ``work``: the project's manifest (which Dagster reads)
    stays as `dbt parse` made it, and builds of two warehouses at once do not share files; dbt keeps its parsed
    project in that target folder (:func:`parsed_project`) and reuses it on the next build."""
    from ml.settings import DBT_PROJECT_DIR

    args = build_args(dbt_vars, full_refresh=full_refresh)
    args += ["--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    if select:
        args += ["--select", select]
    done = subprocess.run(
        [dbt_executable(), *args],
        env={**os.environ, **env, **window_env(dbt_vars)},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if log_path is not None:
        log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        target = env.get("AIGC_DBT_TARGET", "")
        raise RuntimeError(
            f"dbt {' '.join(args)} (target {target}) failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
        )
    log.info("dbt %s: ok", " ".join(args))
    return done


def build_warehouse(
    data_dir: Path, source, first_day: date, last_day: date, select: str | None = None, land: bool = True
) -> Path:
    """Fill ``data_dir/warehouse.duckdb`` with ``first_day..last_day`` of ``source`` (a :class:`ml.sources.Source`)
    as the pipeline would: landing files (unless ``land`` is False: already there), the raw loader for every table,
    one dbt build of ``select`` (default: every model). Returns the warehouse's path."""
    if land:
        source.write_days(first_day, last_day, Path(data_dir) / "landing")
    return load_and_build(data_dir, source.name, source.tables, first_day, last_day, select)


def load_and_build(
    data_dir: Path, source_name: str, delivered: tuple[str, ...], first_day: date, last_day: date, select=None
) -> Path:
    """Load the landing files of ``first_day..last_day`` under ``data_dir/landing/<source_name>`` into the raw
    layer (the tables the source does not deliver stay empty) and run one dbt build over the window."""
    import duckdb

    from ml.ingest.raw_loader import load_delivered

    data_dir = Path(data_dir)
    warehouse = data_dir / "warehouse.duckdb"
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    with duckdb.connect(str(warehouse)) as con:
        load_delivered(con, data_dir / "landing", source_name, delivered, days)
    run_dbt(warehouse, first_day, last_day, select)
    return warehouse
