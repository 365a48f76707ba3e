"""Great Expectations suites and the partition runner (expectations/), on a small warehouse built here.

The fixture warehouse has the real raw tables (created from the landing contract by the raw loader) for four days
of a tiny store whose numbers agree with each other, and the marts a real dbt build makes of them. Each
test breaks one rule on one day and checks the exact expectation, observed value and sample rows reported.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from expectations import (
    SUITES,
    fetch_slice,
    validate_all,
    validate_partition,
    window_days,
)
from ml.sources.schema import (
    CHANNELS,
    CONTRACTS,
    DEVICES,
    EVENT_TYPES,
    EXPERIMENT_ARMS,
    LATE_ROW_TOLERANCE_DAYS,
    LINE_TYPES,
    LOST_SALE_REASONS,
    MAX_ABS_QUANTITY,
    MAX_LEAD_TIME_DAYS,
    MESSAGE_CHANNELS,
    MESSAGE_EVENT_TYPES,
    ORDER_STATUSES,
    PLACEMENTS,
    PROMO_CHANNELS,
)
from tests.warehouses import D1, D2, D3, D4, PER_DAY


@pytest.fixture
def con(four_day_shop: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(four_day_shop, copy)
    connection = duckdb.connect(str(copy))
    yield connection
    connection.close()


def _only_failure(outcome, expectation: str, column: str | None):
    assert not outcome.success
    matches = [f for f in outcome.failed if f.expectation == expectation and f.column == column]
    assert len(matches) == 1, [(f.expectation, f.column, f.observed) for f in outcome.failed]
    assert len(outcome.failed) == 1, [(f.expectation, f.column, f.observed) for f in outcome.failed]
    return matches[0]


# ---------------------------------------------------------------------------------------------------------
# Clean data


def test_registry_covers_every_raw_table_and_key_marts() -> None:
    assert {s.table for s in SUITES.values() if s.table.startswith("raw.")} == {f"raw.{t}" for t in CONTRACTS}
    marts = {
        "fct_orders",
        "fct_order_items",
        "fct_events",
        "fct_daily_sku_demand",
        "dim_products",
        "dim_customers",
    }
    assert {s.table for s in SUITES.values() if s.table.startswith("marts.")} == {f"marts.{m}" for m in marts}
    blocking = {name for name, s in SUITES.items() if s.blocking}
    assert blocking == {"fct_orders", "fct_order_items", "fct_events", "fct_daily_sku_demand"}
    for spec in SUITES.values():
        if spec.table.startswith("raw."):
            contract = CONTRACTS[spec.table.removeprefix("raw.")]
            assert spec.key == contract.key and spec.time_column == contract.time_column
            assert spec.date_column == "_landing_date"


def test_every_accepted_set_and_bound_is_the_contract_s() -> None:
    """The suites hold no vocabulary or limit of their own: each is the landing contract's value."""
    in_sets, bounds = {}, {}
    for name, spec in SUITES.items():
        for e in spec.expectations():
            if e.expectation_type == "expect_column_values_to_be_in_set":
                in_sets[(name, e.column)] = tuple(e.value_set)
            elif e.expectation_type == "expect_column_values_to_be_between" and e.column in (
                "qty",
                "lead_time_days",
            ):
                bounds.setdefault(e.column, set()).add((e.min_value, e.max_value))
    events = {"event_type": EVENT_TYPES, "channel": CHANNELS, "placement": PLACEMENTS, "device": DEVICES}
    assert in_sets == {
        ("raw_customers", "preferred_device"): DEVICES,
        **{("raw_events", column): values for column, values in events.items()},
        ("raw_impressions", "placement"): PLACEMENTS,
        ("raw_impressions", "arm"): EXPERIMENT_ARMS,
        ("raw_lost_sales", "reason"): LOST_SALE_REASONS,
        ("raw_message_events", "event_type"): MESSAGE_EVENT_TYPES,
        ("raw_message_events", "channel"): MESSAGE_CHANNELS,
        ("raw_orders", "status"): ORDER_STATUSES,
        ("raw_orders", "channel"): CHANNELS,
        ("raw_promotions", "channel"): PROMO_CHANNELS,
        ("fct_orders", "status"): ORDER_STATUSES,
        ("fct_orders", "channel"): CHANNELS,
        ("fct_order_items", "line_type"): LINE_TYPES,
        **{("fct_events", column): values for column, values in events.items()},
        ("dim_customers", "preferred_device"): DEVICES,
    }
    assert bounds == {
        "qty": {(-MAX_ABS_QUANTITY, MAX_ABS_QUANTITY), (1, MAX_ABS_QUANTITY)},
        "lead_time_days": {(0, MAX_LEAD_TIME_DAYS)},
    }
    # Raw rows may be as late as the contract tolerates, marts rows not at all.
    late = {name: spec.late_days for name, spec in SUITES.items()}
    assert {late[f"raw_{t}"] for t in CONTRACTS} == {LATE_ROW_TOLERANCE_DAYS}
    assert {d for name, d in late.items() if not name.startswith("raw_")} == {0}


