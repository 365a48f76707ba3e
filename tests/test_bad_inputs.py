"""The bad-input corpus: each kind of broken landing data and the exact outcome the raw layer gives it.

Every case starts from two clean days of the small simulated store, breaks day 2 in one way, and loads both
days table by table as the raw asset does. The outcome is either rows quarantined with the right reason code
(and everything else loaded) or the day failing with a message that names the file and the problem. In every
case day 1 is unaffected and nothing is lost: landed rows = raw rows + quarantined rows.

Cases that need dbt (duplicates removed in staging, a late file counted once in the marts) are in
``test_bad_inputs_e2e.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ml.ingest.raw_loader import (
    LandingFileError,
    MissingLandingError,
    UnloadedHistoryError,
    load_window,
    unloaded_days_before,
)
from ml.sources import get_source
from ml.sources.landing import LandingPathError, day_dir, day_files, write_table
from ml.sources.schema import OPEN_LOOP_TABLES

SOURCE = "simulated"
D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


@pytest.fixture(scope="module")
def clean_landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean_landing")
    source = get_source(SOURCE, scale="small")
    for day in (D1, D2):
        source.write_day(day, root)
    # The store lists its whole catalogue on day 1; give day 2 three new products so product cases have rows.
    new = pq.read_table(file_of(root, "products", D1)).slice(0, 3)
    new = new.set_column(0, "sku", pa.array([f"NEW-{i}" for i in range(3)]))
    ts = datetime(2025, 1, 2, 8, tzinfo=UTC)
    new = new.set_column(
        new.schema.get_field_index("first_seen_ts"),
        "first_seen_ts",
        pa.array([ts] * 3, type=new.schema.field("first_seen_ts").type),
    )
    write_table(new, root, SOURCE, "products", D2)
    return root


@pytest.fixture
def landing(clean_landing, tmp_path) -> Path:
    root = tmp_path / "landing"
    shutil.copytree(clean_landing, root)
    return root


@pytest.fixture
def con():
    with duckdb.connect() as c:
        c.execute("SET TimeZone = 'UTC'")
        yield c


def load_all(con, landing: Path, day: date) -> dict[str, object]:
    """Load every table of one day in the raw asset's order; return the results (or the error) per table."""
    out: dict[str, object] = {}
    for table in OPEN_LOOP_TABLES:
        try:
            out[table] = load_window(con, landing, SOURCE, table, [day])
        except LandingFileError as exc:
            out[table] = exc
    return out


def file_of(landing: Path, table: str, day: date = D2) -> Path:
    (path,) = day_files(landing, SOURCE, table, day)
    return path


def rewrite(landing: Path, table: str, change: Callable[[pa.Table], pa.Table], day: date = D2) -> Path:
    """Replace the day's file of ``table`` by ``change(table)``, written without the contract cast."""
    path = file_of(landing, table, day)
    pq.write_table(change(pq.read_table(path)), path)
    return path


def set_cell(t: pa.Table, column: str, row: int, value, dtype: pa.DataType | None = None) -> pa.Table:
    values = t.column(column).to_pylist()
    values[row] = value
    i = t.schema.get_field_index(column)
    return t.set_column(i, column, pa.array(values, type=dtype or t.schema.field(column).type))


def quarantine(con, table: str, day: date = D2) -> dict[str, int]:
    rows = con.execute(
        f"SELECT _reason, count(*) FROM raw.quarantine_{table} WHERE _landing_date = ? GROUP BY 1", [day]
    ).fetchall()
    return dict(rows)


def rows(con, table: str, day: date) -> int:
    return con.execute(f"SELECT count(*) FROM raw.{table} WHERE _landing_date = ?", [day]).fetchone()[0]


def landed(landing: Path, table: str, day: date) -> int:
    return sum(pq.read_metadata(f).num_rows for f in day_files(landing, SOURCE, table, day))


