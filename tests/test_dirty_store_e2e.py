"""Simulator dirt end to end: a dirty delivery builds the same marts as the clean one, and the quarantine plus
staging's deduplication account for every injected defect (issue 3, point 4; the e2e part of the corpus:
duplicate event ids within and across days, late re-sends picked up by the lookback and counted once)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from ml.sources import get_source
from ml.sources.dirt import expected_outcome
from tests.pipeline_helpers import checksums, materialize_days

pytestmark = pytest.mark.e2e

FIRST, LAST = "2025-01-01", "2025-01-03"
DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(3)]
RATE = 0.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    clean = tmp_path_factory.mktemp("clean")
    dirty = tmp_path_factory.mktemp("dirty")
    materialize_days(clean, FIRST, LAST)
    materialize_days(dirty, FIRST, LAST, dirty_rate=RATE)
    return clean / "warehouse.duckdb", dirty / "warehouse.duckdb"


def test_marts_of_a_dirty_delivery_equal_the_clean_marts(runs):
    clean, dirty = runs
    clean_marts = checksums(clean, schemas=("marts",))
    dirty_marts = checksums(dirty, schemas=("marts",))
    assert clean_marts.keys() == dirty_marts.keys() and len(clean_marts) >= 8
    assert dirty_marts == clean_marts


def test_quarantine_accounts_for_every_injected_defect(runs):
    _, dirty = runs
    source = get_source("simulated", dirty_rate=RATE)
    expected: dict[str, dict[str, int]] = {}
    for day in DAYS:
        per_table, _ = expected_outcome(source.ledger(day))
        for table, reasons in per_table.items():
            for reason, n in reasons.items():
                expected.setdefault(table, {})[reason] = expected.setdefault(table, {}).get(reason, 0) + n
    assert expected["events"] and expected["orders"] and expected["order_items"]
    with duckdb.connect(str(dirty), read_only=True) as con:
        for table in ("events", "orders", "order_items", "inventory", "customers", "products"):
            found = dict(
                con.execute(f"SELECT _reason, count(*) FROM raw.quarantine_{table} GROUP BY 1").fetchall()
            )
            assert found == expected.get(table, {}), table


def test_duplicates_and_late_resends_are_removed_once_by_staging(runs):
    clean, dirty = runs
    source = get_source("simulated", dirty_rate=RATE)
    injected_duplicates = sum(expected_outcome(source.ledger(day))[1].get("events", 0) for day in DAYS)
    assert injected_duplicates > 0
    with duckdb.connect(str(dirty), read_only=True) as con:
        raw_events = con.execute("SELECT count(*) FROM raw.events").fetchone()[0]
        staged = con.execute("SELECT count(*) FROM staging.stg_events").fetchone()[0]
        late = con.execute("SELECT count(*) FROM raw.events WHERE _event_date < _landing_date").fetchone()[0]
    with duckdb.connect(str(clean), read_only=True) as con:
        clean_staged = con.execute("SELECT count(*) FROM staging.stg_events").fetchone()[0]
    assert late > 0, "the late re-sends of yesterday's events must reach raw"
    assert raw_events - staged == injected_duplicates
    assert staged == clean_staged
