"""dbt models as Dagster assets.

Every incremental model is partitioned by day and receives its window as dbt vars (``min_date``/``max_date``,
widened by the lookback), so a single-run backfill of a range is one ``dbt build``. Models that are not
incremental would be built unpartitioned (none today: every model is incremental, see tests).
"""


import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.defs.transform.dbt_args import build_args, partition_vars
from orchestration.defs.transform.project import dbt_project
from orchestration.partitions import POOL, daily_partitions, window_days
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
    window = context.partition_time_window
    days = window_days(window.start, window.end)
    first_day, last_day = days[0], days[-1]
    dbt_vars = partition_vars(first_day, last_day)
    context.log.info(f"dbt window {dbt_vars} for partitions {first_day}..{last_day}")
    # dbt's profile reads the warehouse path from the environment: hand it the resource's path.
    os.environ.update(dbt_env(warehouse.path))
    invocation = dbt.cli(build_args(dbt_vars, full_refresh=config.full_refresh), context=context)
    try:
        yield from invocation.stream().fetch_row_counts().fetch_column_metadata()
    finally:
        release_dbt_adapter_connection()


def release_dbt_adapter_connection() -> None:
    """Close the DuckDB connection that dagster-dbt's fetch helpers open through dbt's adapter in this process.

    dbt-duckdb keeps it in a class-level environment; left open, it blocks every later connection to the
    warehouse from the same process with another configuration (read-only readers, later steps of an
    in-process run). There is no public API for this, hence the guarded private access.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter (prod on a server engine): nothing held locally
        return
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    if env is not None:
        env.close()
        DuckDBConnectionManager._ENV = None