@pytest.fixture
def day1_loaded(con, landing):
    """Day 1 loaded cleanly; returns its raw row counts so each case can show day 1 is unaffected."""
    results = load_all(con, landing, D1)
    assert not any(isinstance(r, Exception) for r in results.values())
    return {t: rows(con, t, D1) for t in OPEN_LOOP_TABLES}


def assert_day1_intact_and_nothing_lost(con, landing, day1_counts, failed: tuple[str, ...] = ()):
    for table in OPEN_LOOP_TABLES:
        assert rows(con, table, D1) == day1_counts[table], f"day 1 of {table} changed"
        if table in failed:
            assert rows(con, table, D2) == 0 and quarantine(con, table) == {}
            continue
        q = sum(quarantine(con, table).values())
        assert rows(con, table, D2) + q == landed(landing, table, D2), f"rows of {table} lost or doubled"


# -- the day fails with a message naming the file and the problem -------------------------------------------


def expect_failure(con, landing, day1_loaded, table: str, *fragments: str):
    results = load_all(con, landing, D2)
    err = results[table]
    assert isinstance(err, LandingFileError), f"{table} should have failed, got {err!r}"
    message = str(err)
    assert str(file_of(landing, table)) in message or str(day_dir(landing, SOURCE, table, D2)) in message
    for fragment in fragments:
        assert fragment in message
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded, failed=(table,))
    return results


def test_missing_column_fails_naming_file_and_column(con, landing, day1_loaded):
    rewrite(landing, "orders", lambda t: t.drop_columns(["order_total"]))
    expect_failure(con, landing, day1_loaded, "orders", "missing column 'order_total'")


def test_wrong_type_fails_naming_column_and_types(con, landing, day1_loaded):
    rewrite(landing, "order_items", lambda t: t.set_column(4, "qty", pc.cast(t.column("qty"), pa.string())))
    expect_failure(con, landing, day1_loaded, "order_items", "column 'qty' has type string", "expected int64")


def test_empty_file_fails(con, landing, day1_loaded):
    file_of(landing, "events").write_bytes(b"")
    expect_failure(con, landing, day1_loaded, "events", "not a readable Parquet file")


def test_truncated_parquet_fails(con, landing, day1_loaded):
    path = file_of(landing, "events")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_failure(con, landing, day1_loaded, "events", "not a readable Parquet file")


def test_csv_where_parquet_is_expected_fails(con, landing, day1_loaded):
    path = file_of(landing, "promotions")
    csv = path.with_name("part-1.csv")
    csv.write_text("promo_id,active_ts,category,discount_pct,channel\nP9,2025-01-02,toys,0.1,web\n")
    results = load_all(con, landing, D2)
    assert isinstance(results["promotions"], LandingFileError)
    assert str(csv) in str(results["promotions"]) and "not a readable Parquet file" in str(
        results["promotions"]
    )
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded, failed=("promotions",))


def test_naive_timestamps_fail_since_their_zone_is_unknown(con, landing, day1_loaded):
    rewrite(landing, "orders", lambda t: t.set_column(1, "ts", pc.cast(t.column("ts"), pa.timestamp("us"))))
    expect_failure(con, landing, day1_loaded, "orders", "column 'ts' has type timestamp[us]")


def test_non_utf8_text_fails_as_binary_column(con, landing, day1_loaded):
    def latin1_titles(t: pa.Table) -> pa.Table:
        titles = [s.encode("utf-8") for s in t.column("title").to_pylist()]
        titles[0] = "Caf\xe9 cr\xe8me".encode("latin-1")  # not valid UTF-8
        return t.set_column(1, "title", pa.array(titles, type=pa.binary()))

    rewrite(landing, "products", latin1_titles)
    expect_failure(con, landing, day1_loaded, "products", "column 'title' has type binary")


def test_missing_landing_folder_fails_naming_the_folder(con, landing, day1_loaded):
    shutil.rmtree(day_dir(landing, SOURCE, "inventory", D2))
    with pytest.raises(MissingLandingError, match=r"no landing files for table 'inventory'.*2025-01-02"):
        load_window(con, landing, SOURCE, "inventory", [D2])


