"""dbt on Spark: the same models built by a local PySpark session instead of DuckDB (the ``spark`` extra;
``make test-spark`` installs it into ``.venv-spark``).

The engines split at the raw layer. Landing files are loaded into DuckDB's ``raw`` schema by the raw loader (its
checks and quarantine are Python over DuckDB), :func:`publish_raw` writes those tables as Parquet folders, and
:func:`build` runs ``dbt build --target spark``: the project's ``on-run-start`` hook registers the folders as
Spark's ``raw`` tables, and every staging, intermediate, mart and feature model is built by Spark SQL into
Parquet tables under ``<spark_dir>/warehouse`` (date-partitioned models by ``insert_overwrite`` of their dates,
dimensions rebuilt whole; see ``dbt_project/macros/incremental.sql``). :func:`read_table` reads a Spark table
back through DuckDB, so the two engines' tables can be compared row for row.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb

from ml.dbt import dbt_cli

RAW_TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' "
    "AND table_name NOT LIKE 'quarantine_%' AND table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1"
)


def spark_env(spark_dir: Path) -> dict[str, str]:
    """The variables the ``spark`` target of ``dbt_project/profiles.yml`` and the raw-source hook read."""
    from ml.settings import pii_key

    spark_dir = Path(spark_dir).resolve()
    return {
        "AIGC_DBT_TARGET": "spark",
        "AIGC_SPARK_DIR": str(spark_dir),
        "AIGC_SPARK_RAW_DIR": str(spark_dir / "raw"),
        "AIGC_PII_KEY": pii_key(),
        # the DuckDB path is not used by the spark target, but the profile's other targets read it
        "AIGC_WAREHOUSE_PATH": str(spark_dir / "unused.duckdb"),
    }


def publish_raw(warehouse: Path, spark_dir: Path) -> dict[str, int]:
    """Write every raw table of the DuckDB ``warehouse`` to ``<spark_dir>/raw/<table>/`` (replacing what was
    there); returns the rows written per table."""
    root = Path(spark_dir).resolve() / "raw"
    rows = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for (table,) in con.execute(RAW_TABLES_SQL).fetchall():
            folder = root / table
            staging = root / f".{table}.writing"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            con.execute(f"COPY raw.{table} TO '{staging / 'part-0.parquet'}' (FORMAT parquet)")
            # swap the folder whole: Spark never lists a half-written table
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
            rows[table] = con.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0]
    return rows


def build(
    spark_dir: Path, dbt_vars: dict[str, str], select: str | None = None, log_path: Path | None = None
) -> subprocess.CompletedProcess:
    """``dbt build --target spark`` over the window in ``dbt_vars`` (``min_date``/``max_date``); raises with dbt's
    output when it fails."""
    spark_dir = Path(spark_dir).resolve()
    # cwd: Spark and Derby write their scratch files into the working directory
    return dbt_cli(
        dbt_vars, spark_dir / "dbt", spark_env(spark_dir), select=select, cwd=spark_dir, log_path=log_path
    )


def table_folder(spark_dir: Path, schema: str, table: str) -> Path:
    return Path(spark_dir).resolve() / "warehouse" / f"{schema}.db" / table


def read_table(con: duckdb.DuckDBPyConnection, spark_dir: Path, schema: str, table: str) -> str:
    """A DuckDB relation (SQL text) over a Spark table's Parquet files, partition columns included."""
    folder = table_folder(spark_dir, schema, table)
    pattern = str(folder / "**" / "*.parquet")
    return f"read_parquet('{pattern}', hive_partitioning = true, hive_types_autocast = true, union_by_name = true)"


def model_tables(
    con: duckdb.DuckDBPyConnection, schemas=("staging", "intermediate", "marts", "features")
) -> list:
    """(schema, table) of every dbt model table in a DuckDB warehouse."""
    return con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
        f"({', '.join('?' for _ in schemas)}) ORDER BY 1, 2",
        list(schemas),
    ).fetchall()


def _normalised(value) -> str:
    # the engines agree on values, not on types (DuckDB HUGEINT vs Spark BIGINT sums, DOUBLE vs DECIMAL products)
    # or on the last bits of a float sum added up in another order: numbers compare at 9 significant digits
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float | Decimal):
        return f"{float(value):.9g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_normalised(v) for v in value) + "]"
    return repr(value)


def checksum(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    """Row count and an order-independent hash of a relation's rows, columns by name, numbers normalised."""
    columns = sorted(d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description)
    select = ", ".join(f'"{c}"' for c in columns)
    rows = sorted(
        "|".join(_normalised(v) for v in row)
        for row in con.execute(f"SELECT {select} FROM {relation}").fetchall()
    )
    digest = hashlib.sha256(("\n".join(columns) + "\n" + "\n".join(rows)).encode()).hexdigest()
    return len(rows), digest


def compare_engines(warehouse: Path, spark_dir: Path) -> dict[str, dict]:
    """Every model table of the DuckDB ``warehouse`` against the Spark table of the same name: row counts, checksums
    and whether they are equal."""
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for schema, table in model_tables(con):
            duck = checksum(con, f'"{schema}"."{table}"')
            folder = table_folder(spark_dir, schema, table)
            if not folder.exists():
                spark = (None, None)
            elif not any(folder.rglob("*.parquet")):
                spark = (0, duck[1] if duck[0] == 0 else None)  # Spark writes no file for an empty table
            else:
                spark = checksum(con, read_table(con, spark_dir, schema, table))
            out[f"{schema}.{table}"] = {
                "duckdb_rows": duck[0],
                "spark_rows": spark[0],
                "equal": duck == spark,
            }
    return out
