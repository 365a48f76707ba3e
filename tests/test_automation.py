"""Schedule, sensors and declarative automation, evaluated with Dagster's own test contexts."""

from __future__ import annotations

import datetime as dt
import json
from datetime import UTC, date, datetime

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.test_utils import freeze_time

from ml.sources import get_source
from ml.sources.landing import day_dir, day_files
from orchestration.definitions import defs
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


def test_the_same_content_redelivered_restates_nothing(landing):
    import os

    get_source("simulated").write_day(DAY, landing)
    _, cursor = _tick()
    (orders,) = day_files(landing, "simulated", "orders", DAY)
    orders.write_bytes(orders.read_bytes())  # re-delivered: same bytes, a new modification time
    os.utime(orders, ns=(orders.stat().st_atime_ns, orders.stat().st_mtime_ns + 10**9))
    again, cursor = _tick(cursor)
    assert again == []
    assert _tick(cursor)[0] == []  # and the new signature is remembered


def test_a_cursor_from_before_content_hashes_does_not_reload_every_day(landing):
    import json

    get_source("simulated").write_day(DAY, landing)
    old_format = json.dumps({DAY.isoformat(): "0123456789abcdef"})  # day -> the old stat fingerprint
    requests, cursor = _tick(old_format)
    assert requests == []  # that drop was loaded before; its content is the baseline now
    assert set(json.loads(cursor)[DAY.isoformat()]) == {"signature", "content"}
    (orders,) = day_files(landing, "simulated", "orders", DAY)
    pq.write_table(pq.read_table(orders).slice(1), orders)
    assert [r.partition_key for r in _tick(cursor)[0]] == [
        DAY.isoformat()
    ]  # a later correction still restates


def test_corrected_content_restates_the_day_and_says_why(landing):
    from orchestration.partitions import RESTATED_TAG, RESTATEMENT_REASON_TAG

    get_source("simulated").write_day(DAY, landing)
    first, cursor = _tick()
    assert RESTATED_TAG not in first[0].tags  # the first delivery is not a restatement
    (orders,) = day_files(landing, "simulated", "orders", DAY)
    pq.write_table(pq.read_table(orders).slice(1), orders)  # corrected: one order withdrawn
    second, _ = _tick(cursor)
    assert [r.partition_key for r in second] == [DAY.isoformat()]
    assert second[0].tags[RESTATED_TAG] == "true"
    assert second[0].tags[RESTATEMENT_REASON_TAG] == "landing content changed: orders"


@pytest.mark.e2e
def test_a_restated_day_replaces_its_raw_rows_says_why_and_automation_restates_what_follows(latest_day):
    """The documented path for corrected landing content: the sensor's run (tagged) replaces the day's raw rows
    (no double count), the raw assets say restated and why, and automation then asks for the layers built on
    raw for that day (the marts and what follows, tick by tick)."""
    import duckdb

    from orchestration.partitions import RESTATEMENT_REASON_TAG
    from tests.pipeline_helpers import all_assets, resources_for

    # the day's first delivery is materialised and what it asked for is behind us (the fixture's last tick)
    data_dir, automation = latest_day["data_dir"], latest_day["automation"]
    with freeze_time(BEFORE_THE_DEADLINE):
        (orders,) = day_files(data_dir / "landing", "simulated", "orders", LATEST)
        corrected = pq.read_table(orders).slice(2)
        pq.write_table(corrected, orders)
        run = dg.materialize(
            all_assets(),
            selection=dg.AssetSelection.groups("ingest"),
            resources=resources_for(data_dir),
            partition_key=LATEST,
            tags={RESTATEMENT_REASON_TAG: "landing content changed: orders"},
            instance=automation.instance,
        )
        after = automation.requested()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM raw.orders").fetchall()[0][0]
        quarantined = con.execute("SELECT count(*) FROM raw.quarantine_orders").fetchall()[0][0]
    assert stored + quarantined == corrected.num_rows  # replaced, not added to the first delivery
    (event,) = [
        e for e in run.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["raw", "orders"])
    ]
    meta = event.materialization.metadata
    assert meta["restated"].value is True
    assert meta["restatement_reason"].value == "landing content changed: orders"
    assert any(k.startswith("staging/") for k in after), after  # the layer on raw is asked for again


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


LATEST = "2025-01-01"  # the store's first day: every order's customer signs up in the same delivery
BEFORE_THE_DEADLINE = dt.datetime(2025, 1, 2, 3, tzinfo=dt.UTC)  # 01-01 is the latest complete partition


