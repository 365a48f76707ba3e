"""Small DuckDB helpers every layer shares: schemas, idempotent per-day writes, markdown tables for metadata.

:func:`replace_partition` replaces one day's (or a range's) rows of a table in one transaction, creating the
schema and the table from the first batch's shape, so re-running a day replaces it and never duplicates it;
:func:`write_partition` does the same inside a caller's :func:`transaction` (several tables at once).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date
from typing import Any

import duckdb
import pandas as pd
import pyarrow.compute as pc


def sql_date(day: date) -> str:
    """A SQL date literal; safe to inline because it is built from a ``date`` object, never from user text."""
    return f"DATE '{date.fromordinal(day.toordinal()).isoformat()}'"


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


Days = date | tuple[date, date]
"""One day, or an inclusive ``(first, last)`` range of days."""


def _date_range(days: Days) -> tuple[date, date]:
    return days if isinstance(days, tuple) else (days, days)


def write_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    days: Days,
    rows: str | pd.DataFrame,
    params: Sequence[Any] | None = None,
) -> int:
    """Replace the rows of ``days`` in ``schema.table`` by ``rows`` (no transaction of its own: see
    :func:`replace_partition`). The one per-day writer of every layer written from Python.

    ``rows`` is a SELECT (with ``params``) or a DataFrame; it must hold ``date_column`` and only rows of
    ``days``. The schema and the table are created from the rows' shape on first use; columns the rows bring and
    the table lacks are added (NULL in the rows already there). Returns the number of rows now stored for
    ``days``.
    """
    first, last = _date_range(days)
    if isinstance(rows, pd.DataFrame):
        with _relation(con, rows) as select:
            return write_partition(con, table, date_column, days, select)
    params = list(params or [])
    ensure_schema(con, table.split(".")[0])
    if table_exists(con, table):
        _add_new_columns(con, table, rows, params)
        con.execute(f"delete from {table} where {date_column} between ? and ?", [first, last])
        con.execute(f"insert into {table} by name {rows}", params)
    else:
        con.execute(f"create table {table} as {rows}", params)
    return _stored_rows(con, table, date_column, days)


def _stored_rows(con: duckdb.DuckDBPyConnection, table: str, date_column: str, days: Days) -> int:
    first, last = _date_range(days)
    return int(
        con.execute(
            f"select count(*) from {table} where {date_column} between ? and ?", [first, last]
        ).fetchall()[0][0]
    )


def _add_new_columns(con, table: str, select_sql: str, params: list) -> None:
    """Columns the query produces and ``table`` lacks are added (NULL in the rows already there), so a day
    written with a new column lands next to the days written before it instead of failing the insert."""
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
    days: Days,
    rows: str | pd.DataFrame,
    params: Sequence[Any] | None = None,
) -> int:
    """:func:`write_partition` in its own transaction: re-running a day replaces it, never duplicates it, and a
    failure leaves the rows that were there."""
    # a frame is registered outside the transaction, so it can be released after a rollback too
    with _relation(con, rows) as select, transaction(con):
        return write_partition(con, table, date_column, days, select, params)


def replace_partition_in_parts(
    con: duckdb.DuckDBPyConnection,
    table: str,
    date_column: str,
    days: Days,
    parts: Iterable[pd.DataFrame],
) -> int:
    """:func:`replace_partition` from frames that come one at a time (each holds only rows of ``days``), so a day
    too large to hold at once is written part by part, still in one transaction: a failure in any part leaves the
    rows that were there. Returns the number of rows now stored for ``days`` (0 and nothing changed without a
    part)."""
    parts = iter(parts)
    first = next(parts, None)
    if first is None:
        return 0
    with transaction(con):
        write_partition(con, table, date_column, days, first)
        for part in parts:
            with _relation(con, part) as select:
                con.execute(f"insert into {table} by name {select}")
        return _stored_rows(con, table, date_column, days)


def fetch_frame(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | dict[str, Any] | None = None,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """The result of ``sql`` as a DataFrame, converted through Arrow: for results with many string values (ids,
    SKUs) it takes much less memory and time than ``.df()``, which passes every string through a Python object.
    VARCHAR, DOUBLE and TIMESTAMP columns come out with ``.df()``'s dtypes; integers with NULLs come out as floats
    (``.df()``: nullable integers), DATE and DECIMAL differ too: read those with ``.df()``.

    The ``categorical`` columns come out as pandas categoricals with sorted categories (NULL: a missing value):
    each distinct value becomes one Python object, each row a small integer code, and sorting by the column
    sorts by its values."""
    # a relation, not an executed cursor: converting a cursor's result to Arrow copies it once more
    params = params if isinstance(params, dict) else list(params or [])  # named or positional
    table = con.sql(sql, params=params).to_arrow_table()
    for name in categorical:
        # encoded in Arrow, before pandas: the strings of every row never become Python objects
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.dictionary_encode(table.column(index)))
    frame = table.to_pandas()
    for name in categorical:
        frame[name] = sorted_categories(frame[name])
    return frame


def sorted_categories(values: pd.Series) -> pd.Series:
    """``values`` as a categorical whose categories are sorted, so that its codes order like its values."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(pd.CategoricalDtype(pd.Index(values.dropna().unique()).sort_values()))
    categories = values.cat.categories
    return (
        values
        if categories.is_monotonic_increasing
        else values.cat.reorder_categories(categories.sort_values())
    )


@contextmanager
def _relation(con: duckdb.DuckDBPyConnection, rows: str | pd.DataFrame) -> Iterator[str]:
    """A SELECT of ``rows``: the query itself, or a DataFrame registered under a temporary name."""
    if isinstance(rows, str):
        yield rows
        return
    view = f"_rows_{uuid.uuid4().hex}"
    con.register(view, rows)
    try:
        yield f"select * from {view}"
    finally:
        # in a transaction that an error aborted, DuckDB refuses even this: the original error is the one to see
        with suppress(duckdb.TransactionException):
            con.unregister(view)


def markdown_table(
    frame: pd.DataFrame, float_digits: int = 3, max_rows: int = 30, max_cell_chars: int | None = None
) -> str:
    """A GitHub markdown table (no extra dependency); long tables are cut to ``max_rows`` with a note, long
    cells to ``max_cell_chars`` when given."""
    if frame.empty:
        return "_(no rows)_"
    shown = frame.head(max_rows)

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        text = str(value).replace("|", "\\|").replace("\n", " ")
        return text[:max_cell_chars] if max_cell_chars else text

    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    note = [f"\n_{len(frame) - max_rows} more rows not shown_"] if len(frame) > max_rows else []
    return "\n".join([header, rule, *body, *note])


def query_markdown(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None, limit: int = 5
) -> str:
    """The first ``limit`` rows of a query as a :func:`markdown_table` (cells cut to 60 characters)."""
    frame = con.execute(f"select * from ({sql}) limit {int(limit)}", list(params or [])).df()
    return markdown_table(frame, max_rows=limit, max_cell_chars=60)
