"""The Great Expectations suites, as code: one per raw table and one per key mart.

Each :class:`SuiteSpec` says which table it guards, which date column selects a partition's slice, whether a
failure blocks downstream assets (the marts that feed model training do), and how to build its expectations.
Every suite gets two generic rules from its spec, and its own rules from a small builder function:

* the key is not null and unique (``expect_column_values_to_be_unique`` for one column,
  ``expect_compound_columns_to_be_unique`` for several);
* the business timestamp is not null and lies inside the partition window, ``[first day - late_days, last day + 1 day)``: raw
  tables accept rows up to ``late_days`` late (the lookback that dbt re-reads), marts none.

Bounds that depend on the partition are GX suite parameters (``{"$PARAMETER": name}``), filled in at run time by
the runner (:data:`PARAM_TS_MIN`, :data:`PARAM_TS_MAX`), so a suite is built once per process and its Data Docs
page shows the concrete bounds of each run.

Cross-column and cross-table rules are computed in the SQL that fetches the slice (``slice_sql``) and checked as
an ordinary column, e.g. ``units_minus_sale_lines`` = a day's demand minus the units of that day's sale lines,
expected to be zero.

What is not here, because it has one home elsewhere (docs/quality.md, "Where each rule lives"): row rules are the
raw loader's (quarantine); the order-total invariant of the marts is the dbt test
``assert_order_total_matches_lines``; volume is judged by one rule, :func:`ml.quality.reconcile.volume_vs_recent`
(the same weekday's median), in the Dagster check ``no_day_over_day_volume_drop``.

Great Expectations is imported only inside the builder functions: importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml.sources.schema import (
    CHANNELS,
    CURRENCY_CODE_PATTERN,
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

# Every accepted set and every limit comes from the landing contract (ml.sources.schema), the one home of the
# platform's vocabularies and limits: the raw loader, dbt's tests and the simulator read the same values.

SHA256_HEX = r"^[0-9a-f]{64}$"
"""How PII leaves the raw layer: a sha256 hex digest (dbt's ``pii_hash`` macro)."""

PARAM_TS_MIN = "window_ts_min"
PARAM_TS_MAX = "window_ts_max"


def _param(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    """``schema.table`` the suite guards."""
    date_column: str
    """Rows whose ``date_column`` lies in ``[first day, last day]`` of the window form the partition's slice."""
    blocking: bool
    """A failure stops the partition's downstream assets (suites guarding model training)."""
    key: tuple[str, ...]
    time_column: str | None
    """Business timestamp that must lie inside the window (allowing ``late_days`` before it)."""
    late_days: int = 0
    rules: Callable[[], list[Any]] = field(default=lambda: [], repr=False)
    """Table-specific expectations (GX expectation objects), built lazily."""
    slice_sql: str | None = None
    """Custom SQL for the slice, with ``$window_start``/``$window_end`` parameters (dates, inclusive)."""
    description: str = ""

    def sql(self) -> str:
        """The SQL that fetches the partition's slice; parameters ``$window_start`` and ``$window_end``."""
        if self.slice_sql is not None:
            return self.slice_sql
        return f"SELECT * FROM {self.table} WHERE {self.date_column} BETWEEN $window_start AND $window_end"

    def expectations(self) -> list[Any]:
        """All expectations of the suite: key, time window, then the table's own rules."""
        import great_expectations.expectations as gxe

        out: list[Any] = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in self.key]
        if len(self.key) == 1:
            out.append(gxe.ExpectColumnValuesToBeUnique(column=self.key[0]))
        else:
            out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(self.key)))
        if self.time_column:
            # "Between" skips nulls, so a missing timestamp needs its own rule.
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=self.time_column))
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=self.time_column,
                    min_value=_param(PARAM_TS_MIN),
                    max_value=_param(PARAM_TS_MAX),
                    strict_max=True,
                )
            )
        return out + self.rules()


