"""dbt on Spark (ml/spark.py, the ``spark`` target): the small store's first three days built by a local PySpark
session equal the DuckDB build row for row, and re-running a day replaces it instead of adding to it.

The raw layer is DuckDB's (the raw loader's checks and quarantine), published as Parquet; from there every staging,
intermediate, mart and feature model is built by each engine over the same windows: days 1..2 as one backfill,
day 3 as the daily run, then day 2 again (a restatement: Spark's insert_overwrite of a past date).

Run by ``make test-spark`` (which installs the ``spark`` extra; ``.ci/run`` calls it): several minutes, most of
them Spark's start-up and its per-model overhead.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from ml import spark
from ml.dbt import rebuild_vars, run_dbt
from ml.ingest.raw_loader import load_delivered
from ml.sources import get_source

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

D1, D2, D3 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)
WINDOWS = [(D1, D2), (D3, D3), (D2, D2)]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.fail('PySpark is not installed: `make test-spark` installs the "spark" extra')
    root = tmp_path_factory.mktemp("engines")
    warehouse, spark_dir = root / "duckdb" / "warehouse.duckdb", root / "spark"
    warehouse.parent.mkdir()
    source = get_source("simulated", scale="small")
    source.write_days(D1, D3, root / "landing")
    windows = []
    for first, last in WINDOWS:
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        with duckdb.connect(str(warehouse)) as con:
            load_delivered(con, root / "landing", source.name, source.tables, days)
            dbt_vars = rebuild_vars(con, first, last)
        run_dbt(warehouse, first, last)
        spark.publish_raw(warehouse, spark_dir)
        spark.build(spark_dir, dbt_vars, log_path=root / f"spark_{first}_{last}.log")
        windows.append(dbt_vars)
    return warehouse, spark_dir, windows


def test_spark_builds_every_model_equal_to_duckdb_row_for_row(engines):
    warehouse, spark_dir, windows = engines
    assert windows[1] == {"min_date": D2.isoformat(), "max_date": D3.isoformat()}
    compared = spark.compare_engines(warehouse, spark_dir)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        models = len(spark.model_tables(con))
    assert len(compared) == models >= 40
    differ = {name: c for name, c in compared.items() if not c["equal"]}
    assert not differ, differ
    assert compared["marts.fct_orders"]["spark_rows"] > 1000
    assert compared["features.customer_windows"]["spark_rows"] > 0


def test_a_rerun_day_replaces_its_rows_on_spark(engines):
    warehouse, spark_dir, _ = engines
    with duckdb.connect(str(warehouse), read_only=True) as con:
        orders = spark.read_table(con, spark_dir, "marts", "fct_orders")
        rows, distinct, days = con.execute(
            f"SELECT count(*), count(DISTINCT order_id), count(DISTINCT order_date) FROM {orders}"
        ).fetchone()
        raw = con.execute("SELECT count(DISTINCT order_id) FROM raw.orders").fetchone()[0]
    assert rows == distinct == raw and days == 3
