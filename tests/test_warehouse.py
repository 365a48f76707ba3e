"""The one per-day writer: replaces a day (or a range) in one transaction, never duplicates, keeps the old rows and
the real error when a write fails."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from ml.warehouse import replace_partition, table_exists

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def _rows(day: date, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"day": [day] * len(values), "value": values})


def test_a_day_is_replaced_not_added_and_its_schema_created():
    con = duckdb.connect()
    assert replace_partition(con, "demo.t", "day", D1, _rows(D1, [1.0, 2.0])) == 2
    assert replace_partition(con, "demo.t", "day", D2, _rows(D2, [3.0])) == 1
    assert replace_partition(con, "demo.t", "day", D1, _rows(D1, [4.0])) == 1  # again: replaced
    assert con.execute("select day, value from demo.t order by all").fetchall() == [(D1, 4.0), (D2, 3.0)]
    # a range, as a SELECT
    assert replace_partition(con, "demo.t", "day", (D1, D2), "select ?::date as day, 9.0 as value", [D2]) == 1
    assert con.execute("select day, value from demo.t order by all").fetchall() == [(D2, 9.0)]


def test_a_new_column_lands_beside_the_days_written_before_it():
    con = duckdb.connect()
    replace_partition(con, "demo.t", "day", D1, _rows(D1, [1.0]))
    replace_partition(con, "demo.t", "day", D2, _rows(D2, [2.0]).assign(note="x"))
    assert con.execute("select day, note from demo.t order by day").fetchall() == [(D1, None), (D2, "x")]


def test_a_failed_write_keeps_the_old_rows_and_raises_its_own_error():
    con = duckdb.connect()
    con.execute("create schema demo")
    con.execute("create table demo.t (day date, value decimal(2, 1))")
    replace_partition(con, "demo.t", "day", D1, _rows(D1, [1.0]))
    with pytest.raises(duckdb.ConversionException, match="DECIMAL"):
        replace_partition(con, "demo.t", "day", D1, _rows(D1, [23.0]))  # does not fit decimal(2, 1)
    assert con.execute("select day, value::double from demo.t").fetchall() == [(D1, 1.0)]
    # the connection is usable after the rollback
    assert table_exists(con, "demo.t")