def test_partition_key_or_file_name_escaping_the_landing_directory_is_refused(con, landing, tmp_path):
    with pytest.raises(LandingPathError, match="not a date"):
        day_dir(landing, SOURCE, "orders", "../../etc")
    with pytest.raises(LandingPathError, match="not a plain identifier"):
        day_dir(landing, "../simulated", "orders", D2)
    # A file in the day folder that is a link to somewhere outside the landing directory.
    outside = tmp_path / "outside.parquet"
    shutil.copy(file_of(landing, "orders"), outside)
    (day_dir(landing, SOURCE, "orders", D2) / "part-9.parquet").symlink_to(outside)
    with pytest.raises(LandingPathError, match="escapes the landing directory"):
        load_window(con, landing, SOURCE, "orders", [D2])


# -- rows quarantined with the right reason, everything else loaded -----------------------------------------


def expect_quarantine(con, landing, day1_loaded, table: str, expected: dict[str, int]):
    results = load_all(con, landing, D2)
    assert not any(isinstance(r, Exception) for r in results.values()), results
    assert quarantine(con, table) == expected
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)
    return results


def test_extra_unknown_column_is_reported_and_ignored(con, landing, day1_loaded):
    path = rewrite(
        landing, "customers", lambda t: t.append_column("loyalty_tier", pa.array(["gold"] * len(t)))
    )
    results = expect_quarantine(con, landing, day1_loaded, "customers", {})
    assert results["customers"].extra_columns == {str(path): ["loyalty_tier"]}


def test_null_keys_are_quarantined(con, landing, day1_loaded):
    rewrite(landing, "events", lambda t: set_cell(set_cell(t, "event_id", 0, None), "event_id", 5, None))
    expect_quarantine(con, landing, day1_loaded, "events", {"null_key:event_id": 2})


def test_negative_and_zero_list_prices_are_quarantined(con, landing, day1_loaded):
    rewrite(landing, "products", lambda t: set_cell(set_cell(t, "price", 0, -4.99), "price", 1, 0.0))
    # Views of the bad product now reference a product the raw layer does not hold: quarantined too, with
    # their own reason, instead of flowing into the marts without a product.
    rewrite(landing, "events", lambda t: set_cell(set_cell(t, "sku", 0, "NEW-0"), "sku", 1, "NEW-2"))
    results = load_all(con, landing, D2)
    assert not any(isinstance(r, Exception) for r in results.values())
    assert quarantine(con, "products") == {"non_positive:price": 2}
    assert quarantine(con, "events") == {"unknown_ref:sku": 1}
    assert con.execute("SELECT count(*) FROM raw.events WHERE sku = 'NEW-2'").fetchone()[0] == 1
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def landed_rows_with(landing: Path, table: str, column: str, values: list) -> int:
    t = pq.read_table(file_of(landing, table))
    return int(pc.sum(pc.is_in(t.column(column), pa.array(values))).as_py() or 0)


