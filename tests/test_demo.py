"""The demo's runs: a long range in parts of at most ``--run-days`` days, in order, with the bundle retention
after each part; real Dagster runs of small jobs stand in for the whole graph (which the end-to-end tests run)."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.demo import days_done, parse_args, run_in_parts, run_ranges


def test_a_range_is_split_into_parts_of_at_most_run_days():
    keys = [f"2025-01-{d:02d}" for d in range(1, 11)]
    assert run_ranges(keys, "open", 4) == [
        ("2025-01-01", "2025-01-04"),
        ("2025-01-05", "2025-01-08"),
        ("2025-01-09", "2025-01-10"),
    ]
    assert run_ranges(keys, "open", 28) == [("2025-01-01", "2025-01-10")]
    assert run_ranges(keys[:3], "closed", 28) == [(k, k) for k in keys[:3]]
    for bad in (["--run-days", "0"], ["--days", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def jobs(record: list, fail_from: str | None = None):
    """A daily-partitioned job that records each run's partition range (and fails from ``fail_from`` on), and a
    retention job that records that it ran."""
    days = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-02-01")

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run(), dagster_type=dg.Nothing)
    def daily(context):
        window = context.partition_key_range
        record.append((window.start, window.end))
        if fail_from is not None and window.start >= fail_from:
            raise RuntimeError("this part fails")

    @dg.op
    def prune():
        record.append("retention")

    @dg.job
    def retention():
        prune()

    return dg.Definitions(assets=[daily], jobs=[retention]).resolve_job_def("__ASSET_JOB"), retention


def test_each_part_is_one_run_in_order_with_the_retention_after_it():
    record: list = []
    job, retention = jobs(record)
    ranges = run_ranges([f"2025-01-{d:02d}" for d in range(1, 8)], "open", 4)
    with dg.DagsterInstance.ephemeral() as instance:
        results = run_in_parts(job, retention, ranges, instance, {})
    assert [r.success for r in results] == [True, True]
    assert record == [("2025-01-01", "2025-01-04"), "retention", ("2025-01-05", "2025-01-07"), "retention"]
    # one part: no retention run (the demo of a few days is one run, as before)
    record.clear()
    with dg.DagsterInstance.ephemeral() as instance:
        run_in_parts(job, retention, [("2025-01-01", "2025-01-03")], instance, {})
    assert record == [("2025-01-01", "2025-01-03")]


def test_a_failing_part_stops_the_parts_after_it_and_skips_its_retention():
    record: list = []
    job, retention = jobs(record, fail_from="2025-01-05")
    ranges = run_ranges([f"2025-01-{d:02d}" for d in range(1, 13)], "open", 4)
    with dg.DagsterInstance.ephemeral() as instance:
        results = run_in_parts(job, retention, ranges, instance, {})
    assert [r.success for r in results] == [True, False]
    assert record == [("2025-01-01", "2025-01-04"), "retention", ("2025-01-05", "2025-01-08")]


def test_resume_starts_after_the_days_that_successful_runs_of_the_whole_job_cover():
    record: list = []
    failing, retention = jobs(record, fail_from="2025-01-09")
    job, _ = jobs(record)  # the same job (the same name) once the failure is mended
    keys = [f"2025-01-{d:02d}" for d in range(1, 13)]
    with dg.DagsterInstance.ephemeral() as instance:
        assert days_done(instance, job.name, keys) == 0
        results = run_in_parts(failing, retention, run_ranges(keys, "open", 4), instance, {})
        assert [r.success for r in results] == [True, True, False]
        # the failed third part (days 9-12) does not count; the retention job is another job
        assert days_done(instance, job.name, keys) == 8
        assert days_done(instance, job.name, keys[:5]) == 5
        # a run of a selection of the job's assets covers nothing
        selected = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("daily")],
            tags={ASSET_PARTITION_RANGE_START_TAG: "2025-01-09", ASSET_PARTITION_RANGE_END_TAG: "2025-01-09"},
        )
        assert selected.success and selected.dagster_run.asset_selection
        # only the first days in order count: a later day covered after a gap does not move the start
        run_in_parts(job, retention, [("2025-01-11", "2025-01-11")], instance, {})
        assert days_done(instance, job.name, keys) == 8
        run_in_parts(job, retention, [("2025-01-09", "2025-01-10")], instance, {})
        assert days_done(instance, job.name, keys) == 11


def test_resume_is_a_demo_option():
    assert parse_args(["--resume"]).resume is True
    assert parse_args([]).resume is False
