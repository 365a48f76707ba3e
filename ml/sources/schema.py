"""The landing-zone contract: which tables a source may deliver and the columns each must have.

This is the boundary between the world and the platform. Sources write exactly these columns (in this order,
with these Arrow types) and the raw loader checks every file against the same contract, so a change here is a
change for both sides.

It is also the one home of the platform's data rules that are values: the closed vocabularies (event types,
channels, placements, devices, order statuses, the marts' line types) and the numeric limits (the quantity
bound, the lead-time bound, the late-row tolerance, the order-total tolerance). Everything that checks or
produces these values reads them from here: the raw loader (quarantine), the Great Expectations suites
(``expectations/suites.py``), the dbt tests (through ``dbt_project/macros/contract_vocabularies.sql``, generated
from this module by ``python -m ml.sources.dbt_macros``), the store simulator and its dirt.

Timestamps are timezone-aware instants (Arrow ``timestamp[us, tz=...]``); staging standardises them to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

# -- Closed vocabularies ---------------------------------------------------------------------------------------
# The simulator indexes EVENT_TYPES, SHOP_CHANNELS, PLACEMENTS, DEVICES and ORDER_STATUSES by position (its
# probability tables follow this order, and its days must stay byte-identical): add values at the end.

EVENT_TYPES: tuple[str, ...] = ("view", "cart", "purchase")
"""What a clickstream event records, in funnel order. Quarantined at load when outside the set."""

SHOP_CHANNELS: tuple[str, ...] = ("app", "web", "email", "paid_search", "social")
"""The channels of a shop with an app, a website, mailings, search ads and social media: the simulated store's."""

ONLINE_RETAIL_CHANNEL = "online"
"""The one channel of the Online Retail replay (a web shop whose files do not say how a customer arrived)."""

CHANNELS: tuple[str, ...] = (*SHOP_CHANNELS, ONLINE_RETAIL_CHANNEL)
"""Every channel an event or order may carry."""

ALL_CHANNELS = "all"
"""A promotion's channel when it runs on every channel."""

PROMO_CHANNELS: tuple[str, ...] = (*CHANNELS, ALL_CHANNELS)

PLACEMENTS: tuple[str, ...] = (
    "home",
    "search",
    "category",
    "recommendation",
    "promo_banner",
    "cart",
    "for_you",
    "message",
    "category_page",
)
"""Where on the site or app an event happens (checkouts happen on ``cart``). ``for_you`` is the "recommended for
you" placement that shows the list the platform served the customer (``recommendation`` is the shop's own
widgets); ``message`` is a visit that a platform message's link opened; ``category_page`` is the product grid of a
category page in the ordering of the customer's arm of the category-page experiment (``category`` is every other
view while browsing a category). Only the closed-loop shop front has these three."""

MESSAGE_EVENT_TYPES: tuple[str, ...] = ("delivered", "opened", "clicked", "unsubscribed")
"""What the shop reports of a message it sent, in funnel order (``unsubscribed``: the customer opted out)."""

MESSAGE_CHANNELS: tuple[str, ...] = ("email", "push")
"""How a message reaches a customer."""

EXPERIMENT_ARMS: tuple[str, ...] = ("treatment", "control")
"""Who sees what the platform's models serve (``treatment``) and who sees the popularity list (``control``, a fixed
hashed share of customers): recorded with every exposure so uplift is measured inside the same days."""

LOST_SALE_REASONS: tuple[str, ...] = ("out_of_stock", "sold_out")
"""Why demand went unserved: the item was out of stock when the customer would have added it to the cart
(``out_of_stock``), or the day's stock ran out before the customer's checkout (``sold_out``)."""

DEVICES: tuple[str, ...] = ("app", "web_mobile", "desktop")

ORDER_STATUSES: tuple[str, ...] = ("placed", "cancelled")
"""An order header's status. Quarantined at load when outside the set."""

LINE_TYPES: tuple[str, ...] = ("sale", "return", "adjustment")
"""How the marts classify an order line (dbt ``int_order_lines``): ``sale`` (quantity > 0, price > 0, order not
cancelled: the demand forecasts learn from), ``return`` (quantity < 0), ``adjustment`` (anything else). A marts
vocabulary, not a landing column; it lives here so that every vocabulary has one home."""

PRICE_BANDS: tuple[str, ...] = ("low", "mid", "high")
"""A product's price band in the feature layer: the tercile of its list price within its category."""

PREFERENCE_DIMENSIONS: tuple[str, ...] = ("category", "brand", "price_band", "channel", "placement", "hour")
"""What a customer's interests are weighed by in the feature layer (``features.customer_day_pref``)."""

