"""dbt models as Dagster assets, in two builds: ``dbt_daily_models`` (staging, intermediate, marts) and
``dbt_feature_models`` (the feature layer), so the marts' blocking checks run between them.

Every incremental model is partitioned by day and receives its window (``min_date``/``max_date``, widened back to
the dates late rows touched; environment variables read when dbt executes, ``macros/window.sql``), so a
single-run backfill of a range is one ``dbt build`` per layer. Models that are not incremental would be built
unpartitioned (none today: every model is incremental, see tests).
"""

import functools
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from pydantic import Field

from ml.dbt import build_args, keep_parsed_project, rebuild_vars, reuse_parsed_project, window_environ
from ml.feedback.summaries import impressions_summary, lost_sales_summary
from ml.profiles.baskets import basket_summary
from ml.profiles.lifecycle import lifecycle_flows_summary
from ml.settings import dbt_env
from ml.sources.schema import VOCABULARIES
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.defs.transform.project import dbt_project
from orchestration.metadata import summary_metadata, table_columns, table_schema
from orchestration.partitions import POOL, daily_partitions, partition_days
from orchestration.resources import WarehouseResource

INCREMENTAL = "config.materialized:incremental"
FEATURES = "tag:features"
OWNERS = ["team:data-platform"]


class LayerTranslator(DagsterDbtTranslator):
    """Groups dbt models by their layer folder (staging, intermediate, marts) and names the owners."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        group = ((dbt_resource_props.get("config") or {}).get("meta") or {}).get("dagster", {}).get("group")
        if group:  # a model that belongs to a domain's group (the basket associations: goods)
            return group
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

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project) -> dg.AssetCheckSpec | None:
        """dbt tests as checks, each described in words ops can read (the test's own description if it has one)."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return spec._replace(description=describe_dbt_test(manifest["nodes"][unique_id]))


def describe_dbt_test(test: Mapping[str, Any]) -> str:
    """``not_null`` on ``fct_orders.order_id`` -> "dbt test: `order_id` of `fct_orders` is never null." """
    meta = test.get("test_metadata") or {}
    name, kwargs = meta.get("name"), meta.get("kwargs") or {}
    column = kwargs.get("column_name")
    model = (test.get("attached_node") or "").rsplit(".", 1)[-1] or "the model"
    subject = f"`{column}` of `{model}`" if column else f"`{model}`"
    phrases = {
        "not_null": f"{subject} is never null",
        "unique": f"{subject} is unique",
        "accepted_values": f"{subject} takes only the values {kwargs.get('values')}",
        "accepted_contract_values": (
            f"{subject} takes only the values of the landing contract's vocabulary `{kwargs.get('vocabulary')}` "
            f"({', '.join(VOCABULARIES.get(str(kwargs.get('vocabulary')), ()))}; ml/sources/schema.py)"
        ),
        "relationships": f"every {subject} exists in {str(kwargs.get('to', '')).strip()}.{kwargs.get('field')}",
        "dbt_utils_free_unique_combination": (
            f"no two rows of `{model}` share ({', '.join(kwargs.get('columns') or [])})"
        ),
    }
    if name in phrases:
        return f"dbt test: {phrases[name]}. Fails the check when any row breaks it."
    # A singular test: its SQL opens with comment lines that say what it guards against.
    comment = []
    for line in (test.get("raw_code") or "").splitlines():
        if line.startswith("--"):
            comment.append(line.removeprefix("--").strip())
        elif comment:
            break
    what = " ".join(comment) or f"`{test.get('name')}`"
    return f"dbt test ({test.get('original_file_path', '')}): {what} Fails when its query returns rows."


MODEL_SUMMARIES = {
    "basket_associations": basket_summary,
    "lifecycle_flows": lifecycle_flows_summary,
    "fct_impressions": impressions_summary,
    "fct_lost_sales": lost_sales_summary,
}
"""dbt models whose materialisation also shows a summary of the window's last day (:mod:`ml.summary`)."""

translator = LayerTranslator(settings=DagsterDbtTranslatorSettings(enable_code_references=True))


class DbtRunConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild the selected models from all raw rows (after a model change or to repair history).",
    )