def test_negative_unit_price_on_an_order_line_is_quarantined(con, landing, day1_loaded):
    path = rewrite(landing, "order_items", lambda t: set_cell(t, "unit_price", 3, -12.5))
    order_id = pq.read_table(path).column("order_id")[3].as_py()
    rewrite(landing, "orders", lambda t: t)  # orders unchanged
    results = load_all(con, landing, D2)
    assert quarantine(con, "order_items").get("negative:unit_price") == 1
    # The order's total no longer matches its lines, so the order and its other lines follow it.
    assert quarantine(con, "orders") == {"order_total_mismatch:order_total": 1}
    assert con.execute("SELECT order_id FROM raw.quarantine_orders").fetchone()[0] == order_id
    assert not any(isinstance(r, Exception) for r in results.values())
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def test_an_order_whose_lines_all_fail_their_own_rules_is_quarantined_with_them(con, landing, day1_loaded):
    # Online Retail's "Adjust bad debt" invoices: the header's total is its one line's amount, a negative price,
    # so header and landed lines agree, yet the line is quarantined; the header must follow it, or the marts
    # hold an order whose lines are not there (which failed fct_orders' blocking total check).
    lines = pq.read_table(file_of(landing, "order_items"))
    order_id = lines.column("order_id")[0].as_py()
    mine = [i for i, o in enumerate(lines.column("order_id").to_pylist()) if o == order_id]
    price = -11062.06
    amounts = []

    def corrupt(t: pa.Table) -> pa.Table:
        for i in mine:
            t = set_cell(t, "unit_price", i, price)
            qty, discount = t.column("qty")[i].as_py(), t.column("discount")[i].as_py() or 0.0
            amounts.append(round(qty * price * (1 - discount), 2))
        return t

    rewrite(landing, "order_items", corrupt)
    orders = pq.read_table(file_of(landing, "orders"))
    row = orders.column("order_id").to_pylist().index(order_id)
    rewrite(landing, "orders", lambda t: set_cell(t, "order_total", row, round(sum(amounts), 2)))
    results = load_all(con, landing, D2)
    assert not any(isinstance(r, Exception) for r in results.values())
    assert quarantine(con, "order_items") == {"negative:unit_price": len(mine)}
    assert quarantine(con, "orders") == {"order_total_mismatch:order_total": 1}
    assert con.execute("SELECT order_id FROM raw.quarantine_orders").fetchone()[0] == order_id
    # every order left in raw adds up to the lines left in raw
    off = con.execute(
        """SELECT count(*) FROM raw.orders AS o
           LEFT JOIN (SELECT order_id, sum(round(qty * unit_price * (1 - coalesce(discount, 0)), 2)) AS total
                      FROM raw.order_items GROUP BY order_id) AS l USING (order_id)
           WHERE abs(o.order_total - coalesce(l.total, 0)) > 0.011"""
    ).fetchone()[0]
    assert off == 0
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def test_absurd_quantities_are_quarantined(con, landing, day1_loaded):
    rewrite(landing, "inventory", lambda t: set_cell(t, "on_hand", 0, 1_000_000_000))
    expect_quarantine(con, landing, day1_loaded, "inventory", {"out_of_range:on_hand": 1})


def test_absurd_order_line_quantity_quarantines_the_line_and_its_order(con, landing, day1_loaded):
    path = rewrite(landing, "order_items", lambda t: set_cell(t, "qty", 0, 1_000_000_000))
    order_id = pq.read_table(path).column("order_id")[0].as_py()
    load_all(con, landing, D2)
    q = quarantine(con, "order_items")
    assert q["out_of_range:qty"] == 1
    n_lines = landed_rows_with(landing, "order_items", "order_id", [order_id])
    assert q.get("order_total_mismatch:order_total", 0) == n_lines - 1
    assert quarantine(con, "orders") == {"order_total_mismatch:order_total": 1}
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def test_nan_and_inf_are_quarantined(con, landing, day1_loaded):
    rewrite(
        landing,
        "promotions",
        lambda t: set_cell(t, "discount_pct", 0, float("nan")),
    )
    rewrite(
        landing,
        "products",
        lambda t: set_cell(t, "price", 0, float("inf")),
    )
    results = load_all(con, landing, D2)
    assert quarantine(con, "promotions") == {"non_finite:discount_pct": 1}
    assert quarantine(con, "products") == {"non_finite:price": 1}
    assert not any(isinstance(r, Exception) for r in results.values())
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def _shift_ts(t: pa.Table, column: str, row: int, new: datetime) -> pa.Table:
    return set_cell(t, column, row, new, pa.timestamp("us", tz="UTC"))