# ---------------------------------------------------------------------------------------------------------
# Table-specific rules. Column map expectations ignore nulls, so "in set" and "between" rules say nothing
# about missing values; required columns get their own not-null rule.


def _not_null(*columns: str) -> list[Any]:
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def _in_set(column: str, values: Sequence[str]) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values))


def _between(column: str, lo: float | None = None, hi: float | None = None, **kwargs: Any) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=lo, max_value=hi, **kwargs)


def _regex(column: str, pattern: str) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToMatchRegex(column=column, regex=pattern)


def _raw_customers() -> list[Any]:
    return [_in_set("preferred_device", DEVICES)]


def _raw_products() -> list[Any]:
    return [
        _between("price", 0, None, strict_min=True),
        _between("lead_time_days", 0, MAX_LEAD_TIME_DAYS),
        _regex("currency", CURRENCY_CODE_PATTERN),
    ]


def _raw_suppliers() -> list[Any]:
    return [_between("lead_time_days", 0, MAX_LEAD_TIME_DAYS), _between("min_order_qty", 1, None)]


def _raw_warehouses() -> list[Any]:
    return [_between("daily_capacity_units", 1, None)]


def _raw_shipping_lanes() -> list[Any]:
    return [
        _between("delivery_days", 1, MAX_LEAD_TIME_DAYS),
        _between("promise_days", 1, MAX_LEAD_TIME_DAYS),
        _between("cost_per_order", 0, None),
        _between("cost_per_unit", 0, None),
        _between("bulk_cost_per_unit", 0, None),
    ]


def _raw_events() -> list[Any]:
    return [
        *_not_null("customer_id", "session_id", "sku", "event_type"),
        _in_set("event_type", EVENT_TYPES),
        _in_set("channel", CHANNELS),
        _in_set("placement", PLACEMENTS),
        _in_set("device", DEVICES),
    ]


def _raw_orders() -> list[Any]:
    return [
        _in_set("status", ORDER_STATUSES),
        _in_set("channel", CHANNELS),
        _regex("currency", CURRENCY_CODE_PATTERN),
    ]


def _raw_order_items() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        *_not_null("sku", "qty", "unit_price"),
        # Negative quantities are cancellations (kept); zero or absurd ones are not.
        gxe.ExpectColumnValuesToNotBeInSet(column="qty", value_set=[0]),
        _between("qty", -MAX_ABS_QUANTITY, MAX_ABS_QUANTITY),
        # Zero prices occur in real data (samples, fees) and become 'adjustment' lines downstream.
        _between("unit_price", 0, None),
        _between("discount", 0, 1),
    ]


def _raw_inventory() -> list[Any]:
    return [_between("on_hand", 0, None), _between("on_order", 0, None)]


def _raw_promotions() -> list[Any]:
    return [_between("discount_pct", 0, 1, strict_min=True), _in_set("channel", PROMO_CHANNELS)]


def _raw_impressions() -> list[Any]:
    return [
        *_not_null("customer_id", "session_id", "sku", "list_id", "arm"),
        _in_set("placement", PLACEMENTS),
        _in_set("arm", EXPERIMENT_ARMS),
        _between("rank", 1, None),
    ]


def _raw_lost_sales() -> list[Any]:
    return [
        *_not_null("sku", "warehouse_id", "qty", "reason"),
        _between("qty", 1, MAX_ABS_QUANTITY),
        _in_set("reason", LOST_SALE_REASONS),
    ]


def _raw_message_events() -> list[Any]:
    return [
        *_not_null("message_id", "customer_id", "event_type", "channel"),
        _in_set("event_type", MESSAGE_EVENT_TYPES),
        _in_set("channel", MESSAGE_CHANNELS),
    ]


def _fct_orders() -> list[Any]:
    return [
        _in_set("status", ORDER_STATUSES),
        _in_set("channel", CHANNELS),
        _regex("currency", CURRENCY_CODE_PATTERN),
        _between("units", 0, None),
    ]


