"""The daily job and its schedule: every morning, materialise yesterday's partition of the whole graph."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.quality.assets import freshness_checks
from orchestration.partitions import daily_partitions

daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    # Freshness is judged by its sensor against the clock, not by the run that makes the data fresh.
    selection=dg.AssetSelection.all() - dg.AssetSelection.checks(*freshness_checks),
    partitions_def=daily_partitions,
    description="Landing → raw → dbt staging/intermediate/marts (and their checks) for one day or a range.",
)

# build_schedule_from_partitioned_job targets the latest complete partition (yesterday, UTC) and uses the
# partition key as the run key, so a tick that is evaluated twice never launches a second run.
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_pipeline,
    name="daily_pipeline_schedule",
    hour_of_day=2,
    minute_of_hour=0,
    description="02:00 UTC: materialise yesterday's partition of the whole graph.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
