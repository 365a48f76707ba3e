"""The landing-zone contract: which tables a source may deliver and the columns each must have.

This is the boundary between the world and the platform. Sources write exactly these columns (in this order,
with these Arrow types) and the raw loader checks every file against the same contract, so a change here is a
change for both sides.

Timestamps are timezone-aware instants (Arrow ``timestamp[us, tz=...]``); staging standardises them to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


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
            non_negative=("price", "lead_time_days"),
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
    ]
}

TABLES: tuple[str, ...] = tuple(CONTRACTS)