def build_window(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, config
):
    """One ``dbt build`` of the selected models over the run's partition window (widened back to the dates the
    window's landed rows touched, :func:`ml.dbt.rebuild_vars`), then
    the materialisations with row counts, column schemas, column lineage and the models' own summaries."""
    days = partition_days(context)
    first_day, last_day = days[0], days[-1]
    with warehouse.connect(read_only=True) as con:
        dbt_vars = rebuild_vars(con, first_day, last_day)
    context.log.info(f"dbt window {dbt_vars} for partitions {first_day}..{last_day}")
    # dbt's profile reads the warehouse path from the environment: hand it the resource's path.
    os.environ.update(dbt_env(warehouse.path))
    # A target folder of this run's own (as dagster-dbt names them), started from the warehouse's parsed project.
    target = (
        Path(dbt.project_dir)
        / "target"
        / f"{context.op_execution_context.op.name}-{context.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    )
    reuse_parsed_project(warehouse.path, target)
    with window_environ(dbt_vars):
        invocation = dbt.cli(
            build_args(dbt_vars, full_refresh=config.full_refresh), context=context, target_path=target
        )
        # dbt holds the warehouse's write lock until it exits, so the events are collected first and then given
        # row counts from one connection (dagster-dbt's fetch_row_counts() costs ~1 s per model on 2 cores).
        events = list(invocation.stream())
    keep_parsed_project(warehouse.path, invocation.target_path)
    with warehouse.connect() as con:
        yield from with_row_counts(
            events,
            con,
            dbt_project.manifest_path,
            dbt_vars,
            target_path=invocation.target_path,
            log=context.log,
            last_day=last_day,
        )
    # dagster-dbt writes one target folder per run; keep it only when the run failed (it holds dbt.log).
    shutil.rmtree(invocation.target_path, ignore_errors=True)


DBT = {
    "manifest": dbt_project.manifest_path,
    "project": dbt_project,
    "partitions_def": daily_partitions,
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "dagster_dbt_translator": translator,
    "pool": POOL,
}


@dbt_assets(select=INCREMENTAL, exclude=FEATURES, name="dbt_daily_models", **DBT)
def dbt_daily_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, config: DbtRunConfig
):
    """Staging, intermediate and marts."""
    yield from build_window(context, dbt, warehouse, config)


# A build of its own, after the marts' blocking checks: bad marts never reach the features and profiles.
@dbt_assets(select=FEATURES, name="dbt_feature_models", **DBT)
def dbt_feature_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, config: DbtRunConfig
):
    """The feature layer: daily slices and the windows the profiles are made of."""
    yield from build_window(context, dbt, warehouse, config)


def with_row_counts(
    events,
    con,
    manifest_path,
    dbt_vars: dict[str, str],
    target_path: Path | None = None,
    log=None,
    last_day: date | None = None,
):
    """Add ``dagster/row_count`` (whole table), ``rows_in_window`` (the dates this run rebuilt), the column
    schema and, when the compiled SQL is at hand (``target_path``), the column lineage to the materialisations of
    dbt models. Date-partitioned models are keyed on their date column (see the ``date_partitioned`` macro),
    which is what the window count filters on."""
    manifest = _manifest_nodes(str(manifest_path))
    # Columns of every table this run touches, read once: a staging table is the parent of several models.
    columns_of = functools.cache(lambda schema, table: table_columns(con, schema, table))
    for event in events:
        unique_id = (event.metadata or {}).get("unique_id") if isinstance(event, dg.Output) else None
        node = manifest.get(getattr(unique_id, "value", unique_id))
        if node is None:
            yield event
            continue
        relation = f'"{node["schema"]}"."{node["alias"]}"'
        columns = columns_of(node["schema"], node["alias"])
        metadata = {
            "dagster/row_count": con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0],
            "dagster/column_schema": table_schema(columns),
        }
        if target_path is not None:
            metadata |= column_lineage(
                columns_of, str(manifest_path), node["unique_id"], target_path, log, dbt_vars=dbt_vars
            )
        date_column = node["config"].get("unique_key")
        if isinstance(date_column, str) and date_column.endswith("_date"):
            metadata["rows_in_window"] = con.execute(
                f'SELECT count(*) FROM {relation} WHERE "{date_column}" BETWEEN ? AND ?',
                [dbt_vars["min_date"], dbt_vars["max_date"]],
            ).fetchall()[0][0]
        summarise = MODEL_SUMMARIES.get(node["name"])
        if summarise is not None and last_day is not None:  # the model's own story, for the window's last day
            metadata |= {
                k: v
                for k, v in summary_metadata([summarise(con, last_day)], [last_day]).items()
                if k != "days_built"
            }
        yield event.with_metadata({**event.metadata, **metadata})


