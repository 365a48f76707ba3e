"""Data quality in the UI: reconciliation checks between layers and the daily quarantine summary.

* ``raw/<table>`` gets ``reconciles_with_landing``: landing rows = raw rows + quarantined rows for the
  partition's landing days, the landing side counted from the Parquet footers.
* ``staging/stg_<table>`` gets ``reconciles_with_raw``: raw rows of the rebuilt event dates = staged rows +
  duplicates removed by staging.
* ``quality/quarantine_summary`` counts quarantined rows per day, table and reason into
  ``quality.quarantine_daily`` and reports the total as a number that plots over partitions.

All of them are blocking: a partition whose counts do not reconcile must not feed profiles or models.
The logic is in ``ml/quality``; this module only wires it to the assets and formats metadata.
"""

from datetime import date
from pathlib import Path

import dagster as dg

from ml.dbt import partition_vars
from ml.quality.reconcile import (
    STAGING,
    reconcile_landing,
    reconcile_staging,
    volume_rule,
    volume_summary,
    volume_vs_recent,
    write_quarantine_summary,
)
from ml.sources.schema import TABLES
from ml.warehouse import markdown_table
from orchestration.asset_keys import raw_key
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, daily_partitions, partition_days
from orchestration.resources import DataFilesResource, StoreSourceResource, WarehouseResource

OWNERS = ["team:data-quality"]