def test_timestamps_in_the_future_are_quarantined(con, landing, day1_loaded):
    rewrite(landing, "events", lambda t: _shift_ts(t, "ts", 0, datetime(2099, 1, 1, tzinfo=UTC)))
    expect_quarantine(con, landing, day1_loaded, "events", {"future_ts:ts": 1})


def test_timestamps_outside_the_partition_day_are_quarantined_beyond_the_tolerance(con, landing, day1_loaded):
    next_day = datetime(2025, 1, 3, 0, 0, 1, tzinfo=UTC)
    long_ago = datetime(2024, 12, 20, tzinfo=UTC)
    late_but_tolerated = datetime(2025, 1, 1, 23, 0, tzinfo=UTC)
    rewrite(
        landing,
        "events",
        lambda t: _shift_ts(
            _shift_ts(_shift_ts(t, "ts", 0, next_day), "ts", 1, long_ago), "ts", 2, late_but_tolerated
        ),
    )
    expect_quarantine(con, landing, day1_loaded, "events", {"future_ts:ts": 1, "stale_ts:ts": 1})
    # The late row within the tolerance is loaded, dated by its own event time (picked up by dbt's lookback).
    event_id = pq.read_table(file_of(landing, "events")).column("event_id")[2].as_py()
    assert con.execute(
        "SELECT _landing_date, _event_date FROM raw.events WHERE event_id = ?", [event_id]
    ).fetchone() == (D2, D1)


def test_timezone_shifted_timestamps_keep_their_instant(con, landing, day1_loaded):
    original = pq.read_table(file_of(landing, "orders"))
    rewrite(
        landing,
        "orders",
        lambda t: t.set_column(1, "ts", pc.cast(t.column("ts"), pa.timestamp("us", tz="Asia/Shanghai"))),
    )
    expect_quarantine(con, landing, day1_loaded, "orders", {})
    first = original.column("ts")[0].as_py()
    stored = con.execute(
        "SELECT ts, _event_date FROM raw.orders WHERE order_id = ?", [original.column("order_id")[0].as_py()]
    ).fetchone()
    assert stored[0] == first and stored[1] == first.astimezone(UTC).date()


def test_unknown_sku_in_an_order_line_is_quarantined(con, landing, day1_loaded):
    path = rewrite(landing, "order_items", lambda t: set_cell(t, "sku", 0, "SKU-DOES-NOT-EXIST"))
    order_id = pq.read_table(path).column("order_id")[0].as_py()
    load_all(con, landing, D2)
    assert quarantine(con, "order_items")["unknown_ref:sku"] == 1
    # The order itself is consistent (its total still matches the landed lines), so it stays.
    assert con.execute("SELECT count(*) FROM raw.orders WHERE order_id = ?", [order_id]).fetchone()[0] == 1
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def test_unknown_customer_is_quarantined(con, landing, day1_loaded):
    rewrite(landing, "orders", lambda t: set_cell(t, "customer_id", 0, "C-NOBODY"))
    expect_quarantine(con, landing, day1_loaded, "orders", {"unknown_ref:customer_id": 1})


def test_unknown_event_type_is_quarantined(con, landing, day1_loaded):
    rewrite(landing, "events", lambda t: set_cell(t, "event_type", 0, "wishlist"))
    expect_quarantine(con, landing, day1_loaded, "events", {"invalid_value:event_type": 1})


def test_order_whose_lines_disagree_with_its_total_is_quarantined_with_its_lines(con, landing, day1_loaded):
    path = rewrite(
        landing, "orders", lambda t: set_cell(t, "order_total", 0, t.column("order_total")[0].as_py() + 5)
    )
    order_id = pq.read_table(path).column("order_id")[0].as_py()
    n_lines = landed_rows_with(landing, "order_items", "order_id", [order_id])
    assert n_lines >= 1
    load_all(con, landing, D2)
    assert quarantine(con, "orders") == {"order_total_mismatch:order_total": 1}
    assert quarantine(con, "order_items") == {"order_total_mismatch:order_total": n_lines}
    assert_day1_intact_and_nothing_lost(con, landing, day1_loaded)


