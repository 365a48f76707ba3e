"""Daily aggregates kept in schema ``features``: the small tables every profile window is computed from.

Why: a profile for day D needs 30/90/365-day windows. Rescanning the raw marts (hundreds of thousands of events a
day) for every window every day would grow with history; instead, each day adds one compact slice per table and
the profile builders sum slices (or, for the decayed preference vectors, update yesterday's state):

- ``features.customer_day``      one row per customer and day: sessions, views, carts, orders, units, spend,
                                 discounted units, price paid relative to the category median.
- ``features.customer_day_pref`` one row per customer, day, dimension and key: interest weights for category,
                                 brand, price_band, channel, placement and hour (view 1, cart 3, purchase 5).
- ``features.sku_day``           one row per SKU and day: funnel counts, sales, returns and cancellations,
                                 end-of-day stock.
- ``features.place_day``         channel x placement x region x hour x day: views, carts, purchases, orders, GMV.
- ``features.basket_pair_day``   co-purchase counts of SKU pairs (diagonal = single SKU) and ``basket_day``.
- ``features.aggregate_days``    which days have been aggregated (a trading-free day still gets a row).

:func:`update_daily_aggregates` reads only rows dated ``day`` from the marts (plus the product catalogue as of
``day``) and replaces that day in all tables in one transaction, so it is idempotent and point-in-time.
"""

from __future__ import annotations

import time
from datetime import date

import duckdb

from ml.profiles._db import (
    FEATURES,
    MARTS,
    columns_of,
    ensure_schema,
    lit,
    table_exists,
    transaction,
    write_partition,
)

VIEW_WEIGHT, CART_WEIGHT, PURCHASE_WEIGHT = 1.0, 3.0, 5.0
"""Interest weight of a view, an add-to-cart and a purchased line in the preference vectors."""
MAX_BASKET_SKUS = 60
"""Orders with more distinct SKUs than this (wholesale invoices in Online Retail) are left out of pair
counts: one 500-line invoice would add 125k pairs that say little about what goes together."""
PRICE_BANDS = ("low", "mid", "high")


def products_as_of_sql(day: date) -> str:
    """Products listed on or before ``day`` with a price band (tercile of list price within the category;
    the whole catalogue where the category is unknown) and the category's median list price."""
    return f"""
        select sku, category, brand, price, first_seen_date,
               case when price is null then null
                    when percent_rank() over w < 1.0 / 3 then 'low'
                    when percent_rank() over w < 2.0 / 3 then 'mid'
                    else 'high' end as price_band,
               median(price) over (partition by coalesce(category, '(none)')) as category_median_price
        from {MARTS}.dim_products
        where first_seen_date <= {lit(day)}
        window w as (partition by coalesce(category, '(none)') order by price)
    """


def _source(con: duckdb.DuckDBPyConnection, table: str, needed: str) -> str:
    """The mart table, or an empty relation with the needed columns when the source has no such table
    (the Online Retail replay has no clickstream and no inventory)."""
    if table_exists(con, f"{MARTS}.{table}"):
        return f"{MARTS}.{table}"
    return f"(select {needed} where false)"


_EMPTY_EVENTS = (
    "null::varchar as customer_id, null::varchar as session_id, null::varchar as sku, null::varchar as event_type,"
    " null::varchar as channel, null::varchar as placement, null::varchar as region, null::timestamp as event_ts,"
    " null::date as event_date"
)
_EMPTY_INVENTORY = (
    "null::varchar as sku, null::date as snapshot_date, null::bigint as on_hand, null::bigint as on_order"
)


