"""The one per-day writer: replaces a day (or a range) in one transaction, never duplicates, keeps the old rows and
the real error when a write fails."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from ml.warehouse import (
    fetch_frame,
    replace_partition,
    replace_partition_in_parts,
    sorted_categories,
    table_exists,
)

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


def test_a_day_written_in_parts_replaces_the_day_and_a_failing_part_keeps_the_old_rows():
    con = duckdb.connect()
    replace_partition(con, "demo.t", "day", D1, _rows(D1, [1.0, 2.0]))
    replace_partition(con, "demo.t", "day", D2, _rows(D2, [5.0]))
    parts = (_rows(D1, [float(i), float(i) + 0.5]) for i in range(3))
    assert replace_partition_in_parts(con, "demo.t", "day", D1, parts) == 6
    stored = con.execute("select value from demo.t where day = ? order by value", [D1]).fetchall()
    assert [v for (v,) in stored] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]

    def broken():
        yield _rows(D1, [7.0])
        raise RuntimeError("the second part failed")

    with pytest.raises(RuntimeError, match="second part"):
        replace_partition_in_parts(con, "demo.t", "day", D1, broken())
    assert con.execute("select count(*), max(value) from demo.t where day = ?", [D1]).fetchone() == (6, 2.5)
    # no part at all: nothing is written and the day keeps its rows
    assert replace_partition_in_parts(con, "demo.t", "day", D1, iter([])) == 0
    assert con.execute("select count(*) from demo.t").fetchone() == (7,)


def test_a_frame_read_through_arrow_has_the_dtypes_and_values_of_df():
    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values ('a', 1.5::double, TIMESTAMP '2025-01-01 10:00:00', 'p'), "
        "(NULL, NULL, NULL, 'q'), ('c', 2.0, TIMESTAMP '2025-01-02 00:00:01', 'p')) v(s, d, ts, kind)"
    )
    sql = "select s, d, ts, kind from t where kind = ? order by ts"
    pd.testing.assert_frame_equal(fetch_frame(con, sql, ["p"]), con.execute(sql, ["p"]).df())
    assert fetch_frame(con, sql, ["p"])["s"].tolist() == ["a", "c"]


def test_categorical_columns_come_out_with_sorted_categories_and_the_same_values():
    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values ('c9', 'x'), ('a1', NULL), ('b5', 'y'), ('a1', 'x'), "
        "(NULL, 'z')) v(customer, kind)"
    )
    sql = "select customer, kind from t"
    plain = con.execute(sql).df()
    coded = fetch_frame(con, sql, categorical=["customer", "kind"])
    assert coded["customer"].cat.categories.tolist() == ["a1", "b5", "c9"]
    assert coded["kind"].cat.categories.tolist() == ["x", "y", "z"]
    # the same values row by row, NULL a missing value
    assert coded["customer"].astype(object).where(coded["customer"].notna(), None).tolist() == [
        None if pd.isna(v) else v for v in plain["customer"]
    ]
    assert coded["kind"].isna().tolist() == plain["kind"].isna().tolist()
    # sorting by the codes sorts by the values
    assert coded.sort_values("customer")["customer"].dropna().tolist() == ["a1", "a1", "b5", "c9"]


def test_sorted_categories_of_strings_and_of_a_categorical_in_first_seen_order():
    from_strings = sorted_categories(pd.Series(["b", "a", None, "b"]))
    assert from_strings.cat.categories.tolist() == ["a", "b"] and from_strings.cat.codes.tolist() == [
        1,
        0,
        -1,
        1,
    ]
    unsorted = pd.Series(pd.Categorical(["z", "m", "z"], categories=["z", "m"]))
    resorted = sorted_categories(unsorted)
    assert resorted.cat.categories.tolist() == ["m", "z"] and resorted.tolist() == ["z", "m", "z"]