def test_sql_metacharacters_are_stored_verbatim_and_never_executed(con, landing, day1_loaded):
    nasty = 'Robert\'); DROP TABLE raw.orders; -- "quoted" `tick` \\ %s {0}'
    path = rewrite(landing, "products", lambda t: set_cell(t, "title", 0, nasty))
    sku = pq.read_table(path).column("sku")[0].as_py()
    expect_quarantine(con, landing, day1_loaded, "products", {})
    assert con.execute("SELECT title FROM raw.products WHERE sku = ?", [sku]).fetchone()[0] == nasty
    assert con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] > 0


def test_duplicate_event_ids_are_kept_in_raw_for_staging_to_remove(con, landing, day1_loaded):
    # Raw is a faithful copy of what landed; staging deduplicates on the key (see the e2e corpus test).
    def duplicate_first_rows(t: pa.Table) -> pa.Table:
        return pa.concat_tables([t, t.slice(0, 3)])

    rewrite(landing, "events", duplicate_first_rows)
    expect_quarantine(con, landing, day1_loaded, "events", {})
    dupes = con.execute(
        "SELECT count(*) - count(DISTINCT event_id) FROM raw.events WHERE _landing_date = ?", [D2]
    ).fetchone()[0]
    assert dupes == 3


def test_a_late_file_for_an_earlier_day_is_loaded_once_when_that_day_is_rerun(con, landing, day1_loaded):
    late = pq.read_table(file_of(landing, "orders", D1)).slice(0, 2)
    late = late.set_column(0, "order_id", pa.array(["LATE-1", "LATE-2"]))
    late = late.set_column(8, "order_total", pa.array([None, None], type=pa.float64()))
    pq.write_table(late, day_dir(landing, SOURCE, "orders", D1) / "part-late.parquet")
    for _ in range(2):  # re-running the day twice still counts the late file once
        load_window(con, landing, SOURCE, "orders", [D1])
    assert rows(con, "orders", D1) == day1_loaded["orders"] + 2
    assert con.execute("SELECT count(*) FROM raw.orders WHERE order_id LIKE 'LATE-%'").fetchone()[0] == 2


def test_a_day_loaded_before_the_days_its_references_need_is_refused_and_changes_nothing(con, landing):
    """Day 2's orders refer to customers and products that day 1 introduced: loading day 2 first would quarantine
    them as unknown, and they would stay quarantined after day 1 was loaded (the result would depend on the order
    of the runs). It is refused, naming the days to load first; once day 1 is in, day 2 loads."""
    with pytest.raises(
        UnloadedHistoryError, match=r"customers are not in raw yet \(2025-01-01\).*Load from 2025-01-01"
    ):
        load_window(con, landing, SOURCE, "orders", [D2])
    assert con.execute("SELECT count(*) FROM raw.orders").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM raw.quarantine_orders").fetchone()[0] == 0

    for day in (D1, D2):
        results = load_all(con, landing, day)
        assert not any(isinstance(r, Exception) for r in results.values()), results
    unknown = con.execute(
        "SELECT count(*) FROM raw.quarantine_orders WHERE _reason LIKE 'unknown_ref:%'"
    ).fetchone()[0]
    assert unknown == 0 and rows(con, "orders", D2) > 0


def test_a_landed_day_that_introduces_nothing_is_not_a_gap(con, landing):
    """An earlier day whose customer and product files are empty introduces nothing: it does not hold a later
    day back."""
    for table in ("customers", "products"):
        empty = pq.read_table(file_of(landing, table, D1)).slice(0, 0)
        pq.write_table(empty, file_of(landing, table, D1))
    assert unloaded_days_before(con, landing, SOURCE, "customers", D2) == []
    load_window(con, landing, SOURCE, "customers", [D2])  # customers refer to nothing
    assert rows(con, "customers", D2) > 0
