"""Pure helpers that turn a partition window into dbt arguments (unit-tested, no Dagster context needed)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from ml.sources.schema import LATE_ROW_TOLERANCE_DAYS

LOOKBACK_DAYS = LATE_ROW_TOLERANCE_DAYS
"""Late rows (event time before their landing day) are picked up by rebuilding this many earlier days; the raw
layer quarantines rows later than this, so every loaded row falls inside some run's window."""


def partition_vars(first_day: date, last_day: date, lookback_days: int = LOOKBACK_DAYS) -> dict[str, str]:
    """dbt vars for the partition days ``first_day..last_day`` (inclusive), widened by the lookback."""
    if last_day < first_day:
        raise ValueError(f"empty window: {first_day} > {last_day}")
    if lookback_days < 0:
        raise ValueError("lookback_days must be >= 0")
    return {
        "min_date": (first_day - timedelta(days=lookback_days)).isoformat(),
        "max_date": last_day.isoformat(),
    }


def build_args(dbt_vars: dict[str, str], *, full_refresh: bool = False, command: str = "build") -> list[str]:
    """The dbt CLI arguments of one run. The selection itself comes from the asset subset (dagster-dbt)."""
    args = [command, "--vars", json.dumps(dbt_vars, sort_keys=True)]
    if full_refresh:
        args.append("--full-refresh")
    return args
