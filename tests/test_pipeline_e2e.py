"""End to end: real Dagster materialisations through the raw loader and a real dbt build, in temporary DuckDB
files, on the small simulated store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.defs.transform import assets as transform_assets
from tests.pipeline_helpers import FOUNDATION_GROUPS, MODEL_SCHEMAS, checksums, landing_rows, materialize_days

pytestmark = pytest.mark.e2e

DAYS = [f"2025-01-0{i}" for i in range(1, 4)]


@pytest.fixture(scope="module")
def daily_runs(tmp_path_factory):
    """Three one-day runs in one warehouse, recording what the tests below need along the way. The runs build the
    assets without their checks (the backfill below runs them; a verdict changes no row)."""
    data_dir = tmp_path_factory.mktemp("daily")
    record: dict = {"data_dir": data_dir, "lineage": [], "lineage_worked_out": []}
    transform_assets._LINEAGE.clear()  # what other tests of this process worked out must not count below
    for i, day in enumerate(DAYS):
        known = len(transform_assets._LINEAGE)
        record["lineage"].append(column_lineages(materialize_days(data_dir, day, checks=False)))
        record["lineage_worked_out"].append(len(transform_assets._LINEAGE) - known)
        if i == 1:
            record["after_two_days"] = checksums(data_dir / "warehouse.duckdb", schemas=("raw", "marts"))
    # Re-materialise the last day: it must not change a thing. Its column lineage is worked out afresh, to
    # compare with the last day's, which came from the lineage the earlier days worked out.
    record["rerun"] = [checksums(data_dir / "warehouse.duckdb", ignore_paths=False)]
    transform_assets._LINEAGE.clear()
    record["lineage_afresh"] = column_lineages(materialize_days(data_dir, DAYS[-1], checks=False))
    record["rerun"].append(checksums(data_dir / "warehouse.duckdb", ignore_paths=False))
    return record


def column_lineages(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    """``dagster/column_lineage`` of every materialisation of a run that has one, by asset key."""
    out = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        lineage = materialization.metadata.get("dagster/column_lineage")
        if lineage is not None:
            out[materialization.asset_key.to_user_string()] = lineage
    return out


@pytest.fixture(scope="module")
def backfill_run(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("backfill")
    result = materialize_days(data_dir, DAYS[0], DAYS[-1], groups=(*FOUNDATION_GROUPS, "features"))
    return {"data_dir": data_dir, "result": result}


def _landing(data_dir: Path, table: str, days: list[str]) -> int:
    return landing_rows(data_dir / "landing", "simulated", table, days)


def test_two_days_reconcile_from_landing_files_to_marts(daily_runs):
    data_dir, after = daily_runs["data_dir"], daily_runs["after_two_days"]
    two = DAYS[:2]
    for table in ("events", "orders", "order_items", "customers", "products"):
        landed = _landing(data_dir, table, two)
        assert landed > 0
        raw = after[f"raw.{table}"][0]
        quarantined = after[f"raw.quarantine_{table}"][0]
        assert raw + quarantined == landed, table
    # the simulator is clean: nothing is quarantined or deduplicated, so marts equal the landing counts
    assert after["marts.fct_events"][0] == _landing(data_dir, "events", two)
    assert after["marts.fct_orders"][0] == _landing(data_dir, "orders", two)
    assert after["marts.fct_order_items"][0] == _landing(data_dir, "order_items", two)
    assert after["marts.dim_customers"][0] == _landing(data_dir, "customers", two)
    assert after["marts.dim_products"][0] == _landing(data_dir, "products", two)


def test_marts_hold_the_values_of_the_landing_files(daily_runs):
    data_dir = daily_runs["data_dir"]
    files = [
        str(p)
        for d in DAYS
        for p in (data_dir / "landing/simulated/order_items" / f"date={d}").glob("*.parquet")
    ]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        landed_units, landed_net = con.execute(
            "SELECT sum(qty), sum(round(cast(qty AS DECIMAL(18, 4)) * cast(unit_price AS DECIMAL(18, 4)) "
            "* (1 - cast(coalesce(discount, 0) AS DECIMAL(18, 4))), 2)) "
            "FROM read_parquet(?)",
            [files],
        ).fetchone()
        mart_units, mart_net = con.execute(
            "SELECT sum(qty), round(sum(net_amount), 2) FROM marts.fct_order_items"
        ).fetchone()
        assert mart_units == landed_units
        assert float(mart_net) == pytest.approx(float(landed_net), abs=0.005)
        # demand is zero-filled: one row per SKU per trading day from its first sale, units sum to sales
        demand_units, gaps = con.execute(
            "SELECT sum(units), count(*) FILTER (WHERE is_zero_filled) FROM marts.fct_daily_sku_demand"
        ).fetchone()
        sale_units = con.execute("SELECT sum(qty) FROM marts.fct_order_items WHERE is_sale").fetchone()[0]
        assert demand_units == sale_units
        assert gaps > 0
        expected_rows = con.execute(
            "SELECT count(*) FROM (SELECT sku, min(order_date) AS first FROM marts.fct_order_items WHERE is_sale "
            "GROUP BY sku) s JOIN (SELECT DISTINCT order_date FROM marts.fct_order_items WHERE is_sale) d "
            "ON d.order_date >= s.first"
        ).fetchone()[0]
        assert con.execute("SELECT count(*) FROM marts.fct_daily_sku_demand").fetchone()[0] == expected_rows
        # place: channel x placement x region x day views equal the view events
        views = con.execute("SELECT sum(views) FROM marts.fct_channel_daily").fetchone()[0]
        assert (
            views
            == con.execute("SELECT count(*) FROM marts.fct_events WHERE event_type = 'view'").fetchone()[0]
        )


def test_rematerialising_a_day_changes_nothing(daily_runs):
    first, second = daily_runs["rerun"]
    assert first == second
    assert first["marts.fct_events"][0] > 0


def test_column_lineage_is_worked_out_once_per_model_shape_and_equals_a_fresh_one(daily_runs):
    first, second, third = daily_runs["lineage"]
    assert len(third) >= 20 and third.keys() == second.keys() == first.keys()
    # the first day is a first build (its SQL has no window); the third day's incremental SQL differs from the
    # second's only in the window's dates, so every model's lineage is the one the second day worked out
    worked_out = daily_runs["lineage_worked_out"]
    assert worked_out[0] == len(first)
    assert worked_out[2] == 0, "a model's compiled SQL changed with the day beyond the window's dates"
    assert daily_runs["lineage_afresh"] == third


def test_the_daily_runs_leave_dbt_a_parsed_project_it_reuses_for_that_warehouse(daily_runs):
    """Each day's dbt builds start from the parsed project the warehouse's previous build kept (ml.dbt), and the
    window moves in the environment: dbt finds nothing to parse again for the next day."""
    from dbt.cli.main import dbtRunner

    from ml.dbt import WINDOW_ENV, parsed_project
    from ml.settings import DBT_PROJECT_DIR, dbt_env

    warehouse = daily_runs["data_dir"] / "warehouse.duckdb"
    kept = parsed_project(warehouse)
    assert kept.is_file()
    events: list[str] = []
    day = {env: "2025-01-04" for env in WINDOW_ENV.values()}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {**dbt_env(warehouse), **day}.items():
            mp.setenv(name, value)
        dbt_dir = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        result = dbtRunner(callbacks=[lambda event: events.append(event.info.name)]).invoke(
            ["--quiet", "parse", *dbt_dir, "--target-path", str(kept.parent), "--log-path", str(kept.parent)]
        )
    assert result.success, result.exception
    assert "PartialParsingSkipParsing" in events and "UnableToPartialParse" not in events


def test_no_duplicate_keys_after_reruns(daily_runs):
    with duckdb.connect(str(daily_runs["data_dir"] / "warehouse.duckdb"), read_only=True) as con:
        for table, key in [
            ("raw.events", "event_id"),
            ("marts.fct_events", "event_id"),
            ("marts.fct_orders", "order_id"),
            ("marts.fct_order_items", "order_id || '#' || line_no"),
            ("marts.dim_customers", "customer_id"),
        ]:
            total, distinct = con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
            assert total == distinct > 0, table


def test_single_run_backfill_equals_three_daily_runs(daily_runs, backfill_run):
    daily = checksums(daily_runs["data_dir"] / "warehouse.duckdb")
    backfill = checksums(backfill_run["data_dir"] / "warehouse.duckdb", schemas=MODEL_SCHEMAS)
    assert daily.keys() == backfill.keys()
    differing = [name for name in daily if daily[name] != backfill[name]]
    assert not differing, f"tables differ between daily runs and the backfill: {differing}"
    # and the backfill really was one run over the whole range
    assert backfill_run["result"].dagster_run.tags["dagster/asset_partition_range_end"] == DAYS[-1]


def test_no_raw_email_or_phone_leaves_the_raw_layer(daily_runs):
    """PII: every text column of every staging, intermediate and mart table is scanned for the raw values."""
    warehouse = daily_runs["data_dir"] / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(
            "CREATE TEMP TABLE pii AS SELECT email AS v FROM raw.customers WHERE email IS NOT NULL "
            "UNION SELECT phone FROM raw.customers WHERE phone IS NOT NULL"
        )
        n_values = con.execute("SELECT count(*) FROM pii").fetchone()[0]
        text_columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema IN ('staging', 'intermediate', 'marts') AND data_type = 'VARCHAR'"
        ).fetchall()
        leaks = {
            f"{s}.{t}.{c}": n
            for s, t, c in text_columns
            if (
                n := con.execute(
                    f'SELECT count(*) FROM {s}.{t} WHERE "{c}" IN (SELECT v FROM pii)'
                ).fetchone()[0]
            )
        }
        hashed = con.execute(
            "SELECT count(email_hash), count(DISTINCT email_hash) FROM marts.dim_customers"
        ).fetchone()
    assert n_values > 1000 and len(text_columns) > 50
    assert leaks == {}
    assert hashed[0] > 0 and hashed[0] == hashed[1]  # one pseudonym per customer, not a constant


def test_dbt_models_carry_column_lineage_to_their_upstream_columns(backfill_run):
    """The UI's column lineage: fct_orders.order_total comes from stg_orders.order_total, units from the lines."""
    events = backfill_run["result"].asset_materializations_for_node("dbt_daily_models")
    fct_orders = next(e for e in events if e.asset_key == dg.AssetKey(["marts", "fct_orders"]))
    lineage = fct_orders.metadata["dagster/column_lineage"].value
    deps = {
        column: {(d.asset_key.to_user_string(), d.column_name) for d in dep}
        for column, dep in lineage.deps_by_column.items()
    }
    assert deps["order_total"] == {("staging/stg_orders", "order_total")}
    assert deps["units"] == {
        ("intermediate/int_order_lines", "qty"),
        ("intermediate/int_order_lines", "line_type"),
    }
    assert set(deps) == {c.name for c in fct_orders.metadata["dagster/column_schema"].schema.columns}


def test_a_full_refresh_rebuilds_the_same_tables_from_all_raw_rows(backfill_run, tmp_path):
    """Run config full_refresh (after a model change): both dbt builds rebuild every model from all raw rows, not
    just the run's window, and a rebuild of unchanged models gives the same tables."""
    import shutil

    data_dir = tmp_path / "refresh"
    shutil.copytree(backfill_run["data_dir"], data_dir, ignore=shutil.ignore_patterns("dagster_home"))
    layers = ("staging", "intermediate", "marts", "features")
    before = checksums(data_dir / "warehouse.duckdb", schemas=layers)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            "DELETE FROM marts.fct_orders WHERE order_date = ?", [DAYS[0]]
        )  # outside the run's window
    refresh = {"config": {"full_refresh": True}}
    result = materialize_days(
        data_dir,
        DAYS[-1],
        groups=("staging", "intermediate", "marts", "features"),
        run_config={"ops": {"dbt_daily_models": refresh, "dbt_feature_models": refresh}},
        checks=False,
    )
    build = next(e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
    assert build.partition == DAYS[-1]
    assert checksums(data_dir / "warehouse.duckdb", schemas=layers) == before  # the deleted day is back
    assert before["features.customer_windows"][0] > 0
