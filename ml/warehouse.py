"""Small DuckDB helpers every layer shares: schemas, idempotent per-day writes, markdown tables for metadata.

``replace_partition*`` replace one day's rows of a table in one transaction (create the table from the first
batch's shape), so re-running a day replaces it and never duplicates it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import duckdb
import pandas as pd


def ensure_schema(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    con.execute(f"create schema if not exists {schema}")


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()[0]
    return bool(row and row[0])


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
        _add_new_columns(con, table, select_sql, params)
        con.execute(f"delete from {table} where {date_column} = ?", [day])
        con.execute(f"insert into {table} by name {select_sql}", params)
    else:
        con.execute(f"create table {table} as {select_sql}", params)
    return int(con.execute(f"select count(*) from {table} where {date_column} = ?", [day]).fetchall()[0][0])


def _add_new_columns(con, table: str, select_sql: str, params: list) -> None:
    """Columns the query produces and ``table`` lacks are added (NULL in the rows already there), so a day
    written by a newer version of an asset lands next to the older days instead of failing the insert."""
    con.execute(
        f"create or replace temp table _partition_shape as select * from ({select_sql}) limit 0", params
    )
    try:
        new = con.execute("describe _partition_shape").fetchall()
        have = {row[0] for row in con.execute(f"describe {table}").fetchall()}
        for name, column_type, *_ in new:
            if name not in have:
                con.execute(f'alter table {table} add column "{name}" {column_type}')
    finally:
        con.execute("drop table if exists _partition_shape")


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
