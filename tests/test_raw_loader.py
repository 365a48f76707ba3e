"""The raw loader: contract checks that name the file and column, quarantine with reasons, idempotency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.dbt import LOOKBACK_DAYS, rebuild_vars
from ml.ingest.raw_loader import LandingFileError, MissingLandingError, load_window
from ml.sources.landing import day_dir, write_table
from ml.sources.schema import CONTRACTS

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def _orders(day: date, ids: list[str | None], totals: list[float]) -> pa.Table:
    n = len(ids)
    ts = [datetime(day.year, day.month, day.day, 10, i, tzinfo=UTC) for i in range(n)]
    return pa.table(
        {
            "order_id": ids,
            "ts": ts,
            "customer_id": ["C1"] * n,
            "session_id": [None] * n,
            "channel": ["web"] * n,
            "region": ["north"] * n,
            "country": ["GB"] * n,
            "currency": ["GBP"] * n,
            "order_total": totals,
            "status": ["placed"] * n,
        }
    )


@pytest.fixture
def con():
    with duckdb.connect() as c:
        c.execute("SET TimeZone = 'UTC'")
        yield c


def test_good_rows_load_and_bad_rows_go_to_quarantine_with_reasons(tmp_path, con):
    write_table(
        _orders(D1, ["O1", None, "O3", "O4"], [10.0, 5.0, float("nan"), 7.5]), tmp_path, "s", "orders", D1
    )
    result = load_window(con, tmp_path, "s", "orders", [D1])
    assert (result.landed, result.loaded, result.quarantined) == (4, 2, 2)
    assert result.quarantined_by_reason() == {"non_finite:order_total": 1, "null_key:order_id": 1}
    assert con.execute("SELECT list(order_id ORDER BY order_id) FROM raw.orders").fetchone()[0] == [
        "O1",
        "O4",
    ]
    q = con.execute(
        "SELECT _reason, _file_row, _source_file FROM raw.quarantine_orders ORDER BY _file_row"
    ).fetchall()
    assert [(r[0], r[1]) for r in q] == [("null_key:order_id", 1), ("non_finite:order_total", 2)]
    assert q[0][2].endswith("date=2025-01-01/part-0.parquet")
    # every landed row is accounted for
    assert (
        con.execute(
            "SELECT (SELECT count(*) FROM raw.orders) + (SELECT count(*) FROM raw.quarantine_orders)"
        ).fetchone()[0]
        == 4
    )


def test_reloading_a_window_replaces_it_and_never_duplicates(tmp_path, con):
    write_table(_orders(D1, ["O1", "O2"], [1.0, 2.0]), tmp_path, "s", "orders", D1)
    write_table(_orders(D2, ["O3"], [3.0]), tmp_path, "s", "orders", D2)
    load_window(con, tmp_path, "s", "orders", [D1, D2])
    for _ in range(2):
        load_window(con, tmp_path, "s", "orders", [D1])
    assert con.execute("SELECT count(*), count(DISTINCT order_id) FROM raw.orders").fetchone() == (3, 3)
    # the upstream re-delivers day 1 with one row fewer: the day is replaced, day 2 untouched
    write_table(_orders(D1, ["O1"], [1.0]), tmp_path, "s", "orders", D1)
    load_window(con, tmp_path, "s", "orders", [D1])
    assert con.execute("SELECT list(order_id ORDER BY order_id) FROM raw.orders").fetchone()[0] == [
        "O1",
        "O3",
    ]
    assert con.execute("SELECT list(DISTINCT _event_date) FROM raw.orders WHERE order_id = 'O3'").fetchone()[
        0
    ] == [D2]


def test_missing_column_fails_naming_file_and_column_and_changes_nothing(tmp_path, con):
    write_table(_orders(D1, ["O1"], [1.0]), tmp_path, "s", "orders", D1)
    load_window(con, tmp_path, "s", "orders", [D1])
    bad = _orders(D2, ["O9"], [9.0]).drop_columns(["currency"])
    folder = day_dir(tmp_path, "s", "orders", D2)
    folder.mkdir(parents=True)
    pq.write_table(bad, folder / "part-0.parquet")
    with pytest.raises(LandingFileError, match=r"date=2025-01-02/part-0\.parquet: missing column 'currency'"):
        load_window(con, tmp_path, "s", "orders", [D1, D2])
    # day 1 is still there, exactly once
    assert con.execute("SELECT list(order_id) FROM raw.orders").fetchone()[0] == ["O1"]


def test_mistyped_column_fails_naming_the_column_and_types(tmp_path, con):
    bad = _orders(D1, ["O1"], [1.0]).set_column(8, "order_total", pa.array(["1.00"]))
    folder = day_dir(tmp_path, "s", "orders", D1)
    folder.mkdir(parents=True)
    pq.write_table(bad, folder / "part-0.parquet")
    with pytest.raises(LandingFileError, match="column 'order_total' has type string, expected double"):
        load_window(con, tmp_path, "s", "orders", [D1])


def test_corrupt_file_and_missing_folder_fail_clearly(tmp_path, con):
    folder = day_dir(tmp_path, "s", "orders", D1)
    folder.mkdir(parents=True)
    good = folder / "part-0.parquet"
    pq.write_table(_orders(D1, ["O1"], [1.0]), good)
    good.write_bytes(good.read_bytes()[:40])  # truncated
    with pytest.raises(LandingFileError, match=r"part-0\.parquet: not a readable Parquet file"):
        load_window(con, tmp_path, "s", "orders", [D1])
    with pytest.raises(
        MissingLandingError, match="no landing files for table 'orders' of source 's' on 2025-01-02"
    ):
        load_window(con, tmp_path, "s", "orders", [D2])


def test_late_rows_keep_their_own_event_date(tmp_path, con):
    late = _orders(D1, ["O1"], [1.0])  # event time on D1, delivered in D2's folder
    write_table(late, tmp_path, "s", "orders", D2)
    load_window(con, tmp_path, "s", "orders", [D2])
    assert con.execute("SELECT _landing_date, _event_date FROM raw.orders").fetchone() == (D2, D1)


def _window(con, day: date) -> tuple[date, date]:
    found = rebuild_vars(con, day, day)
    return date.fromisoformat(found["min_date"]), date.fromisoformat(found["max_date"])


def test_dbt_rebuilds_the_dates_the_landed_rows_touch_and_no_more():
    """A clean day rebuilds itself and the day before (sessions that cross midnight); a late row widens the window
    to its date; a corrected re-delivery that withdraws the late row still rebuilds that date (the stale row must
    leave staging); a day with no record, or no record table, rebuilds the whole lookback."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder, duckdb.connect() as con:
        root = Path(folder)
        con.execute("SET TimeZone = 'UTC'")
        assert _window(con, D(10)) == (D(10) - timedelta(days=LOOKBACK_DAYS), D(10))  # nothing recorded yet

        for day in (D(8), D(9), D(10)):
            write_table(_orders(day, [f"O{day.day}"], [1.0]), root, "s", "orders", day)
            load_window(con, root, "s", "orders", [day])
        assert _window(con, D(10)) == (D(9), D(10))
        assert rebuild_vars(con, D(9), D(10)) == {"min_date": D(8).isoformat(), "max_date": D(10).isoformat()}

        # day 11 delivers a late order of day 9 beside its own
        write_table(
            pa.concat_tables([_orders(D(11), ["O11"], [1.0]), _orders(D(9), ["L9"], [1.0])]),
            root,
            "s",
            "orders",
            D(11),
        )
        load_window(con, root, "s", "orders", [D(11)])
        assert _window(con, D(11)) == (D(9), D(11))
        # corrected: the late order withdrawn; the day it had touched is still rebuilt
        write_table(_orders(D(11), ["O11"], [1.0]), root, "s", "orders", D(11))
        load_window(con, root, "s", "orders", [D(11)])
        assert con.execute("SELECT count(*) FROM raw.orders WHERE order_id = 'L9'").fetchone()[0] == 0
        assert _window(con, D(11)) == (D(9), D(11))

        # a late row further back than the lookback never reaches raw, so the window stays bounded
        write_table(_orders(D(1), ["L1"], [1.0]), root, "s", "orders", D(12))
        load_window(con, root, "s", "orders", [D(12)])
        assert (
            con.execute("SELECT count(*) FROM raw.quarantine_orders WHERE order_id = 'L1'").fetchone()[0] == 1
        )
        assert _window(con, D(12)) == (D(11), D(12))
        # a window with a day that was never loaded: the whole lookback
        assert (
            rebuild_vars(con, D(12), D(13))["min_date"] == (D(12) - timedelta(days=LOOKBACK_DAYS)).isoformat()
        )


def D(day: int) -> date:  # noqa: N802 - reads like the D1/D2 constants
    return date(2025, 1, day)


def test_every_contract_can_be_created_and_loaded_empty(tmp_path, con):
    for name, contract in CONTRACTS.items():
        write_table(contract.schema.empty_table(), tmp_path, "s", name, D1)
        result = load_window(con, tmp_path, "s", name, [D1])
        assert result.landed == 0
        assert con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] == 0