def test_every_suite_passes_on_clean_data(con, tmp_path: Path) -> None:
    outcomes = validate_all(con, D4, D4)
    assert set(outcomes) == set(SUITES)
    for name, outcome in outcomes.items():
        assert outcome.success, (name, [(f.expectation, f.column, f.observed) for f in outcome.failed])
        assert outcome.failed == [] and outcome.evaluated == outcome.successful > 0
    # The slice holds only the window's rows; the only run-time bounds are the time window's.
    assert outcomes["raw_events"].row_count == PER_DAY["events"]
    assert outcomes["fct_order_items"].row_count == PER_DAY["order_items"]
    assert outcomes["raw_suppliers"].row_count == 0
    assert outcomes["raw_events"].parameters == {
        "window_ts_min": "2025-01-01T00:00:00+00:00",
        "window_ts_max": "2025-01-05T00:00:00+00:00",
    }
    assert outcomes["fct_events"].parameters["window_ts_min"] == "2025-01-04T00:00:00"


def test_multi_day_window_and_datetime_window(con) -> None:
    outcome = validate_partition(con, "fct_events", D2, D3)
    assert outcome.success and outcome.row_count == 2 * PER_DAY["events"]
    # A Dagster TimeWindow is half-open: [D2 00:00, D3 00:00) is the single day D2.
    start, end = dt.datetime.combine(D2, dt.time()), dt.datetime.combine(D3, dt.time())
    assert window_days(start, end) == (D2, D2)
    assert window_days(start.replace(tzinfo=dt.UTC), end.replace(tzinfo=dt.UTC)) == (D2, D2)
    with pytest.raises(TypeError):
        window_days(start, D3)
    outcome = validate_partition(con, "fct_events", start, end)
    assert (outcome.window_start, outcome.window_end, outcome.row_count) == (D2, D2, PER_DAY["events"])


# ---------------------------------------------------------------------------------------------------------
# Each kind of rule fails with the right expectation, observed value and sample rows


def test_the_validated_slice_is_not_kept_after_the_validation(con, monkeypatch) -> None:
    import gc
    import weakref

    import expectations.runner as runner

    slices = []
    fetch = runner.fetch_slice

    def remembered(*args, **kwargs):
        df = fetch(*args, **kwargs)
        slices.append(weakref.ref(df))
        return df

    monkeypatch.setattr(runner, "fetch_slice", remembered)
    outcome = validate_partition(con, "fct_events", D2, D3)
    assert outcome.success and outcome.row_count > 0
    gc.collect()
    assert len(slices) == 1 and slices[0]() is None


def test_null_key_is_reported_with_the_row(con) -> None:
    con.execute("UPDATE raw.events SET event_id = NULL WHERE event_id = 'E010203'")
    failed = _only_failure(
        validate_partition(con, "raw_events", D2, D2), "expect_column_values_to_not_be_null", "event_id"
    )
    assert failed.unexpected_count == 1
    (row,) = failed.sample_rows
    assert (
        row["event_id"] is None
        and row["_source_file"] == "events/2025-01-02.parquet"
        and row["_landing_date"] == "2025-01-02"
        and row["_file_row"] == 3
    )