def update_daily_aggregates(con: duckdb.DuckDBPyConnection, day: date) -> dict:
    """Aggregate the marts' rows of ``day`` into the ``features`` daily tables (replacing that day).

    Returns a summary dict (rows per table, seconds).
    """
    t0 = time.perf_counter()
    ensure_schema(con, FEATURES)
    d = lit(day)
    events = _source(con, "fct_events", _EMPTY_EVENTS)
    inventory = _source(con, "fct_inventory_daily", _EMPTY_INVENTORY)
    has_cancel_flag = "is_cancelled" in columns_of(con, f"{MARTS}.fct_orders")
    cancelled = "o.is_cancelled" if has_cancel_flag else "false"

    con.execute(f"create or replace temp table _products_asof as {products_as_of_sql(day)}")
    con.execute(
        f"""create or replace temp table _events_day as
        select customer_id, session_id, sku, event_type, channel, placement, region, event_ts,
               hour(event_ts) as hr
        from {events} where event_date = {d}"""
    )
    con.execute(
        f"""create or replace temp table _lines_day as
        select l.order_id, l.customer_id, l.sku, l.qty, l.unit_price, l.discount,
               cast(l.net_amount as decimal(18, 2)) as net_amount, l.line_type, l.channel, l.region, l.order_ts,
               o.session_id, coalesce({cancelled}, false) as is_cancelled
        from {MARTS}.fct_order_items as l
        left join (select * from {MARTS}.fct_orders where order_date = {d}) as o on l.order_id = o.order_id
        where l.order_date = {d}"""
    )
    customer_day = f"""
        with clicks as (
            select customer_id, count(distinct session_id) as n_sessions,
                   count(*) filter (where event_type = 'view') as n_views,
                   count(*) filter (where event_type = 'cart') as n_carts
            from _events_day where customer_id is not null group by customer_id
        ),
        sales as (
            select l.customer_id, count(distinct l.order_id) as n_orders, sum(l.qty) as units,
                   sum(l.net_amount) as spend,
                   coalesce(sum(l.qty) filter (where l.discount > 0), 0) as discounted_units,
                   sum(l.qty * l.unit_price / p.category_median_price)
                       filter (where p.category_median_price > 0) as rel_price_units,
                   coalesce(sum(l.qty) filter (where p.category_median_price > 0), 0) as rel_price_known_units
            from _lines_day as l left join _products_asof as p on l.sku = p.sku
            where l.line_type = 'sale' and l.customer_id is not null
            group by l.customer_id
        )
        select {d} as activity_date, coalesce(c.customer_id, s.customer_id) as customer_id,
               coalesce(c.n_sessions, 0)::bigint as n_sessions, coalesce(c.n_views, 0)::bigint as n_views,
               coalesce(c.n_carts, 0)::bigint as n_carts, coalesce(s.n_orders, 0)::bigint as n_orders,
               coalesce(s.units, 0)::bigint as units, coalesce(s.spend, 0)::decimal(18, 2) as spend,
               coalesce(s.discounted_units, 0)::bigint as discounted_units,
               coalesce(s.rel_price_units, 0)::double as rel_price_units,
               coalesce(s.rel_price_known_units, 0)::bigint as rel_price_known_units
        from clicks as c full outer join sales as s on c.customer_id = s.customer_id
    """
    customer_day_pref = f"""
        with item_signal as (
            select customer_id, sku,
                   case event_type when 'view' then {VIEW_WEIGHT} else {CART_WEIGHT} end as w
            from _events_day where customer_id is not null and event_type in ('view', 'cart')
            union all
            select customer_id, sku, {PURCHASE_WEIGHT} from _lines_day
            where line_type = 'sale' and customer_id is not null
        ),
        prefs as (
            select s.customer_id, 'category' as dimension, p.category as key, sum(s.w) as weight
            from item_signal as s join _products_asof as p on s.sku = p.sku
            where p.category is not null group by all
            union all
            select s.customer_id, 'brand', p.brand, sum(s.w)
            from item_signal as s join _products_asof as p on s.sku = p.sku
            where p.brand is not null group by all
            union all
            select s.customer_id, 'price_band', p.price_band, sum(s.w)
            from item_signal as s join _products_asof as p on s.sku = p.sku
            where p.price_band is not null group by all
            union all
            select customer_id, 'placement', placement, count(*)::double
            from _events_day where customer_id is not null and event_type = 'view' and placement is not null
            group by all
            union all
            -- channel: sessions per channel, and orders per channel (the only signal without a clickstream)
            select customer_id, 'channel', channel, count(distinct session_id)::double
            from _events_day where customer_id is not null and channel is not null group by all
            union all
            select customer_id, 'channel', channel, count(distinct order_id)::double
            from _lines_day where line_type = 'sale' and customer_id is not null and channel is not null
            group by all
            union all
            select customer_id, 'hour', hr::varchar, count(*)::double
            from _events_day where customer_id is not null group by all
            union all
            select customer_id, 'hour', hour(order_ts)::varchar, count(distinct order_id)::double
            from _lines_day where line_type = 'sale' and customer_id is not null group by all
        )
        select {d} as activity_date, customer_id, dimension, key, sum(weight)::double as weight
        from prefs group by all
    """
    sku_day = f"""
        with clicks as (
            select sku, count(*) filter (where event_type = 'view') as n_views,
                   count(*) filter (where event_type = 'cart') as n_carts
            from _events_day where sku is not null group by sku
        ),
        sales as (
            select sku,
                   coalesce(sum(qty) filter (where line_type = 'sale'), 0) as units_sold,
                   coalesce(sum(net_amount) filter (where line_type = 'sale'), 0) as revenue,
                   count(distinct order_id) filter (where line_type = 'sale') as n_orders,
                   coalesce(sum(-qty) filter (where line_type = 'return'), 0) as units_returned,
                   coalesce(sum(qty) filter (where line_type <> 'sale' and qty > 0 and is_cancelled), 0)
                       as units_cancelled
            from _lines_day where sku is not null group by sku
        ),
        stock as (
            select sku, sum(on_hand) as on_hand, sum(on_order) as on_order,
                   count(*) filter (where on_hand = 0) as stockout_locations
            from {inventory} where snapshot_date = {d} group by sku
        ),
        skus as (select sku from clicks union select sku from sales union select sku from stock)
        select {d} as activity_date, k.sku,
               coalesce(c.n_views, 0)::bigint as n_views, coalesce(c.n_carts, 0)::bigint as n_carts,
               coalesce(s.n_orders, 0)::bigint as n_orders, coalesce(s.units_sold, 0)::bigint as units_sold,
               coalesce(s.revenue, 0)::double as revenue,
               coalesce(s.units_returned, 0)::bigint as units_returned,
               coalesce(s.units_cancelled, 0)::bigint as units_cancelled,
               st.on_hand::bigint as on_hand, st.on_order::bigint as on_order,
               st.stockout_locations::bigint as stockout_locations
        from skus as k left join clicks as c on k.sku = c.sku left join sales as s on k.sku = s.sku
        left join stock as st on k.sku = st.sku
    """
    # A purchased line is credited to where its item was put in the cart (the first cart event of that SKU in
    # the session); orders without a clickstream session (Online Retail) count under placement 'unknown'.
    place_day = f"""
        with clicks as (
            select coalesce(channel, 'unknown') as channel, coalesce(placement, 'unknown') as placement,
                   coalesce(region, 'unknown') as region, hr as hour,
                   count(*) filter (where event_type = 'view') as views,
                   count(*) filter (where event_type = 'cart') as carts,
                   0 as purchases, null::varchar as order_id, 0.0 as gmv
            from _events_day where event_type in ('view', 'cart') group by all
        ),
        first_cart as (
            select session_id, sku, channel, placement, region, hr
            from _events_day where event_type = 'cart'
            qualify row_number() over (partition by session_id, sku order by event_ts, placement) = 1
        ),
        buys as (
            select coalesce(fc.channel, l.channel, 'unknown') as channel,
                   coalesce(fc.placement, 'unknown') as placement,
                   coalesce(fc.region, l.region, 'unknown') as region,
                   coalesce(fc.hr, hour(l.order_ts)) as hour,
                   0 as views, 0 as carts, 1 as purchases, l.order_id, l.net_amount as gmv
            from _lines_day as l
            left join first_cart as fc on l.session_id = fc.session_id and l.sku = fc.sku
            where l.line_type = 'sale'
        ),
        unioned as (select * from clicks union all select * from buys)
        select {d} as activity_date, channel, placement, region, hour::integer as hour,
               sum(views)::bigint as views, sum(carts)::bigint as carts, sum(purchases)::bigint as purchases,
               count(distinct order_id)::bigint as orders, sum(gmv)::double as gmv
        from unioned group by all
    """
    basket_pair_day = f"""
        with baskets as (
            select distinct order_id, sku from _lines_day where line_type = 'sale' and sku is not null
        ),
        kept as (
            select * from baskets
            where order_id in (select order_id from baskets group by order_id having count(*) <= {MAX_BASKET_SKUS})
        )
        select {d} as activity_date, a.sku as sku_a, b.sku as sku_b, count(*)::bigint as n_orders
        from kept as a join kept as b on a.order_id = b.order_id and a.sku <= b.sku
        group by all
    """
    basket_day = f"""
        with sizes as (
            select order_id, count(distinct sku) as n_skus from _lines_day
            where line_type = 'sale' and sku is not null group by order_id
        )
        select {d} as activity_date, count(*)::bigint as n_orders,
               count(*) filter (where n_skus <= {MAX_BASKET_SKUS})::bigint as n_orders_in_pairs
        from sizes
    """
    registry = f"select {d} as activity_date, current_timestamp::timestamp as aggregated_at"
    counts: dict[str, int] = {}
    with transaction(con):
        for table, sql in [
            ("customer_day", customer_day),
            ("customer_day_pref", customer_day_pref),
            ("sku_day", sku_day),
            ("place_day", place_day),
            ("basket_pair_day", basket_pair_day),
            ("basket_day", basket_day),
            ("aggregate_days", registry),
        ]:
            counts[table] = write_partition(con, f"{FEATURES}.{table}", "activity_date", day, sql)
    for temp in ("_products_asof", "_events_day", "_lines_day"):
        con.execute(f"drop table if exists {temp}")
    return {"rows": counts, "seconds": round(time.perf_counter() - t0, 3)}


def aggregated_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Days that :func:`update_daily_aggregates` has processed, in order."""
    if not table_exists(con, f"{FEATURES}.aggregate_days"):
        return []
    rows = con.execute(f"select activity_date from {FEATURES}.aggregate_days order by 1").fetchall()
    return [r[0] for r in rows]


def require_aggregates(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Fail loudly when ``day`` has not been aggregated: a silent gap would read as "no activity"."""
    if (
        not table_exists(con, f"{FEATURES}.aggregate_days")
        or not con.execute(
            f"select count(*) from {FEATURES}.aggregate_days where activity_date = ?", [day]
        ).fetchall()[0][0]
    ):
        raise ValueError(
            f"daily aggregates for {day} are missing: run update_daily_aggregates(con, {day!r}) first"
        )
