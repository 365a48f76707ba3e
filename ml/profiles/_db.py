"""Small DuckDB helpers shared by the profile builders: schema setup, idempotent writes, markdown tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import duckdb

from ml.summary import summary  # noqa: F401  (the profile builders import it from here)
from ml.warehouse import ensure_schema as _ensure_schema
from ml.warehouse import (  # noqa: F401  (the profile builders import them from here)
    markdown_table,
    replace_partition,
    table_exists,
    transaction,
    write_partition,
)
from ml.warehouse import sql_date as lit  # noqa: F401  (the profile builders import it from here)

FEATURES = "features"
MARTS = "marts"


def ensure_schema(con: duckdb.DuckDBPyConnection, schema: str = FEATURES) -> None:
    _ensure_schema(con, schema)


def columns_of(con: duckdb.DuckDBPyConnection, qualified: str) -> set[str]:
    schema, name = qualified.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchall()
    return {r[0] for r in rows}


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run BLAS/OpenMP code (scikit-learn, scipy) on one thread.

    The models here are small (thousands of rows, tens of columns): thread start-up and spin-waiting cost more
    than they save, especially on a shared machine (measured: TF-IDF + SVD of 10k titles took 0.35 s of CPU on
    one thread against 0.8-1.9 s with the default pool)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def shift(day: date, days: int) -> date:
    return day + timedelta(days=days)
