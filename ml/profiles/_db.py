"""Small DuckDB helpers shared by the profile builders: schema setup, idempotent writes, markdown tables."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd

FEATURES = "features"
MARTS = "marts"


def ensure_schema(con: duckdb.DuckDBPyConnection, schema: str = FEATURES) -> None:
    con.execute(f"create schema if not exists {schema}")


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()[0]
    return bool(row and row[0])


def columns_of(con: duckdb.DuckDBPyConnection, qualified: str) -> set[str]:
    schema, name = qualified.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()
    return {r[0] for r in rows}


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: commit on success, roll back on any error (so a failed day leaves the old rows)."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def write_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    day: date,
    select_sql: str,
    params: Sequence[Any] | None = None,
) -> int:
    """Delete ``day`` from ``table`` and insert ``select_sql`` (no transaction of its own; see below).

    The table is created from the query's shape on first use. ``select_sql`` must produce ``date_column``
    and only rows of ``day``. Returns the number of rows written for the day.
    """
    params = list(params or [])
    if table_exists(con, table):
        con.execute(f"delete from {table} where {date_column} = ?", [day])
        con.execute(f"insert into {table} by name {select_sql}", params)
    else:
        con.execute(f"create table {table} as {select_sql}", params)
    return int(con.execute(f"select count(*) from {table} where {date_column} = ?", [day]).fetchall()[0][0])


def replace_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    day: date,
    select_sql: str,
    params: Sequence[Any] | None = None,
) -> int:
    """:func:`write_partition` in its own transaction: re-running a day replaces it, never duplicates it."""
    with transaction(con):
        return write_partition(con, table, date_column, day, select_sql, params)


def replace_partition_df(
    con: duckdb.DuckDBPyConnection, table: str, date_column: str, day: date, frame: pd.DataFrame
) -> int:
    """:func:`replace_partition` for a DataFrame that already holds ``date_column``."""
    view = f"_frame_{abs(hash((table, day))) % 10**9}"
    con.register(view, frame)
    try:
        return replace_partition(con, table, date_column, day, f"select * from {view}")
    finally:
        con.unregister(view)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run BLAS/OpenMP code (scikit-learn, scipy) on one thread.

    The models here are small (thousands of rows, tens of columns): thread start-up and spin-waiting cost more
    than they save, especially on a shared machine (measured: TF-IDF + SVD of 10k titles took 0.35 s of CPU on
    one thread against 0.8-1.9 s with the default pool)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def lit(day: date) -> str:
    """A SQL date literal; safe to inline because it is built from a ``date`` object, never from user text."""
    return f"DATE '{date.fromordinal(day.toordinal()).isoformat()}'"


def shift(day: date, days: int) -> date:
    return day + timedelta(days=days)


def markdown_table(frame: pd.DataFrame, float_digits: int = 3, max_rows: int = 30) -> str:
    """A GitHub markdown table (no extra dependency); long tables are cut to ``max_rows`` with a note."""
    if frame.empty:
        return "_(no rows)_"
    shown = frame.head(max_rows)

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    note = [f"\n_{len(frame) - max_rows} more rows not shown_"] if len(frame) > max_rows else []
    return "\n".join([header, rule, *body, *note])


def summary(row_count: int, metrics: dict[str, float | int | None], markdown: dict[str, str]) -> dict:
    """The summary shape every builder returns (a Dagster asset turns it into metadata).

    ``metrics`` are numbers (``None`` when not computable that day) that plot over partitions;
    ``markdown`` are small tables for the UI.
    """
    clean = {
        k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in metrics.items()
    }
    return {"row_count": int(row_count), "metrics": clean, "markdown": markdown}
