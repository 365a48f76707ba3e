"""Schedule, sensors and declarative automation, evaluated with Dagster's own test contexts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import dagster as dg
import pyarrow.parquet as pq
import pytest

from ml.sources import get_source
from ml.sources.landing import day_dir, day_files
from orchestration.defs.automation import (
    DOWNSTREAM_AUTOMATION,
    landing_drop_sensor,
    raw_ingest,
    run_failure_alert_sensor,
)
from orchestration.defs.schedules import daily_schedule

DAY = date(2025, 1, 5)


def test_daily_schedule_requests_yesterday_with_a_stable_run_key():
    requests = []
    for _ in range(2):
        context = dg.build_schedule_context(scheduled_execution_time=datetime(2025, 1, 15, 2, 0, tzinfo=UTC))
        (request,) = daily_schedule.evaluate_tick(context).run_requests
        requests.append(request)
    assert requests[0].partition_key == "2025-01-14"
    assert requests[0].run_key == requests[1].run_key  # a re-evaluated tick cannot launch a second run


@pytest.fixture
def landing(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIGC_SOURCE", "simulated")
    return tmp_path / "landing"


def _tick(cursor=None):
    context = dg.build_sensor_context(cursor=cursor)
    result = landing_drop_sensor(context)
    return (result if isinstance(result, list) else []), context.cursor


def test_landing_sensor_launches_a_complete_drop_once(landing):
    assert _tick()[0] == []
    get_source("simulated").write_day(DAY, landing)
    requests, cursor = _tick()
    assert [r.partition_key for r in requests] == [DAY.isoformat()]
    assert requests[0].job_name in (None, raw_ingest.name)
    again, _ = _tick(cursor)
    assert again == []


def test_landing_sensor_waits_for_every_table(landing):
    get_source("simulated").write_day(DAY, landing)
    for f in day_files(landing, "simulated", "inventory", DAY):
        f.unlink()
    day_dir(landing, "simulated", "inventory", DAY).rmdir()
    assert _tick()[0] == []


def test_a_late_file_relaunches_the_day(landing):
    get_source("simulated").write_day(DAY, landing)
    first, cursor = _tick()
    (orders,) = day_files(landing, "simulated", "orders", DAY)
    pq.write_table(pq.read_table(orders).slice(0, 1), orders.with_name("part-late.parquet"))
    second, _ = _tick(cursor)
    assert [r.partition_key for r in second] == [DAY.isoformat()]
    assert second[0].run_key != first[0].run_key


def test_run_failure_sensor_writes_an_alert_with_the_failing_step(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_DATA_DIR", str(tmp_path))

    @dg.op
    def load_partition():
        raise ValueError("landing file part-0.parquet: missing column 'order_total'")

    @dg.job
    def failing_job():
        load_partition()

    instance = dg.DagsterInstance.ephemeral()
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    run_failure_alert_sensor(context)
    (line,) = (tmp_path / "alerts" / "run_failures.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["job"] == "failing_job" and record["run_id"] == result.run_id
    assert record["failed_steps"][0]["step"] == "load_partition"
    assert "missing column 'order_total'" in record["failed_steps"][0]["message"]


def _toy_graph(check_passes: bool) -> dg.Definitions:
    @dg.asset
    def upstream():
        return 1

    @dg.asset_check(asset=upstream, blocking=True)
    def upstream_is_valid():
        return dg.AssetCheckResult(passed=check_passes)

    @dg.asset(deps=[upstream], automation_condition=DOWNSTREAM_AUTOMATION)
    def downstream():
        return 2

    return dg.Definitions(assets=[upstream, downstream], asset_checks=[upstream_is_valid])


@pytest.mark.parametrize("check_passes", [True, False])
def test_downstream_runs_only_after_upstream_updates_and_its_blocking_check_passes(check_passes):
    defs = _toy_graph(check_passes)
    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    # Upstream never materialised: nothing to do downstream yet.
    assert first.total_requested == 0
    upstream_job = dg.materialize(
        [defs.resolve_assets_def("upstream"), *defs.asset_checks], instance=instance, raise_on_error=False
    )
    assert upstream_job.get_asset_check_evaluations()[0].passed is check_passes
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.total_requested == (1 if check_passes else 0)
