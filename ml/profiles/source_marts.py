"""Mart-shaped tables straight from a source's day tables, bypassing the landing zone and dbt.

For tests and benchmarks only: the profile builders read the ``marts`` schema that dbt builds in the real
pipeline; this module fills the same tables (the columns the profile builders read, with the same names,
meanings and line classification as ``int_order_lines``) from :meth:`ml.sources.Source.day_tables`, so a test
can run on the simulator or the Online Retail replay in seconds without Dagster or dbt.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

import duckdb

from ml.sources import Source

log = logging.getLogger(__name__)

_DDL = {
    "dim_customers": """customer_id varchar, first_seen_ts timestamp, first_seen_date date, region varchar,
        country varchar, preferred_device varchar""",
    "dim_products": """sku varchar, title varchar, description varchar, category varchar, brand varchar,
        price double, first_seen_ts timestamp, first_seen_date date""",
    "fct_events": """event_id varchar, event_ts timestamp, event_date date, customer_id varchar,
        session_id varchar, sku varchar, event_type varchar, channel varchar, placement varchar, region varchar,
        device varchar""",
    "fct_orders": """order_id varchar, order_ts timestamp, order_date date, customer_id varchar,
        session_id varchar, channel varchar, region varchar, country varchar, status varchar,
        is_cancelled boolean, is_guest boolean, line_net_amount decimal(18, 2)""",
    "fct_order_items": """order_id varchar, line_no integer, order_ts timestamp, order_date date,
        customer_id varchar, channel varchar, region varchar, sku varchar, qty bigint, unit_price double,
        discount double, net_amount decimal(18, 2), warehouse_id varchar, line_type varchar, is_sale boolean""",
    "fct_inventory_daily": """sku varchar, warehouse_id varchar, snapshot_date date, on_hand bigint,
        on_order bigint, is_stockout boolean""",
}


def create_mart_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the empty ``marts`` tables the profile builders read (no-op for tables that exist)."""
    con.execute("create schema if not exists marts")
    for name, columns in _DDL.items():
        con.execute(f"create table if not exists marts.{name} ({columns})")


def load_day(con: duckdb.DuckDBPyConnection, source: Source, day: date) -> dict[str, int]:
    """Append one day of ``source`` to the mart tables; returns rows added per table."""
    create_mart_tables(con)
    tables = source.day_tables(day)
    for name, table in tables.items():
        con.register(f"_src_{name}", table)
    try:
        if "customers" in tables:
            con.execute("""
                insert into marts.dim_customers
                select customer_id, timezone('UTC', first_seen_ts), cast(timezone('UTC', first_seen_ts) as date),
                       region, country, lower(preferred_device)
                from _src_customers""")
        if "products" in tables:
            con.execute("""
                insert into marts.dim_products
                select sku, title, description, category, brand, price,
                       timezone('UTC', first_seen_ts), cast(timezone('UTC', first_seen_ts) as date)
                from _src_products""")
        if "events" in tables:
            con.execute("""
                insert into marts.fct_events
                select event_id, timezone('UTC', ts), cast(timezone('UTC', ts) as date), customer_id, session_id,
                       sku, lower(event_type), lower(channel), lower(placement), region, lower(device)
                from _src_events""")
        if "orders" in tables and "order_items" in tables:
            con.execute("""
                create or replace temp table _lines as
                select i.order_id, i.line_no, timezone('UTC', i.ts) as order_ts,
                       cast(timezone('UTC', i.ts) as date) as order_date, o.customer_id, lower(o.channel) as channel,
                       o.region, i.sku, i.qty, i.unit_price, coalesce(i.discount, 0.0) as discount,
                       cast(round(i.qty * i.unit_price * (1 - coalesce(i.discount, 0.0)), 2) as decimal(18, 2))
                           as net_amount,
                       i.warehouse_id,
                       case when i.qty > 0 and i.unit_price > 0 and coalesce(lower(o.status), '') <> 'cancelled'
                                then 'sale'
                            when i.qty < 0 then 'return' else 'adjustment' end as line_type
                from _src_order_items as i left join _src_orders as o on i.order_id = o.order_id""")
            con.execute("insert into marts.fct_order_items select *, line_type = 'sale' from _lines")
            con.execute("""
                insert into marts.fct_orders
                select o.order_id, timezone('UTC', o.ts), cast(timezone('UTC', o.ts) as date), o.customer_id,
                       o.session_id, lower(o.channel), o.region, o.country, lower(o.status),
                       lower(o.status) = 'cancelled', o.customer_id is null, coalesce(l.amount, 0)
                from _src_orders as o
                left join (select order_id, sum(net_amount) as amount from _lines group by order_id) as l
                    on o.order_id = l.order_id""")
            con.execute("drop table _lines")
        if "inventory" in tables:
            con.execute("""
                insert into marts.fct_inventory_daily
                select sku, warehouse_id, cast(timezone('UTC', snapshot_ts) as date), on_hand, on_order,
                       on_hand = 0
                from _src_inventory""")
    finally:
        for name in tables:
            con.unregister(f"_src_{name}")
    return {name: t.num_rows for name, t in tables.items()}


def load_days(con: duckdb.DuckDBPyConnection, source: Source, start: date, end: date) -> int:
    """Load every day of ``[start, end]``; returns the number of days loaded. Logs one line per day."""
    n_days = (end - start).days + 1
    for i in range(n_days):
        day = start + timedelta(days=i)
        t0 = time.perf_counter()
        counts = load_day(con, source, day)
        log.info("loaded %s %s in %.2fs: %s", source.name, day, time.perf_counter() - t0, counts)
    return n_days
