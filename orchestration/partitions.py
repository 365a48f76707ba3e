"""The one partitions definition of the whole graph: one partition per calendar day (UTC)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg

from ml.sources import get_source
from orchestration.settings import source_settings

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
