"""Landing and raw assets, one per contract table, partitioned by landing day.

``landing/<table>``: the files the source drops for a day. For the simulated store, materialising it runs the
simulator for that day; for the Online Retail replay it cuts the day out of the real CSV. A real deployment
would observe files dropped by an upstream system instead; the raw layer reads them the same way.

``raw/<table>``: the landing files of the window loaded into DuckDB (``raw.<table>``), bad rows in
``raw.quarantine_<table>``. Both are range-aware (single-run backfills) and idempotent, and both retry a
transient failure (a late landing file, a locked warehouse) by the declared policy (:mod:`orchestration.retries`)
while a permanent one (a corrupt file) fails at once.
"""

from pathlib import Path

import dagster as dg

from ml.ingest.raw_loader import create_raw_tables, load_window, refuse_unloaded_history
from ml.sources.schema import CONTRACTS, TABLES
from ml.warehouse import query_markdown
from orchestration.asset_keys import landing_key, raw_key
from orchestration.metadata import column_schema
from orchestration.partitions import POOL, RESTATEMENT_REASON_TAG, daily_partitions, partition_days
from orchestration.resources import StoreSourceResource, WarehouseResource
from orchestration.retries import TRANSIENT_RETRY_POLICY, fail_fast_unless_transient

OWNERS = ["team:data-platform"]


@dg.multi_asset(
    name="landing_files",
    specs=[
        dg.AssetSpec(
            landing_key(table),
            description=f"Landing files of `{table}` for the day (Parquet). {CONTRACTS[table].description}",
            group_name="landing",
            owners=OWNERS,
            kinds={"parquet", "python"},
            skippable=True,
        )
        for table in TABLES
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # The simulator produces all tables of a day together (orders need the day's sessions).
    can_subset=False,
    retry_policy=TRANSIENT_RETRY_POLICY,
)
@fail_fast_unless_transient
def landing_files(context: dg.AssetExecutionContext, store: StoreSourceResource):
    source = store.get()
    days = partition_days(context)
    if store.closed_loop and len(days) > 1:
        raise dg.Failure(
            description=(
                f"The closed-loop shop answers what the platform published the day before, so its days run one "
                f"after another: this run asks for {days[0]} .. {days[-1]} at once. Launch one run per day in "
                f"order (the daily schedule does; `python -m orchestration.demo --loop closed` runs a range day "
                f"by day), or set AIGC_SHOP_LOOP=open for a backfill of the open-loop store."
            )
        )
    totals = {table: 0 for table in TABLES}
    for i, day in enumerate(days, 1):
        written = source.write_day(day, Path(store.landing_root))
        for table, n in written.items():
            totals[table] += n
        context.log.info(
            f"[{i}/{len(days)}] {source.name} {day}: " + ", ".join(f"{t}={n}" for t, n in written.items())
        )
    for table in TABLES:
        delivered = table in source.tables
        yield dg.MaterializeResult(
            asset_key=landing_key(table),
            metadata={
                "dagster/row_count": totals[table],
                "source": source.name,
                "delivered_by_source": delivered,
                "days": len(days),
                "path": dg.MetadataValue.path(str(Path(store.landing_root) / source.name / table)),
            },
        )


@dg.multi_asset(
    name="raw_tables",
    specs=[
        dg.AssetSpec(
            raw_key(table),
            deps=[landing_key(table)],
            description=(
                f"`raw.{table}`: the landing rows of `{table}` that passed the row-level rules, with their "
                f"landing date, source file and row number. Rejected rows: `raw.quarantine_{table}`."
            ),
            group_name="ingest",
            owners=OWNERS,
            kinds={"duckdb", "python"},
            skippable=True,
        )
        for table in TABLES
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
    pool=POOL,
    retry_policy=TRANSIENT_RETRY_POLICY,
)
@fail_fast_unless_transient
def raw_tables(context: dg.AssetExecutionContext, store: StoreSourceResource, warehouse: WarehouseResource):
    source = store.get()
    days = partition_days(context)
    selected = [t for t in TABLES if raw_key(t) in context.selected_asset_keys]
    # a run the landing sensor launched because a day's landing content changed says so on every raw table
    reason = context.run.tags.get(RESTATEMENT_REASON_TAG)
    restatement = {"restated": True, "restatement_reason": reason} if reason else {}
    with warehouse.connect() as con:
        # before any table is replaced: a window loaded ahead of the days its references need changes nothing
        delivered = [t for t in selected if t in source.tables]
        refuse_unloaded_history(con, Path(store.landing_root), source.name, delivered, days[0])
        for table in selected:
            if table not in source.tables:
                # Keep the table (empty) so that dbt's staging models build for every source.
                create_raw_tables(con, CONTRACTS[table])
                yield dg.MaterializeResult(
                    asset_key=raw_key(table),
                    metadata={
                        "dagster/row_count": 0,
                        "dagster/column_schema": column_schema(con, "raw", table),
                        "note": f"source {source.name!r} does not deliver {table}",
                    },
                )
                continue
            result = load_window(con, Path(store.landing_root), source.name, table, days, check_history=False)
            total = con.execute(f"SELECT count(*) FROM raw.{table}").fetchall()[0][0]
            per_day = "\n".join(
                f"| {d.day} | {d.landed} | {d.loaded} | {d.quarantined_total} |" for d in result.days
            )
            context.log.info(
                f"raw.{table}: landed {result.landed}, loaded {result.loaded}, quarantined {result.quarantined}"
            )
            yield dg.MaterializeResult(
                asset_key=raw_key(table),
                metadata={
                    **restatement,
                    "dagster/row_count": total,
                    "dagster/column_schema": column_schema(con, "raw", table),
                    "rows_landed": result.landed,
                    "rows_loaded": result.loaded,
                    "rows_quarantined": result.quarantined,
                    "quarantine_reasons": dg.MetadataValue.json(result.quarantined_by_reason()),
                    "ignored_extra_columns": dg.MetadataValue.json(result.extra_columns),
                    "per_day": dg.MetadataValue.md(
                        "| day | landed | loaded | quarantined |\n|---|---|---|---|\n" + per_day
                    ),
                    "preview": dg.MetadataValue.md(
                        query_markdown(
                            con,
                            f"SELECT * EXCLUDE (_source_file) FROM raw.{table} "
                            "WHERE _landing_date BETWEEN ? AND ?",
                            [days[0], days[-1]],
                        )
                    ),
                },
            )