def _fct_order_items() -> list[Any]:
    return [
        *_not_null("sku", "qty", "unit_price", "line_type"),
        _in_set("line_type", LINE_TYPES),
        # After cleaning: a sale line has a positive quantity and a positive price.
        _between("qty", 1, MAX_ABS_QUANTITY, row_condition="is_sale == True", condition_parser="pandas"),
        _between(
            "unit_price", 0, None, strict_min=True, row_condition="is_sale == True", condition_parser="pandas"
        ),
        _between("qty", -MAX_ABS_QUANTITY, MAX_ABS_QUANTITY),
        _between("discount", 0, 1),
    ]


def _fct_events() -> list[Any]:
    return [
        *_not_null("customer_id", "session_id", "sku"),
        _in_set("event_type", EVENT_TYPES),
        _in_set("channel", CHANNELS),
        _in_set("placement", PLACEMENTS),
        _in_set("device", DEVICES),
    ]


def _fct_daily_sku_demand() -> list[Any]:
    return [
        *_not_null("units", "revenue"),
        _between("units", 0, None),
        # A day that was not zero-filled had a sale: at least one unit.
        _between("units", 1, None, row_condition="is_zero_filled == False", condition_parser="pandas"),
        _between("revenue", 0, None),
        _between("n_orders", 0, None),
        # Reconciliation with the order lines of the same day: demand = units of sale lines.
        _between("units_minus_sale_lines", 0, 0),
        # Sales undone the same day are a part of units, never more.
        _between("units_reversed_same_day", 0, None),
        _between("units_not_reversed", 0, None),
        _between("revenue_reversed_same_day", 0, None),
        _between("revenue_not_reversed", 0, None),
    ]


def _dim_products() -> list[Any]:
    return [
        _between("price", 0, None, strict_min=True),
        _between("lead_time_days", 0, MAX_LEAD_TIME_DAYS),
        _between("min_order_qty", 1, None),
        _regex("currency", CURRENCY_CODE_PATTERN),
    ]


def _dim_customers() -> list[Any]:
    # PII leaves the raw layer only as a sha256 hex digest.
    return [
        _regex("email_hash", SHA256_HEX),
        _regex("phone_hash", SHA256_HEX),
        _in_set("preferred_device", DEVICES),
    ]


# A slice with columns computed from other rows: a day's demand against that day's sale lines.
_FCT_DAILY_SKU_DEMAND_SQL = """
SELECT d.*, CAST(coalesce(s.sale_units, 0) AS BIGINT) AS sale_line_units,
       CAST(d.units - coalesce(s.sale_units, 0) AS BIGINT) AS units_minus_sale_lines,
       CAST(d.units - d.units_reversed_same_day AS BIGINT) AS units_not_reversed,
       round(CAST(d.revenue - d.revenue_reversed_same_day AS DOUBLE), 4) AS revenue_not_reversed
FROM marts.fct_daily_sku_demand AS d
LEFT JOIN (
    SELECT sku, order_date, sum(qty) AS sale_units
    FROM marts.fct_order_items
    WHERE is_sale AND order_date BETWEEN $window_start AND $window_end
    GROUP BY sku, order_date
) AS s ON d.sku = s.sku AND d.demand_date = s.order_date
WHERE d.demand_date BETWEEN $window_start AND $window_end
"""


def _raw(
    table: str,
    key: tuple[str, ...],
    time_column: str,
    rules: Callable[[], list[Any]],
    description: str,
) -> SuiteSpec:
    return SuiteSpec(
        name=f"raw_{table}",
        table=f"raw.{table}",
        date_column="_landing_date",
        blocking=False,
        key=key,
        time_column=time_column,
        # Raw rows may be as late as the contract tolerates (the lookback dbt re-reads), no later.
        late_days=LATE_ROW_TOLERANCE_DAYS,
        rules=rules,
        description=description,
    )


