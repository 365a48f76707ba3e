"""Row-count reconciliation between landing, raw and staging: it balances on a clean load and catches a lost,
doubled or silently dropped row."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from ml.ingest.raw_loader import load_window
from ml.quality.reconcile import reconcile_landing, reconcile_staging, write_quarantine_summary
from ml.sources import get_source

DAY = date(2025, 1, 1)


@pytest.fixture
def loaded(tmp_path):
    source = get_source("simulated", scale="small", dirty_rate=0.5)
    source.write_day(DAY, tmp_path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table in ("customers", "products", "events"):
        load_window(con, tmp_path, "simulated", table, [DAY])
    # A staging table the way dbt builds it: one row per event id of the day.
    con.execute("CREATE SCHEMA staging")
    con.execute(
        "CREATE TABLE staging.stg_events AS SELECT DISTINCT ON (event_id) *, _event_date AS event_date "
        "FROM raw.events ORDER BY event_id"
    )
    yield con, tmp_path
    con.close()


def test_clean_load_balances_including_quarantine_and_duplicates(loaded):
    con, landing = loaded
    rec = reconcile_landing(con, landing, "simulated", "events", [DAY])
    assert rec.ok and rec.quarantined > 0 and rec.landed == rec.raw + rec.quarantined
    stg = reconcile_staging(con, "events", DAY, DAY)
    assert stg.ok and stg.duplicates > 0 and stg.raw == stg.staged + stg.duplicates
    summary = write_quarantine_summary(con, DAY, DAY)
    assert int(summary["n_rows"].sum()) == rec.quarantined
    assert set(summary["table_name"]) == {"events"}
    # written once per day: a second run replaces the day instead of adding to it
    write_quarantine_summary(con, DAY, DAY)
    stored = con.execute("SELECT sum(n_rows), count(*) FROM quality.quarantine_daily").fetchone()
    assert stored == (rec.quarantined, len(summary))


def test_a_lost_raw_row_breaks_the_landing_reconciliation(loaded):
    con, landing = loaded
    con.execute("DELETE FROM raw.events WHERE event_id = (SELECT min(event_id) FROM raw.events)")
    rec = reconcile_landing(con, landing, "simulated", "events", [DAY])
    assert not rec.ok and rec.as_metadata()["difference"] == 1


def test_a_row_dropped_by_staging_breaks_the_staging_reconciliation(loaded):
    con, _ = loaded
    con.execute(
        "DELETE FROM staging.stg_events WHERE event_id = (SELECT max(event_id) FROM staging.stg_events)"
    )
    rec = reconcile_staging(con, "events", DAY, DAY)
    assert not rec.ok and rec.as_metadata()["difference"] == 1