def _landing_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=raw_key(table),
        name="reconciles_with_landing",
        description=(
            f"Landing rows of `{table}` (from the Parquet footers) = rows in `raw.{table}` + rows in "
            f"`raw.quarantine_{table}`, for the partition's landing days. Fails if any row was lost or doubled."
        ),
        partitions_def=daily_partitions,
        blocking=True,
    )
    def _check(
        context: dg.AssetCheckExecutionContext, store: StoreSourceResource, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        days = partition_days(context)
        with warehouse.connect(read_only=True) as con:
            rec = reconcile_landing(con, Path(store.landing_root), store.get().name, table, days)
        return dg.AssetCheckResult(passed=rec.ok, metadata=rec.as_metadata())

    return _check


def _staging_check(table: str) -> dg.AssetChecksDefinition:
    spec = STAGING[table]
    scope = (
        "the event dates dbt rebuilt (the partition plus the lookback)"
        if spec.date_column
        else "the whole table (a dimension upserted on its key)"
    )

    @dg.asset_check(
        asset=dg.AssetKey(["staging", spec.model]),
        name="reconciles_with_raw",
        description=(
            f"Rows of `raw.{table}` = rows of `staging.{spec.model}` + duplicates staging removed, over {scope}."
        ),
        partitions_def=daily_partitions,
        blocking=True,
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        days = partition_days(context)
        dbt_vars = partition_vars(days[0], days[-1])
        first, last = date.fromisoformat(dbt_vars["min_date"]), date.fromisoformat(dbt_vars["max_date"])
        with warehouse.connect(read_only=True) as con:
            rec = reconcile_staging(con, table, first, last)
        return dg.AssetCheckResult(passed=rec.ok, metadata=rec.as_metadata())

    return _check


landing_checks = [_landing_check(t) for t in TABLES]
staging_checks = [_staging_check(t) for t in TABLES]


@dg.asset(
    key=dg.AssetKey(["quality", "quarantine_summary"]),
    group_name="quality",
    owners=OWNERS,
    kinds={"duckdb", "python"},
    description=(
        "Quarantined rows per landing day, table and reason code (`quality.quarantine_daily`). The total plots "
        "over partitions in the UI; the reasons are the raw loader's codes (see docs/quality.md)."
    ),
    deps=[raw_key(t) for t in TABLES],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def quarantine_summary_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    days = partition_days(context)
    with warehouse.connect() as con:
        summary = write_quarantine_summary(con, days[0], days[-1])
    by_reason = summary.groupby(["table_name", "reason"], as_index=False)["n_rows"].sum()
    per_table = summary.groupby("table_name")["n_rows"].sum().to_dict()
    metadata = {
        "quarantined_rows": int(summary["n_rows"].sum()),
        "dagster/row_count": len(summary),
        "by_reason": dg.MetadataValue.md(
            markdown_table(by_reason.sort_values("n_rows", ascending=False), max_rows=20)
            if len(summary)
            else "_nothing quarantined_"
        ),
    }
    metadata.update({f"quarantined_{t}": int(per_table.get(t, 0)) for t in TABLES})
    return dg.MaterializeResult(metadata=metadata)


# -- volume, schema and freshness -----------------------------------------------------------------------------

# Volume: the platform's one volume rule (ml.quality.reconcile: the same weekday's median, closing days
# recognised), on the marts of each landing feed. Nothing else (no GX row count, no dbt test) judges volume.
VOLUME_WATCHED = {
    "fct_events": "event_date",
    "fct_orders": "order_date",
    "fct_order_items": "order_date",
    "fct_inventory_daily": "snapshot_date",
}


def _volume_check(model: str, date_column: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["marts", model]),
        name="no_day_over_day_volume_drop",
        description=(
            f"Rows of `marts.{model}` per day: {volume_rule()}. Warns, never blocks: a quiet day can be real (a "
            "holiday), but an upstream outage looks the same. Metadata: days checked, days below, closing days "
            "and the worst day."
        ),
        partitions_def=daily_partitions,
        blocking=False,
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            results = volume_vs_recent(con, f"marts.{model}", date_column, partition_days(context))
        summary = volume_summary(results)
        passed = summary.pop("passed")
        return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata=summary)

    return _check


volume_checks = [_volume_check(m, c) for m, c in VOLUME_WATCHED.items()]

# Schema drift: every raw table and mart reports ``dagster/column_schema``; a change between two
# materialisations (a column added, dropped or retyped) warns on the asset.
SCHEMA_WATCHED = [raw_key(t) for t in TABLES] + [
    dg.AssetKey(["marts", m])
    for m in (
        "fct_events",
        "fct_orders",
        "fct_order_items",
        "fct_daily_sku_demand",
        "fct_inventory_daily",
        "fct_channel_daily",
        "dim_customers",
        "dim_products",
    )
]
schema_change_checks = dg.build_column_schema_change_checks(assets=SCHEMA_WATCHED)

# Freshness: yesterday's partition of the marts must be materialised by 06:00 UTC (the schedule runs at 02:00).
# A replay of historic data (Online Retail) is never fresh by this rule, which is the truth about it.
FRESHNESS_DEADLINE_CRON = "0 6 * * *"
freshness_checks = dg.build_time_partition_freshness_checks(
    assets=[dg.AssetKey(["marts", m]) for m in ("fct_orders", "fct_events", "fct_daily_sku_demand")],
    deadline_cron=FRESHNESS_DEADLINE_CRON,
    timezone="UTC",
)
freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    name="marts_freshness_sensor",
    minimum_interval_seconds=15 * 60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)


# -- Great Expectations suites as partition checks --------------------------------------------------------------


def _gx_check(suite_name: str) -> dg.AssetChecksDefinition:
    from expectations import SUITES

    spec = SUITES[suite_name]
    schema, table = spec.table.split(".")
    asset_key = raw_key(table) if schema == "raw" else dg.AssetKey([schema, table])
    why = (
        "Blocking: it guards model training, so a failure stops this partition's downstream assets."
        if spec.blocking
        else "Warns without blocking."
    )

    @dg.asset_check(
        asset=asset_key,
        name=f"gx_{suite_name}",
        description=f"Great Expectations suite `{suite_name}` on the partition's rows of `{spec.table}`. "
        f"{spec.description} {why} Failed expectations, observed values, sample rows and a link to the "
        "Data Docs page are in the metadata.",
        partitions_def=daily_partitions,
        blocking=spec.blocking,
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, files: DataFilesResource
    ) -> dg.AssetCheckResult:
        from expectations import to_asset_check_result, validate_partition

        days = partition_days(context)
        with warehouse.connect(read_only=True) as con:
            outcome = validate_partition(con, suite_name, days[0], days[-1], docs_dir=Path(files.gx_docs_dir))
        return to_asset_check_result(outcome, asset_key=asset_key, check_name=f"gx_{suite_name}")

    return _check


def _gx_checks() -> list[dg.AssetChecksDefinition]:
    from expectations import SUITES

    return [_gx_check(name) for name in SUITES]


gx_checks = _gx_checks()