SUITES: dict[str, SuiteSpec] = {
    s.name: s
    for s in [
        _raw(
            "customers",
            ("customer_id",),
            "first_seen_ts",
            _raw_customers,
            "Sign-ups of the landing day.",
        ),
        _raw("products", ("sku",), "first_seen_ts", _raw_products, "New listings: price > 0."),
        _raw("suppliers", ("supplier_id",), "first_seen_ts", _raw_suppliers, "New suppliers."),
        _raw(
            "warehouses",
            ("warehouse_id",),
            "first_seen_ts",
            _raw_warehouses,
            "New warehouses: capacity >= 1 unit a day.",
        ),
        _raw(
            "shipping_lanes",
            ("warehouse_id", "region"),
            "first_seen_ts",
            _raw_shipping_lanes,
            "New carrier lanes: delivery and promise days >= 1, costs >= 0.",
        ),
        _raw("events", ("event_id",), "ts", _raw_events, "Clickstream: accepted event types, channels."),
        _raw(
            "orders",
            ("order_id",),
            "ts",
            _raw_orders,
            "Order headers: known status and channel, currency code.",
        ),
        _raw(
            "order_items",
            ("order_id", "line_no"),
            "ts",
            _raw_order_items,
            "Order lines: quantity non-zero and not absurd, price >= 0, discount in [0, 1].",
        ),
        _raw(
            "inventory",
            ("sku", "warehouse_id", "snapshot_ts"),
            "snapshot_ts",
            _raw_inventory,
            "End-of-day stock: non-negative.",
        ),
        _raw(
            "promotions",
            ("promo_id", "active_ts"),
            "active_ts",
            _raw_promotions,
            "Active promotions: discount in (0, 1], known channel.",
        ),
        _raw(
            "impressions",
            ("impression_id",),
            "ts",
            _raw_impressions,
            "Served-list impressions (closed-loop shop): placement, rank >= 1, experiment arm.",
        ),
        _raw(
            "lost_sales",
            ("lost_id",),
            "ts",
            _raw_lost_sales,
            "Unserved demand (closed-loop shop): units in [1, bound], known reason.",
        ),
        _raw(
            "message_events",
            ("event_id",),
            "ts",
            _raw_message_events,
            "Message events (closed-loop shop): known event type and channel.",
        ),
        SuiteSpec(
            name="fct_orders",
            table="marts.fct_orders",
            date_column="order_date",
            blocking=True,
            key=("order_id",),
            time_column="order_ts",
            rules=_fct_orders,
            description="Orders: known status and channel, currency code, units >= 0.",
        ),
        SuiteSpec(
            name="fct_order_items",
            table="marts.fct_order_items",
            date_column="order_date",
            blocking=True,
            key=("order_id", "line_no"),
            time_column="order_ts",
            rules=_fct_order_items,
            description="Order lines: sale lines have quantity > 0 and price > 0.",
        ),
        SuiteSpec(
            name="fct_events",
            table="marts.fct_events",
            date_column="event_date",
            blocking=True,
            key=("event_id",),
            time_column="event_ts",
            rules=_fct_events,
            description="Clickstream fact: accepted event types, channels, placements, devices.",
        ),
        SuiteSpec(
            name="fct_daily_sku_demand",
            table="marts.fct_daily_sku_demand",
            date_column="demand_date",
            blocking=True,
            key=("sku", "demand_date"),
            time_column=None,
            rules=_fct_daily_sku_demand,
            slice_sql=_FCT_DAILY_SKU_DEMAND_SQL,
            description="Daily demand: units >= 0 and equal to the day's sale lines.",
        ),
        SuiteSpec(
            name="dim_products",
            table="marts.dim_products",
            date_column="first_seen_date",
            blocking=False,
            key=("sku",),
            time_column="first_seen_ts",
            rules=_dim_products,
            description="Products first seen in the window: price > 0, sane lead times.",
        ),
        SuiteSpec(
            name="dim_customers",
            table="marts.dim_customers",
            date_column="first_seen_date",
            blocking=False,
            key=("customer_id",),
            time_column="first_seen_ts",
            rules=_dim_customers,
            description="Customers first seen in the window: PII only as sha256 hashes.",
        ),
    ]
}
