"""Small DuckDB helpers shared by the profile builders: schema setup, idempotent writes, markdown tables."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import duckdb

from ml.warehouse import ensure_schema as _ensure_schema
from ml.warehouse import (  # noqa: F401  (the profile builders import them from here)
    markdown_table,
    replace_partition,
    replace_partition_df,
    table_exists,
    transaction,
    write_partition,
)

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


def lit(day: date) -> str:
    """A SQL date literal; safe to inline because it is built from a ``date`` object, never from user text."""
    return f"DATE '{date.fromordinal(day.toordinal()).isoformat()}'"


def shift(day: date, days: int) -> date:
    return day + timedelta(days=days)


def summary(row_count: int, metrics: dict[str, float | int | None], markdown: dict[str, str]) -> dict:
    """The summary shape every builder returns (a Dagster asset turns it into metadata).

    ``metrics`` are numbers (``None`` when not computable that day) that plot over partitions;
    ``markdown`` are small tables for the UI.
    """
    clean = {
        k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in metrics.items()
    }
    return {"row_count": int(row_count), "metrics": clean, "markdown": markdown}
