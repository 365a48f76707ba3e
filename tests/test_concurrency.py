"""Races, as ops make them in the UI: on a warehouse that holds 30 days, the daily schedule's run of the next
day, a backfill restating the 30 days and a backfill overlapping both are launched together against one `dagster
dev` (webserver, daemon, the queued run coordinator and the warehouse pool of the shipped dagster.yaml). They
must all succeed without a DuckDB lock error, never write the warehouse at the same time, and leave the tables a
sequential run leaves; the read API and the UI's previews answer while a run holds the warehouse.

Why a warehouse with history: the raw layer checks a day's customers and SKUs against the days loaded up to it,
so on an empty warehouse the order of the runs would matter; loading a day before the days it refers to is
refused with a message instead (tests/test_bad_inputs.py).

Scope: the layers that write the warehouse per day (landing → raw → dbt marts and their checks). The layers
after the marts start from their own previous day (models, states) and are materialised in day order by their
automation, so a race of those is not a question of locking but of order.

Run by `make test-e2e` (which `.ci/run` calls): it needs the daemon and takes about seven minutes.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.defs.schedules import daily_schedule
from orchestration.instance import prepare_instance
from tests.api_server import get, running_api
from tests.pipeline_helpers import checksums, landing_rows, materialize_days, run_selection
from tests.test_api import _write_exports
from tests.ui_server import DagsterUI, start_dagster_dev, stop

pytestmark = [pytest.mark.daemon, pytest.mark.e2e]

FIRST = date(2025, 1, 1)
LAST = FIRST + timedelta(days=30)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(31)]
BACKFILL = DAYS[:30]  # the 30 days before the schedule's day
OVERLAPPING = DAYS[19:]  # 20th .. 31st: overlaps the backfill and the schedule's day
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_BACKFILL = """mutation Backfill($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_STATUS = """query Status($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } ... on PythonError { message } } }"""
LATEST_PREVIEW = """query Preview($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
  assetMaterializations(limit: 1) { partition metadataEntries { label } } } } }"""


def warehouse_selection() -> tuple[list[dg.AssetKey], list[dg.AssetCheckKey]]:
    """The daily job's warehouse layers and their checks (what the races below materialise)."""
    from orchestration.definitions import defs

    graph, selection = defs.resolve_asset_graph(), run_selection()
    keys = selection.resolve(graph)
    return sorted(keys, key=lambda k: k.to_string()), sorted(
        selection.resolve_checks(graph), key=lambda c: (c.asset_key.path, c.name)
    )


def schedule_request() -> dg.RunRequest:
    """What the real daily schedule asks for on the morning after ``LAST``."""
    tick = datetime.combine(LAST + timedelta(days=1), datetime.min.time(), tzinfo=UTC).replace(hour=2)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        (request,) = daily_schedule.evaluate_tick(context).run_requests
    return request


def launch_schedule_run(
    ui: DagsterUI, request: dg.RunRequest, keys: list[dg.AssetKey], checks: list[dg.AssetCheckKey]
) -> str:
    tags = {
        **request.tags,
        "dagster/partition": request.partition_key,
        "dagster/schedule_name": daily_schedule.name,
    }
    return ui.launch_run(daily_schedule.job_name, keys, checks, tags)


def launch_backfill(ui: DagsterUI, days: list[str], keys: list[dg.AssetKey], title: str) -> str:
    """What ops do from the asset graph: select the assets, pick the partitions, launch a backfill."""
    answer = ui.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "partitionNames": days,
                "assetSelection": [{"path": k.path} for k in keys],
                "fromFailure": False,
                "title": title,
            }
        },
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


