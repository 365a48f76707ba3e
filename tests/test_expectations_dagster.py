"""The conversion of a validation outcome into a Dagster AssetCheckResult, and a blocking check in a real run."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from expectations import SUITES, FailedExpectation, to_asset_check_result, validate_partition
from tests.warehouses import D2


@pytest.fixture
def con(four_day_shop: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(four_day_shop, copy)
    connection = duckdb.connect(str(copy))
    yield connection
    connection.close()


def test_failed_outcome_becomes_a_failed_check_with_metadata(con, tmp_path: Path) -> None:
    con.execute("UPDATE marts.fct_events SET event_type = 'click' WHERE event_id = 'E010205'")
    con.execute("UPDATE marts.fct_events SET channel = 'carrier_pigeon' WHERE event_id = 'E010201'")
    outcome = validate_partition(con, "fct_events", D2, D2, docs_dir=tmp_path / "docs")
    result = to_asset_check_result(outcome, asset_key=dg.AssetKey(["marts", "fct_events"]))

    assert isinstance(result, dg.AssetCheckResult)
    assert result.passed is False
    assert result.severity == dg.AssetCheckSeverity.ERROR  # fct_events guards training
    assert result.check_name == "gx_fct_events"
    assert result.asset_key == dg.AssetKey(["marts", "fct_events"])
    md = result.metadata
    assert md["rows_validated"].value == 6
    assert md["expectations_failed"].value == 2 == len(outcome.failed)
    assert md["expectations_evaluated"].value == outcome.evaluated
    table = md["failed_expectations"].value
    assert "| expect_column_values_to_be_in_set | event_type |" in table
    assert "1 unexpected row (16.67%); e.g. carrier_pigeon |" in table
    observed = md["observed_values"].value
    assert observed["1. expect_column_values_to_be_in_set (event_type)"]["unexpected_values"] == ["click"]
    assert observed["2. expect_column_values_to_be_in_set (channel)"]["unexpected_count"] == 1
    samples = md["sample_failing_rows"].value
    assert "E010205" in samples and "E010201" in samples and "| event_id |" in samples
    assert md["data_docs"].value == outcome.docs_path and Path(outcome.docs_path).is_file()
    assert md["data_docs_url"].value.startswith("file://") and md["data_docs_url"].value.endswith(".html")
    assert md["window"].value == "2025-01-02"


def test_passed_raw_outcome_is_a_warn_level_check(con) -> None:
    outcome = validate_partition(con, "raw_orders", D2, D2)
    result = to_asset_check_result(outcome, check_name="raw_orders_gx")
    assert result.passed is True
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.check_name == "raw_orders_gx"
    assert result.metadata["failed_expectations"].value == "All expectations passed."
    assert result.metadata["success_percent"].value == 100.0
    assert "data_docs" not in result.metadata


def test_a_failing_blocking_check_stops_the_downstream_asset(four_day_shop: Path, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(four_day_shop, path)
    with duckdb.connect(str(path)) as writer:
        writer.execute("UPDATE marts.fct_orders SET status = 'lost' WHERE order_id = 'O01020'")

    @dg.asset(key=["marts", "fct_orders"])
    def fct_orders() -> None:
        return None

    @dg.asset_check(asset=fct_orders, name="gx_fct_orders", blocking=SUITES["fct_orders"].blocking)
    def gx_fct_orders() -> dg.AssetCheckResult:
        with duckdb.connect(str(path), read_only=True) as reader:
            return to_asset_check_result(validate_partition(reader, "fct_orders", D2, D2))

    @dg.asset(deps=[fct_orders])
    def training_set() -> None:
        return None

    result = dg.materialize([fct_orders, gx_fct_orders, training_set], raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "expect_column_values_to_be_in_set | status" in evaluation.metadata["failed_expectations"].value
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert dg.AssetKey(["marts", "fct_orders"]) in materialized
    assert dg.AssetKey("training_set") not in materialized

    # Repaired data: the same graph runs through.
    with duckdb.connect(str(path)) as writer:
        writer.execute("UPDATE marts.fct_orders SET status = 'placed' WHERE order_id = 'O01020'")
    result = dg.materialize([fct_orders, gx_fct_orders, training_set])
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is True
    assert dg.AssetKey("training_set") in {m.asset_key for m in result.get_asset_materialization_events()}


def test_a_table_level_failure_shows_its_observed_value(con) -> None:
    """A table-level rule (none of the suites has one; volume is judged elsewhere) reports what it observed."""
    outcome = validate_partition(con, "raw_orders", D2, D2)
    outcome.success = False
    outcome.failed = [
        FailedExpectation(
            expectation="expect_table_row_count_to_be_between",
            column=None,
            rule={"min_value": 30, "max_value": 120},
            observed_value=6,
        )
    ]
    result = to_asset_check_result(outcome)
    assert result.passed is False and result.severity == dg.AssetCheckSeverity.WARN
    table = result.metadata["failed_expectations"].value
    assert (
        "| expect_table_row_count_to_be_between | (table) | min_value=30, max_value=120 | observed 6 |"
        in table
    )
    observed = result.metadata["observed_values"].value["1. expect_table_row_count_to_be_between"]
    assert observed["observed_value"] == 6 and observed["rule"] == {"min_value": 30, "max_value": 120}
    assert result.metadata["sample_failing_rows"].value == "No failing rows."
