"""Simulator dirt end to end: a dirty delivery, run day by day as the daily schedule runs it, builds the same marts
and features as the clean one built at once, and the quarantine plus staging's deduplication account
for every injected defect (duplicate event ids within and across days; late re-sends that land a day after their
events, picked up by the next day's run through the lookback and counted once)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from ml.sources import get_source
from ml.sources.dirt import expected_outcome
from orchestration.definitions import defs
from tests.pipeline_helpers import FOUNDATION_GROUPS, checksums, materialize_days
from tests.warehouses import MARTS, build_simulated

pytestmark = pytest.mark.e2e

# Two days are enough: day 1's late re-sends land with day 2's delivery and must be picked up by its run.
DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(2)]
RATE = 0.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The clean delivery of both days built at once by the loader and dbt (the models the daily job builds up to
    the feature layer; that a backfill run by Dagster builds the same as daily runs is test_pipeline_e2e's), and
    the dirty delivery materialised by Dagster day by day."""
    clean = tmp_path_factory.mktemp("clean")
    dirty = tmp_path_factory.mktemp("dirty")
    groups = (*FOUNDATION_GROUPS, "features")
    graph = defs.resolve_asset_graph()
    feature_models = sorted(
        k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).group_name == "features"
    )
    build_simulated(clean, days=len(DAYS), select=" ".join([MARTS, *feature_models]))
    for day in DAYS:  # separate runs: a late row of one day arrives with the next day's delivery
        materialize_days(dirty, day.isoformat(), groups=groups, dirty_rate=RATE)
    return clean / "warehouse.duckdb", dirty / "warehouse.duckdb"


def test_marts_and_features_of_a_dirty_daily_delivery_equal_the_clean_ones(runs):
    clean, dirty = runs
    clean_marts = checksums(clean, schemas=("marts", "features"))
    dirty_marts = checksums(dirty, schemas=("marts", "features"))
    assert clean_marts.keys() == dirty_marts.keys() and len(clean_marts) >= 20
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
