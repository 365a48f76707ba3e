"""Retention of the recommender bundles: a job of its own, scheduled after the daily run.

A bundle is about 80 MB a day on Online Retail by December (EASE's item-by-item matrix), so they cannot be kept
forever; but a bundle is what later partitions start from (``candidate_models`` D warm-starts from D-1,
``model_evaluation`` E scores E-1, ``recommendations`` D serves D). The job keeps the last
``bundle_retention_days`` days (counted back from the newest bundle) and every day that a run not yet finished
(queued or running) may read: its partition window and the day before it. What it deletes it records as an
observation on ``recommend/candidate_models``, so the partition's history says its bundle is gone.
"""

from datetime import date, timedelta

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pydantic import Field

from ml.recommend.bundles import BUNDLES, expired_bundles
from orchestration.partitions import POOL
from orchestration.resources import DataFilesResource

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


class RetentionConfig(dg.Config):
    bundle_retention_days: int = Field(
        default=28,
        ge=2,
        description=(
            "Days of candidate bundles kept, back from the newest. Re-running an older day of candidate_models "
            "rebuilds its bundle (SASRec then trains from scratch: the day before it has no bundle either)."
        ),
    )


def days_a_run_reads(tags: dict[str, str]) -> set[date]:
    """The bundle days a run with these tags may read: its partition (or range) and the day before it."""
    start = tags.get(ASSET_PARTITION_RANGE_START_TAG) or tags.get("dagster/partition")
    end = tags.get(ASSET_PARTITION_RANGE_END_TAG) or start
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except (TypeError, ValueError):  # not a daily-partitioned run
        return set()
    return {first - timedelta(days=1) + timedelta(days=i) for i in range((last - first).days + 2)}


@dg.op(
    description="Delete recommender bundles older than the retention, except those an unfinished run reads.",
    pool=POOL,
)
def prune_recommender_bundles(
    context: dg.OpExecutionContext, config: RetentionConfig, files: DataFilesResource
):
    protected: set[date] = set()
    for run in context.instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if run.run_id != context.run_id:
            protected |= days_a_run_reads(run.tags)
    store = files.artifacts()
    expired = expired_bundles(store, config.bundle_retention_days, protected)
    for name in expired:
        store.delete(BUNDLES, name)
        context.log_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey(["recommend", "candidate_models"]),
                partition=name,
                metadata={"bundle_deleted_by_retention": True},
            )
        )
    context.log.info(
        f"deleted {len(expired)} bundles; kept {len(store.names(BUNDLES))}; protected {len(protected)}"
    )
    return len(expired)


@dg.job(description="Delete recommender bundles past their retention (never one an unfinished run reads).")
def recommender_bundle_retention():
    prune_recommender_bundles()


retention_schedule = dg.ScheduleDefinition(
    job=recommender_bundle_retention,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    description="After the daily run (02:00): delete recommender bundles past their retention.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