def test_duplicate_key_is_reported(con) -> None:
    con.execute("INSERT INTO raw.events SELECT * FROM raw.events WHERE event_id = 'E010201'")
    failed = _only_failure(
        validate_partition(con, "raw_events", D2, D2), "expect_column_values_to_be_unique", "event_id"
    )
    assert failed.unexpected_count == 2 and failed.unexpected_values == ["E010201"]
    assert [r["event_id"] for r in failed.sample_rows] == ["E010201", "E010201"]


def test_duplicate_compound_key_is_reported(con) -> None:
    con.execute("UPDATE marts.fct_order_items SET line_no = 1 WHERE order_id = 'O01020' AND line_no = 2")
    outcome = validate_partition(con, "fct_order_items", D2, D2)
    failed = _only_failure(outcome, "expect_compound_columns_to_be_unique", "order_id, line_no")
    assert failed.unexpected_count == 2
    assert {(r["order_id"], r["line_no"]) for r in failed.sample_rows} == {("O01020", 1)}
    assert outcome.blocking


def test_non_positive_price_is_reported(con) -> None:
    con.execute("UPDATE raw.products SET price = 0 WHERE sku = 'P01021'")
    outcome = validate_partition(con, "raw_products", D2, D2)
    failed = _only_failure(outcome, "expect_column_values_to_be_between", "price")
    assert failed.rule["min_value"] == 0 and failed.rule["strict_min"] is True
    assert failed.unexpected_values == [0.0]
    assert [r["sku"] for r in failed.sample_rows] == ["P01021"]


def test_sale_line_with_zero_quantity_fails_the_blocking_mart_check(con) -> None:
    con.execute("UPDATE marts.fct_order_items SET qty = 0 WHERE order_id = 'O01031' AND line_no = 2")
    outcome = validate_partition(con, "fct_order_items", D3, D3)
    failed = _only_failure(outcome, "expect_column_values_to_be_between", "qty")
    assert failed.rule["row_condition"]["pass_through_filter"] == "is_sale == True"
    assert failed.unexpected_count == 1 and failed.unexpected_values == [0]
    assert (failed.sample_rows[0]["order_id"], failed.sample_rows[0]["line_no"]) == ("O01031", 2)


def test_absurd_quantity_is_reported(con) -> None:
    con.execute("UPDATE raw.order_items SET qty = 1000000000 WHERE order_id = 'O01020' AND line_no = 2")
    outcome = validate_partition(con, "raw_order_items", D2, D2)
    qty = [f for f in outcome.failed if f.column == "qty"]
    assert [f.expectation for f in qty] == ["expect_column_values_to_be_between"]
    assert qty[0].unexpected_values == [1_000_000_000]
    assert qty[0].rule["min_value"] == -MAX_ABS_QUANTITY and qty[0].rule["max_value"] == MAX_ABS_QUANTITY
    # The order total is the marts' invariant (the dbt test assert_order_total_matches_lines), not a GX rule.
    assert validate_partition(con, "raw_orders", D2, D2).success


@pytest.mark.parametrize(
    ("new_ts", "reason"),
    [("2024-12-27 12:00:00+00", "five days late"), ("2025-01-03 00:00:00+00", "next day"),
     ("2030-01-01 00:00:00+00", "future")],
)  # fmt: skip
def test_raw_timestamp_outside_the_window_is_reported(con, new_ts: str, reason: str) -> None:
    con.execute(f"UPDATE raw.events SET ts = TIMESTAMPTZ '{new_ts}' WHERE event_id = 'E010204'")
    failed = _only_failure(
        validate_partition(con, "raw_events", D2, D2), "expect_column_values_to_be_between", "ts"
    )
    assert failed.unexpected_count == 1, reason
    assert failed.sample_rows[0]["event_id"] == "E010204"
    assert failed.unexpected_values == [dt.datetime.fromisoformat(new_ts).isoformat()]