class WhileWriting:
    """Polls the read API and the UI's latest-materialisation preview of a mart in a thread; records each answer
    with whether a run was in progress at that moment."""

    def __init__(self, ui: DagsterUI, api_base: str):
        self.ui, self.api_base = ui, api_base
        self.answers: list[tuple[bool, str, bool]] = []  # (a run was STARTED, what, answered correctly)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)

    def _poll(self) -> None:
        while not self._stop.wait(1.0):
            try:
                writing = any(r["status"] == "STARTED" for r in self.ui.runs())
            except Exception:  # noqa: BLE001 - a failed status query is itself an answer the UI did not give
                self.answers.append((True, "runs", False))
                continue
            status, body = get(f"{self.api_base}/recommendations/C1")
            self.answers.append((writing, "api", status == 200 and body["items"][0]["sku"] == "S9"))
            try:
                asset = self.ui.graphql(LATEST_PREVIEW, {"key": {"path": ["marts", "fct_orders"]}})[
                    "assetOrError"
                ]
                self.answers.append((writing, "ui", "assetMaterializations" in asset))
            except Exception:  # noqa: BLE001
                self.answers.append((writing, "ui", False))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same 31 days materialised one after the other in one process: the tables the races must leave."""
    data_dir = tmp_path_factory.mktemp("sequential") / "data"
    materialize_days(data_dir, FIRST.isoformat(), LAST.isoformat())
    return data_dir / "warehouse.duckdb"


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> DagsterUI:
    """`dagster dev` over the instance `make ui` prepares and a warehouse holding the 30 days before the
    schedule's day (materialised as one backfill run, recorded in that instance)."""
    data_dir = tmp_path_factory.mktemp("races") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIGC_DATA_DIR", str(data_dir))
        env.delenv("DAGSTER_HOME", raising=False)
        home = prepare_instance()
    instance = dg.DagsterInstance.from_config(str(home))
    materialize_days(data_dir, BACKFILL[0], BACKFILL[-1], instance=instance)
    instance.dispose()
    _write_exports(data_dir / "exports")  # what the read API serves while the warehouse is written
    server = start_dagster_dev(data_dir, home, data_dir.parent / "dagster_dev.log")
    yield server
    stop(server)


def test_the_schedule_and_two_overlapping_backfills_queue_and_leave_the_sequential_tables(ui, reference):
    keys, checks = warehouse_selection()
    request = schedule_request()
    assert request.partition_key == LAST.isoformat()

    with running_api(ui.data_dir / "exports") as api, WhileWriting(ui, api.base) as watcher:
        scheduled = launch_schedule_run(ui, request, keys, checks)
        backfills = [
            launch_backfill(ui, BACKFILL, keys, "30 days before the schedule's day"),
            launch_backfill(ui, OVERLAPPING, keys, "overlapping backfill"),
        ]
        runs = _wait_for_backfills_and_runs(ui, backfills, [scheduled], timeout=1500)

    failed = {i: ui.failure(i) for i, r in runs.items() if r["status"] != "SUCCESS"}
    assert not failed, failed
    assert "Could not set lock" not in ui.log_path.read_text(errors="replace")
    # every run writes the warehouse: no two were ever in progress at the same time
    spans = sorted((r["startTime"], r["endTime"], i) for i, r in runs.items())
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"{second} started before {first} had finished"
    assert {_tag(r, "dagster/backfill") for r in runs.values()} >= set(backfills), (
        "a backfill launched no run"
    )

    warehouse = ui.data_dir / "warehouse.duckdb"
    assert checksums(warehouse) == checksums(reference)
    # nothing double-counted where the ranges overlapped: raw + quarantine = the landing rows of every day
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = sum(
            con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
            for t in ("orders", "quarantine_orders")
        )
    assert loaded == landing_rows(ui.data_dir / "landing", "simulated", "orders", DAYS)

    during = [(what, ok) for writing, what, ok in watcher.answers if writing]
    assert {w for w, _ in during} >= {"api", "ui"}, "no answer was asked for while a run was writing"
    assert all(ok for _, ok in during), [a for a in during if not a[1]]


def _tag(run: dict, key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def _wait_for_backfills_and_runs(
    ui: DagsterUI, backfills: list[str], run_ids: list[str], timeout: float
) -> dict[str, dict]:
    """Wait until every backfill has finished and every run it launched (and ``run_ids``) is terminal."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {
            b: ui.graphql(BACKFILL_STATUS, {"id": b})["partitionBackfillOrError"].get("status")
            for b in backfills
        }
        runs = {
            r["runId"]: r
            for r in ui.runs()
            if r["runId"] in run_ids or _tag(r, "dagster/backfill") in backfills
        }
        backfills_done = all(s not in (None, "REQUESTED", "CANCELING", "FAILING") for s in statuses.values())
        if backfills_done and runs and all(r["status"] in TERMINAL for r in runs.values()):
            return runs
        if time.monotonic() > deadline:
            states = {i: r["status"] for i, r in runs.items()}
            raise TimeoutError(f"not finished after {timeout:.0f}s: {statuses} {states}\n{ui.log_tail()}")
        time.sleep(3)
