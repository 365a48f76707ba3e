"""The production instance (``AIGC_ENV=prod``, ``orchestration/dagster.prod.yaml``): Dagster's runs, event log,
schedules and pool slots in a real PostgreSQL server (tests/postgres_server.py), used as the README says.

1. ``python -m orchestration.demo --days 1`` (what ``AIGC_ENV=prod make demo DAYS=1`` runs) materialises the small
   store's first day end to end; the run, every asset's materialisation and every check evaluation are read back
   from PostgreSQL, directly in SQL and through Dagster, and nothing was written to SQLite.
2. ``dagster dev`` on that instance (webserver, daemon, the queued run coordinator): a run that only lands files
   starts beside a run that writes the warehouse, while two warehouse runs wait for each other on the pool whose
   slots live in PostgreSQL.

Run by ``make test-e2e`` (which ``.ci/run`` calls).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.partitions import POOL
from tests.pipeline_helpers import run_selection
from tests.postgres_server import PostgresServer, postgres_server
from tests.ui_server import DagsterUI, start_dagster_dev, stop

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

FIRST, SECOND, THIRD = "2025-01-01", "2025-01-02", "2025-01-03"


@pytest.fixture(scope="module")
def server():
    with postgres_server() as running:
        yield running


@pytest.fixture(scope="module")
def prod(server: PostgresServer, tmp_path_factory) -> tuple[dict[str, str], Path]:
    """The prod environment's variables (warehouse file, pseudonymisation key, PostgreSQL) and the data folder."""
    data_dir = tmp_path_factory.mktemp("prod") / "data"
    env = {
        **server.env(),
        "AIGC_ENV": "prod",
        "AIGC_DATA_DIR": str(data_dir),
        "AIGC_PROD_WAREHOUSE_PATH": str(data_dir / "warehouse.duckdb"),
        "AIGC_PII_KEY": "prod-test-secret",
        "DAGSTER_HOME": str(data_dir / "dagster_home"),
        "TQDM_DISABLE": "1",
    }
    return env, data_dir


@pytest.fixture(scope="module")
def demo(prod) -> subprocess.CompletedProcess:
    env, _ = prod
    return subprocess.run(
        [sys.executable, "-m", "orchestration.demo", "--days", "1"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_day_end_to_end_is_recorded_in_postgres(demo, prod, server):
    env, _ = prod
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    run_id = re.search(r"Done: 1 days .* run (\S+)", demo.stdout).group(1)
    evaluated = int(re.search(r"Checks: \d+ of (\d+) evaluations", demo.stdout).group(1))

    assert server.query("SELECT run_id, pipeline_name, status FROM runs") == [
        (run_id, "daily_pipeline", "SUCCESS")
    ]
    from orchestration.definitions import defs

    job_assets = defs.resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys
    materialised = server.query(
        "SELECT DISTINCT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = "
        "'ASSET_MATERIALIZATION'",
        (run_id,),
    )
    assert {dg.AssetKey.from_db_string(k) for (k,) in materialised} == set(job_assets)
    assert server.query(
        "SELECT count(*) FROM asset_check_executions WHERE run_id = %s AND execution_status != 'PLANNED'",
        (run_id,),
    ) == [(evaluated,)]
    # the pool's one slot is a row of PostgreSQL, registered before the first run (orchestration.instance)
    assert server.query('SELECT concurrency_key, "limit" FROM concurrency_limits') == [(POOL, 1)]

    # Dagster reads the same records back from PostgreSQL: the raw layer's row count equals the warehouse's
    home = Path(env["DAGSTER_HOME"])
    assert "postgres" in (home / "dagster.yaml").read_text()
    assert not list(home.rglob("*.db")), "the prod instance wrote SQLite files"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "orders"]))
        stored_rows = event.asset_materialization.metadata["dagster/row_count"].value
    finally:
        instance.dispose()
    with duckdb.connect(env["AIGC_PROD_WAREHOUSE_PATH"], read_only=True) as con:
        assert stored_rows == con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] > 0


@pytest.fixture(scope="module")
def ui(demo, prod) -> DagsterUI:
    env, data_dir = prod
    assert demo.returncode == 0, "the demo run failed (see the test above)"
    server = start_dagster_dev(
        data_dir, Path(env["DAGSTER_HOME"]), data_dir.parent / "dagster_dev.log", env=env
    )
    yield server
    stop(server)


def launch(ui: DagsterUI, day: str, selection: dg.AssetSelection) -> str:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    checks = selection.resolve_checks(graph)
    return ui.launch_run("daily_pipeline", selection.resolve(graph), checks, {"dagster/partition": day})


def test_a_landing_run_starts_beside_a_warehouse_run_and_warehouse_runs_queue(ui, server):
    warehouse = run_selection()  # landing → raw → marts and their checks: in the warehouse pool
    landing_only = dg.AssetSelection.groups("landing")  # writes files only: in no pool
    second = launch(ui, SECOND, warehouse)
    restated = launch(ui, FIRST, warehouse)  # queued behind the first: one DuckDB writer at a time
    deadline = time.monotonic() + 300
    while not any(r["status"] == "STARTED" for r in ui.runs()):
        assert time.monotonic() < deadline, ui.log_tail()
        time.sleep(1)
    beside = launch(ui, THIRD, landing_only)
    runs = ui.wait_for_runs([second, restated, beside], timeout=900)

    failed = {i: ui.failure(i) for i, r in runs.items() if r["status"] != "SUCCESS"}
    assert not failed, failed
    assert "Could not set lock" not in ui.log_path.read_text(errors="replace")
    spans = {i: (runs[i]["startTime"], runs[i]["endTime"]) for i in runs}
    (_, first_end), (then_start, _) = sorted(spans[i] for i in (second, restated))
    assert then_start >= first_end, "two warehouse runs were in progress at the same time"
    start, end = spans[beside]
    assert any(start < w_end and end > w_start for w_start, w_end in (spans[second], spans[restated])), (
        f"the landing run did not run beside a warehouse run: {spans}"
    )
    # the records are PostgreSQL's
    stored = dict(
        server.query("SELECT run_id, status FROM runs WHERE run_id IN %s", ((second, restated, beside),))
    )
    assert stored == {second: "SUCCESS", restated: "SUCCESS", beside: "SUCCESS"}
