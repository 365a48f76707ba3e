"""The declared retry policy on ingestion (ml/retry.py, orchestration/retries.py), in real Dagster runs: a
landing file that arrives late and a warehouse locked by another process are retried with backoff and the run
succeeds; a corrupt file, or a day loaded before the days its references need, fails at once, without a retry,
with a message that names it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import pytest

from ml.ingest.raw_loader import MissingLandingError
from ml.retry import is_transient
from ml.sources.landing import day_files
from orchestration.retries import TRANSIENT_RETRY_POLICY
from tests.pipeline_helpers import all_assets, materialize_days, resources_for

DAY = "2025-01-01"
pytestmark = pytest.mark.e2e


def _raw_run(data_dir, day: str = DAY):
    return dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.groups("ingest"),
        resources=resources_for(data_dir),
        partition_key=day,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _retries(run) -> int:
    return sum(1 for e in run.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def test_the_policy_is_declared_and_classifies_failures():
    assert (
        TRANSIENT_RETRY_POLICY.max_retries == 3 and TRANSIENT_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL
    )
    assert is_transient(MissingLandingError("no landing files"))
    assert is_transient(duckdb.IOException('Could not set lock on file "w.duckdb": Conflicting lock'))
    assert not is_transient(duckdb.IOException("Cannot open file: permission denied"))
    assert not is_transient(ValueError("x.parquet: not a readable Parquet file"))


def test_a_landing_file_that_arrives_late_is_retried_and_loaded(tmp_path, monkeypatch):
    from ml.ingest import raw_loader

    materialize_days(tmp_path, DAY, groups=("landing",))
    (orders,) = day_files(tmp_path / "landing", "simulated", "orders", DAY)
    parked = tmp_path / "parked.parquet"
    shutil.move(orders, parked)
    # The upstream drop arrives late: once the loader has looked for it and found nothing (not after a fixed
    # time, which a slow machine can pass before the run even starts).
    missed = threading.Event()

    def watched_day_files(root, source, table, day):
        files = day_files(root, source, table, day)
        if table == "orders" and not files:
            missed.set()
        return files

    monkeypatch.setattr(raw_loader, "day_files", watched_day_files)
    arrival = threading.Thread(target=lambda: missed.wait(timeout=300) and shutil.move(parked, orders))
    arrival.start()
    run = _raw_run(tmp_path)
    arrival.join()
    assert run.success and _retries(run) >= 1
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.orders").fetchall()[0][0] > 0


def test_a_locked_warehouse_is_retried_until_the_other_writer_is_done(tmp_path):
    materialize_days(tmp_path, DAY, groups=("landing",))
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print(1, flush=True); time.sleep(2)",
        ],
        stdout=subprocess.PIPE,
    )
    holder.stdout.readline()  # the other process holds the write lock now
    started = time.perf_counter()
    run = _raw_run(tmp_path)
    holder.wait()
    assert run.success and _retries(run) >= 1 and time.perf_counter() - started >= 1


def test_a_corrupt_file_fails_at_once_without_a_retry(tmp_path):
    materialize_days(tmp_path, DAY, groups=("landing",))
    (orders,) = day_files(tmp_path / "landing", "simulated", "orders", DAY)
    orders.write_bytes(b"this is not parquet")
    run = _raw_run(tmp_path)
    assert not run.success and _retries(run) == 0
    failures = [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failures[0].event_specific_data.error)
    assert "not a readable Parquet file" in message and orders.name in message and "not retried" in message


def test_a_day_ingested_before_the_day_its_references_need_fails_at_once_and_replaces_no_table(tmp_path):
    """The raw asset checks every table's history before replacing any: customers (which refer to nothing) are
    not loaded for day 2 when its orders must be refused because day 1 is not in raw."""
    next_day = "2025-01-02"
    materialize_days(tmp_path, DAY, next_day, groups=("landing",))
    run = _raw_run(tmp_path, next_day)
    assert not run.success and _retries(run) == 0
    failures = [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failures[0].event_specific_data.error)
    assert f"not in raw yet ({DAY})" in message and f"Load from {DAY}" in message and "not retried" in message
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        loaded = (
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = 'customers'"
            ).fetchall()[0][0]
            and con.execute("SELECT count(*) FROM raw.customers").fetchall()[0][0]
        )
    assert not loaded