class _Automation:
    """Evaluations of the real graph's automation conditions, each from the cursor of the one before (as the
    daemon's ticks)."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def requested(self) -> set[str]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return {r.key.to_user_string() for r in result.results if r.true_subset.size}


@pytest.fixture(scope="module")
def latest_day(tmp_path_factory) -> dict:
    """The foundation (landing to marts and their checks) of the latest day materialised for real on a fresh
    instance, with automation evaluated before it and after it. The real-graph test reads what those ticks asked
    for; the restatement test goes on from this state (the only test that changes it)."""
    from tests.pipeline_helpers import materialize_days

    data_dir = tmp_path_factory.mktemp("latest_day")
    with freeze_time(BEFORE_THE_DEADLINE):
        automation = _Automation(dg.DagsterInstance.ephemeral())
        before = automation.requested()
        materialize_days(data_dir, LATEST, instance=automation.instance)
        after = automation.requested()
    return {"data_dir": data_dir, "automation": automation, "requested_before": before, "requested": after}


@pytest.mark.e2e
def test_on_the_real_graph_the_layers_after_the_marts_wait_for_the_marts_blocking_checks(
    latest_day, tmp_path
):
    """The foundation (landing to marts and their checks) of the latest day materialised for real: automation then
    asks for the models built on the marts and nothing the run already made. When the day's fct_orders fails its
    blocking check (an order from a channel outside the contract, which the loader keeps and the mart suite
    refuses), nothing that reads fct_orders is asked for, while the forecast (it reads the demand mart only) is."""
    from tests.pipeline_helpers import FOUNDATION_GROUPS, all_assets, materialize_days, resources_for

    graph = defs.resolve_asset_graph()
    foundation = {
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name in FOUNDATION_GROUPS
    }
    reads_orders = {k.to_user_string() for k in graph.get(dg.AssetKey(["marts", "fct_orders"])).child_keys}
    assert latest_day["requested_before"] == set()  # nothing landed yet: nothing to do
    requested = latest_day["requested"]
    with freeze_time(BEFORE_THE_DEADLINE):
        broken = _Automation(dg.DagsterInstance.ephemeral())
        broken.requested()
        materialize_days(tmp_path / "broken", LATEST, groups=("landing",), instance=broken.instance)
        (orders,) = day_files(tmp_path / "broken" / "landing", "simulated", "orders", LATEST)
        table = pq.read_table(orders)
        channels = table.column("channel").to_pylist()
        channels[0] = "carrier_pigeon"
        pq.write_table(
            table.set_column(table.schema.get_field_index("channel"), "channel", pa.array(channels)), orders
        )
        run = dg.materialize(
            all_assets(),
            selection=dg.AssetSelection.groups(*(g for g in FOUNDATION_GROUPS if g != "landing")),
            resources=resources_for(tmp_path / "broken"),
            partition_key=LATEST,
            instance=broken.instance,
            raise_on_error=False,
        )
        gx = [e.passed for e in run.get_asset_check_evaluations() if e.check_name == "gx_fct_orders"]
        assert gx == [False]
        blocked = broken.requested()
    # the layer whose upstream is complete and checked (candidate_models too: its own previous day is before the
    # first partition); the rest follows tick by tick, each waiting for the blocking checks of what it reads
    # (customer_day for product_day's)
    assert {"features/feature_days", "features/sku_day", "supply/demand_forecast"} <= requested
    assert "recommend/candidate_models" in requested and "features/customer_day" not in requested
    assert not requested & foundation
    assert reads_orders & requested and not blocked & reads_orders
    assert "supply/demand_forecast" in blocked


def test_freshness_checks_turn_red_when_yesterday_is_not_materialised_by_six():
    from orchestration.defs.quality.assets import freshness_checks
    from orchestration.partitions import daily_partitions
    from orchestration.resources import build_resources

    instance = dg.DagsterInstance.ephemeral()
    for day in ("2025-01-01", "2025-01-02"):
        for model in ("fct_orders", "fct_events", "fct_daily_sku_demand"):
            instance.report_runless_asset_event(dg.AssetMaterialization(["marts", model], partition=day))

    def fresh(now: dt.datetime) -> dict[str, bool]:
        # Dagster caches a partitions definition's last window by timestamp; an earlier test's frozen clock may
        # have filled that cache for the same deadline, so start from an empty one
        type(daily_partitions)._get_last_partition_window.cache_clear()
        with freeze_time(now):
            result = dg.materialize(
                [*defs.assets, *defs.asset_checks],
                selection=dg.AssetSelection.checks(*freshness_checks),
                resources=build_resources(),
                instance=instance,
                raise_on_error=False,
            )
        return {e.asset_key.path[-1]: e.passed for e in result.get_asset_check_evaluations()}

    on_time = fresh(dt.datetime(2025, 1, 3, 7, tzinfo=dt.UTC))  # 01-02 was due by 06:00 on 01-03: it is there
    late = fresh(dt.datetime(2025, 1, 4, 7, tzinfo=dt.UTC))  # 01-03 was due by 06:00 on 01-04: missing
    assert on_time == dict.fromkeys(("fct_orders", "fct_events", "fct_daily_sku_demand"), True)
    assert late == dict.fromkeys(("fct_orders", "fct_events", "fct_daily_sku_demand"), False)
