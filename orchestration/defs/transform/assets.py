"""dbt models as Dagster assets.

Every incremental model is partitioned by day and receives its window as dbt vars (``min_date``/``max_date``,
widened by the lookback), so a single-run backfill of a range is one ``dbt build``. Models that are not
incremental would be built unpartitioned (none today: every model is incremental, see tests).
"""

import functools
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.defs.transform.dbt_args import build_args, partition_vars
from orchestration.defs.transform.project import dbt_project
from orchestration.metadata import column_schema
from orchestration.partitions import POOL, daily_partitions, partition_days
from orchestration.resources import WarehouseResource
from orchestration.settings import dbt_env

INCREMENTAL = "config.materialized:incremental"
OWNERS = ["team:data-platform"]


class LayerTranslator(DagsterDbtTranslator):
    """Groups dbt models by their layer folder (staging, intermediate, marts) and names the owners."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) > 2:
            return fqn[1]
        return super().get_group_name(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return OWNERS

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        return DOWNSTREAM_AUTOMATION


translator = LayerTranslator(settings=DagsterDbtTranslatorSettings(enable_code_references=True))


class DbtRunConfig(dg.Config):
    full_refresh: bool = False
    """Rebuild the selected models from all raw rows (after a model change or to repair history)."""


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=INCREMENTAL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    pool=POOL,
    name="dbt_daily_models",
)
def dbt_daily_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtRunConfig,
):
    days = partition_days(context)
    first_day, last_day = days[0], days[-1]
    dbt_vars = partition_vars(first_day, last_day)
    context.log.info(f"dbt window {dbt_vars} for partitions {first_day}..{last_day}")
    # dbt's profile reads the warehouse path from the environment: hand it the resource's path.
    os.environ.update(dbt_env(warehouse.path))
    invocation = dbt.cli(build_args(dbt_vars, full_refresh=config.full_refresh), context=context)
    # dbt holds the warehouse's write lock until it exits, so the events are collected first and then given
    # row counts from one connection (dagster-dbt's fetch_row_counts() costs ~1 s per model on 2 cores).
    events = list(invocation.stream())
    with warehouse.connect() as con:
        yield from with_row_counts(events, con, dbt_project.manifest_path, dbt_vars)
    # dagster-dbt writes one target folder per run; keep it only when the run failed (it holds dbt.log).
    shutil.rmtree(invocation.target_path, ignore_errors=True)


def with_row_counts(events, con, manifest_path, dbt_vars: dict[str, str]):
    """Add ``dagster/row_count`` (whole table) and ``rows_in_window`` (the dates this run rebuilt) to the
    materialisations of dbt models. Date-partitioned models are keyed on their date column (see the
    ``date_partitioned`` macro), which is what the window count filters on."""
    manifest = _manifest_nodes(str(manifest_path))
    for event in events:
        unique_id = (event.metadata or {}).get("unique_id") if isinstance(event, dg.Output) else None
        node = manifest.get(getattr(unique_id, "value", unique_id))
        if node is None:
            yield event
            continue
        relation = f'"{node["schema"]}"."{node["alias"]}"'
        metadata = {
            "dagster/row_count": con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0],
            "dagster/column_schema": column_schema(con, node["schema"], node["alias"]),
        }
        date_column = node["config"].get("unique_key")
        if isinstance(date_column, str) and date_column.endswith("_date"):
            metadata["rows_in_window"] = con.execute(
                f'SELECT count(*) FROM {relation} WHERE "{date_column}" BETWEEN ? AND ?',
                [dbt_vars["min_date"], dbt_vars["max_date"]],
            ).fetchone()[0]
        yield event.with_metadata({**event.metadata, **metadata})


@functools.cache
def _manifest_nodes(manifest_path: str) -> dict[str, dict]:
    nodes = json.loads(Path(manifest_path).read_text())["nodes"]
    return {uid: node for uid, node in nodes.items() if node["resource_type"] == "model"}
