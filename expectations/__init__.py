"""Great Expectations suites as code, a partition runner, and its conversion into Dagster asset-check results.

Public API (what an asset check calls)::

    from expectations import SUITES, validate_partition, to_asset_check_result

    spec = SUITES["fct_orders"]          # SuiteSpec: table, date_column, blocking, key, time_column, ...
    outcome = validate_partition(con, "fct_orders", first_day, last_day, docs_dir=data_dir / "gx_docs")
    return to_asset_check_result(outcome, asset_key=..., check_name="gx_fct_orders")

* ``SUITES: dict[str, SuiteSpec]``: one suite per raw table (``raw_<table>``, non-blocking) and per key mart
  (``fct_orders``, ``fct_order_items``, ``fct_events``, ``fct_daily_sku_demand``: blocking;
  ``dim_products``, ``dim_customers``: non-blocking). See :mod:`expectations.suites` and ``docs/quality.md``.
* ``validate_partition(con, suite_name, window_start, window_end, docs_dir=None)
  -> ValidationOutcome``: reads only the window's slice from the (read-only) DuckDB connection, validates it
  with one ephemeral GX context per process, optionally builds Data Docs under ``docs_dir``. Windows are
  inclusive dates, or the half-open datetimes of a Dagster ``TimeWindow``.
* ``ValidationOutcome``: ``success``, ``row_count``, ``evaluated``/``successful``/``unsuccessful``,
  ``failed: list[FailedExpectation]`` (expectation, column, rule, observed value or unexpected count/values,
  up to 5 sample failing rows), ``parameters``, ``docs_path``, ``duration_s``.
* ``validate_all(con, window_start, window_end, suites=None, docs_dir=None)``: every suite on one window.
* ``to_asset_check_result(outcome, asset_key=None, check_name=None) -> dagster.AssetCheckResult``: lives in
  :mod:`expectations.dagster_check`, the only module here that imports Dagster (loaded on first use).

Importing this package does not import Great Expectations (seconds to import) or Dagster; the first validation
does.
"""

from __future__ import annotations

from typing import Any

from expectations.runner import (
    FailedExpectation,
    ValidationOutcome,
    fetch_slice,
    validate_all,
    validate_partition,
    window_days,
)
from expectations.suites import SUITES, SuiteSpec

__all__ = [
    "SUITES",
    "FailedExpectation",
    "SuiteSpec",
    "ValidationOutcome",
    "fetch_slice",
    "to_asset_check_result",
    "validate_all",
    "validate_partition",
    "window_days",
]


def __getattr__(name: str) -> Any:
    # Dagster is imported only by whoever converts an outcome into an asset-check result.
    if name == "to_asset_check_result":
        from expectations.dagster_check import to_asset_check_result

        return to_asset_check_result
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
