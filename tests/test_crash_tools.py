"""The measuring tools of bench/crash_consistency.py: table checksums ignore row order and the wall clock but
see any changed value; the export scan tells days from left-over temporaries and unreadable files."""

from __future__ import annotations

import duckdb
import pandas as pd

from bench.crash_consistency import export_state, table_checksums


def _warehouse(path, rows, loaded_at):
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        frame = pd.DataFrame(rows, columns=["order_id", "total"]).assign(loaded_at=loaded_at)
        con.register("f", frame)
        con.execute("CREATE OR REPLACE TABLE marts.fct_orders AS SELECT * FROM f")


def test_checksums_ignore_order_and_clock_but_not_values(tmp_path):
    rows = [("o1", 10.0), ("o2", 20.0), ("o3", 30.0)]
    _warehouse(tmp_path / "a.duckdb", rows, pd.Timestamp("2025-01-01"))
    _warehouse(tmp_path / "b.duckdb", rows[::-1], pd.Timestamp("2026-06-06"))
    _warehouse(tmp_path / "c.duckdb", [("o1", 10.0), ("o2", 20.5), ("o3", 30.0)], pd.Timestamp("2025-01-01"))
    _warehouse(tmp_path / "d.duckdb", rows + [("o3", 30.0)], pd.Timestamp("2025-01-01"))
    a, b, c, d = (table_checksums(tmp_path / f"{x}.duckdb") for x in "abcd")
    assert a == b and a["marts.fct_orders"][0] == 3
    assert c != a  # one changed value
    assert d["marts.fct_orders"][0] == 4 and d != a  # a duplicated row


def test_checksums_read_landing_paths_from_the_landing_folder_on(tmp_path):
    for name, root, file in (
        ("a", "/data/one", "part-0"),
        ("b", "/tmp/two", "part-0"),
        ("c", "/data/one", "part-1"),
    ):
        with duckdb.connect(str(tmp_path / f"{name}.duckdb")) as con:
            con.execute("CREATE SCHEMA raw")
            con.execute(
                f"CREATE TABLE raw.orders AS SELECT 'o1' AS order_id, '{root}/landing/orders/{file}' AS _source_file"
            )
    a, b, c = (table_checksums(tmp_path / f"{x}.duckdb") for x in "abc")
    assert a == b and a != c  # another data directory is the same row; another landing file is not


def test_export_scan_finds_temporaries_and_unreadable_files(tmp_path):
    good = tmp_path / "recommendations" / "date=2025-01-01"
    good.mkdir(parents=True)
    pd.DataFrame({"x": [1]}).to_parquet(good / "recommendations.parquet")
    (tmp_path / "recommendations" / ".date=2025-01-02.tmp").mkdir()
    broken = tmp_path / "demand_forecast" / "date=2025-01-01"
    broken.mkdir(parents=True)
    (broken / "demand_forecast.parquet").write_bytes(b"half a file")
    state = export_state(tmp_path)
    assert state["days"] == 2 and state["temporaries_left"] == [".date=2025-01-02.tmp"]
    assert state["unreadable"] == [str(broken / "demand_forecast.parquet")]