def column_lineage(
    columns_of,
    manifest_path: str,
    unique_id: str,
    target_path: Path,
    log=None,
    dbt_vars: dict[str, str] | None = None,
) -> dict:
    """``dagster/column_lineage`` of one model: which upstream columns each of its columns is computed from.

    dagster-dbt's own ``fetch_column_metadata()`` asks the warehouse for the parents' schemas while dbt still
    holds DuckDB's write lock, so the same lineage builder (sqlglot over the compiled SQL) is fed here with the
    schemas read after dbt has exited (``columns_of(schema, table)`` -> ``[(column, type)]``). A model whose SQL
    sqlglot cannot follow keeps its other metadata; the reason goes to the run log.

    Lineage depends on the compiled SQL's shape and the tables' columns, not on the window's dates (``dbt_vars``),
    so a process that builds one model day after day (a test, a backfill in one process) works it out once per
    shape: sqlglot's optimiser is the slow part of recording a model's materialisation."""
    manifest = _manifest(manifest_path)
    node = manifest["nodes"][unique_id]
    compiled = target_path / "compiled" / node["package_name"] / node["original_file_path"]
    sql = compiled.read_text() if compiled.is_file() else ""
    for name, value in sorted((dbt_vars or {}).items()):
        sql = sql.replace(str(value), f"<{name}>")
    parents = []  # (relation name, schema, table)
    for parent_id in node["depends_on"]["nodes"]:
        parent = (manifest["sources"] if parent_id.startswith("source.") else manifest["nodes"])[parent_id]
        table = parent.get("alias") or parent.get("identifier") or parent["name"]
        parents.append((parent["relation_name"], parent["schema"], table))
    columns = [columns_of(node["schema"], node["alias"])] + [columns_of(s, t) for _, s, t in parents]
    shape = (manifest_path, unique_id, sql, tuple(parents), tuple(tuple(c) for c in columns))
    if shape not in _LINEAGE:
        _LINEAGE[shape] = _column_lineage(columns_of, manifest, node, parents, target_path, log)
    return _LINEAGE[shape]


_LINEAGE: dict[tuple, dict] = {}
"""Column lineage by the shape it was worked out from (:func:`column_lineage`)."""


def _column_lineage(columns_of, manifest: dict, node: dict, parents, target_path: Path, log) -> dict:
    from dagster_dbt.core.dbt_cli_event import EventHistoryMetadata, _build_column_lineage_metadata

    def shaped(schema: str, table: str) -> dict[str, dict[str, str]]:
        return {name: {"data_type": data_type} for name, data_type in columns_of(schema, table)}

    history = EventHistoryMetadata(
        columns=shaped(node["schema"], node["alias"]),
        parents={relation: shaped(schema, table) for relation, schema, table in parents},
    )
    try:
        return _build_column_lineage_metadata(history, node, manifest, translator, target_path, dbt_project)
    except Exception as error:  # sqlglot raises many kinds; lineage is an aid, never a reason to fail the run
        if log is not None:
            log.warning(f"no column lineage for {node['unique_id']}: {type(error).__name__}: {error}")
        return {}


@functools.cache
def _manifest(manifest_path: str) -> dict:
    return json.loads(Path(manifest_path).read_text())


@functools.cache
def _manifest_nodes(manifest_path: str) -> dict[str, dict]:
    nodes = _manifest(manifest_path)["nodes"]
    return {uid: node for uid, node in nodes.items() if node["resource_type"] == "model"}