LIFECYCLE_STAGES: tuple[str, ...] = ("new", "loyal", "active", "at_risk", "churned")
"""A customer's lifecycle stage in the feature layer (``features.customer_windows``, rules in its column docs)."""

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "event_types": EVENT_TYPES,
    "channels": CHANNELS,
    "promo_channels": PROMO_CHANNELS,
    "placements": PLACEMENTS,
    "experiment_arms": EXPERIMENT_ARMS,
    "lost_sale_reasons": LOST_SALE_REASONS,
    "devices": DEVICES,
    "order_statuses": ORDER_STATUSES,
    "line_types": LINE_TYPES,
    "price_bands": PRICE_BANDS,
    "preference_dimensions": PREFERENCE_DIMENSIONS,
    "lifecycle_stages": LIFECYCLE_STAGES,
    "message_event_types": MESSAGE_EVENT_TYPES,
    "message_channels": MESSAGE_CHANNELS,
}
"""Every closed vocabulary by name: the names the dbt test ``accepted_contract_values`` takes."""

# -- Limits --------------------------------------------------------------------------------------------------------

LATE_ROW_TOLERANCE_DAYS = 3
"""How many days late a fact row may land (its time before its landing day). dbt rebuilds this many days
before each partition (the lookback), so a late row within the tolerance is picked up and counted once; an
older one is quarantined as ``stale_ts`` instead of being loaded where no model would ever read it. The raw
Great Expectations suites accept rows this late and no later."""

MAX_ABS_QUANTITY = 100_000
"""Largest credible quantity on one order line or stock position; a larger magnitude is quarantined at load
(``out_of_range``) and fails the Great Expectations suites. The real data's largest line is 80,995 units (and
its cancellation, -80,995), so the bound keeps about 20% headroom above anything real while a quantity off by a
factor of ten or more (units for grams, a digit too many) is stopped before it reaches the forecasts."""

MAX_LEAD_TIME_DAYS = 365
"""Longest credible supplier lead time. Checked by the Great Expectations suites on products and suppliers
(warn); not a quarantine rule, since quarantining a product would take its order lines with it."""

ORDER_TOTAL_TOLERANCE = 0.011
"""An order's total may differ from the sum of its lines (each rounded to the cent, discount applied) by at
most a cent, plus float noise. Used by the raw loader's ``order_total_mismatch`` rule and by the dbt test
``assert_order_total_matches_lines``."""

CURRENCY_CODE_PATTERN = r"^[A-Z]{3}$"
"""An ISO 4217 currency code, as staging writes it (upper case)."""

LIMITS: dict[str, int | float] = {
    "late_row_tolerance_days": LATE_ROW_TOLERANCE_DAYS,
    "max_abs_quantity": MAX_ABS_QUANTITY,
    "max_lead_time_days": MAX_LEAD_TIME_DAYS,
    "order_total_tolerance": ORDER_TOTAL_TOLERANCE,
}
"""The numeric limits by name: the names dbt's ``contract_limit()`` macro takes."""


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: dict[str, pa.DataType]
    key: tuple[str, ...]
    """Natural key: unique within the table once deduplicated; no part of it may be null."""
    time_column: str | None
    """The business time of a row; its UTC date is the row's event date (late rows keep their own date)."""
    required: tuple[str, ...] = field(default=())
    """Columns besides the key that must not be null (a null sends the row to quarantine)."""
    non_negative: tuple[str, ...] = field(default=())
    """Numeric columns that must be finite and >= 0."""
    positive: tuple[str, ...] = field(default=())
    """Numeric columns that must be > 0 (a zero list price is a data error, not a free product)."""
    max_abs: tuple[tuple[str, float], ...] = field(default=())
    """(column, bound): values with a larger magnitude are not credible and are quarantined."""
    accepted: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    """(column, allowed values) for closed vocabularies; a null is allowed unless the column is required."""
    references: tuple[tuple[str, str, str], ...] = field(default=())
    """(column, table, column): a non-null value must exist in that raw table, landed on or before the row's
    landing day (so a daily run and a backfill of the same days decide alike)."""
    late_tolerance_days: int | None = None
    """For fact tables: the time column must fall on the landing day or at most this many days before it."""
    description: str = ""

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, dtype) for name, dtype in self.columns.items()])


CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in [
        TableContract(
            name="customers",
            columns={
                "customer_id": pa.string(),
                "first_seen_ts": TS,
                "email": pa.string(),
                "phone": pa.string(),
                "region": pa.string(),
                "country": pa.string(),
                "preferred_device": pa.string(),
            },
            key=("customer_id",),
            time_column="first_seen_ts",
            description="Customers first seen on the day (sign-ups). Email and phone are PII.",
        ),
        TableContract(
            name="products",
            columns={
                "sku": pa.string(),
                "title": pa.string(),
                "description": pa.string(),
                "category": pa.string(),
                "brand": pa.string(),
                "price": pa.float64(),
                "currency": pa.string(),
                "supplier_id": pa.string(),
                "alt_supplier_id": pa.string(),
                "lead_time_days": pa.int32(),
                "first_seen_ts": TS,
            },
            key=("sku",),
            time_column="first_seen_ts",
            non_negative=("lead_time_days",),
            positive=("price",),
            description="Products first listed on the day, with list price and primary/alternate supplier.",
        ),
        TableContract(
            name="suppliers",
            columns={
                "supplier_id": pa.string(),
                "name": pa.string(),
                "country": pa.string(),
                "lead_time_days": pa.int32(),
                "min_order_qty": pa.int32(),
                "first_seen_ts": TS,
            },
            key=("supplier_id",),
            time_column="first_seen_ts",
            non_negative=("lead_time_days", "min_order_qty"),
            description="Suppliers onboarded on the day, with their nominal lead time.",
        ),
        TableContract(
            name="warehouses",
            columns={
                "warehouse_id": pa.string(),
                "site_region": pa.string(),
                "daily_capacity_units": pa.int64(),
                "first_seen_ts": TS,
            },
            key=("warehouse_id",),
            time_column="first_seen_ts",
            required=("site_region", "daily_capacity_units"),
            positive=("daily_capacity_units",),
            description="Warehouses opened on the day: the region they sit in and the units they can dispatch a day.",
        ),
        TableContract(
            name="shipping_lanes",
            columns={
                "warehouse_id": pa.string(),
                "region": pa.string(),
                "road_km": pa.float64(),
                "delivery_days": pa.int32(),
                "promise_days": pa.int32(),
                "cost_per_order": pa.float64(),
                "cost_per_unit": pa.float64(),
                "bulk_cost_per_unit": pa.float64(),
                "first_seen_ts": TS,
            },
            key=("warehouse_id", "region"),
            time_column="first_seen_ts",
            required=(
                "delivery_days",
                "promise_days",
                "cost_per_order",
                "cost_per_unit",
                "bulk_cost_per_unit",
            ),
            non_negative=("road_km", "cost_per_order", "cost_per_unit", "bulk_cost_per_unit"),
            positive=("delivery_days", "promise_days"),
            references=(("warehouse_id", "warehouses", "warehouse_id"),),
            description=(
                "Carrier lanes from a warehouse to a customer region, contracted on the day: days a parcel takes, "
                "the promise shown at checkout, cost per parcel and per unit, and the per-unit cost of moving "
                "stock in bulk on the lane (transfers to a warehouse in that region)."
            ),
        ),
        TableContract(
            name="events",
            columns={
                "event_id": pa.string(),
                "ts": TS,
                "customer_id": pa.string(),
                "session_id": pa.string(),
                "sku": pa.string(),
                "event_type": pa.string(),
                "channel": pa.string(),
                "placement": pa.string(),
                "region": pa.string(),
                "device": pa.string(),
            },
            key=("event_id",),
            time_column="ts",
            required=("ts", "customer_id", "session_id", "sku", "event_type"),
            accepted=(("event_type", EVENT_TYPES),),
            references=(("customer_id", "customers", "customer_id"), ("sku", "products", "sku")),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description="Clickstream: view, cart and purchase events with channel, placement, region and device.",
        ),
        TableContract(
            name="orders",
            columns={
                "order_id": pa.string(),
                "ts": TS,
                "customer_id": pa.string(),
                "session_id": pa.string(),
                "channel": pa.string(),
                "region": pa.string(),
                "country": pa.string(),
                "currency": pa.string(),
                "order_total": pa.float64(),
                "status": pa.string(),
            },
            key=("order_id",),
            time_column="ts",
            required=("ts",),
            accepted=(("status", ORDER_STATUSES),),
            references=(("customer_id", "customers", "customer_id"),),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description="Order headers. customer_id is null for guest checkouts; status is placed or cancelled.",
        ),
        TableContract(
            name="order_items",
            columns={
                "order_id": pa.string(),
                "line_no": pa.int32(),
                "ts": TS,
                "sku": pa.string(),
                "qty": pa.int64(),
                "unit_price": pa.float64(),
                "discount": pa.float64(),
                "warehouse_id": pa.string(),
            },
            key=("order_id", "line_no"),
            time_column="ts",
            required=("ts", "sku", "qty", "unit_price"),
            # Quantities are negative on cancellations; zero prices occur in the real data (free samples) and
            # are classified as adjustments downstream, so only a negative price is an error here.
            non_negative=("unit_price", "discount"),
            max_abs=(("qty", MAX_ABS_QUANTITY),),
            references=(("sku", "products", "sku"),),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description="Order lines: quantity (negative on cancellations), unit list price, discount fraction.",
        ),
        TableContract(
            name="inventory",
            columns={
                "snapshot_ts": TS,
                "sku": pa.string(),
                "warehouse_id": pa.string(),
                "on_hand": pa.int64(),
                "on_order": pa.int64(),
            },
            key=("sku", "warehouse_id", "snapshot_ts"),
            time_column="snapshot_ts",
            non_negative=("on_hand", "on_order"),
            max_abs=(("on_hand", MAX_ABS_QUANTITY), ("on_order", MAX_ABS_QUANTITY)),
            references=(("sku", "products", "sku"),),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description="End-of-day stock per SKU and warehouse.",
        ),
        TableContract(
            name="promotions",
            columns={
                "promo_id": pa.string(),
                "active_ts": TS,
                "category": pa.string(),
                "discount_pct": pa.float64(),
                "channel": pa.string(),
            },
            key=("promo_id", "active_ts"),
            time_column="active_ts",
            non_negative=("discount_pct",),
            description="Promotions active on the day (one row per promotion per day).",
        ),
        TableContract(
            name="impressions",
            columns={
                "impression_id": pa.string(),
                "ts": TS,
                "customer_id": pa.string(),
                "session_id": pa.string(),
                "sku": pa.string(),
                "placement": pa.string(),
                "rank": pa.int32(),
                "list_id": pa.string(),
                "model_version": pa.string(),
                "arm": pa.string(),
            },
            key=("impression_id",),
            time_column="ts",
            required=("ts", "customer_id", "session_id", "sku", "placement", "rank", "list_id", "arm"),
            positive=("rank",),
            accepted=(("placement", PLACEMENTS), ("arm", EXPERIMENT_ARMS)),
            references=(("customer_id", "customers", "customer_id"), ("sku", "products", "sku")),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description=(
                "Items of a served list shown to a customer (closed-loop shop front): placement, rank, list id, "
                "model version and experiment arm. Clicks, carts and purchases are clickstream events of the same "
                "session and SKU."
            ),
        ),
        TableContract(
            name="lost_sales",
            columns={
                "lost_id": pa.string(),
                "ts": TS,
                "customer_id": pa.string(),
                "session_id": pa.string(),
                "sku": pa.string(),
                "warehouse_id": pa.string(),
                "qty": pa.int64(),
                "reason": pa.string(),
            },
            key=("lost_id",),
            time_column="ts",
            required=("ts", "sku", "warehouse_id", "qty", "reason"),
            positive=("qty",),
            max_abs=(("qty", MAX_ABS_QUANTITY),),
            accepted=(("reason", LOST_SALE_REASONS),),
            references=(("sku", "products", "sku"),),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description="Demand the stock could not serve (closed-loop shop front): units a customer would have bought.",
        ),
        TableContract(
            name="message_events",
            columns={
                "event_id": pa.string(),
                "ts": TS,
                "message_id": pa.string(),
                "customer_id": pa.string(),
                "event_type": pa.string(),
                "channel": pa.string(),
                "sku": pa.string(),
                "session_id": pa.string(),
            },
            key=("event_id",),
            time_column="ts",
            required=("ts", "message_id", "customer_id", "event_type", "channel"),
            accepted=(("event_type", MESSAGE_EVENT_TYPES), ("channel", MESSAGE_CHANNELS)),
            references=(("customer_id", "customers", "customer_id"), ("sku", "products", "sku")),
            late_tolerance_days=LATE_ROW_TOLERANCE_DAYS,
            description=(
                "What happened to each platform message the shop sent (closed-loop shop front): delivered, "
                "opened, clicked (the featured SKU and the session the click opened) or unsubscribed. Purchases "
                "of a clicked visit are orders of that session."
            ),
        ),
    ]
}

CLOSED_LOOP_TABLES: tuple[str, ...] = ("impressions", "lost_sales", "message_events")
"""What only a shop that answers the platform delivers."""

OPEN_LOOP_TABLES: tuple[str, ...] = tuple(t for t in CONTRACTS if t not in CLOSED_LOOP_TABLES)
"""What a store that does not answer the platform delivers (the open-loop simulator, the Online Retail replay)."""

TABLES: tuple[str, ...] = tuple(CONTRACTS)