def test_raw_rows_up_to_three_days_late_are_accepted(con) -> None:
    con.execute("UPDATE raw.events SET ts = TIMESTAMPTZ '2024-12-30 12:00:00+00' WHERE event_id = 'E010204'")
    assert validate_partition(con, "raw_events", D2, D2).success


def test_mart_timestamp_outside_the_day_is_reported(con) -> None:
    con.execute(
        "UPDATE marts.fct_events SET event_ts = TIMESTAMP '2025-01-01 23:59:59' WHERE event_id = 'E010200'"
    )
    failed = _only_failure(
        validate_partition(con, "fct_events", D2, D2), "expect_column_values_to_be_between", "event_ts"
    )
    assert (
        failed.rule["min_value"] == "2025-01-02T00:00:00"
        and failed.rule["max_value"] == "2025-01-03T00:00:00"
    )
    assert failed.unexpected_values == ["2025-01-01T23:59:59"]


def test_unknown_event_type_and_channel_are_reported(con) -> None:
    con.execute("UPDATE marts.fct_events SET event_type = 'click' WHERE event_id = 'E010205'")
    con.execute("UPDATE marts.fct_events SET channel = 'carrier_pigeon' WHERE event_id = 'E010201'")
    outcome = validate_partition(con, "fct_events", D2, D2)
    by_column = {f.column: f for f in outcome.failed}
    assert set(by_column) == {"event_type", "channel"}
    assert by_column["event_type"].expectation == "expect_column_values_to_be_in_set"
    assert by_column["event_type"].unexpected_values == ["click"]
    assert by_column["event_type"].sample_rows[0]["event_id"] == "E010205"
    assert by_column["channel"].unexpected_values == ["carrier_pigeon"]


def test_daily_demand_must_reconcile_with_sale_lines(con) -> None:
    con.execute(
        "UPDATE marts.fct_daily_sku_demand SET units = units + 3 WHERE sku = 'P01020' AND demand_date = ?",
        [D2],
    )
    failed = _only_failure(
        validate_partition(con, "fct_daily_sku_demand", D2, D2),
        "expect_column_values_to_be_between",
        "units_minus_sale_lines",
    )
    assert failed.unexpected_values == [3]
    assert failed.sample_rows[0]["sku"] == "P01020" and failed.sample_rows[0]["sale_line_units"] == 4


@pytest.mark.parametrize("measure", ["units", "revenue"])
def test_more_undone_than_sold_is_reported(con, measure) -> None:
    con.execute(
        f"UPDATE marts.fct_daily_sku_demand SET {measure}_reversed_same_day = {measure} + 2 "
        "WHERE sku = 'P01020' AND demand_date = ?",
        [D2],
    )
    failed = _only_failure(
        validate_partition(con, "fct_daily_sku_demand", D2, D2),
        "expect_column_values_to_be_between",
        f"{measure}_not_reversed",
    )
    assert failed.unexpected_values == [-2]
    row = failed.sample_rows[0]
    assert row["sku"] == "P01020" and row[f"{measure}_reversed_same_day"] == pytest.approx(row[measure] + 2)


def test_no_suite_judges_volume_and_a_day_loaded_again_fails_on_its_key(con) -> None:
    """Volume has one rule, the Dagster check no_day_over_day_volume_drop (ml.quality.reconcile); GX suites
    judge rows and columns only, so a day loaded again is caught by its key."""
    table_level = {
        e.expectation_type
        for spec in SUITES.values()
        for e in spec.expectations()
        if e.expectation_type.startswith("expect_table_")
    }
    assert table_level == set()
    for _ in range(2):
        con.execute("INSERT INTO raw.inventory SELECT * FROM raw.inventory WHERE _landing_date = ?", [D4])
    failed = _only_failure(
        validate_partition(con, "raw_inventory", D4, D4),
        "expect_compound_columns_to_be_unique",
        "sku, warehouse_id, snapshot_ts",
    )
    # the day's two rows, each now four times: every row is a duplicate
    assert failed.unexpected_count == 8 == fetch_slice(con, "raw_inventory", D4, D4).shape[0]


