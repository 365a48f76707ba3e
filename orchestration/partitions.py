"""The one partitions definition of the whole graph: one partition per calendar day (UTC)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg

from ml.settings import source_settings
from ml.sources import get_source

POOL = "duckdb_warehouse"
"""The concurrency pool of every asset that writes the DuckDB file (one writer process at a time)."""


def _partitions_for(source_name: str) -> dg.DailyPartitionsDefinition:
    source = get_source(source_name)
    end = source.end_date
    return dg.DailyPartitionsDefinition(
        start_date=source.start_date.isoformat(),
        # The replay's last partition is its last day of data; the simulated store runs up to yesterday.
        end_date=(end + timedelta(days=1)).isoformat() if end else None,
        timezone="UTC",
    )


daily_partitions = _partitions_for(source_settings().name)


def window_days(start: datetime, end: datetime) -> list[date]:
    """The calendar days of a partition time window ``[start, end)``."""
    first, last = start.date(), end.date()
    return [first + timedelta(days=i) for i in range((last - first).days)]


def partition_days(context) -> list[date]:
    """The days of the run's partition window (one day, or a range in a single-run backfill)."""
    window = context.partition_time_window
    return window_days(window.start, window.end)


DAILY_WAREHOUSE_WRITER = {
    "partitions_def": daily_partitions,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "pool": POOL,
}
"""The arguments every daily asset that writes the warehouse shares: the one partitions definition, a range in
one run, and the single-writer pool."""


PREVIOUS_DAY = dg.TimeWindowPartitionMapping(
    start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
)
"""Day D reads day D-1 (none before the first partition)."""


def state_of_previous_day(key: dg.AssetKey) -> dg.AssetDep:
    """The dependency of an asset on its own previous partition: the state it starts from (a model's weights, a
    decayed preference state, yesterday's segments), declared so a re-run's starting point is visible."""
    return dg.AssetDep(key, partition_mapping=PREVIOUS_DAY)


RESTATED_TAG = "aigc/restated"
RESTATEMENT_REASON_TAG = "aigc/restatement_reason"
"""Tags of a run that re-materialises a day because its landing content changed (the landing sensor sets them;
the raw assets show them in their metadata, so the UI says which partitions were restated and why)."""