def test_pii_must_be_hashed_in_the_marts(con) -> None:
    con.execute(
        "UPDATE marts.dim_customers SET email_hash = 'c01020@example.com' WHERE customer_id = 'C01020'"
    )
    failed = _only_failure(
        validate_partition(con, "dim_customers", D2, D2), "expect_column_values_to_match_regex", "email_hash"
    )
    assert failed.sample_rows[0]["customer_id"] == "C01020"


def test_a_missing_column_fails_with_the_error(con) -> None:
    con.execute("ALTER TABLE marts.fct_events DROP COLUMN placement")
    outcome = validate_partition(con, "fct_events", D2, D2)
    failed = _only_failure(outcome, "expect_column_values_to_be_in_set", "placement")
    assert failed.exception and "placement" in failed.exception


# ---------------------------------------------------------------------------------------------------------
# Only the window is validated


def test_bad_rows_outside_the_window_do_not_fail_the_check(con) -> None:
    con.execute("UPDATE raw.products SET price = -1 WHERE _landing_date = ?", [D1])
    con.execute("UPDATE marts.fct_orders SET status = 'lost' WHERE order_date = ?", [D1])
    con.execute("INSERT INTO raw.events SELECT * FROM raw.events WHERE _landing_date = ?", [D3])
    for suite in ("raw_products", "fct_orders", "raw_events"):
        assert validate_partition(con, suite, D2, D2).success, suite
    assert not validate_partition(con, "raw_products", D1, D1).success
    assert not validate_partition(con, "fct_orders", D1, D1).success
    assert not validate_partition(con, "raw_events", D3, D3).success
    # The slice itself holds only the window's rows.
    assert set(fetch_slice(con, "raw_events", D2, D2)["_landing_date"].dt.date) == {D2}


# ---------------------------------------------------------------------------------------------------------
# Data Docs


def test_data_docs_are_written_under_the_given_dir(con, tmp_path: Path) -> None:
    con.execute("UPDATE marts.fct_events SET event_type = 'click' WHERE event_id = 'E010205'")
    docs = tmp_path / "gx_docs"
    outcome = validate_partition(con, "fct_events", D2, D2, docs_dir=docs)
    assert not outcome.success
    page = Path(outcome.docs_path)
    assert page.suffix == ".html" and page.is_file() and docs.resolve() in page.resolve().parents
    assert "2025-01-02" in page.parts  # the run is named after the partition
    html = page.read_text()
    assert "fct_events" in html and "click" in html
    assert (docs / "index.html").is_file()
    assert outcome.failed[0].expectation == "expect_column_values_to_be_in_set"


def test_the_in_memory_result_store_is_bounded(con) -> None:
    from expectations import runner

    for _ in range(3):
        validate_partition(con, "raw_promotions", D2, D2)
    store = runner._gx_state().context.validation_results_store
    assert len(store.list_keys()) >= 3
    runner._prune_results(runner._gx_state(), keep=2)
    assert len(store.list_keys()) == 2


def test_the_data_docs_index_lists_only_the_latest_validations(con, tmp_path: Path, monkeypatch) -> None:
    """GX rebuilds the index after every validation from every result in memory; it lists the latest few, while
    every validation keeps its own page."""
    from expectations import runner

    monkeypatch.setattr(runner, "_INDEX_RESULTS", 2)
    docs = tmp_path / "gx_docs"
    pages = [
        Path(validate_partition(con, "raw_promotions", D2, D2, docs_dir=docs).docs_path) for _ in range(3)
    ]
    assert all(page.is_file() for page in pages) and len(set(pages)) == 3
    index = (docs / "index.html").read_text()
    listed = [page for page in pages if page.relative_to(docs.resolve()).as_posix() in index]
    assert listed == pages[1:]  # the two latest
